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
