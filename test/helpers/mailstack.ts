// A private, throw-away mail stack for end-to-end tests: the real mailcloak
// daemon (identity from a Keycloak: the emulator unless an idp section is
// given, e.g. for a real Keycloak), a real Postfix instance and a real
// Dovecot (auth and LMTP only), all in one temp dir, on loopback ports picked
// at run time. Nothing of the system's own Postfix (/etc/postfix,
// /var/spool/postfix, port 25) or Dovecot is used or touched.
//
// Postfix and Dovecot run the documented snippets from configs/
// (postfix-main.cf, postfix-master.cf, dovecot-mailcloak.conf) with only their
// paths and ports substituted, added to a small test-only base config that
// stands for the admin's existing one (queue directory, host name, logging,
// no DNS, no TLS).

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync,
} from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parse } from "yaml";
import type { FakeKeycloak } from "../fake-keycloak.js";
import { ctlOk, DaemonProcess, freePort, have, mergeTree, ROOT, tempDir, type ConfigTree } from "./daemon.js";
import { keycloakIdpFor } from "./directory.js";
import { startFixtureFake } from "./fixture-users.js";
import { lookupGroup, lookupUser } from "../../src/system/accounts.js";

export type FailureMode = "tempfail" | "dunno";

/** SMTP AUTH passwords: users of the realm fixture (Dovecot passwd-file) and the app crm (mailcloak DB, Argon2id). */
export const PASSWORDS = {
  alice: "alice-pw",
  bob: "bob-pw",
  carol: "carol-pw",
  dave: "dave-pw",
  crm: "crm-app-secret",
} as const;

/** Programs the stack runs; each missing one is reported. */
export const REQUIRED_TOOLS = ["postfix", "postconf", "postmap", "dovecot", "doveconf", "swaks"] as const;
/** Dovecot's LMTP server (Debian package dovecot-lmtpd) and SQL driver (dovecot-sqlite). */
const DOVECOT_LMTP = "/usr/lib/dovecot/lmtp";
const DOVECOT_SQLITE = "/usr/lib/dovecot/modules/auth/libdriver_sqlite.so";

/** Why the stack cannot run here (missing programs, not root), or null. */
export function stackUnavailable(): string | null {
  const missing: string[] = REQUIRED_TOOLS.filter((t) => !have(t));
  if (!existsSync(DOVECOT_LMTP)) missing.push(`${DOVECOT_LMTP} (dovecot-lmtpd)`);
  if (!existsSync(DOVECOT_SQLITE)) missing.push("Dovecot's sqlite driver (dovecot-sqlite)");
  const problems: string[] = [];
  if (missing.length > 0) problems.push(`not installed: ${missing.join(", ")} (Debian: postfix dovecot-core dovecot-sqlite dovecot-lmtpd swaks)`);
  if (process.getuid?.() !== 0) problems.push("must run as root (Postfix and Dovecot masters)");
  return problems.length > 0 ? problems.join("; ") : null;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The full path of a program (PATH, then the sbin directories, where have() also looks). */
function which(cmd: string): string {
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/sbin"])) {
    if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return cmd;
}

/** Run a program with a deadline; never throws for a non-zero exit. */
export function run(cmd: string, args: readonly string[], opts: { timeoutMs?: number; cwd?: string; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(which(cmd), args, { timeout: opts.timeoutMs ?? 20_000, cwd: opts.cwd, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) + (err && code === null ? `\n[${err.message}]` : "") });
    });
    // A program that exits without reading its stdin must not crash the test with EPIPE.
    child.stdin?.on("error", () => undefined);
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

