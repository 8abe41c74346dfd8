// The daemon's reader over a SQLite file: statements prepared once, one
// query per question, answers memoised between commits.
//
// Correctness rule (the only speed mechanism of the store): a commit by ANY
// SQLite client (another process: the sqlite3 CLI, a Go-style writer,
// mailcloakctl) is seen by the next request read after it. How: every
// answer is memoised; the memo is dropped whenever wal-index.ts says the
// file changed, and that is asked at the first read of each within() (one
// batch of requests already read: src/server/turn.ts) and at every read
// outside one. A batch never contains a request read after its look, so no
// request is answered from before a commit it follows. Outside WAL mode
// there is no WAL index to trust: every read queries. Enforced by
// test/store-memo.test.ts (other connections, mailcloakctl, a raw-SQL
// writer and the sqlite3 CLI in other processes, checkpoints, rollbacks,
// a symlinked path, the bound).
//
// An open handle keeps working on a file that was deleted or replaced, so
// the file is checked every second: gone or unreadable → every read throws
// StoreError "unavailable" (451 / TEMP) until it is back; replaced (restored
// from a backup) → reopened, memo dropped.

import { accessSync, constants as fsConstants, statSync } from "node:fs";
import { NO_OVERRIDE, type LimitOverride } from "../../quota/limits.js";
import { detach } from "../../strings.js";
import { StoreError } from "../errors.js";
import type { AddressRows, AliasTarget, StoreEvents, StoreReader } from "../types.js";
import { connect, hasTable, type DB, type Statement } from "./connection.js";
import { schemaProblem } from "./schema.js";
import { WalIndex } from "./wal-index.js";

/** How often the reader checks that its file is still the one it has open. */
const WATCH_MS = 1000;
/** Memoised answers kept between commits (all dropped when full). */
export const MEMO_MAX = 20_000;
const ABSENT = Symbol("absent");
const MISS = Symbol("miss");

const b = (v: number): boolean => v === 1;

type QuotaRow = { per_hour: number | null; per_day: number | null; recipients_per_hour: number | null };

/** Prepared once per connection. */
interface Statements {
  readonly domainEnabled: Statement<[string], { enabled: number }>;
  readonly alias: Statement<[string], { target_user: string; alias_domain_name: string; enabled: number; domain_enabled: number | null }>;
  readonly app: Statement<[string], { enabled: number }>;
  readonly appAllows: Statement<[string, string], { enabled: number }>;
  readonly appsForSender: Statement<[string], { app_id: string }>;
  readonly recipient: Statement<[{ domain: string; addr: string; base: string | null }], { dom: number | null; exact: string | null; base: string | null; catchall: string | null }>;
  /** Tables of this version only, absent from a Go-made file until first written: prepared when they exist. */
  quota: Statement<[string], QuotaRow> | null;
  delegations: Statement<[string], { login: string }> | null;
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
    quota: null,
    delegations: null,
  };
}

/** The memo relies on the WAL index; any other journal mode means no memo. */
function isWal(db: DB): boolean {
  return String(db.pragma("journal_mode", { simple: true })).toLowerCase() === "wal";
}

export interface SqliteReaderOptions {
  readonly busyTimeoutMs: number;
  readonly events?: StoreEvents | undefined;
}

/** Open `path` for reading; StoreError "missing" or "schema" when it cannot be served. */
function openChecked(path: string, busyTimeoutMs: number): DB {
  const db = connect(path, { busyTimeoutMs, wal: (d) => schemaProblem(d) === null });
  const problem = schemaProblem(db);
  if (problem) {
    db.close();
    throw new StoreError("schema", `database ${path}: ${problem}; run: mailcloakctl --db ${path} init (it migrates in place, keeping every row)`);
  }
  return db;
}

export class SqliteReader implements StoreReader {
  readonly location: string;
  readonly #busyTimeoutMs: number;
  #db: DB;
  #st: Statements;
  #ino: number;
  #down: string | null = null;
  readonly #timer: NodeJS.Timeout;
  readonly #events: StoreEvents;
  readonly #version: WalIndex;
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
  #generation = 0;
  #queries = 0;
  /** Inside within(). */
  #inBatch = false;
  /** Inside within(): the WAL-index header was already looked at for this batch. */
  #looked = false;

