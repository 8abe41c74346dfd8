// A private redis-server for the quota tests: a child process on a loopback
// port picked at run time, no persistence, owned by its PID. stop() and
// start() again keep the port (an outage and a recovery, as a restarted
// Redis looks to its clients).

import { freePort, have } from "./daemon.js";
import { ServerProcess } from "./server-process.js";

/** Why Redis tests cannot run here, or null. */
export function redisUnavailable(): string | null {
  return have("redis-server") ? null : "redis-server is not installed (Debian package redis-server)";
}

export class RedisServer {
  readonly port: number;
  #proc: ServerProcess | null = null;

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
    return this.#proc !== null && !this.#proc.stopped;
  }

  /** What the server (the last one started) printed. */
  get output(): string {
    return this.#proc?.output ?? "";
  }

  /** Start (again) on the same port. */
  async resume(): Promise<void> {
    if (this.running) return;
    this.#proc = await ServerProcess.start("redis-server", "redis-server",
      ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"],
      { ready: (output) => output.includes("Ready to accept connections"), timeoutMs: 10_000, pollMs: 20 });
  }

  /** Stop the server (SIGTERM to our child, by its PID), waiting for it to exit. */
  async stop(): Promise<void> {
    await this.#proc?.stop("SIGTERM", 10_000);
  }
}
