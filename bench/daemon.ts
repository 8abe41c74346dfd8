// Runs the real daemon (bin/mailcloak) for the benchmark. Unlike the test
// harness it does not read the daemon's log through a pipe (the info-level
// decision log would cost the benchmark process a string copy per
// request, and at log level warn there is no "started" line): stdout
// and stderr go to a file in the run's directory and readiness is "both
// sockets accept a connection".

import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, statSync, writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { stringify } from "yaml";
import { MAILCLOAK, ROOT } from "../test/helpers/daemon.js";

export interface DaemonPaths {
  readonly dir: string;
  readonly db: string;
  readonly policySocket: string;
  readonly socketmapSocket: string;
}

export interface StartOptions {
  /** Write a V8 CPU profile into this directory on exit (node --cpu-prof). */
  readonly cpuProfDir?: string;
  /** More node flags (e.g. --max-old-space-size=96). */
  readonly nodeArgs?: readonly string[];
  /** The daemon's entry point; default this checkout's bin/mailcloak (--ab: another checkout's). */
  readonly bin?: string;
}

export interface Memory {
  readonly vmHwmKb: number;
  readonly vmRssKb: number;
}

function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ path }, () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/**
 * Wait (15 s at most) until both of a daemon's sockets accept a connection.
 * `exitCode` is the process's once it has exited (then this fails at once);
 * `detail` is appended to either error (the end of its log).
 */
export async function waitForSockets(paths: DaemonPaths, name: string, exitCode: () => number | null, detail: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const code = exitCode();
    if (code !== null) throw new Error(`${name} exited with ${code}:${detail()}`);
    if ((await canConnect(paths.policySocket)) && (await canConnect(paths.socketmapSocket))) return;
    if (Date.now() > deadline) throw new Error(`${name} did not open its sockets:${detail()}`);
    await sleep(25);
  }
}

export class BenchDaemon {
  readonly paths: DaemonPaths;
  readonly configPath: string;
  readonly logPath: string;
  #config: Record<string, unknown>;
  #child: ChildProcess | null = null;
  #exit: Promise<number | null> | null = null;
  #exitCode: number | null = null;

  constructor(paths: DaemonPaths, config: Record<string, unknown>) {
    this.paths = paths;
    this.configPath = join(paths.dir, "config.yaml");
    this.logPath = join(paths.dir, "daemon.log");
    this.#config = config;
    this.#write();
  }

  get pid(): number {
    const pid = this.#child?.pid;
    if (pid === undefined) throw new Error("daemon not running");
    return pid;
  }

  #write(): void {
    writeFileSync(this.configPath, stringify(this.#config));
  }

  /** Bytes the daemon has logged so far. */
  logBytes(): number {
    return existsSync(this.logPath) ? statSync(this.logPath).size : 0;
  }

  logTail(lines = 20): string {
    if (!existsSync(this.logPath)) return "";
    return readFileSync(this.logPath, "utf8").split("\n").slice(-lines).join("\n");
  }

  async start(opts: StartOptions = {}): Promise<void> {
    const fd = openSync(this.logPath, "a");
    const args = [
      ...(opts.nodeArgs ?? []),
      ...(opts.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${opts.cpuProfDir}`] : []),
      opts.bin ?? MAILCLOAK, "--config", this.configPath,
    ];
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", fd, fd] });
    closeSync(fd);
    this.#child = child;
    this.#exitCode = null;
    this.#exit = new Promise((resolve) => child.once("exit", (code) => {
      this.#exitCode = code;
      resolve(code);
    }));
    process.once("exit", () => child.kill("SIGKILL"));
    await waitForSockets(this.paths, "mailcloak", () => this.#exitCode, () => `\n${this.logTail()}`);
  }

  /** Change config keys and apply them with SIGHUP (log.level is reloadable). */
  async reload(patch: (cfg: Record<string, unknown>) => void): Promise<void> {
    patch(this.#config);
    this.#write();
    this.#child?.kill("SIGHUP");
    await sleep(300);
  }

  memory(): Memory {
    const status = readFileSync(`/proc/${this.pid}/status`, "utf8");
    const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
    return { vmHwmKb: kb("VmHWM"), vmRssKb: kb("VmRSS") };
  }

  /** SIGTERM and wait (the CPU profile, if any, is written on this exit). */
  async stop(timeoutMs = 15_000): Promise<void> {
    const child = this.#child;
    if (!child || this.#exitCode !== null) return;
    child.kill("SIGTERM");
    const r = await Promise.race([this.#exit!, sleep(timeoutMs).then(() => "timeout" as const)]);
    if (r === "timeout") {
      child.kill("SIGKILL");
      throw new Error("mailcloak did not stop within 15 s of SIGTERM");
    }
  }
}

/** The shipped log level (configs/config.yaml.sample and the loader's default): one info line per policy decision. */
export const SHIPPED_LOG_LEVEL = "info";

/**
 * The benchmark's daemon configuration: Keycloak (through the front), big
 * cache, the shipped log level unless told otherwise, the metrics listener
 * on when given a port (README: metrics.listen, e.g. 127.0.0.1:9464);
 * quotas as shipped (none), or with `quotas` limits no run reaches, so
 * every end-of-data request is a full check-and-count.
 */
export function benchConfig(paths: DaemonPaths, keycloakUrl: string, opts: { maxEntries: number; logLevel?: string; metricsPort?: number | null; socketGroup: string | null; quotas: boolean }): Record<string, unknown> {
  return {
    idp: {
      provider: "keycloak",
      keycloak: {
        base_url: keycloakUrl,
        realm: "test",
        client_id: "mailcloak",
        client_secret: "s3cret",
        timeout_ms: 5000,
        // Long enough that no known user expires during the run: hot
        // scenarios stay all-hit.
        cache_ttl_seconds: 3600,
      },
    },
    cache: { max_entries: opts.maxEntries, negative_ttl_seconds: 30, stale_seconds: 300 },
    sqlite: { path: paths.db },
    policy: { idp_failure_mode: "tempfail", send_allowed_attribute: "mailSendAllowed", recipient_delimiter: "+" },
    sockets: {
      policy_socket: paths.policySocket,
      socketmap_socket: paths.socketmapSocket,
      // Postfix's smtpd (user postfix) must reach the policy socket in the end-to-end part.
      ...(opts.socketGroup ? { socket_owner_group: opts.socketGroup } : {}),
      socket_mode: "0660",
    },
    daemon: { allow_root: true, shutdown_grace_ms: 2000 },
    limits: { max_connections: 2048 },
    log: { level: opts.logLevel ?? SHIPPED_LOG_LEVEL },
    ...(opts.metricsPort ? { metrics: { listen: `127.0.0.1:${opts.metricsPort}` } } : {}),
    ...(opts.quotas ? { quotas: { per_hour: 1_000_000_000, per_day: 1_000_000_000, recipients_per_hour: 1_000_000_000 } } : {}),
  };
}
