// Per-login quota limits in the main database (table quota_limits of
// db-init.sql), written by mailcloakctl quota set and read by the daemon
// through Store.quotaOverride. A database made by the Go mailcloak (or an
// older mailcloakctl) has no such table until the first quota set creates
// it: reading it then answers "nothing set".

import type Database from "better-sqlite3";
import { NO_OVERRIDE, type LimitName, type LimitOverride } from "../quota/limits.js";
import { StoreError } from "./sqlite.js";

type DB = Database.Database;

/** The same statement as in db-init.sql (a test checks they agree). */
export const QUOTA_LIMITS_DDL = `CREATE TABLE IF NOT EXISTS quota_limits (
    login               TEXT PRIMARY KEY,
    per_hour            INTEGER CHECK (per_hour IS NULL OR per_hour >= 0),
    per_day             INTEGER CHECK (per_day IS NULL OR per_day >= 0),
    recipients_per_hour INTEGER CHECK (recipients_per_hour IS NULL OR recipients_per_hour >= 0),
    updated_at          INTEGER NOT NULL DEFAULT (strftime('%s','now'))
);`;

type Row = { per_hour: number | null; per_day: number | null; recipients_per_hour: number | null };
const READ = "SELECT per_hour, per_day, recipients_per_hour FROM quota_limits WHERE login = ?";
const statements = new WeakMap<DB, Database.Statement<[string], Row>>();

/** A login's limits as set with mailcloakctl (NO_OVERRIDE when none, or no table yet). */
export function readQuotaOverride(db: DB, login: string): LimitOverride {
  let st = statements.get(db);
  if (st === undefined) {
    const has = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'quota_limits'").get() !== undefined;
    if (!has) return NO_OVERRIDE; // asked again after the next commit (the store's memo is dropped then)
    st = db.prepare(READ) as Database.Statement<[string], Row>;
    statements.set(db, st);
  }
  const r = st.get(login);
  if (r === undefined) return NO_OVERRIDE;
  return Object.freeze({ per_hour: r.per_hour, per_day: r.per_day, recipients_per_hour: r.recipients_per_hour });
}

export interface QuotaLimitRow extends LimitOverride {
  readonly login: string;
  readonly updated_at: number;
}

/** SMTP logins are compared lower-cased (the daemon folds them the same way). */
export function normalizeLogin(raw: string): string {
  const login = raw.trim().toLowerCase();
  if (login === "" || /[\s\x00-\x1f]/.test(login) || login.length > 255) {
    throw new StoreError(`invalid login: ${JSON.stringify(raw)} (the SMTP login name, no spaces)`);
  }
  return login;
}

/** Set some limits of a login (null: back to the attribute or default); the row goes when nothing is left set. */
export function setQuotaLimits(db: DB, rawLogin: string, values: Partial<Record<LimitName, number | null>>): QuotaLimitRow | null {
  const login = normalizeLogin(rawLogin);
  db.exec(QUOTA_LIMITS_DDL);
  return db.transaction(() => {
    const old = readQuotaOverride(db, login);
    const next: LimitOverride = {
      per_hour: values.per_hour !== undefined ? values.per_hour : old.per_hour,
      per_day: values.per_day !== undefined ? values.per_day : old.per_day,
      recipients_per_hour: values.recipients_per_hour !== undefined ? values.recipients_per_hour : old.recipients_per_hour,
    };
    if (next.per_hour === null && next.per_day === null && next.recipients_per_hour === null) {
      db.prepare("DELETE FROM quota_limits WHERE login = ?").run(login);
      return null;
    }
    const t = Math.floor(Date.now() / 1000);
    db.prepare(`INSERT INTO quota_limits(login, per_hour, per_day, recipients_per_hour, updated_at) VALUES(?, ?, ?, ?, ?)
      ON CONFLICT(login) DO UPDATE SET per_hour = excluded.per_hour, per_day = excluded.per_day,
        recipients_per_hour = excluded.recipients_per_hour, updated_at = excluded.updated_at`)
      .run(login, next.per_hour, next.per_day, next.recipients_per_hour, t);
    return { login, ...next, updated_at: t };
  }).immediate();
}

/** Remove every limit set for a login; false when none was. */
export function deleteQuotaLimits(db: DB, rawLogin: string): boolean {
  const login = normalizeLogin(rawLogin);
  if (!hasTable(db)) return false;
  return db.prepare("DELETE FROM quota_limits WHERE login = ?").run(login).changes > 0;
}

export function listQuotaLimits(db: DB): QuotaLimitRow[] {
  if (!hasTable(db)) return [];
  return db.prepare("SELECT login, per_hour, per_day, recipients_per_hour, updated_at FROM quota_limits ORDER BY login").all() as QuotaLimitRow[];
}

export function quotaLimitsOf(db: DB, rawLogin: string): LimitOverride {
  return readQuotaOverride(db, normalizeLogin(rawLogin));
}

function hasTable(db: DB): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'quota_limits'").get() !== undefined;
}
