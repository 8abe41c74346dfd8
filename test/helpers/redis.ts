// A private redis-server for the quota tests: a child process on a loopback
// port picked at run time, no persistence, owned by its PID. stop() and
// start() again keep the port (an outage and a recovery, as a restarted
// Redis looks to its clients).

import { spawn, type ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort, have } from "./daemon.js";

/** Why Redis tests cannot run here, or null. */
export function redisUnavailable(): string | null {
  return have("redis-server") ? null : "redis-server is not installed (Debian package redis-server)";
}

export class RedisServer {
  readonly port: number;
  #child: ChildProcess | null = null;
  #exited: Promise<void> | null = null;
  output = "";

  private constructor(port: number) {
    this.port = port;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  static async start(): Promise<RedisServer> {
    const r = new RedisServer(await freePort());
    await r.resume();
    return r;
  }

  get running(): boolean {
    return this.#child !== null;
  }

  /** Start (again) on the same port. */
  async resume(): Promise<void> {
    if (this.#child) return;
    const child = spawn("redis-server", ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"], { stdio: ["ignore", "pipe", "pipe"] });
    this.#child = child;
    this.output = "";
    child.stdout!.on("data", (b: Buffer) => (this.output += b.toString()));
    child.stderr!.on("data", (b: Buffer) => (this.output += b.toString()));
    let gone = false;
    this.#exited = new Promise((resolve) => child.once("exit", () => {
      gone = true;
      resolve();
    }));
    process.once("exit", () => child.kill("SIGKILL"));
    const deadline = Date.now() + 10_000;
    while (!this.output.includes("Ready to accept connections")) {
      if (gone) {
        this.#child = null;
        throw new Error(`redis-server exited: ${this.output}`);
      }
      if (Date.now() > deadline) throw new Error(`redis-server did not start: ${this.output}`);
      await sleep(20);
    }
  }

  /** Stop the server (SIGTERM to our child, by its PID), waiting for it to exit. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    child.kill("SIGTERM");
    const done = await Promise.race([this.#exited!.then(() => true), sleep(10_000, false, { ref: false })]);
    if (!done) child.kill("SIGKILL");
    await this.#exited;
    this.#child = null;
  }
}
