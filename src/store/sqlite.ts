// The SQLite store: domains, aliases and app credentials. The daemon and
// mailcloakctl both go through this module; statements are prepared once.
// Reads are live: a change committed by mailcloakctl (or any SQLite client)
// is seen by every request that arrives after the commit. Query results are
// memoised while the WAL-index header shows no commit since they were read;
// the header is looked at (a pread) once per batch of requests already read
// (server/turn.ts), or per read outside one.

import Database from "better-sqlite3";
import { accessSync, constants as fsConstants, existsSync, readFileSync, statSync } from "node:fs";
import { isCatchAll, isValidAddress, isValidDomain, normalize } from "../rules/address.js";
import { WalVersion } from "./wal-version.js";
import { detach } from "../strings.js";
import type { LimitOverride } from "../quota/limits.js";
import { readQuotaOverride } from "./quota-limits.js";
import { readDelegatedLogins } from "./delegations.js";

type DB = Database.Database;

/** An error the admin caused (bad argument, unknown row): exit status 1, no stack. */
export class StoreError extends Error {
  override readonly name: string = "StoreError";
}

export class MissingDatabaseError extends StoreError {
  override readonly name = "MissingDatabaseError";
}

/** The row named does not exist (the admin API answers 404). */
export class NotFoundError extends StoreError {
  override readonly name = "NotFoundError";
}

/** The row to create already exists (the admin API answers 409). */
export class ConflictError extends StoreError {
  override readonly name = "ConflictError";
}

const SCHEMA_URL = new URL("../../../db-init.sql", import.meta.url);

export function schemaSql(): string {
  return readFileSync(SCHEMA_URL, "utf8");
}

export interface DomainRow {
  readonly domain_name: string;
  readonly enabled: boolean;
  readonly updated_at: number;
}
export interface AliasRow {
  readonly alias_email: string;
  readonly target_user: string;
  readonly alias_domain_name: string;
  readonly enabled: boolean;
  readonly updated_at: number;
}
export interface AppSenderRow {
  readonly from_addr: string;
  readonly enabled: boolean;
  readonly updated_at: number;
}
export interface AppRow {
  readonly app_id: string;
  readonly enabled: boolean;
  readonly updated_at: number;
  readonly senders: AppSenderRow[];
}

/** What the daemon needs to know about an alias. */
export interface AliasTarget {
  readonly targetUser: string;
  readonly domain: string;
  /** Alias row and its domain both enabled. */
  readonly active: boolean;
}

export interface OpenOptions {
  readonly busyTimeoutMs?: number;
  /** Create the file (mailcloakctl init). Otherwise a missing file is an error. */
  readonly create?: boolean;
  readonly readonly?: boolean;
}

function openDb(path: string, opts: OpenOptions): DB {
  if (!opts.create && path !== ":memory:" && !existsSync(path)) {
    throw new MissingDatabaseError(`database ${path} does not exist; create it with: mailcloakctl --db ${path} init`);
  }
  const db = new Database(path, {
    fileMustExist: !opts.create,
    timeout: opts.busyTimeoutMs ?? 5000,
    readonly: opts.readonly ?? false,
  });
  // init switches to WAL only once its migration has committed, and a DB that
  // open() will refuse (older layout) is not switched either: a refused
  // command leaves an older (rollback-journal) file byte-for-byte unchanged.
  if (!opts.readonly && !opts.create && schemaProblem(db) === null) db.pragma("journal_mode = WAL");
  db.pragma("foreign_keys = ON");
  db.pragma("synchronous = NORMAL");
  return db;
}

function columns(db: DB, table: string): Set<string> {
  const rows = db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[];
  return new Set(rows.map((r) => r.name));
}

function hasTable(db: DB, table: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?").get(table) !== undefined;
}

/** Why the DB cannot be served as is, or null when its schema is current. */
export function schemaProblem(db: DB): string | null {
  for (const t of ["domains", "aliases", "apps", "app_from"]) {
    if (!hasTable(db, t)) return `table ${t} is missing`;
  }
  if (!columns(db, "aliases").has("target_user")) return "table aliases has the older layout (username column)";
  return null;
}

export interface MigrationReport {
  readonly migrated: boolean;
  readonly steps: string[];
}

/**
 * Bring a DB to the current schema in one transaction. Older layouts (aliases
 * keyed by a username column, apps with created_at, app_from without
 * updated_at, no domains table) are rebuilt with every row kept.
 */