  private constructor(db: DB, path: string, opts: SqliteReaderOptions) {
    this.#db = db;
    this.location = path;
    this.#busyTimeoutMs = opts.busyTimeoutMs;
    this.#events = opts.events ?? {};
    this.#st = prepare(db);
    this.#ino = statSync(path).ino;
    this.#version = new WalIndex(path, isWal(db));
    this.#timer = setInterval(() => this.check(), WATCH_MS);
    this.#timer.unref();
  }

  /** Open an existing, current file (open.ts is the public way). */
  static open(path: string, opts: SqliteReaderOptions): SqliteReader {
    return new SqliteReader(openChecked(path, opts.busyTimeoutMs), path, opts);
  }

  /** Statements run so far (memo hits excluded). */
  get queries(): number {
    return this.#queries;
  }

  /** Memoised answers held now (at most MEMO_MAX). */
  get memoSize(): number {
    return this.#memoEntries;
  }

  get problem(): string | null {
    return this.#down;
  }

  get generation(): number {
    return this.#generation;
  }

  /** Compare the file with the open handle; reopen or mark down as needed (every WATCH_MS). */
  check(): void {
    let reason: string | null = null;
    let ino = -1;
    try {
      ino = statSync(this.location).ino;
      accessSync(this.location, fsConstants.R_OK | fsConstants.W_OK);
    } catch (err) {
      reason = `database file ${this.location} is ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "missing" : "not readable and writable"}`;
    }
    if (reason === null && (ino !== this.#ino || this.#down !== null)) {
      try {
        const db = openChecked(this.location, this.#busyTimeoutMs);
        const old = this.#db;
        this.#db = db;
        this.#st = prepare(db);
        this.#ino = ino;
        this.#version.close();
        this.#version.wal = isWal(db);
        this.#forget();
        if (old.open) old.close();
      } catch (err) {
        reason = `database file ${this.location} cannot be opened: ${(err as Error).message}`;
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
   * The WAL-index header is looked at once, at the first read, for all reads in `run`.
   * Only requests read before within() was called may be handled in `run`;
   * so `run` must not read from sockets, and nothing that outlives the call
   * may be wrapped in it. Nested calls join the outer one.
   */
  within<T>(run: () => T): T {
    if (this.#inBatch) return run();
    this.#inBatch = true;
    this.#looked = false;
    try {
      return run();
    } finally {
      this.#inBatch = false;
    }
  }

  unchangedSince(generation: number): boolean {
    if (this.#down !== null) return false;
    this.#look();
    return generation === this.#generation;
  }

  #forget(): void {
    for (const m of Object.values(this.#memo)) m.clear();
    this.#memoEntries = 0;
    this.#generation++;
    // A table created since (quota set, senders allow) is found again.
    this.#st.quota = null;
    this.#st.delegations = null;
  }

  #look(): void {
    if (!this.#inBatch || !this.#looked) {
      if (this.#version.changed()) this.#forget();
      this.#looked = true;
    }
  }

  /** The memoised answer for `key`, or MISS. Throws while the file is unavailable. */
  #recall(memo: Map<string, unknown>, key: string): unknown {
    if (this.#down !== null) throw new StoreError("unavailable", this.#down);
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

  /** A driver error met by a read: the file cannot be served right now. */
  #failed(err: unknown): StoreError {
    if (err instanceof StoreError) return err;
    return new StoreError("unavailable", `database ${this.location}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }

  domainEnabled(domain: string): boolean | undefined {
    const hit = this.#recall(this.#memo.domain, domain);
    if (hit !== MISS) return hit as boolean | undefined;
    try {
      const r = this.#st.domainEnabled.get(domain);
      return this.#keep(this.#memo.domain, domain, r === undefined ? undefined : b(r.enabled));
    } catch (err) {
      throw this.#failed(err);
    }
  }

  alias(aliasEmail: string): AliasTarget | undefined {
    const hit = this.#recall(this.#memo.alias, aliasEmail);
    if (hit !== MISS) return hit as AliasTarget | undefined;
    try {
      const r = this.#st.alias.get(aliasEmail);
      return this.#keep(this.#memo.alias, aliasEmail, r === undefined ? undefined
        : { targetUser: r.target_user, domain: r.alias_domain_name, active: b(r.enabled) && r.domain_enabled === 1 });
    } catch (err) {
      throw this.#failed(err);
    }
  }

  addressRows(addr: string, base: string | null, domain: string): AddressRows {
    // Keyed by the address; `base` depends on the reloadable delimiter, so it is checked too.
    const hit = this.#recall(this.#memo.rows, addr) as { readonly base: string | null; readonly rows: AddressRows } | typeof MISS;
    if (hit !== MISS && hit.base === base) return hit.rows;
    try {
      const rows = addressRows(this.#st, addr, base, domain);
      return this.#keep(this.#memo.rows, addr, { base: base === null ? null : detach(base), rows }).rows;
    } catch (err) {
      throw this.#failed(err);
    }
  }

  aliasOwnedBy(aliasEmail: string, username: string): boolean {
    const a = this.alias(aliasEmail);
    return a !== undefined && a.active && a.targetUser.toLowerCase() === username;
  }

  appEnabled(appId: string): boolean | undefined {
    const hit = this.#recall(this.#memo.app, appId);
    if (hit !== MISS) return hit as boolean | undefined;
    try {
      const r = this.#st.app.get(appId);
      return this.#keep(this.#memo.app, appId, r === undefined ? undefined : b(r.enabled));
    } catch (err) {
      throw this.#failed(err);
    }
  }

  appAllowsSender(appId: string, fromAddr: string): boolean {
    const key = `${appId.length}:${appId}${fromAddr}`; // length-prefixed: unambiguous
    const hit = this.#recall(this.#memo.appAllows, key);
    if (hit !== MISS) return hit as boolean;
    try {
      const r = this.#st.appAllows.get(appId, fromAddr);
      return this.#keep(this.#memo.appAllows, key, r !== undefined && b(r.enabled));
    } catch (err) {
      throw this.#failed(err);
    }
  }

  appsForSender(fromAddr: string): readonly string[] {
    const hit = this.#recall(this.#memo.appsForSender, fromAddr);
    if (hit !== MISS) return hit as readonly string[];
    try {
      return this.#keep(this.#memo.appsForSender, fromAddr, Object.freeze(this.#st.appsForSender.all(fromAddr).map((r) => r.app_id)));
    } catch (err) {
      throw this.#failed(err);
    }
  }

  quotaOverride(login: string): LimitOverride {
    const hit = this.#recall(this.#memo.quota, login);
    if (hit !== MISS) return hit as LimitOverride;
    try {
      return this.#keep(this.#memo.quota, login, this.#quotaRow(login));
    } catch (err) {
      throw this.#failed(err);
    }
  }

  #quotaRow(login: string): LimitOverride {
    if (this.#st.quota === null) {
      if (!hasTable(this.#db, "quota_limits")) return NO_OVERRIDE; // asked again after the next commit (the memo is dropped then)
      this.#st.quota = this.#db.prepare("SELECT per_hour, per_day, recipients_per_hour FROM quota_limits WHERE login = ?") as Statement<[string], QuotaRow>;
    }
    const r = this.#st.quota.get(login);
    if (r === undefined) return NO_OVERRIDE;
    return Object.freeze({ per_hour: r.per_hour, per_day: r.per_day, recipients_per_hour: r.recipients_per_hour });
  }

  delegatedLogins(fromAddr: string): readonly string[] {
    const hit = this.#recall(this.#memo.delegations, fromAddr);
    if (hit !== MISS) return hit as readonly string[];
    try {
      return this.#keep(this.#memo.delegations, fromAddr, this.#delegations(fromAddr));
    } catch (err) {
      throw this.#failed(err);
    }
  }

  #delegations(fromAddr: string): readonly string[] {
    if (this.#st.delegations === null) {
      if (!hasTable(this.#db, "sender_delegations")) return Object.freeze([]);
      this.#st.delegations = this.#db.prepare("SELECT login FROM sender_delegations WHERE from_addr = ? ORDER BY login") as Statement<[string], { login: string }>;
    }
    try {
      return Object.freeze(this.#st.delegations.all(fromAddr).map((r) => r.login));
    } catch (err) {
      // Dropped since (a restore of an older file, an admin's DROP TABLE): no delegations, not a failure.
      if (!hasTable(this.#db, "sender_delegations")) {
        this.#st.delegations = null;
        return Object.freeze([]);
      }
      throw err;
    }
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
