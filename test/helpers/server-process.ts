// One server child process a test helper owns (PostgreSQL, Redis): its
// output collected, started only once it answers, stopped by signalling its
// own PID, and killed if the test process exits first.

import { spawn, type ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";

export interface ServerStart {
  /** Whether the server answers yet, from its output so far or by asking it. */
  readonly ready: (output: string) => boolean | Promise<boolean>;
  readonly timeoutMs: number;
  /** How long to wait between two ready checks. */
  readonly pollMs: number;
}

export class ServerProcess {
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  #gone = false;
  #stopped = false;
  output = "";

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.stdout!.on("data", (b: Buffer) => (this.output += b.toString()));
    child.stderr!.on("data", (b: Buffer) => (this.output += b.toString()));
    this.#exited = new Promise((resolve) => child.once("exit", () => {
      this.#gone = true;
      resolve();
    }));
    process.once("exit", () => child.kill("SIGKILL"));
  }

  /** Spawn `exe args` and resolve once it is ready; throws (with its output) when it exits or stays unready past the deadline. */
  static async start(name: string, exe: string, args: readonly string[], opts: ServerStart): Promise<ServerProcess> {
    const p = new ServerProcess(spawn(exe, args, { stdio: ["ignore", "pipe", "pipe"] }));
    const deadline = Date.now() + opts.timeoutMs;
    for (;;) {
      if (p.#gone) throw new Error(`${name} exited: ${p.output}`);
      if (await opts.ready(p.output)) return p;
      if (Date.now() > deadline) {
        await p.stop("SIGKILL", 10_000);
        throw new Error(`${name} did not start: ${p.output}`);
      }
      await sleep(opts.pollMs);
    }
  }

  get pid(): number | null {
    return this.#child.pid ?? null;
  }

  /** stop() was called (one that died by itself is not stopped: its owner notices through its clients). */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Send `signal`; SIGKILL when it has not exited within graceMs. Resolves once it has exited. */
  async stop(signal: NodeJS.Signals, graceMs: number): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#child.kill(signal);
    const done = await Promise.race([this.#exited.then(() => true), sleep(graceMs, false, { ref: false })]);
    if (!done) this.#child.kill("SIGKILL");
    await this.#exited;
  }
}
