// Opening a SQLite file, and turning better-sqlite3's errors into
// StoreError: the only two places the driver's own types meet the rest of
// the store.

import Database from "better-sqlite3";
import { existsSync } from "node:fs";
import { StoreError } from "../errors.js";

export type DB = Database.Database;
export type Statement<P extends unknown[], R> = Database.Statement<P, R>;

export interface ConnectOptions {
  readonly busyTimeoutMs: number;
  /** Create the file (init). Otherwise a missing file is StoreError "missing". */
  readonly create?: boolean;
  readonly readonly?: boolean;
  /** Switch to WAL when the schema is current (never for a layout open() will refuse). */
  readonly wal?: (db: DB) => boolean;
}

export function connect(path: string, opts: ConnectOptions): DB {
  if (!opts.create && path !== ":memory:" && !existsSync(path)) {
    throw new StoreError("missing", `database ${path} does not exist; create it with: mailcloakctl --db ${path} init`);
  }
  const db = new Database(path, { fileMustExist: !opts.create, timeout: opts.busyTimeoutMs, readonly: opts.readonly ?? false });
  // A refused command leaves an older (rollback-journal) file byte-for-byte unchanged.
  if (!opts.readonly && opts.wal?.(db) === true) db.pragma("journal_mode = WAL");
  db.pragma("foreign_keys = ON");
  db.pragma("synchronous = NORMAL");
  return db;
}

/** better-sqlite3's error as a StoreError; anything else unchanged. */
export function translate(err: unknown, path: string): unknown {
  if (!(err instanceof Database.SqliteError)) return err;
  const where = `database ${path}`;
  if (err.code.startsWith("SQLITE_BUSY") || err.code.startsWith("SQLITE_LOCKED")) {
    return new StoreError("unavailable", `${where} is locked by another process (busy timeout exceeded); try again`, { cause: err });
  }
  if (err.code.startsWith("SQLITE_CONSTRAINT")) return new StoreError("invalid", `${where}: refused: ${err.message}`, { cause: err });
  return new StoreError("unavailable", `${where}: ${err.message} (${err.code})`, { cause: err });
}

/** Run `fn`, throwing only StoreError for the driver's failures. */
export function guarded<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw translate(err, path);
  }
}

export function hasTable(db: DB, table: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
}

export function columns(db: DB, table: string): Set<string> {
  const rows = db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[];
  return new Set(rows.map((r) => r.name));
}