export function migrate(db: DB): MigrationReport {
  const steps: string[] = [];
  db.pragma("foreign_keys = OFF"); // table rebuilds; checked again below
  // Renaming a table must not rewrite the REFERENCES of other tables (apps
  // renamed while app_from is kept would point app_from at the dropped copy).
  db.pragma("legacy_alter_table = ON");
  try {
    db.transaction(() => {
      const oldAliases = hasTable(db, "aliases") && !columns(db, "aliases").has("target_user");
      const oldApps = hasTable(db, "apps") && !columns(db, "apps").has("updated_at");
      const oldAppFrom = hasTable(db, "app_from") && !columns(db, "app_from").has("updated_at");
      if (oldAliases) {
        const bad = db.prepare("SELECT alias_email FROM aliases WHERE instr(alias_email, '@') = 0 LIMIT 3").all() as { alias_email: string }[];
        if (bad.length > 0) {
          throw new StoreError(`cannot migrate: aliases without a domain: ${bad.map((b) => b.alias_email).join(", ")}; fix or delete them first`);
        }
        db.exec("ALTER TABLE aliases RENAME TO aliases_pre_migration");
        db.exec("DROP INDEX IF EXISTS idx_aliases_username");
        steps.push("aliases: username column renamed to target_user, alias_domain_name added");
      }
      if (oldApps) {
        db.exec("ALTER TABLE apps RENAME TO apps_pre_migration");
        steps.push("apps: created_at carried over to updated_at");
      }
      if (oldAppFrom) {
        db.exec("ALTER TABLE app_from RENAME TO app_from_pre_migration");
        steps.push("app_from: updated_at added");
      }
      db.exec(schemaSql());
      if (oldAliases) {
        const n = db.prepare(`INSERT OR IGNORE INTO domains(domain_name, enabled)
          SELECT DISTINCT lower(substr(alias_email, instr(alias_email, '@') + 1)), 1 FROM aliases_pre_migration`).run().changes;
        if (n > 0) steps.push(`domains: ${n} created from the aliases' domains`);
        db.exec(`INSERT INTO aliases(alias_email, target_user, alias_domain_name, enabled, updated_at)
          SELECT lower(alias_email), username, lower(substr(alias_email, instr(alias_email, '@') + 1)), enabled, updated_at
          FROM aliases_pre_migration`);
        db.exec("DROP TABLE aliases_pre_migration");
      }
      if (oldApps) {
        db.exec(`INSERT INTO apps(app_id, secret_hash, enabled, updated_at)
          SELECT app_id, secret_hash, enabled, created_at FROM apps_pre_migration`);
        db.exec("DROP TABLE apps_pre_migration");
      }
      if (oldAppFrom) {
        db.exec(`INSERT INTO app_from(app_id, from_addr, enabled)
          SELECT app_id, from_addr, enabled FROM app_from_pre_migration`);
        db.exec("DROP TABLE app_from_pre_migration");
      }
      const broken = db.pragma("foreign_key_check") as unknown[];
      if (broken.length > 0) throw new StoreError(`cannot migrate: ${broken.length} rows violate foreign keys`);
    }).immediate();
  } finally {
    db.pragma("legacy_alter_table = OFF");
    db.pragma("foreign_keys = ON");
  }
  return { migrated: steps.length > 0, steps };
}

function now(): number {
  return Math.floor(Date.now() / 1000);
}

const b = (v: number): boolean => v === 1;

/** The daemon's read side: prepared once, one query per question. */
interface Statements {
  readonly domainEnabled: Database.Statement<[string], { enabled: number }>;
  readonly alias: Database.Statement<[string], { target_user: string; alias_domain_name: string; enabled: number; domain_enabled: number | null }>;
  readonly app: Database.Statement<[string], { enabled: number }>;
  readonly appAllows: Database.Statement<[string, string], { enabled: number }>;
  readonly appsForSender: Database.Statement<[string], { app_id: string }>;
  readonly recipient: Database.Statement<[{ domain: string; addr: string; base: string | null }], { dom: number | null; exact: string | null; base: string | null; catchall: string | null }>;
}

