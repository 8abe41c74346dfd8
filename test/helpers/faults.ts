// Shared bits of the fault, load and abuse suites: starting a daemon on a
// prepared DB, the Keycloak idp section for the fake, /metrics scraping,
// the daemon's resident memory, deadline-bound polling and percentiles.

import { readFileSync } from "node:fs";
import net from "node:net";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { Client, ctlOk, DaemonProcess, freePort, mergeTree, policyQuery, tempDir, type ConfigTree } from "./daemon.js";
import type { FakeKeycloak } from "../fake-keycloak.js";

export { freePort, mergeTree };

/** The idp section for the fake Keycloak (replaces the static users of the base config). */
export function keycloakIdp(kc: FakeKeycloak, keycloak: ConfigTree = {}): ConfigTree {
  return {
    idp: {
      provider: "keycloak",
      static: null,
      keycloak: { base_url: kc.url, realm: kc.realm, client_id: "mailcloak", client_secret: "s3cret", ...keycloak },
    },
  };
}

export interface StackOptions {
  config?: ConfigTree;
  /** Runs after `init` and `domains add d1.test`, before the daemon starts. */
  prepare?: (d: DaemonProcess) => Promise<void>;
  /** Extra `aliases add` pairs. */
  aliases?: ReadonlyArray<readonly [string, string]>;
  /**
   * Log only warnings and errors once started (busy suites would otherwise
   * collect a JSON line per request). The harness waits for the info-level
   * "mailcloak started" line, so the level is lowered by SIGHUP after start.
   */
  quiet?: boolean;
  /** Node options for the daemon (see DaemonProcess.nodeArgs). */
  nodeArgs?: string[];
}

/** A daemon on a fresh DB with domain d1.test (and the given aliases). */
export async function startStack(opts: StackOptions = {}): Promise<DaemonProcess> {
  const d = new DaemonProcess(tempDir());
  await ctlOk(d.db, "init");
  await ctlOk(d.db, "domains", "add", "d1.test");
  for (const [alias, user] of opts.aliases ?? []) await ctlOk(d.db, "aliases", "add", alias, user);
  await opts.prepare?.(d);
  d.writeConfig(opts.config ?? {});
  d.nodeArgs = opts.nodeArgs ?? [];
  await d.spawn();
  if (opts.quiet) await quiet(d, opts.config ?? {});
  return d;
}

/** Rewrite the config with log.level warn, SIGHUP, and wait until a policy decision is no longer logged. */
export async function quiet(d: DaemonProcess, config: ConfigTree): Promise<void> {
  d.writeConfig(mergeTree(config, { log: { level: "warn" } }));
  d.signal("SIGHUP");
  const c = await Client.connect(d.policySocket);
  try {
    await waitUntil(async () => {
      const before = d.output.length;
      await policyQuery(c, { protocol_state: "RCPT", sender: "", recipient: "quiet@elsewhere.test" });
      await sleep(100);
      return !d.output.slice(before).includes("policy decision");
    }, 5000, "the daemon to apply log.level warn", 50);
  } finally {
    c.destroy();
  }
}


/** GET /metrics with a deadline. */
export async function scrape(port: number, timeoutMs = 5000): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  return r.text();
}

/** Sum of the samples of `name` whose labels include `labels` (0 when absent). */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map<string, string>();
    for (const pair of (m[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have.set(pair[1]!, pair[2]!);
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) sum += Number(m[4]);
  }
  return sum;
}

/** VmRSS of a process, in KiB. */
export function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/** Is the process there (signal 0)? */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The daemon is still the process we started: no exit, pid present. */
export function assertUp(d: DaemonProcess): void {
  if (d.exitCode !== null) throw new Error(`daemon exited with ${d.exitCode}:\n${d.output.slice(-4000)}`);
  if (!d.child?.pid || !isAlive(d.child.pid)) throw new Error("daemon process is gone");
}

/** Poll until `check` returns true; throws with `what` after the deadline. Returns the elapsed ms. */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string, intervalMs = 50): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await check()) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Run `f`, returning its value and how long it took (ms). */
export async function timed<T>(f: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await f();
  return { value, ms: performance.now() - t0 };
}

/** The p-th percentile (0..100), nearest-rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new Error("percentile of nothing");
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

/** A small deterministic PRNG (mulberry32) so a failing random input can be replayed from its seed. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A raw connection that records how and when it ended (for abuse tests). */
export class RawConn {
  readonly socket: net.Socket;
  readonly openedAt = performance.now();
  /** When the server's EOF arrived (null: not yet). */
  endAt: number | null = null;
  /** When the socket closed completely (null: not yet). */
  closeAt: number | null = null;
  received = 0;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("data", (b: Buffer) => (this.received += b.length));
    socket.on("end", () => (this.endAt ??= performance.now()));
    socket.on("close", () => {
      this.closeAt ??= performance.now();
      this.endAt ??= this.closeAt;
    });
    socket.on("error", () => undefined);
  }

  static connect(path: string, opts: { allowHalfOpen?: boolean; timeoutMs?: number } = {}): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ path, allowHalfOpen: opts.allowHalfOpen ?? false });
      const t = setTimeout(() => {
        s.destroy();
        reject(new Error(`connect to ${path} timed out`));
      }, opts.timeoutMs ?? 5000);
      s.once("connect", () => {
        clearTimeout(t);
        resolve(new RawConn(s));
      });
      s.once("error", (err) => {
        clearTimeout(t);
        reject(err);
      });
    });
  }

  /** The server ended the stream (EOF or full close). */
  get ended(): boolean {
    return this.endAt !== null;
  }

  get closed(): boolean {
    return this.closeAt !== null;
  }

  write(data: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  destroy(): void {
    this.socket.destroy();
  }
}
