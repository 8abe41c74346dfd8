// A private PostgreSQL 15 for the tests, from Debian's binaries
// (/usr/lib/postgresql/15/bin): initdb and postgres run as the system user
// postgres (setpriv, which execs: the child's PID is the server's) in a temp
// data directory, listening on 127.0.0.1 on a port picked at run time, its
// Unix socket in the temp directory. stop() and resume() keep the port and
// the data (a restart, as the daemons see one). Only our own PID is signalled.
//
// Roles: the superuser `postgres` (password auth on TCP, scram-sha-256) and
// `mailcloak`, owner of database `mailcloak`, both with the password in
// `password`; a test that wants its own database calls createDatabase().

import { execFile } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "./daemon.js";
import { ServerProcess } from "./server-process.js";
import { lookupGroup, lookupUser } from "../../src/system/accounts.js";

export const PG_BIN = "/usr/lib/postgresql/15/bin";

/** Why PostgreSQL tests cannot run here, or null. */
export function postgresUnavailable(): string | null {
  if (!existsSync(join(PG_BIN, "postgres")) || !existsSync(join(PG_BIN, "initdb"))) {
    return `PostgreSQL 15 is not installed (${PG_BIN}; Debian package postgresql-15)`;
  }
  if (lookupUser("postgres") === null) return "no system user postgres (Debian's postgresql-common creates it)";
  if (process.getuid?.() !== 0) return "must run as root (initdb and postgres run as user postgres through setpriv)";
  return null;
}

/** Skip a test with the reason outside CI; fail in CI (a missing piece must be installed by .ci/run). */
export function skipWithoutPostgres(t: { skip: (msg: string) => void }): boolean {
  const why = postgresUnavailable();
  if (why === null) return false;
  if (process.env.CI === "true") throw new Error(`${why}; CI must install it (see .ci/run)`);
  t.skip(why);
  return true;
}

function asPostgres(cmd: string, args: readonly string[]): [string, string[]] {
  return ["setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", join(PG_BIN, cmd), ...args]];
}

function runAsPostgres(cmd: string, args: readonly string[]): Promise<string> {
  const [exe, full] = asPostgres(cmd, args);
  return new Promise((resolve, reject) => {
    execFile(exe, full, { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} failed: ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout + stderr);
    });
  });
}

export interface PostgresOptions {
  /** Extra `-c name=value` server settings. */
  readonly settings?: Readonly<Record<string, string>>;
}

export class PostgresServer {
  readonly dir: string;
  readonly dataDir: string;
  readonly port: number;
  readonly password = "pg-test-pw";
  readonly #settings: Readonly<Record<string, string>>;
  #proc: ServerProcess | null = null;

  private constructor(dir: string, port: number, settings: Readonly<Record<string, string>>) {
    this.dir = dir;
    this.dataDir = join(dir, "data");
    this.port = port;
    this.#settings = settings;
  }

  /** initdb, start, create role and database mailcloak. */
  static async start(opts: PostgresOptions = {}): Promise<PostgresServer> {
    const why = postgresUnavailable();
    if (why !== null) throw new Error(why);
    const dir = mkdtempSync(join(tmpdir(), "mailcloak-pg-"));
    const uid = lookupUser("postgres")!.uid;
    const gid = lookupGroup("postgres") ?? lookupUser("postgres")!.gid;
    chownSync(dir, uid, gid);
    chmodSync(dir, 0o700);
    const s = new PostgresServer(dir, await freePort(), opts.settings ?? {});
    const pwfile = join(dir, "pwfile");
    writeFileSync(pwfile, `${s.password}\n`, { mode: 0o600 });
    chownSync(pwfile, uid, gid);
    await runAsPostgres("initdb", ["-D", s.dataDir, "-U", "postgres", "--pwfile", pwfile, "--auth-host=scram-sha-256",
      "--auth-local=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]);
    rmSync(pwfile);
    await s.resume();
    await s.sql(`CREATE ROLE mailcloak LOGIN PASSWORD '${s.password}'`);
    await s.createDatabase("mailcloak");
    return s;
  }

  get running(): boolean {
    return this.#proc !== null && !this.#proc.stopped;
  }

  get pid(): number | null {
    return this.running ? this.#proc!.pid : null;
  }

  /** What the server (the last one started) printed. */
  get output(): string {
    return this.#proc?.output ?? "";
  }

  /** A URL for role mailcloak (no password: it goes in password_file or the environment). */
  url(database = "mailcloak", user = "mailcloak"): string {
    return `postgres://${user}@127.0.0.1:${this.port}/${database}`;
  }

  /** The same with the password in it (for clients in the test itself, never for the daemon's logs). */
  urlWithPassword(database = "mailcloak", user = "mailcloak"): string {
    return `postgres://${user}:${encodeURIComponent(this.password)}@127.0.0.1:${this.port}/${database}`;
  }

  /** Start (again) on the same port and data directory; resolves when it accepts connections. */
  async resume(): Promise<void> {
    if (this.running) return;
    const settings = {
      listen_addresses: "127.0.0.1",
      port: String(this.port),
      unix_socket_directories: this.dir,
      // A test server: no crash safety needed, and it starts and stops fast.
      fsync: "off",
      full_page_writes: "off",
      synchronous_commit: "off",
      max_connections: "100",
      shared_buffers: "32MB",
      log_min_messages: "warning",
      ...this.#settings,
    };
    const args = ["-D", this.dataDir, ...Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`])];
    const [exe, full] = asPostgres("postgres", args);
    this.#proc = await ServerProcess.start("postgres", exe, full, { ready: () => this.#accepts(), timeoutMs: 60_000, pollMs: 50 });
  }

  async #accepts(): Promise<boolean> {
    const c = new pg.Client({ connectionString: this.urlWithPassword("postgres", "postgres"), connectionTimeoutMillis: 2000 });
    c.on("error", () => undefined);
    try {
      await c.connect();
      await c.query("SELECT 1");
      return true;
    } catch {
      return false;
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  /**
   * Stop the server: "fast" (SIGINT: clients are disconnected, a clean
   * shutdown) or "immediate" (SIGQUIT: as after a crash). Waits for exit.
   */
  async stop(mode: "fast" | "immediate" = "fast"): Promise<void> {
    await this.#proc?.stop(mode === "fast" ? "SIGINT" : "SIGQUIT", 30_000);
  }

  /** Run SQL as the superuser in `database`. */
  async sql(text: string, database = "postgres"): Promise<pg.QueryResult> {
    const c = new pg.Client({ connectionString: this.urlWithPassword(database, "postgres") });
    c.on("error", () => undefined);
    await c.connect();
    try {
      return await c.query(text);
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  /** A new empty database owned by role mailcloak. */
  async createDatabase(name: string): Promise<string> {
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
    await this.sql(`CREATE DATABASE ${name} OWNER mailcloak`);
    return name;
  }

  /** Stop and delete the data directory. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
