// Another SQLite client on a test's database file, as the sqlite3 tool, the
// Go daemon or an admin's script would be: for what only raw SQL can do
// (write behind the store's back, hold a lock, inspect the schema). The
// only better-sqlite3 import outside src/store/ (test/store-imports.test.ts).

import Database from "better-sqlite3";
import { initStore, openAdmin, openStore } from "../../src/store/open.js";
import { SqliteAdmin, SqliteReader } from "../../src/store/sqlite/index.js";
import type { MigrationReport } from "../../src/store/types.js";

export type RawDb = Database.Database;

export function rawDb(path: string, opts: Database.Options = {}): RawDb {
  return new Database(path, opts);
}

/** The SQLite backend's own classes, reached through the one public way to open (src/store/open.ts). */
export async function initAdmin(path: string, busyTimeoutMs = 5000): Promise<{ store: SqliteAdmin; report: MigrationReport; created: boolean }> {
  const r = await initStore(path, { busyTimeoutMs });
  if (!(r.store instanceof SqliteAdmin)) throw new Error(`${path}: not the SQLite backend`);
  return { store: r.store, report: r.report, created: r.created };
}

export async function openSqliteAdmin(path: string, busyTimeoutMs = 5000): Promise<SqliteAdmin> {
  const a = await openAdmin(path, { busyTimeoutMs });
  if (!(a instanceof SqliteAdmin)) throw new Error(`${path}: not the SQLite backend`);
  return a;
}

export async function openReader(path: string, busyTimeoutMs: number): Promise<SqliteReader> {
  const r = await openStore(path, { busyTimeoutMs });
  if (!(r instanceof SqliteReader)) throw new Error(`${path}: not the SQLite backend`);
  return r;
}

/** The original tool's older layout, as it created it (mailcloakctl init migrates it in place). */
const OLD_SCHEMA = `
  CREATE TABLE aliases(alias_email TEXT PRIMARY KEY, username TEXT NOT NULL, enabled INTEGER NOT NULL DEFAULT 1,
    updated_at INTEGER NOT NULL DEFAULT (strftime('%s','now')));
  CREATE INDEX idx_aliases_username ON aliases(username);
  CREATE TABLE apps(app_id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, enabled INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL);
  CREATE TABLE app_from(app_id TEXT NOT NULL, from_addr TEXT NOT NULL, enabled INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY(app_id, from_addr), FOREIGN KEY(app_id) REFERENCES apps(app_id) ON DELETE CASCADE);
`;

/** A database file in the older layout, holding the rows that `sql` inserts (each string run in turn). */
export function oldLayoutDb(path: string, ...sql: readonly string[]): void {
  const db = rawDb(path);
  try {
    db.exec(OLD_SCHEMA);
    for (const s of sql) if (s !== "") db.exec(s);
  } finally {
    db.close();
  }
}