async function runOk(cmd: string, args: readonly string[], what: string, logs: () => string = () => ""): Promise<RunResult> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${what}: ${cmd} ${args.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}\n${logs()}`);
  return r;
}

/** Distinct free loopback TCP ports (held open together so they differ). */
async function freePorts(n: 3): Promise<[number, number, number]>;
async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      await new Promise<void>((resolve, reject) => {
        s.once("error", reject);
        s.listen(0, "127.0.0.1", () => resolve());
      });
      servers.push(s);
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** Poll until `check` returns a value (not undefined/false) or the deadline passes. */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Replace every `from` in `text`, insisting that it occurs (a snippet edited out of sync must fail loudly). */
function substitute(text: string, file: string, pairs: readonly (readonly [string | RegExp, string])[]): string {
  let out = text;
  for (const [from, to] of pairs) {
    const re = typeof from === "string" ? new RegExp(from.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "g") : from;
    if (!re.test(out)) throw new Error(`${file}: expected to find ${String(from)} to substitute for the test`);
    re.lastIndex = 0;
    out = out.replace(re, to);
  }
  return out;
}

// ---- SMTP client (swaks) --------------------------------------------------

export interface SmtpOptions {
  port: number;
  from: string;
  to: string;
  /** SASL PLAIN login. */
  auth?: { user: string; password: string };
  /**
   * Loopback address to connect from (default 127.0.0.1). Dovecot delays
   * logins from an address after failed ones (its auth penalty, up to 15 s);
   * tests that fail a login on purpose use an address of their own.
   */
  clientAddress?: string;
  /** Stop after this stage (default RCPT); null sends the whole message. */
  quitAfter?: "RCPT" | "MAIL" | "AUTH" | null;
  /** Headers (with the whole message only). */
  headers?: Record<string, string>;
  body?: string;
}

export interface SmtpExchange {
  /** The client line ("" for the greeting) and the server's reply lines joined with "\n". */
  readonly command: string;
  readonly reply: string;
}

export class SmtpResult {
  constructor(readonly code: number | null, readonly transcript: string, readonly exchanges: readonly SmtpExchange[]) {}

  /** The reply to the first client command starting with `verb` (e.g. "RCPT", "AUTH", "."). */
  replyTo(verb: string): string | undefined {
    const v = verb.toUpperCase();
    return this.exchanges.find((e) => e.command.toUpperCase().startsWith(v))?.reply;
  }

  get rcpt(): string | undefined {
    return this.replyTo("RCPT");
  }

  get auth(): string | undefined {
    return this.replyTo("AUTH");
  }

  /** The reply after the end of DATA (the queue id line). */
  get endOfData(): string | undefined {
    return this.exchanges.find((e) => e.command === ".")?.reply;
  }
}

/** Split a swaks transcript into client commands and the replies that follow them. */
export function parseSwaks(transcript: string): SmtpExchange[] {
  // swaks marks client lines " -> " and server lines "<-  " (or "<** " for errors; "~" under TLS).
  const out: { command: string; lines: string[] }[] = [];
  let current: { command: string; lines: string[] } = { command: "", lines: [] };
  for (const line of transcript.split("\n")) {
    const client = /^ ?[-~]> (.*)$/.exec(line);
    if (client) {
      if (current.lines.length > 0) out.push(current);
      current = { command: client[1]!, lines: [] };
      continue;
    }
    const server = /^<[-~*]{1,2} ?(.*)$/.exec(line);
    if (server) current.lines.push(server[1]!.trimStart());
  }
  if (current.lines.length > 0) out.push(current);
  return out.map((e) => ({ command: e.command, reply: e.lines.join("\n") }));
}

export async function smtp(o: SmtpOptions): Promise<SmtpResult> {
  const args = ["--server", `127.0.0.1:${o.port}`, "--helo", "client.e2e.test", "--from", o.from === "" ? "<>" : o.from, "--to", o.to, "--timeout", "15"];
  if (o.auth) args.push("--auth", "PLAIN", "--auth-user", o.auth.user, "--auth-password", o.auth.password);
  if (o.clientAddress) args.push("--local-interface", o.clientAddress);
  const quitAfter = o.quitAfter === undefined ? "RCPT" : o.quitAfter;
  if (quitAfter !== null) args.push("--quit-after", quitAfter);
  else {
    for (const [name, value] of Object.entries(o.headers ?? {})) args.push("--header", `${name}: ${value}`);
    args.push("--body", o.body ?? "mailcloak end-to-end test message");
  }
  const r = await run("swaks", args, { timeoutMs: 30_000 });
  const transcript = r.stdout + r.stderr;
  return new SmtpResult(r.code, transcript, parseSwaks(transcript));
}

// ---- The stack --------------------------------------------------------------

export interface MailStackOptions {
  failureMode?: FailureMode;
  /** mailcloak's idp section, replacing the one for the fake Keycloak (e.g. a real Keycloak). */
  idp?: ConfigTree;
  /** Merged over mailcloak's config (e.g. quotas, metrics); may be changed before restartDaemon(). */
  config?: ConfigTree;
  /** More logins for Dovecot's passwd-file (user -> password), e.g. users of another directory. */
  passwords?: Readonly<Record<string, string>>;
  /** A shared PostgreSQL instead of the stack's own SQLite file (several hosts: test/e2e-several-hosts.test.ts). */
  store?: StackStore;
}

/** A PostgreSQL store for the stack: mailcloak's store: section and Dovecot's pgsql passdb. */
export interface StackStore {
  /** postgres://USER@HOST:PORT/DB (no password). */
  readonly url: string;
  /** mailcloak's store.password_file; mailcloakctl --db URL reads MAILCLOAK_STORE_PASSWORD, which the test sets. */
  readonly passwordFile: string;
  /** Dovecot's role (configs/dovecot-mailcloak-sql-pgsql.conf.ext). */
  readonly dovecot: { readonly user: string; readonly password: string };
  /** Create the tables and the stack's usual rows (false: another host already did). */
  readonly seed: boolean;
}

/**
 * The main.cf lines a private loopback-only Postfix starts from (the tests'
 * stack and the benchmark's smtpd): its own queue, data directory and log
 * file, so the system's /var/spool/postfix and syslog stay untouched; no
 * local delivery, no aliases.
 */
export function privateMainCf(o: { queueDir: string; dataDir: string; domain: string; mynetworks: string; logFile: string; dir: string }): string[] {
  return [
    "compatibility_level = 3.6",
    `queue_directory = ${o.queueDir}`,
    `data_directory = ${o.dataDir}`,
    "mail_owner = postfix",
    "setgid_group = postdrop",
    `myhostname = mx.${o.domain}`,
    `mydomain = ${o.domain}`,
    "mydestination =",
    "local_recipient_maps =",
    "alias_maps =",
    "alias_database =",
    "inet_interfaces = loopback-only",
    "inet_protocols = ipv4",
    `mynetworks = ${o.mynetworks}`,
    `maillog_file = ${o.logFile}`,
    `maillog_file_prefixes = ${o.dir}`,
  ];
}

/** Standard Postfix services (test base; chroot n everywhere). The SMTP listeners come from configs/postfix-master.cf (the benchmark adds its own). */
export const MASTER_BASE = `# test-only base: Postfix's standard internal services, not chrooted
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

