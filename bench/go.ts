// The Go mailcloak as a benchmark target (`node dist/bench/run.js --go=BINARY`,
// bench/README.md "The Go mailcloak, measured the same way"). The binary is
// built outside this repository; this file only writes its config, starts it
// and waits for its sockets. The version measured (the commit whose go.mod
// the search index holds) reads the older config layout of
// test/fixtures/go-sample.yaml: a top-level keycloak section, policy.domain,
// socket owner names that must resolve. It has no log level: it logs its
// start and errors, nothing per request, which is its shipped default.

import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { stringify } from "yaml";
import { waitForSockets, type DaemonPaths } from "./daemon.js";

/** Name of the group with this gid (the Go daemon looks the socket group up by name). */
function groupName(gid: number): string {
  for (const line of readFileSync("/etc/group", "utf8").split("\n")) {
    const f = line.split(":");
    if (f[2] === String(gid) && f[0]) return f[0];
  }
  throw new Error(`no group with gid ${gid} in /etc/group`);
}

/** The Go version's config layout (go-sample.yaml), pointed at the benchmark's Keycloak, database and sockets. */
export function goConfig(paths: DaemonPaths, keycloakUrl: string, domain: string): Record<string, unknown> {
  const me = userInfo();
  return {
    keycloak: { base_url: keycloakUrl, realm: "test", client_id: "mailcloak", client_secret: "s3cret" },
    sqlite: { path: paths.db },
    // The TTL of our benchmark config, so that no known user expires during the run.
    policy: { domain, cache_ttl_seconds: 3600, keycloak_failure_mode: "tempfail" },
    sockets: {
      policy_socket: paths.policySocket,
      socketmap_socket: paths.socketmapSocket,
      socket_owner_user: me.username,
      socket_owner_group: groupName(me.gid),
      socket_mode: "0660",
    },
  };
}

export class GoDaemon {
  readonly paths: DaemonPaths;
  readonly logPath: string;
  readonly #binary: string;
  readonly #configPath: string;
  #child: ChildProcess | null = null;
  #exitCode: number | null = null;
  #exited: Promise<void> = Promise.resolve();

  constructor(binary: string, paths: DaemonPaths, config: Record<string, unknown>) {
    this.#binary = binary;
    this.paths = paths;
    mkdirSync(paths.dir, { recursive: true, mode: 0o755 });
    this.#configPath = join(paths.dir, "config.yaml");
    this.logPath = join(paths.dir, "daemon.log");
    writeFileSync(this.#configPath, stringify(config));
  }

  get pid(): number {
    const pid = this.#child?.pid;
    if (pid === undefined) throw new Error("Go daemon not running");
    return pid;
  }

  /** True while the process runs (it has no recovery for some failures, e.g. a concurrent map write). */
  get running(): boolean {
    return this.#child !== null && this.#exitCode === null && this.#child.signalCode === null;
  }

  logTail(lines = 20): string {
    return existsSync(this.logPath) ? readFileSync(this.logPath, "utf8").split("\n").slice(-lines).join("\n") : "";
  }

  /** Starts the binary (config path as its one argument) and waits until both sockets accept. */
  async start(): Promise<void> {
    const fd = openSync(this.logPath, "a");
    const child = spawn(this.#binary, [this.#configPath], { cwd: this.paths.dir, stdio: ["ignore", fd, fd] });
    closeSync(fd);
    this.#child = child;
    this.#exitCode = null;
    this.#exited = new Promise((resolve) => child.once("exit", (code, signal) => {
      this.#exitCode = code ?? (signal ? 128 : -1);
      resolve();
    }));
    process.once("exit", () => child.kill("SIGKILL"));
    await waitForSockets(this.paths, "the Go daemon", () => this.#exitCode, () => ` ${this.logTail(3).trim()}`);
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.#child!.kill("SIGTERM");
    const r = await Promise.race([this.#exited.then(() => "exited" as const), sleep(5000).then(() => "timeout" as const)]);
    if (r === "timeout") this.#child!.kill("SIGKILL");
  }
}