/** Everything an address in one domain can match, from one query. */
export interface AddressRows {
  /** The domain's row: true enabled, false disabled, undefined absent. */
  readonly domainEnabled: boolean | undefined;
  readonly exact: AliasTarget | undefined;
  /** The alias for the address without its extension (when one was given). */
  readonly base: AliasTarget | undefined;
  readonly catchAll: AliasTarget | undefined;
}

function prepare(db: DB): Statements {
  return {
    domainEnabled: db.prepare("SELECT enabled FROM domains WHERE domain_name = ?"),
    alias: db.prepare(`SELECT a.target_user, a.alias_domain_name, a.enabled, d.enabled AS domain_enabled
      FROM aliases a LEFT JOIN domains d ON d.domain_name = a.alias_domain_name WHERE a.alias_email = ?`),
    app: db.prepare("SELECT enabled FROM apps WHERE app_id = ?"),
    appAllows: db.prepare("SELECT enabled FROM app_from WHERE app_id = ? AND from_addr = ?"),
    appsForSender: db.prepare(`SELECT f.app_id FROM app_from f JOIN apps a ON a.app_id = f.app_id
      WHERE f.from_addr = ? AND f.enabled = 1 AND a.enabled = 1 ORDER BY f.app_id`),
    // One statement instead of up to four: each statement costs a lock
    // round trip (fcntl), which the benchmark showed dominates a lookup.
    recipient: db.prepare(`SELECT
      (SELECT enabled FROM domains WHERE domain_name = @domain) AS dom,
      (SELECT target_user || char(9) || enabled FROM aliases WHERE alias_email = @addr) AS exact,
      (SELECT target_user || char(9) || enabled FROM aliases WHERE alias_email = @base) AS base,
      (SELECT target_user || char(9) || enabled FROM aliases WHERE alias_email = '@' || @domain) AS catchall`),
  };
}

/** Thrown by lookups while the DB file is gone or unreadable: a temporary failure. */
export class DatabaseUnavailableError extends StoreError {
  override readonly name = "DatabaseUnavailableError";
}

export interface StoreEvents {
  onUnavailable?(reason: string): void;
  onRecovered?(): void;
}

/** How often the daemon checks that its DB file is still the one it has open. */
const WATCH_MS = 1000;
/** Memoised query results kept between commits (all dropped when full). */
export const MEMO_MAX = 20_000;
const ABSENT = Symbol("absent");
const MISS = Symbol("miss");

/**
 * The daemon's read side. An open SQLite handle keeps working on a file that
 * was deleted or replaced, silently answering from data no admin can change
 * any more; so the file is checked every second: gone or unreadable → every
 * lookup fails (451 / TEMP) until it is back; replaced (restored from a
 * backup) → reopened.
 */