/** Owner of the test's mailboxes (Dovecot's static userdb; needs no passwd entry). */
const VMAIL_ID = 5000;

export class MailStack {
  readonly dir: string;
  readonly postfixDir: string;
  readonly spool: string;
  readonly vmail: string;
  readonly mcDir: string;
  readonly dovecotDir: string;
  readonly postfixLogPath: string;
  readonly dovecotLogPath: string;
  /** Port 25 role (configs/postfix-master.cf "smtp"). */
  smtpPort = 0;
  /** Port 587 role (configs/postfix-master.cf "submission"). */
  submissionPort = 0;
  /** Test-only extra submission service that checks senders with Postfix's own reject_authenticated_sender_login_mismatch. */
  nativePort = 0;
  /** mailcloak's /metrics listener (127.0.0.1). */
  metricsPort = 0;
  /** The emulator started for the stack when no idp section was given. */
  fake: FakeKeycloak | null = null;
  daemon!: DaemonProcess;
  failureMode: FailureMode;
  readonly idp: ConfigTree | null;
  extraConfig: ConfigTree;
  readonly passwords: Readonly<Record<string, string>>;
  readonly store: StackStore | null;
  #dovecot: ChildProcess | null = null;
  #dovecotExited: Promise<void> | null = null;
  #dovecotOutput = "";
  #postfixStarted = false;
  #masterPid: number | null = null;
  readonly #onExit = (): void => this.#emergencyStop();

