// Test harness for mailcloak-admin: runs the real program (bin/mailcloak-admin)
// as a child process and talks HTTP to it; every exchange is recorded so the
// OpenAPI check can look at all of them.

import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ROOT } from "./daemon.js";

export const MAILCLOAK_ADMIN = join(ROOT, "bin/mailcloak-admin");

export interface Exchange {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly body: unknown;
  readonly text: string;
  readonly headers: http.IncomingHttpHeaders;
}

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

/** Run mailcloak-admin until it exits (for start-up refusals). */
export function runAdminOnce(args: readonly string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 15_000): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAILCLOAK_ADMIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout!.on("data", (b: Buffer) => (output += b.toString()));
    child.stderr!.on("data", (b: Buffer) => (output += b.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

export class AdminProcess {
  readonly child: ChildProcess;
  output = "";
  exitCode: number | null = null;
  /** "http://127.0.0.1:PORT" or "unix:PATH". */
  address = "";
  token: string | null = null;
  readonly exchanges: Exchange[] = [];

  private constructor(child: ChildProcess) {
    this.child = child;
  }

  static async start(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<AdminProcess> {
    const child = spawn(process.execPath, [MAILCLOAK_ADMIN, "--allow-root", ...args], {
      cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"],
    });
    live.add(child);
    const a = new AdminProcess(child);
    child.stdout!.on("data", (b: Buffer) => (a.output += b.toString()));
    child.stderr!.on("data", (b: Buffer) => (a.output += b.toString()));
    child.once("exit", (code) => {
      a.exitCode = code;
      live.delete(child);
    });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const m = /"address":"([^"]+)"[^\n]*"msg":"mailcloak admin listening"/.exec(a.output);
      if (m) {
        a.address = m[1]!;
        break;
      }
      if (a.exitCode !== null) throw new Error(`mailcloak-admin exited with ${a.exitCode}: ${a.output}`);
      if (Date.now() > deadline) throw new Error(`mailcloak-admin did not start: ${a.output}`);
      await sleep(20);
    }
    return a;
  }

  get url(): string {
    return this.address;
  }

  /** One HTTP request; JSON bodies are encoded unless `raw` is given. */
  request(method: string, path: string, o: { json?: unknown; raw?: string | Buffer; token?: string | null; headers?: Record<string, string> } = {}): Promise<Exchange> {
    const headers: Record<string, string> = { ...o.headers };
    const token = o.token === undefined ? this.token : o.token;
    if (token) headers.authorization = `Bearer ${token}`;
    let body: string | Buffer | undefined = o.raw;
    if (o.json !== undefined) {
      body = JSON.stringify(o.json);
      headers["content-type"] ??= "application/json";
    }
    if (body !== undefined) headers["content-length"] = String(Buffer.byteLength(body));
    const target = this.address.startsWith("unix:")
      ? { socketPath: this.address.slice(5), path }
      : { host: new URL(this.address).hostname, port: Number(new URL(this.address).port), path };
    return new Promise((resolve, reject) => {
      const req = http.request({ ...target, method, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = undefined;
          if (text !== "" && /json/.test(res.headers["content-type"] ?? "")) parsed = JSON.parse(text);
          const ex = { method, path, status: res.statusCode ?? 0, body: parsed, text, headers: res.headers };
          this.exchanges.push(ex);
          resolve(ex);
        });
      });
      req.on("error", reject);
      req.end(body);
    });
  }

  async stop(): Promise<void> {
    if (this.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.kill("SIGTERM");
    await Promise.race([exited, sleep(10_000)]);
    if (this.exitCode === null) this.child.kill("SIGKILL");
  }

  /** Log records (JSON lines) printed so far. */
  records(): Record<string, unknown>[] {
    return this.output.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}