export class Store {
  readonly path: string;
  readonly #busyTimeoutMs: number;
  #db: DB;
  #st: Statements;
  #ino: number;
  #down: string | null = null;
  readonly #timer: NodeJS.Timeout;
  readonly #events: StoreEvents;
  readonly #version: WalVersion;
  /** Memoised answers, one map per question, keyed by its argument (no key building on the hot path). */
  readonly #memo = {
    domain: new Map<string, unknown>(),
    alias: new Map<string, unknown>(),
    rows: new Map<string, unknown>(),
    app: new Map<string, unknown>(),
    appAllows: new Map<string, unknown>(),
    appsForSender: new Map<string, unknown>(),
    quota: new Map<string, unknown>(),
    delegations: new Map<string, unknown>(),
  };
  #memoEntries = 0;
  /** See `generation`. */
  #generation = 0;
  #queries = 0;
  /** Inside within(). */
  #inRequest = false;
  /** Inside within(): the WAL-index header was already looked at for this batch. */
  #looked = false;

  private constructor(db: DB, path: string, busyTimeoutMs: number, events: StoreEvents) {
    this.#db = db;
    this.path = path;
    this.#busyTimeoutMs = busyTimeoutMs;
    this.#events = events;
    this.#st = prepare(db);
    this.#ino = statSync(path).ino;
    this.#version = new WalVersion(path, isWal(db));
    this.#timer = setInterval(() => this.check(), WATCH_MS);
    this.#timer.unref();
  }

  get db(): DB {
    return this.#db;
  }

  /** StoreReader.location. */
  get location(): string {
    return this.path;
  }

  /** Statements run so far (memo hits excluded). */
  get queries(): number {
    return this.#queries;
  }

  /** Memoised answers held now (at most MEMO_MAX). */
  get memoSize(): number {
    return this.#memoEntries;
  }

  /** null when serving, else why not. */
  get problem(): string | null {
    return this.#down;
  }

  /** Open an existing, current DB for the daemon. */
  static open(path: string, busyTimeoutMs: number, events: StoreEvents = {}): Store {
    const db = openChecked(path, busyTimeoutMs);
    return new Store(db, path, busyTimeoutMs, events);
  }

  /** Compare the file with the open handle; reopen or mark down as needed. */
  check(): void {
    let reason: string | null = null;
    let ino = -1;
    try {
      ino = statSync(this.path).ino;
      accessSync(this.path, fsConstants.R_OK | fsConstants.W_OK);
    } catch (err) {
      reason = `database file ${this.path} is ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "missing" : "not readable and writable"}`;
    }
    if (reason === null && (ino !== this.#ino || this.#down !== null)) {
      try {
        const db = openChecked(this.path, this.#busyTimeoutMs);
        const old = this.#db;
        this.#db = db;
        this.#st = prepare(db);
        this.#ino = ino;
        this.#version.close();
        this.#version.wal = isWal(db);
        this.#forget();
        if (old.open) old.close();
      } catch (err) {
        reason = `database file ${this.path} cannot be opened: ${(err as Error).message}`;
      }
    }
    if (reason !== null && this.#down === null) {
      this.#down = reason;
      this.#events.onUnavailable?.(reason);
    } else if (reason === null && this.#down !== null) {
      this.#down = null;
      this.#events.onRecovered?.();
    } else if (reason !== null) this.#down = reason;
    this.#version.revalidate();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#version.close();
    if (this.#db.open) this.#db.close();
  }

  /**
   * Run synchronous request handling: the WAL-index header is looked at once,
   * at the first read, for all reads in `run` (outside, at every read). Only
   * requests read before that look may be handled in `run` (one request, or
   * a batch of requests already read: see server/turn.ts); each then sees
   * every commit that completed before it was read. Nested calls join the
   * outer one. So `run` must not read from sockets, and nothing may wrap
   * work that outlives the current call in within(): both would let a
   * request reuse a look taken before it was read.
   */
  within<T>(run: () => T): T {
    if (this.#inRequest) return run();
    this.#inRequest = true;
    this.#looked = false;
    try {
      return run();
    } finally {
      this.#inRequest = false;
    }
  }

  #forget(): void {
    for (const m of Object.values(this.#memo)) m.clear();
    this.#memoEntries = 0;
    this.#generation++;
  }

  /** Bumped whenever remembered answers are dropped (a commit was seen, a reopen, the bound). */
  get generation(): number {
    return this.#generation;
  }

  /**
   * Nothing may have changed since `generation` was read: for memos of
   * answers built on this store (the policy server's repeated-request memo).
   * Looks at the WAL index as a read does.
   */
  unchangedSince(generation: number): boolean {
    if (this.#down !== null) return false;
    this.#look();
    return generation === this.#generation;
  }

  #look(): void {
    if (!this.#inRequest || !this.#looked) {
      if (this.#version.changed()) this.#forget();
      this.#looked = true;
    }
  }

  /**
   * The memoised answer for `key`, or MISS. Throws while the DB is down. The
   * memo holds while no commit happened since its answers were read; results
   * are shared, so callers never modify them.
   */
  #recall(memo: Map<string, unknown>, key: string): unknown {
    if (this.#down !== null) throw new DatabaseUnavailableError(this.#down);
    this.#look();
    const hit = memo.get(key);
    return hit === undefined ? MISS : hit === ABSENT ? undefined : hit;
  }

  /** Remember a freshly queried answer; returns it. */
  #keep<R>(memo: Map<string, unknown>, key: string, value: R): R {
    this.#queries++;
    if (this.#memoEntries >= MEMO_MAX) this.#forget();
    if (!memo.has(key)) this.#memoEntries++;
    memo.set(detach(key), value === undefined ? ABSENT : value);
    return value;
  }

  /** true: enabled; false: present but disabled; undefined: absent. */
  domainEnabled(domain: string): boolean | undefined {
    const hit = this.#recall(this.#memo.domain, domain);
    if (hit !== MISS) return hit as boolean | undefined;
    const r = this.#st.domainEnabled.get(domain);
    return this.#keep(this.#memo.domain, domain, r === undefined ? undefined : b(r.enabled));
  }

  alias(aliasEmail: string): AliasTarget | undefined {
    const hit = this.#recall(this.#memo.alias, aliasEmail);
    if (hit !== MISS) return hit as AliasTarget | undefined;
    const r = this.#st.alias.get(aliasEmail);
    return this.#keep(this.#memo.alias, aliasEmail, r === undefined ? undefined
      : { targetUser: r.target_user, domain: r.alias_domain_name, active: b(r.enabled) && r.domain_enabled === 1 });
  }

  /**
   * The domain row and the aliases `addr` (in `domain`) can match: exact,
   * without extension (`base`), catch-all. Aliases share the address's domain
   * (a trigger guarantees it), so their domain state is `domainEnabled`.
   */
  addressRows(addr: string, base: string | null, domain: string): AddressRows {
    // Keyed by the address; `base` depends on the reloadable delimiter, so it is checked too.
    const hit = this.#recall(this.#memo.rows, addr) as { readonly base: string | null; readonly rows: AddressRows } | typeof MISS;
    if (hit !== MISS && hit.base === base) return hit.rows;
    const rows = addressRows(this.#st, addr, base, domain);
    return this.#keep(this.#memo.rows, addr, { base: base === null ? null : detach(base), rows }).rows;
  }

  /** Is `aliasEmail` an enabled alias (in an enabled domain) of `username`? */
  aliasOwnedBy(aliasEmail: string, username: string): boolean {
    const a = this.alias(aliasEmail);
    return a !== undefined && a.active && a.targetUser.toLowerCase() === username;
  }

  /** true: enabled app; false: disabled app; undefined: not an app id. */
  appEnabled(appId: string): boolean | undefined {
    const hit = this.#recall(this.#memo.app, appId);
    if (hit !== MISS) return hit as boolean | undefined;
    const r = this.#st.app.get(appId);
    return this.#keep(this.#memo.app, appId, r === undefined ? undefined : b(r.enabled));
  }

  appAllowsSender(appId: string, fromAddr: string): boolean {
    const key = `${appId.length}:${appId}${fromAddr}`; // length-prefixed: unambiguous
    const hit = this.#recall(this.#memo.appAllows, key);
    if (hit !== MISS) return hit as boolean;
    const r = this.#st.appAllows.get(appId, fromAddr);
    return this.#keep(this.#memo.appAllows, key, r !== undefined && b(r.enabled));
  }

  /** Limits set with mailcloakctl quota set (store/quota-limits.ts), for a lower-cased login. */
  quotaOverride(login: string): LimitOverride {
    const hit = this.#recall(this.#memo.quota, login);
    if (hit !== MISS) return hit as LimitOverride;
    return this.#keep(this.#memo.quota, login, readQuotaOverride(this.#db, login));
  }

  /** Logins (lower-cased) delegated to send as `fromAddr` (store/delegations.ts). */
  delegatedLogins(fromAddr: string): readonly string[] {
    const hit = this.#recall(this.#memo.delegations, fromAddr);
    if (hit !== MISS) return hit as readonly string[];
    return this.#keep(this.#memo.delegations, fromAddr, readDelegatedLogins(this.#db, fromAddr));
  }

  /** Enabled apps allowed to send as `fromAddr`. */
  appsForSender(fromAddr: string): readonly string[] {
    const hit = this.#recall(this.#memo.appsForSender, fromAddr);
    if (hit !== MISS) return hit as readonly string[];
    return this.#keep(this.#memo.appsForSender, fromAddr, Object.freeze(this.#st.appsForSender.all(fromAddr).map((r) => r.app_id)));
  }
}

function addressRows(st: Statements, addr: string, base: string | null, requestDomain: string): AddressRows {
  const r = st.recipient.get({ domain: requestDomain, addr, base });
  const dom = r?.dom ?? null;
  const domainEnabled = dom === null ? undefined : dom === 1;
  // Most addresses match no alias: those share one answer per domain state (the memo keeps many).
  if (!r || (r.exact === null && r.base === null && r.catchall === null)) {
    return NO_ALIASES[domainEnabled === undefined ? "absent" : domainEnabled ? "enabled" : "disabled"];
  }
  const domain = detach(requestDomain); // kept in the memo
  const target = (v: string | null): AliasTarget | undefined => {
    if (v === null) return undefined;
    const tab = v.lastIndexOf("\t");
    return { targetUser: v.slice(0, tab), domain, active: v.slice(tab + 1) === "1" && dom === 1 };
  };
  return { domainEnabled, exact: target(r.exact), base: target(r.base), catchAll: target(r.catchall) };
}

const noAliases = (domainEnabled: boolean | undefined): AddressRows =>
  Object.freeze({ domainEnabled, exact: undefined, base: undefined, catchAll: undefined });
const NO_ALIASES = { absent: noAliases(undefined), enabled: noAliases(true), disabled: noAliases(false) } as const;

/** The memo relies on the WAL index; any other journal mode means no memo. */
function isWal(db: DB): boolean {
  return String(db.pragma("journal_mode", { simple: true })).toLowerCase() === "wal";
}

function openChecked(path: string, busyTimeoutMs: number): DB {
  const db = openDb(path, { busyTimeoutMs });
  const problem = schemaProblem(db);
  if (problem) {
    db.close();
    throw new StoreError(`database ${path}: ${problem}; run: mailcloakctl --db ${path} init (it migrates in place, keeping every row)`);
  }
  return db;
}

/** The admin side, used by mailcloakctl. Every method validates, then writes. */
export class AdminStore {
  readonly db: DB;
  readonly path: string;

  private constructor(db: DB, path: string) {
    this.db = db;
    this.path = path;
  }

  /** Create or migrate the DB at `path`. */
  static init(path: string, busyTimeoutMs = 5000): { store: AdminStore; report: MigrationReport; created: boolean } {
    const created = path === ":memory:" || !existsSync(path);
    const db = openDb(path, { create: true, busyTimeoutMs });
    let report: MigrationReport;
    try {
      report = migrate(db);
      if (path !== ":memory:") db.pragma("journal_mode = WAL");
    } catch (err) {
      db.close();
      throw err;
    }
    return { store: new AdminStore(db, path), report, created };
  }

  static open(path: string, busyTimeoutMs = 5000): AdminStore {
    const db = openDb(path, { busyTimeoutMs });
    const problem = schemaProblem(db);
    if (problem) {
      db.close();
      throw new StoreError(`database ${path}: ${problem}; run: mailcloakctl --db ${path} init`);
    }
    return new AdminStore(db, path);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  // Domains -----------------------------------------------------------------

  addDomain(raw: string): string {
    const d = normalize(raw);
    if (!isValidDomain(d)) throw new StoreError(`invalid domain name: ${JSON.stringify(raw)}`);
    const r = this.db.prepare("INSERT INTO domains(domain_name, enabled, updated_at) VALUES(?, 1, ?) ON CONFLICT(domain_name) DO NOTHING").run(d, now());
    if (r.changes === 0) throw new ConflictError(`domain already exists: ${d}`);
    return d;
  }

  deleteDomain(raw: string): { domain: string; aliases: number } {
    const d = normalize(raw);
    return this.db.transaction(() => {
      const n = (this.db.prepare("SELECT count(*) AS n FROM aliases WHERE alias_domain_name = ?").get(d) as { n: number }).n;
      const r = this.db.prepare("DELETE FROM domains WHERE domain_name = ?").run(d);
      if (r.changes === 0) throw new NotFoundError(`no such domain: ${d}`);
      return { domain: d, aliases: n };
    }).immediate();
  }

  setDomainEnabled(raw: string, enabled: boolean): string {
    const d = normalize(raw);
    const r = this.db.prepare("UPDATE domains SET enabled = ?, updated_at = ? WHERE domain_name = ?").run(enabled ? 1 : 0, now(), d);
    if (r.changes === 0) throw new NotFoundError(`no such domain: ${d} (add it with: mailcloakctl domains add ${d})`);
    return d;
  }

  listDomains(): DomainRow[] {
    const rows = this.db.prepare("SELECT domain_name, enabled, updated_at FROM domains ORDER BY domain_name").all() as { domain_name: string; enabled: number; updated_at: number }[];
    return rows.map((r) => ({ ...r, enabled: b(r.enabled) }));
  }

  // Aliases -----------------------------------------------------------------

  /** Add an alias, or a catch-all when the address is "@domain". */
  addAlias(rawAlias: string, rawUser: string): AliasRow {
    const alias = normalize(rawAlias);
    const user = rawUser.trim().toLowerCase();
    if (!isValidAddress(alias) && !isCatchAll(alias)) {
      throw new StoreError(`invalid alias address: ${JSON.stringify(rawAlias)} (expected local@domain, or @domain for a catch-all)`);
    }
    if (user === "" || /[\s,]/.test(user)) throw new StoreError(`invalid username: ${JSON.stringify(rawUser)}`);
    const domain = alias.slice(alias.lastIndexOf("@") + 1);
    return this.db.transaction(() => {
      if (this.db.prepare("SELECT 1 FROM domains WHERE domain_name = ?").get(domain) === undefined) {
        throw new StoreError(`domain ${domain} is not a mailcloak domain; add it first with: mailcloakctl domains add ${domain}`);
      }
      const t = now();
      const r = this.db.prepare(`INSERT INTO aliases(alias_email, target_user, alias_domain_name, enabled, updated_at)
        VALUES(?, ?, ?, 1, ?) ON CONFLICT(alias_email) DO NOTHING`).run(alias, user, domain, t);
      if (r.changes === 0) throw new ConflictError(`alias already exists: ${alias} (delete it first to change its owner)`);
      return { alias_email: alias, target_user: user, alias_domain_name: domain, enabled: true, updated_at: t };
    }).immediate();
  }

  deleteAlias(raw: string): string {
    const a = normalize(raw);
    if (this.db.prepare("DELETE FROM aliases WHERE alias_email = ?").run(a).changes === 0) throw new NotFoundError(`no such alias: ${a}`);
    return a;
  }

  setAliasEnabled(raw: string, enabled: boolean): string {
    const a = normalize(raw);
    const r = this.db.prepare("UPDATE aliases SET enabled = ?, updated_at = ? WHERE alias_email = ?").run(enabled ? 1 : 0, now(), a);
    if (r.changes === 0) throw new NotFoundError(`no such alias: ${a}`);
    return a;
  }

  listAliases(user?: string): AliasRow[] {
    type Raw = Omit<AliasRow, "enabled"> & { enabled: number };
    const rows = (user === undefined
      ? this.db.prepare("SELECT alias_email, target_user, alias_domain_name, enabled, updated_at FROM aliases ORDER BY target_user, alias_email").all()
      : this.db.prepare("SELECT alias_email, target_user, alias_domain_name, enabled, updated_at FROM aliases WHERE target_user = ? ORDER BY alias_email").all(user.trim().toLowerCase())) as Raw[];
    return rows.map((r) => ({ ...r, enabled: b(r.enabled) }));
  }

  // Apps --------------------------------------------------------------------

  /** Create an app, or replace its secret (and re-enable it). */
  upsertApp(rawId: string, secretHash: string): { appId: string; created: boolean } {
    const id = validAppId(rawId);
    if (secretHash.trim() === "") throw new StoreError("secret hash is empty");
    return this.db.transaction(() => {
      const existed = this.db.prepare("SELECT 1 FROM apps WHERE app_id = ?").get(id) !== undefined;
      this.db.prepare(`INSERT INTO apps(app_id, secret_hash, enabled, updated_at) VALUES(?, ?, 1, ?)
        ON CONFLICT(app_id) DO UPDATE SET secret_hash = excluded.secret_hash, enabled = 1, updated_at = excluded.updated_at`).run(id, secretHash, now());
      return { appId: id, created: !existed };
    }).immediate();
  }

  deleteApp(rawId: string): string {
    const id = rawId.trim();
    if (this.db.prepare("DELETE FROM apps WHERE app_id = ?").run(id).changes === 0) throw unknownApp(id);
    return id;
  }

  setAppEnabled(rawId: string, enabled: boolean): string {
    const id = rawId.trim();
    if (this.db.prepare("UPDATE apps SET enabled = ?, updated_at = ? WHERE app_id = ?").run(enabled ? 1 : 0, now(), id).changes === 0) throw unknownApp(id);
    return id;
  }

  allowAppSender(rawId: string, rawAddr: string): { appId: string; fromAddr: string } {
    const id = rawId.trim();
    const addr = normalize(rawAddr);
    if (!isValidAddress(addr)) throw new StoreError(`invalid sender address: ${JSON.stringify(rawAddr)}`);
    return this.db.transaction(() => {
      if (this.db.prepare("SELECT 1 FROM apps WHERE app_id = ?").get(id) === undefined) throw unknownApp(id);
      this.db.prepare(`INSERT INTO app_from(app_id, from_addr, enabled, updated_at) VALUES(?, ?, 1, ?)
        ON CONFLICT(app_id, from_addr) DO UPDATE SET enabled = 1, updated_at = excluded.updated_at`).run(id, addr, now());
      return { appId: id, fromAddr: addr };
    }).immediate();
  }

  disallowAppSender(rawId: string, rawAddr: string): { appId: string; fromAddr: string } {
    const id = rawId.trim();
    const addr = normalize(rawAddr);
    return this.db.transaction(() => {
      if (this.db.prepare("SELECT 1 FROM apps WHERE app_id = ?").get(id) === undefined) throw unknownApp(id);
      if (this.db.prepare("DELETE FROM app_from WHERE app_id = ? AND from_addr = ?").run(id, addr).changes === 0) {
        throw new NotFoundError(`app ${id} is not allowed to send as ${addr}`);
      }
      return { appId: id, fromAddr: addr };
    }).immediate();
  }

  listApps(): AppRow[] {
    const apps = this.db.prepare("SELECT app_id, enabled, updated_at FROM apps ORDER BY app_id").all() as { app_id: string; enabled: number; updated_at: number }[];
    const senders = this.db.prepare("SELECT from_addr, enabled, updated_at FROM app_from WHERE app_id = ? ORDER BY from_addr");
    return apps.map((a) => ({
      app_id: a.app_id,
      enabled: b(a.enabled),
      updated_at: a.updated_at,
      senders: (senders.all(a.app_id) as { from_addr: string; enabled: number; updated_at: number }[]).map((s) => ({ ...s, enabled: b(s.enabled) })),
    }));
  }
  // App owners (self-service) ----------------------------------------------
  // An extra table the Go version does not have (and ignores): which user
  // created an app through mailcloak-admin. Created on first use, so a DB
  // made by the Go version or an older mailcloakctl needs no migration.

  #hasOwners(): boolean {
    return hasTable(this.db, "app_owners");
  }

  /** The user who owns `appId`, or null (an admin-made app). */
  appOwner(rawId: string): string | null {
    if (!this.#hasOwners()) return null;
    const r = this.db.prepare("SELECT username FROM app_owners WHERE app_id = ?").get(rawId.trim()) as { username: string } | undefined;
    return r?.username ?? null;
  }

  /** The apps `username` owns, with their senders. */
  listOwnedApps(username: string): AppRow[] {
    if (!this.#hasOwners()) return [];
    const owned = new Set((this.db.prepare("SELECT app_id FROM app_owners WHERE username = ?").all(username) as { app_id: string }[]).map((r) => r.app_id));
    return this.listApps().filter((a) => owned.has(a.app_id));
  }

  /** Create an app owned by `username`; refuses an existing app id. One transaction. */
  createOwnedApp(rawId: string, secretHash: string, username: string): string {
    const id = validAppId(rawId);
    if (secretHash.trim() === "") throw new StoreError("secret hash is empty");
    return this.db.transaction(() => {
      this.db.exec(`CREATE TABLE IF NOT EXISTS app_owners (
        app_id   TEXT PRIMARY KEY REFERENCES apps(app_id) ON DELETE CASCADE,
        username TEXT NOT NULL)`);
      if (this.db.prepare("SELECT 1 FROM apps WHERE app_id = ?").get(id) !== undefined) {
        throw new ConflictError(`app already exists: ${id}`);
      }
      this.db.prepare("INSERT INTO apps(app_id, secret_hash, enabled, updated_at) VALUES(?, ?, 1, ?)").run(id, secretHash, now());
      this.db.prepare("INSERT INTO app_owners(app_id, username) VALUES(?, ?)").run(id, username);
      return id;
    }).immediate();
  }
}

export function validAppId(raw: string): string {
  const id = raw.trim();
  if (id === "" || /[\s,]/.test(id) || id.length > 255) {
    throw new StoreError(`invalid app id: ${JSON.stringify(raw)} (no spaces or commas; it is the SMTP login name)`);
  }
  return id;
}

function unknownApp(id: string): StoreError {
  return new NotFoundError(`no such app: ${id} (see: mailcloakctl apps list)`);
}
