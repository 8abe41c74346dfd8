// Test harness: runs the real daemon (bin/mailcloak) as a child process on a
// temp config and DB, and talks to it over its real sockets.

import { spawn, execFile, type ChildProcess } from "node:child_process";
import { after } from "node:test";
import { mkdtempSync, existsSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { stringify } from "yaml";

/** The repository root (tests run from dist/test/). */
export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const MAILCLOAK = join(ROOT, "bin/mailcloak");
export const MAILCLOAKCTL = join(ROOT, "bin/mailcloakctl");

export function tempDir(prefix = "mailcloak-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface CtlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run mailcloakctl for real. */
export function ctl(db: string, ...args: string[]): Promise<CtlResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAILCLOAKCTL, "--db", db, ...args], { cwd: ROOT }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export async function ctlOk(db: string, ...args: string[]): Promise<string> {
  const r = await ctl(db, ...args);
  if (r.code !== 0) throw new Error(`mailcloakctl ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

export type ConfigTree = Record<string, unknown>;

/** Deep-merge config trees: mappings merge, anything else replaces. */
export function mergeTree(a: ConfigTree, b: ConfigTree): ConfigTree {
  const out: ConfigTree = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] = v && typeof v === "object" && !Array.isArray(v) && cur && typeof cur === "object" && !Array.isArray(cur)
      ? mergeTree(cur as ConfigTree, v as ConfigTree)
      : v;
  }
  return out;
}

export interface DaemonOptions {
  /** Merged over the base config (static users alice/bob/carol). */
  config?: ConfigTree;
  /** Skip `mailcloakctl init` (to test a missing DB). */
  noInit?: boolean;
  dir?: string;
}

export const BASE_USERS = [
  { username: "alice", email: "alice@d1.test", enabled: true },
  { username: "bob", email: "bob@d1.test", enabled: true, attributes: { mailSendAllowed: ["false"] } },
  { username: "carol", email: "carol@d1.test", enabled: false },
  { username: "dave", email: "dave@d2.test", enabled: true },
];

/** Every daemon a test started; killed when the test process exits, so a failed test never hangs the run. */
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});
// A test that failed before its own cleanup leaves its daemon (and the pipes
// to it) alive, and the file's process would never exit. Once the file's
// tests and hooks are done, give cleanups 15 s, then end what is left. The
// timer is unref'd: it never keeps a finished file alive by itself. Only
// under `node --test` (the benchmark imports this file too).
if (process.env.NODE_TEST_CONTEXT !== undefined) {
  after(() => {
    setTimeout(() => {
      for (const c of live) c.kill("SIGKILL");
    }, 15_000).unref();
  });
}

export class DaemonProcess {
  readonly dir: string;
  readonly db: string;
  readonly configPath: string;
  readonly policySocket: string;
  readonly socketmapSocket: string;
  child: ChildProcess | null = null;
  /** Node options for the daemon process, e.g. the heap cap the service files set. */
  nodeArgs: string[] = [];
  output = "";
  exitCode: number | null = null;
  #exited: Promise<number | null> | null = null;

  constructor(dir: string) {
    this.dir = dir;
    this.db = join(dir, "state.db");
    this.configPath = join(dir, "config.yaml");
    this.policySocket = join(dir, "policy.sock");
    this.socketmapSocket = join(dir, "socketmap.sock");
  }

  static async start(opts: DaemonOptions = {}): Promise<DaemonProcess> {
    const d = new DaemonProcess(opts.dir ?? tempDir());
    d.writeConfig(opts.config ?? {});
    if (!opts.noInit && !existsSync(d.db)) await ctlOk(d.db, "init");
    await d.spawn();
    return d;
  }

  baseConfig(): ConfigTree {
    return {
      idp: { provider: "static", static: { users: BASE_USERS } },
      sqlite: { path: this.db },
      policy: { idp_failure_mode: "tempfail", send_allowed_attribute: "mailSendAllowed" },
      sockets: { policy_socket: this.policySocket, socketmap_socket: this.socketmapSocket },
      daemon: { allow_root: true, shutdown_grace_ms: 3000 },
      log: { level: "info" },
    };
  }

  writeConfig(overrides: ConfigTree): void {
    writeFileSync(this.configPath, stringify(mergeTree(this.baseConfig(), overrides)));
  }

  async spawn(): Promise<void> {
    this.output = "";
    this.exitCode = null;
    const child = spawn(process.execPath, [...this.nodeArgs, MAILCLOAK, "--config", this.configPath], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    live.add(child);
    child.once("exit", () => live.delete(child));
    child.stdout!.on("data", (b: Buffer) => (this.output += b.toString()));
    child.stderr!.on("data", (b: Buffer) => (this.output += b.toString()));
    this.#exited = new Promise((resolve) => child.once("exit", (code) => {
      this.exitCode = code;
      resolve(code);
    }));
    // Generous: a loaded CI machine (a JVM, browsers and mail stacks beside it) starts Node slowly.
    const deadline = Date.now() + 30_000;
    while (!this.output.includes("mailcloak started")) {
      if (this.exitCode !== null) throw new Error(`daemon exited with ${this.exitCode}: ${this.output}`);
      if (Date.now() > deadline) {
        // Don't leave it running: a live child keeps the test file from exiting.
        child.kill("SIGKILL");
        throw new Error(`daemon did not start: ${this.output}`);
      }
      await sleep(20);
    }
  }

  /** Wait for the process to exit (after a signal), with a deadline. */
  async waitExit(timeoutMs = 10_000): Promise<number | null> {
    const t = sleep(timeoutMs).then(() => "timeout" as const);
    const r = await Promise.race([this.#exited!, t]);
    if (r === "timeout") throw new Error("daemon did not exit in time");
    return r;
  }

  signal(sig: NodeJS.Signals): void {
    this.child?.kill(sig);
  }

  async stop(): Promise<void> {
    if (this.child && this.exitCode === null) {
      this.child.kill("SIGTERM");
      await this.waitExit();
    }
  }

  async cleanup(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Log records (JSON lines) printed so far. */
  records(): Record<string, unknown>[] {
    return this.output.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

/** A persistent client connection that sends one request and reads one reply at a time. */
export class Client {
  readonly #socket: net.Socket;
  #buf = Buffer.alloc(0);
  #waiter: (() => void) | null = null;
  closed = false;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("data", (b: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, b]);
      this.#waiter?.();
    });
    socket.on("close", () => {
      this.closed = true;
      this.#waiter?.();
    });
    socket.on("error", () => undefined);
  }

  static connect(path: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ path }, () => resolve(new Client(s)));
      s.once("error", reject);
    });
  }

  write(data: string | Buffer): void {
    this.#socket.write(data);
  }

  end(): void {
    this.#socket.end();
  }

  destroy(): void {
    this.#socket.destroy();
  }

  /** Wait until `complete(buffer)` returns the length of a full reply; consume it. */
  async read(complete: (b: Buffer) => number, timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const n = complete(this.#buf);
      if (n > 0) {
        const out = this.#buf.subarray(0, n);
        this.#buf = this.#buf.subarray(n);
        return out;
      }
      if (this.closed) throw new Error("connection closed");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting for a reply");
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(t);
          this.#waiter = null;
          resolve();
        };
      });
    }
  }

  /** Resolves when the server closes the connection. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error("connection still open");
      await sleep(10);
    }
  }
}

/** A loopback TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, "127.0.0.1");
  await new Promise((r) => s.once("listening", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

export function netstring(s: string): string {
  return `${Buffer.byteLength(s)}:${s},`;
}

/** Length of a complete netstring at the start of b, or 0. */
export function netstringLength(b: Buffer): number {
  const colon = b.indexOf(0x3a);
  if (colon < 0) return 0;
  const len = Number(b.toString("latin1", 0, colon));
  const total = colon + 1 + len + 1;
  return b.length >= total ? total : 0;
}

export async function socketmapQuery(c: Client, map: string, key: string): Promise<string> {
  c.write(netstring(`${map} ${key}`));
  const r = (await c.read(netstringLength)).toString("utf8");
  return r.slice(r.indexOf(":") + 1, -1);
}

/** Send one policy request (attributes in the given order); return the action. */
export async function policyQuery(c: Client, attrs: Record<string, string>): Promise<string> {
  const body = Object.entries({ request: "smtpd_access_policy", ...attrs }).map(([k, v]) => `${k}=${v}\n`).join("") + "\n";
  c.write(body);
  const r = (await c.read((b) => {
    const i = b.indexOf("\n\n");
    return i < 0 ? 0 : i + 2;
  })).toString("utf8");
  const m = /^action=(.*)\n\n$/.exec(r);
  if (!m) throw new Error(`malformed policy reply: ${JSON.stringify(r)}`);
  return m[1]!;
}

let postfixConf: string | null = null;

/** A private Postfix config directory, so tests never depend on /etc/postfix/main.cf. */
export function postfixConfDir(): string {
  if (postfixConf) return postfixConf;
  const dir = tempDir("mailcloak-postconf-");
  writeFileSync(join(dir, "main.cf"), "compatibility_level = 3.6\nmaillog_file = /dev/stdout\n");
  postfixConf = dir;
  return dir;
}

/** postmap -q against a socketmap table, for real. */
export function postmap(socket: string, map: string, keyOrStdin: string, stdin?: string): Promise<CtlResult> {
  return new Promise((resolve) => {
    const args = ["-c", postfixConfDir(), "-q", keyOrStdin, `socketmap:unix:${socket}:${map}`];
    const child = execFile("postmap", args, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (stdin !== undefined) child.stdin!.end(stdin);
    else child.stdin!.end();
  });
}

export function have(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/sbin"])) {
    if (dir && existsSync(join(dir, cmd))) return true;
  }
  return false;
}

/** In CI a missing tool fails the test; elsewhere the test is skipped. */
export function requireTool(t: { skip: (msg: string) => void }, cmd: string): boolean {
  if (have(cmd)) return true;
  if (process.env.CI === "true") throw new Error(`${cmd} is not installed; CI must install it (see .ci/run)`);
  t.skip(`${cmd} not installed`);
  return false;
}

/**
 * The node flags the shipped service files put in NODE_OPTIONS (systemd
 * unit and OpenRC script must agree), so tests and the benchmark run the
 * daemon as deployed.
 */
export function shippedNodeArgs(): string[] {
  const unit = readFileSync(join(ROOT, "configs", "mailcloak.service"), "utf8");
  const openrc = readFileSync(join(ROOT, "configs", "openrc-mailcloak"), "utf8");
  const fromUnit = /^Environment="?NODE_OPTIONS=([^"\n]*)"?$/m.exec(unit)?.[1];
  const fromOpenrc = /^export NODE_OPTIONS="([^"\n]*)"$/m.exec(openrc)?.[1];
  if (fromUnit === undefined || fromUnit !== fromOpenrc) {
    throw new Error(`configs/mailcloak.service and configs/openrc-mailcloak must set the same NODE_OPTIONS (got ${JSON.stringify(fromUnit)} and ${JSON.stringify(fromOpenrc)})`);
  }
  return fromUnit.split(/\s+/).filter((x) => x !== "");
}