  private constructor(opts: MailStackOptions) {
    this.dir = tempDir("mailcloak-e2e-");
    chmodSync(this.dir, 0o755); // postfix, dovecot and the mailbox owner must traverse it
    this.postfixDir = join(this.dir, "postfix");
    this.spool = join(this.dir, "spool");
    this.vmail = join(this.dir, "vmail");
    this.mcDir = join(this.dir, "mailcloak");
    this.dovecotDir = join(this.dir, "dovecot");
    this.postfixLogPath = join(this.dir, "postfix.log");
    this.dovecotLogPath = join(this.dovecotDir, "dovecot.log");
    this.failureMode = opts.failureMode ?? "tempfail";
    this.idp = opts.idp ?? null;
    this.extraConfig = opts.config ?? {};
    this.store = opts.store ?? null;
    this.passwords = { ...Object.fromEntries(Object.entries(PASSWORDS).filter(([u]) => u !== "crm")), ...opts.passwords };
  }

  /** Start everything; on failure, stop what was started and rethrow. */
  static async start(opts: MailStackOptions = {}): Promise<MailStack> {
    const s = new MailStack(opts);
    process.once("exit", s.#onExit);
    try {
      await s.#start();
      return s;
    } catch (err) {
      const logs = s.#diagnostics();
      await s.stop().catch(() => undefined);
      if (err instanceof Error) err.message += `\n${logs}`;
      throw err;
    }
  }

  // -- paths Postfix resolves relative to its queue directory --

  /** configs/config.yaml.sample's default socket paths, moved into this stack's queue directory. */
  get policySocket(): string {
    return join(this.spool, MailStack.sampleSocketNames().policy);
  }

  get socketmapSocket(): string {
    return join(this.spool, MailStack.sampleSocketNames().socketmap);
  }

  /** The daemon's pid file (daemon.pid_file), for mailcloakctl cache flush. */
  get pidFile(): string {
    return join(this.mcDir, "mailcloak.pid");
  }

  get authSocket(): string {
    return join(this.spool, "private/auth");
  }

  /** alice's (or anyone's) maildir "new" directory. */
  maildirNew(domain: string, local: string): string {
    return join(this.vmail, domain, local, "new");
  }

  async #start(): Promise<void> {
    for (const d of [this.postfixDir, this.spool, this.vmail, this.mcDir, this.dovecotDir, join(this.dir, "postfix-data")]) mkdirSync(d, { recursive: true });
    chownSync(join(this.dir, "postfix-data"), uid("postfix"), gid("postfix"));
    chownSync(this.vmail, VMAIL_ID, VMAIL_ID);
    chmodSync(this.vmail, 0o750);

    // Keycloak and the mailcloak database, while `postfix check` creates the
    // queue directories (private/ must exist before mailcloak and Dovecot put
    // their sockets there).
    if (!this.idp) this.fake = await startFixtureFake();
    [this.smtpPort, this.submissionPort, this.nativePort] = await freePorts(3);
    this.metricsPort = await freePort();
    this.#writePostfixConfig();
    await Promise.all([
      runOk("postfix", ["-c", this.postfixDir, "check"], "postfix check", () => this.postfixLog()),
      this.#createDatabase(),
    ]);

    // mailcloak.
    this.daemon = new DaemonProcess(this.mcDir);
    this.daemon.writeConfig(this.daemonConfig());
    await this.daemon.spawn();

    // Dovecot (foreground child: we own its PID).
    this.#writeDovecotConfig();
    await this.#startDovecot();

    // Postfix. A port taken between freePorts() and the bind is retried with new ports.
    for (let attempt = 1; ; attempt++) {
      const r = await run("postfix", ["-c", this.postfixDir, "start"], { timeoutMs: 30_000 });
      if (r.code === 0) break;
      if (attempt < 3 && /Address already in use/.test(this.postfixLog())) {
        [this.smtpPort, this.submissionPort, this.nativePort] = await freePorts(3);
        this.#writePostfixConfig();
        continue;
      }
      throw new Error(`postfix start exited ${r.code}: ${r.stderr}${r.stdout}`);
    }
    this.#postfixStarted = true;
    this.#masterPid = Number(readFileSync(join(this.spool, "pid/master.pid"), "utf8").trim());
    await waitFor("Postfix to accept connections", () => canConnect(this.smtpPort), 10_000);
  }

