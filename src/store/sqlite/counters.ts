// Quota counters in their own SQLite file (quotas.sqlite_path; by default
// quota.db beside the main database). Kept apart from the main database on
// purpose: the daemon writes here once per message, and a write to the main
// DB would drop the daemon's memo of every domain and alias answer (a commit
// is a commit, store/sqlite/wal-index.ts), and it is the Go-compatible file that
// admins and Dovecot share.
//
// WAL mode; each check-and-count is one IMMEDIATE transaction, so daemons on
// several hosts (or processes) sharing the file never let more than the
// limit through between them. Old windows are pruned at most once a minute.

import Database from "better-sqlite3";
import { chownSync, existsSync } from "node:fs";
import { COUNTED, CounterError, DAY_KEEP_S, HOUR_KEEP_S, type Counters, type LoginUsage, type TakeRequest, type TakeResult } from "../../quota/counters.js";
import { exceeded, windowsAt, type QuotaLimits, type Usage, type WindowCount } from "../../quota/limits.js";

type DB = Database.Database;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS quota_counters (
    login      TEXT NOT NULL,
    span       TEXT NOT NULL CHECK (span IN ('h','d')),
    bucket     INTEGER NOT NULL,          -- floor(epoch seconds / 3600 or 86400)
    messages   INTEGER NOT NULL DEFAULT 0,
    recipients INTEGER NOT NULL DEFAULT 0,
    refused    INTEGER NOT NULL DEFAULT 0,
    -- On hour rows: the limits applied at the login's last check, and when
    -- (for mailcloakctl quota show/top). Kept in the row written anyway:
    -- a table of their own cost one more B-tree write per message.
    per_hour            INTEGER,
    per_day             INTEGER,
    recipients_per_hour INTEGER,
    last_at             INTEGER,
    PRIMARY KEY (login, span, bucket)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_quota_counters_bucket ON quota_counters(span, bucket);
`;

const PRUNE_EVERY_MS = 60_000;
/** After a failed open, the next take() tries again no sooner than this. */
const REOPEN_MS = 1000;

type Row = { span: string; bucket: number; messages: number; recipients: number; refused: number; per_hour: number | null; per_day: number | null; recipients_per_hour: number | null; last_at: number | null };
type HourWrite = { login: string; bucket: number; m: number; r: number; x: number; ph: number; pd: number; pr: number; at: number };

interface Statements {
  readonly rows: Database.Statement<[string, number, number, number, number], Row>;
  readonly hour: Database.Statement<[HourWrite]>;
  readonly day: Database.Statement<[string, number, number]>;
  readonly last: Database.Statement<[string], Row>;
  readonly prune: Database.Statement<[number, number]>;
}

export interface SqliteCountersOptions {
  readonly path: string;
  readonly busyTimeoutMs: number;
  /** Create the file when missing (the daemon); mailcloakctl only reads an existing one. */
  readonly create: boolean;
  /** When running as root: give the files to this account (the daemon drops to it). */
  readonly owner?: { readonly uid: number; readonly gid: number } | null;
}

export class SqliteCounters implements Counters {
  readonly backend = "sqlite";
  readonly #opts: SqliteCountersOptions;
  #db: DB | null = null;
  #st: Statements | null = null;
  #failedAt = -Infinity;
  #lastError = "";
  #prunedAt = 0;
  #take: Database.Transaction<(req: TakeRequest) => TakeResult> | null = null;

  constructor(opts: SqliteCountersOptions) {
    this.#opts = opts;
  }

  get path(): string {
    return this.#opts.path;
  }

  /** Open now (the daemon does at start, to report a bad path early); false when it failed (take() retries). */
  tryOpen(): boolean {
    try {
      this.#open();
      return true;
    } catch {
      return false;
    }
  }

  /** The reason of the last failed open, or "". */
  get lastError(): string {
    return this.#lastError;
  }

  #open(): Statements {
    if (this.#st !== null) return this.#st;
    if (Date.now() - this.#failedAt < REOPEN_MS) throw new CounterError(this.#lastError);
    let db: DB | null = null;
    try {
      if (!this.#opts.create && !existsSync(this.#opts.path)) throw new CounterError(`quota counters ${this.#opts.path} do not exist yet`);
      db = new Database(this.#opts.path, { timeout: this.#opts.busyTimeoutMs, fileMustExist: !this.#opts.create });
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      db.exec(SCHEMA);
      this.#chown();
      this.#st = prepare(db);
      this.#db = db;
      const st = this.#st;
      this.#take = db.transaction((req: TakeRequest) => take(st, req, this.#pruneDue(req.nowMs)));
      this.#lastError = "";
      return st;
    } catch (err) {
      db?.close();
      this.#failedAt = Date.now();
      this.#lastError = `quota counters ${this.#opts.path}: ${err instanceof Error ? err.message : String(err)}`;
      if (err instanceof CounterError) throw err;
      throw new CounterError(this.#lastError);
    }
  }

  #chown(): void {
    const o = this.#opts.owner;
    if (!o || process.getuid?.() !== 0) return;
    for (const f of [this.#opts.path, `${this.#opts.path}-wal`, `${this.#opts.path}-shm`]) {
      if (existsSync(f)) chownSync(f, o.uid, o.gid);
    }
  }

  #pruneDue(nowMs: number): boolean {
    if (nowMs - this.#prunedAt < PRUNE_EVERY_MS) return false;
    this.#prunedAt = nowMs;
    return true;
  }

  take(req: TakeRequest): TakeResult {
    this.#open();
    try {
      return this.#take!.immediate(req);
    } catch (err) {
      throw new CounterError(`quota counters ${this.#opts.path}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  async usage(login: string, nowMs: number): Promise<LoginUsage> {
    let st: Statements;
    try {
      st = this.#open();
    } catch (err) {
      if (!this.#opts.create && !existsSync(this.#opts.path)) return emptyUsage(login);
      throw err;
    }
    return readUsage(st, login, nowMs);
  }

  async reset(login: string): Promise<boolean> {
    if (!this.#opts.create && !existsSync(this.#opts.path)) return false;
    this.#open();
    const db = this.#db!;
    return this.#guard(() => db.transaction(() => db.prepare("DELETE FROM quota_counters WHERE login = ?").run(login).changes > 0).immediate());
  }

  async all(nowMs: number): Promise<LoginUsage[]> {
    if (!this.#opts.create && !existsSync(this.#opts.path)) return [];
    const st = this.#open();
    // Rows older than the previous window are pruned: what is left is the last day or two.
    return this.#guard(() => {
      const logins = this.#db!.prepare("SELECT DISTINCT login FROM quota_counters ORDER BY login").all() as { login: string }[];
      return logins.map((l) => readUsage(st, l.login, nowMs));
    });
  }

  /** mailcloakctl's reads and resets: a driver failure (locked, unreadable) is a CounterError. */
  #guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw new CounterError(`quota counters ${this.#opts.path}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  async close(): Promise<void> {
    this.#db?.close();
    this.#db = null;
    this.#st = null;
    this.#take = null;
  }
}

function prepare(db: DB): Statements {
  return {
    rows: db.prepare(`SELECT span, bucket, messages, recipients, refused, per_hour, per_day, recipients_per_hour, last_at FROM quota_counters
      WHERE login = ? AND ((span = 'h' AND bucket IN (?, ?)) OR (span = 'd' AND bucket IN (?, ?)))`),
    hour: db.prepare(`INSERT INTO quota_counters(login, span, bucket, messages, recipients, refused, per_hour, per_day, recipients_per_hour, last_at)
      VALUES(@login, 'h', @bucket, @m, @r, @x, @ph, @pd, @pr, @at)
      ON CONFLICT(login, span, bucket) DO UPDATE SET messages = messages + excluded.messages, recipients = recipients + excluded.recipients,
        refused = refused + excluded.refused, per_hour = excluded.per_hour, per_day = excluded.per_day,
        recipients_per_hour = excluded.recipients_per_hour, last_at = excluded.last_at`),
    day: db.prepare(`INSERT INTO quota_counters(login, span, bucket, messages, recipients) VALUES(?, 'd', ?, 1, ?)
      ON CONFLICT(login, span, bucket) DO UPDATE SET messages = messages + 1, recipients = recipients + excluded.recipients`),
    last: db.prepare(`SELECT span, bucket, messages, recipients, refused, per_hour, per_day, recipients_per_hour, last_at FROM quota_counters
      WHERE login = ? AND span = 'h' ORDER BY bucket DESC LIMIT 1`),
    prune: db.prepare("DELETE FROM quota_counters WHERE (span = 'h' AND bucket < ?) OR (span = 'd' AND bucket < ?)"),
  };
}

interface Read {
  readonly usage: Usage;
  readonly refusedHour: number;
}

function read(st: Statements, login: string, nowMs: number): Read {
  const w = windowsAt(nowMs);
  let mh: WindowCount = { cur: 0, prev: 0 };
  let rh: WindowCount = { cur: 0, prev: 0 };
  let md: WindowCount = { cur: 0, prev: 0 };
  let refusedHour = 0;
  for (const r of st.rows.all(login, w.hour, w.hour - 1, w.day, w.day - 1)) {
    const cur = r.span === "h" ? r.bucket === w.hour : r.bucket === w.day;
    if (r.span === "h") {
      mh = cur ? { ...mh, cur: r.messages } : { ...mh, prev: r.messages };
      rh = cur ? { ...rh, cur: r.recipients } : { ...rh, prev: r.recipients };
      if (cur) refusedHour = r.refused;
    } else {
      md = cur ? { ...md, cur: r.messages } : { ...md, prev: r.messages };
    }
  }
  return { usage: { messagesHour: mh, recipientsHour: rh, messagesDay: md }, refusedHour };
}

/** The body of the IMMEDIATE transaction: read, decide, write (two rows: this hour's, today's). */
function take(st: Statements, req: TakeRequest, prune: boolean): TakeResult {
  const w = windowsAt(req.nowMs);
  const nowS = Math.floor(req.nowMs / 1000);
  if (prune) st.prune.run(Math.floor((nowS - HOUR_KEEP_S) / 3600), Math.floor((nowS - DAY_KEEP_S) / 86_400));
  const { usage } = read(st, req.login, req.nowMs);
  const l = req.limits;
  const over = exceeded(usage, l, req.recipients, w);
  st.hour.run({ login: req.login, bucket: w.hour, m: over ? 0 : 1, r: over ? 0 : req.recipients, x: over ? 1 : 0, ph: l.per_hour, pd: l.per_day, pr: l.recipients_per_hour, at: nowS });
  if (over) return { kind: "over", exceeded: over };
  st.day.run(req.login, w.day, req.recipients);
  return COUNTED;
}

function readUsage(st: Statements, login: string, nowMs: number): LoginUsage {
  const { usage, refusedHour } = read(st, login, nowMs);
  const s = st.last.get(login);
  const applied: QuotaLimits | null = s && s.last_at !== null ? { per_hour: s.per_hour ?? 0, per_day: s.per_day ?? 0, recipients_per_hour: s.recipients_per_hour ?? 0 } : null;
  return { login, usage, refusedHour, applied, lastAt: s?.last_at ?? null };
}

export function emptyUsage(login: string): LoginUsage {
  return { login, usage: { messagesHour: { cur: 0, prev: 0 }, recipientsHour: { cur: 0, prev: 0 }, messagesDay: { cur: 0, prev: 0 } }, refusedHour: 0, applied: null, lastAt: null };
}