  async #createDatabase(): Promise<void> {
    if (this.store !== null && !this.store.seed) return;
    const db = this.store?.url ?? join(this.mcDir, "state.db");
    // One command after the other, as an admin would type them.
    for (const args of [
      ["init"],
      ["domains", "add", "d1.test"],
      ["domains", "add", "d2.test"],
      ["aliases", "add", "sales@d1.test", "alice"],
      ["aliases", "add", "old@d1.test", "alice"],
      ["aliases", "disable", "old@d1.test"],
      ["apps", "add", "crm", PASSWORDS.crm],
      ["apps", "allow", "crm", "sales@d1.test"],
    ]) await ctlOk(db, ...args);
    if (this.store === null) this.#shareDatabaseWithDovecot();
  }

  /** mailcloak's config: Keycloak (the given idp or the emulator), sockets where postfix-main.cf expects them. */
  daemonConfig(): ConfigTree {
    return mergeTree({
      idp: this.idp ?? keycloakIdpFor(this.fake!.url, { cache_ttl_seconds: 1, timeout_ms: 2000 }).idp,
      metrics: { listen: `127.0.0.1:${this.metricsPort}` },
      cache: { negative_ttl_seconds: 1, stale_seconds: 0 },
      policy: { idp_failure_mode: this.failureMode, send_allowed_attribute: "mailSendAllowed", recipient_delimiter: "+" },
      // Postfix keeps idle connections open, and the daemon waits out the whole
      // grace period for them on every stop: keep restarts short.
      daemon: { shutdown_grace_ms: 300, pid_file: this.pidFile },
      ...(this.store ? { store: { backend: "postgres", url: this.store.url, password_file: this.store.passwordFile } } : {}),
      sockets: {
        policy_socket: this.policySocket,
        socketmap_socket: this.socketmapSocket,
        socket_owner_user: "postfix",
        socket_owner_group: "postfix",
        socket_mode: "0660",
      },
    }, this.extraConfig);
  }

  /** Rewrite the daemon's config with another failure mode and restart it (its cache starts empty). */
  async setFailureMode(mode: FailureMode): Promise<void> {
    this.failureMode = mode;
    await this.restartDaemon();
  }

  async restartDaemon(): Promise<void> {
    await this.daemon.stop();
    this.daemon.writeConfig(this.daemonConfig());
    await this.daemon.spawn();
  }

  // -- configuration files --

  #snippet(name: string): string {
    return readFileSync(join(ROOT, "configs", name), "utf8");
  }

  /** The socket paths of configs/config.yaml.sample, which postfix-main.cf's relative paths must match. */
  static sampleSocketNames(): { policy: string; socketmap: string } {
    const sample = parse(readFileSync(join(ROOT, "configs/config.yaml.sample"), "utf8")) as { sockets: { policy_socket: string; socketmap_socket: string } };
    const rel = (p: string): string => {
      if (!p.startsWith("/var/spool/postfix/")) throw new Error(`config.yaml.sample: socket ${p} is not in /var/spool/postfix`);
      return p.slice("/var/spool/postfix/".length);
    };
    return { policy: rel(sample.sockets.policy_socket), socketmap: rel(sample.sockets.socketmap_socket) };
  }

  #writePostfixConfig(): void {
    const base = [
      "# test-only base (stands for the admin's own main.cf)",
      ...privateMainCf({
        queueDir: this.spool, dataDir: join(this.dir, "postfix-data"), domain: "e2e.test",
        mynetworks: "127.0.0.1/32", logFile: this.postfixLogPath, dir: this.dir,
      }),
      "smtp_host_lookup = native",
      "smtp_dns_support_level = disabled",
      "smtpd_peername_lookup = no",
      "smtpd_tls_security_level = none",
      "smtp_tls_security_level = none",
      "default_process_limit = 20",
      "# The tests abort most transactions after RCPT: they take Postfix's",
      "# inflow tokens and give none back, which would slow every later message by 1 s.",
      "in_flow_delay = 0s",
      "biff = no",
      "",
      "# ---- configs/postfix-main.cf ----",
    ].join("\n");
    // configs/postfix-main.cf needs no substitution: its paths are relative to queue_directory.
    writeFileSync(join(this.postfixDir, "main.cf"), `${base}\n${this.#snippet("postfix-main.cf")}`);

    const master = substitute(this.#snippet("postfix-master.cf"), "configs/postfix-master.cf", [
      [/^smtp(?= +inet )/m, `127.0.0.1:${this.smtpPort}`],
      [/^submission(?= +inet )/m, `127.0.0.1:${this.submissionPort}`],
    ]);
    const native = [
      "# test-only: the optional Postfix-native sender check of postfix-main.cf, on its own",
      `127.0.0.1:${this.nativePort} inet n       -       n       -       -       smtpd`,
      "  -o syslog_name=postfix/native",
      "  -o smtpd_sasl_auth_enable=yes",
      "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject",
      "  -o smtpd_sender_restrictions=reject_authenticated_sender_login_mismatch",
      "",
    ].join("\n");
    writeFileSync(join(this.postfixDir, "master.cf"), `${MASTER_BASE}\n# ---- configs/postfix-master.cf ----\n${master}\n${native}`);
  }

  #writeDovecotConfig(): void {
    const d = this.dovecotDir;
    const snippet = this.#snippet("dovecot-mailcloak.conf");
    const sqlExt = join(d, "mailcloak-sql.conf.ext");
    const pairs = [
      ["/var/spool/postfix/", `${this.spool}/`],
      ["/var/lib/mailcloak/", `${this.mcDir}/`],
      ["/etc/dovecot/dovecot-mailcloak-sql.conf.ext", sqlExt],
    ] as const;
    const conf = substitute(snippet, "configs/dovecot-mailcloak.conf", pairs);
    const sqlLines = conf.split("\n").filter((l) => l.startsWith("#| ")).map((l) => l.slice(3));
    if (sqlLines.length === 0) throw new Error("configs/dovecot-mailcloak.conf: no \"#| \" lines for the SQL settings file");
    writeFileSync(sqlExt, this.store ? this.#pgsqlSettings(this.store) : sqlLines.join("\n") + "\n", { mode: 0o640 });
    chownSync(sqlExt, 0, gid("dovecot"));
    writeFileSync(join(d, "mailcloak.conf"), conf);
    writeFileSync(join(d, "users"), Object.entries(this.passwords).map(([u, p]) => `${u}:{PLAIN}${p}\n`).join(""), { mode: 0o640 });
    chownSync(join(d, "users"), 0, gid("dovecot"));
    mkdirSync(join(d, "run"), { recursive: true });
    mkdirSync(join(d, "state"), { recursive: true });
    const base = [
      "# test-only base (stands for the admin's own dovecot.conf): auth and LMTP, no IMAP",
      `base_dir = ${join(d, "run")}`,
      `state_dir = ${join(d, "state")}`,
      `log_path = ${this.dovecotLogPath}`,
      "protocols = lmtp",
      "ssl = no",
      "# plain SMTP on loopback in the test; production keeps the default (yes) and TLS",
      "disable_plaintext_auth = no",
      "auth_verbose = yes",
      "auth_failure_delay = 0",
      "# the organisation's own user passdb; here a passwd-file",
      "passdb {",
      "  driver = passwd-file",
      `  args = ${join(d, "users")}`,
      "}",
      "# mailboxes: <vmail>/domain/user/ (maildir), owned by one virtual-mail uid",
      "userdb {",
      "  driver = static",
      `  args = uid=${VMAIL_ID} gid=${VMAIL_ID} home=${this.vmail}/%d/%n allow_all_users=yes`,
      "}",
      "mail_location = maildir:~",
      `!include ${join(d, "mailcloak.conf")}`,
      "",
    ].join("\n");
    writeFileSync(join(d, "dovecot.conf"), base);
  }

  /** configs/dovecot-mailcloak-sql-pgsql.conf.ext with this test's server, database and role. */
  #pgsqlSettings(store: StackStore): string {
    const u = new URL(store.url);
    return substitute(this.#snippet("dovecot-mailcloak-sql-pgsql.conf.ext"), "configs/dovecot-mailcloak-sql-pgsql.conf.ext", [
      [/^connect = .*$/m, `connect = host=${u.hostname} port=${u.port} dbname=${u.pathname.slice(1)} user=${store.dovecot.user} password=${store.dovecot.password} connect_timeout=3`],
    ]);
  }

  /** PID of the Postfix master started by start(). */
  get masterPid(): number | null {
    return this.#masterPid;
  }

  /** The PID in Postfix's pid file now, if that process is alive. */
  runningMasterPid(): number | null {
    const f = join(this.spool, "pid/master.pid");
    if (!existsSync(f)) return null;
    const pid = Number(readFileSync(f, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 && pidAlive(pid) ? pid : null;
  }

  get dovecotConf(): string {
    return join(this.dovecotDir, "dovecot.conf");
  }

  /** What dovecot-mailcloak.conf asks for: the auth-worker (user dovecot) can read the DB and write its WAL files. */
  #shareDatabaseWithDovecot(): void {
    const g = gid("dovecot");
    chownSync(this.mcDir, 0, g);
    chmodSync(this.mcDir, 0o2770);
    for (const f of readdirSync(this.mcDir)) {
      if (!f.startsWith("state.db")) continue;
      chownSync(join(this.mcDir, f), 0, g);
      chmodSync(join(this.mcDir, f), 0o660);
    }
  }

  async #startDovecot(): Promise<void> {
    const child = spawn(which("dovecot"), ["-F", "-c", this.dovecotConf], { stdio: ["ignore", "pipe", "pipe"] });
    this.#dovecot = child;
    this.#dovecotOutput = "";
    child.stdout!.on("data", (b: Buffer) => (this.#dovecotOutput += b.toString()));
    child.stderr!.on("data", (b: Buffer) => (this.#dovecotOutput += b.toString()));
    let exited = false;
    this.#dovecotExited = new Promise((resolve) => child.once("exit", () => {
      exited = true;
      resolve();
    }));
    child.once("error", (err) => (this.#dovecotOutput += String(err)));
    await waitFor("Dovecot's auth socket", () => {
      if (exited) throw new Error(`dovecot exited: ${this.#dovecotOutput}\n${this.dovecotLog()}`);
      return existsSync(this.authSocket) && statSync(this.authSocket).isSocket();
    }, 10_000, 50);
  }

  // -- logs --

  postfixLog(): string {
    return existsSync(this.postfixLogPath) ? readFileSync(this.postfixLogPath, "utf8") : "";
  }

  dovecotLog(): string {
    return existsSync(this.dovecotLogPath) ? readFileSync(this.dovecotLogPath, "utf8") : "";
  }

  /** The last lines of every log, for assertion messages. */
  #diagnostics(lines = 40): string {
    const tail = (s: string): string => s.split("\n").slice(-lines).join("\n");
    return [
      `--- postfix.log ---\n${tail(this.postfixLog())}`,
      `--- dovecot.log ---\n${tail(this.dovecotLog() + this.#dovecotOutput)}`,
      `--- mailcloak ---\n${tail(this.daemon?.output ?? "")}`,
    ].join("\n");
  }

  diagnostics(): string {
    return this.#diagnostics();
  }

  // -- shutdown --

  /** Stop Postfix, Dovecot, mailcloak and the emulator if it started one (each bounded), then delete the temp dir. */
  async stop(): Promise<void> {
    const errors: unknown[] = [];
    const step = async (f: () => Promise<void>): Promise<void> => {
      try {
        await f();
      } catch (err) {
        errors.push(err);
      }
    };
    await step(() => this.#stopPostfix());
    await step(() => this.#stopDovecot());
    await step(async () => {
      await this.daemon?.stop();
    });
    await step(async () => {
      await this.fake?.stop();
    });
    process.removeListener("exit", this.#onExit);
    if (errors.length === 0) rmSync(this.dir, { recursive: true, force: true });
    if (errors.length > 0) throw new Error(`stopping the mail stack (left ${this.dir}): ${errors.map(String).join("; ")}`);
  }

  async #stopPostfix(): Promise<void> {
    if (!this.#postfixStarted) return;
    this.#postfixStarted = false;
    // `postfix stop` signals the master (by its pid file) and waits up to 5 s.
    await run("postfix", ["-c", this.postfixDir, "stop"], { timeoutMs: 15_000 });
    const pid = this.#masterPid;
    if (pid === null) return;
    try {
      await waitFor("the Postfix master to exit", () => !pidAlive(pid), 8_000, 50);
    } catch (err) {
      process.kill(pid, "SIGKILL");
      throw err;
    }
  }

  async #stopDovecot(): Promise<void> {
    const child = this.#dovecot;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const done = await Promise.race([this.#dovecotExited!.then(() => true), sleep(10_000).then(() => false)]);
    if (!done) {
      child.kill("SIGKILL");
      throw new Error("dovecot did not exit within 10 s of SIGTERM");
    }
  }

  /** Last resort if the test process exits without after(): signal what we started, by PID. */
  #emergencyStop(): void {
    if (this.#postfixStarted && this.#masterPid !== null && pidAlive(this.#masterPid)) process.kill(this.#masterPid, "SIGTERM");
    if (this.#dovecot && this.#dovecot.exitCode === null) this.#dovecot.kill("SIGTERM");
    if (this.daemon?.child && this.daemon.exitCode === null) this.daemon.child.kill("SIGTERM");
  }
}

export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port }, () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(false);
    });
  });
}

export function uid(user: string): number {
  const u = lookupUser(user);
  if (!u) throw new Error(`no such user: ${user}`);
  return u.uid;
}

export function gid(group: string): number {
  const g = lookupGroup(group);
  if (g === null) throw new Error(`no such group: ${group}`);
  return g;
}

/** A subject line no other message has. */
export function uniqueSubject(prefix: string): string {
  return `${prefix} ${Date.now()}-${randomBytes(6).toString("hex")}`;
}

/** Wait until a file in `dir` contains `needle`; returns its content. */
export function waitForMessage(dir: string, needle: string, timeoutMs = 10_000): Promise<string> {
  return waitFor(`a message containing ${JSON.stringify(needle)} in ${dir}`, () => {
    if (!existsSync(dir)) return undefined;
    for (const f of readdirSync(dir)) {
      const text = readFileSync(join(dir, f), "utf8");
      if (text.includes(needle)) return text;
    }
    return undefined;
  }, timeoutMs, 100);
}
