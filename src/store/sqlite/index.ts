// The SQLite backend's entries, called by src/store/open.ts only.

import { existsSync } from "node:fs";
import { StoreError } from "../errors.js";
import type { InitResult, Inspection, OpenOptions } from "../types.js";
import { SqliteAdmin } from "./admin.js";
import { connect, guarded, type DB } from "./connection.js";
import { SqliteReader, type SqliteReaderOptions } from "./reader.js";
import { migrate, schemaProblem } from "./schema.js";

export { SqliteAdmin } from "./admin.js";
export { SqliteReader, MEMO_MAX } from "./reader.js";

export function openSqliteReader(path: string, opts: SqliteReaderOptions): SqliteReader {
  return guarded(path, () => SqliteReader.open(path, opts));
}

export function openSqliteAdmin(path: string, opts: OpenOptions): SqliteAdmin {
  return guarded(path, () => {
    const db = connect(path, { busyTimeoutMs: opts.busyTimeoutMs, wal: (d) => schemaProblem(d) === null });
    const problem = schemaProblem(db);
    if (problem) {
      db.close();
      throw new StoreError("schema", `database ${path}: ${problem}; run: mailcloakctl --db ${path} init`);
    }
    return new SqliteAdmin(db, path);
  });
}

function schemaCookie(db: DB): number {
  return db.pragma("schema_version", { simple: true }) as number;
}

export function initSqlite(path: string, opts: OpenOptions): InitResult {
  return guarded(path, () => {
    const created = path === ":memory:" || !existsSync(path);
    const db = connect(path, { create: true, busyTimeoutMs: opts.busyTimeoutMs });
    try {
      const schemaBefore = created ? undefined : schemaCookie(db);
      const report = migrate(db);
      // WAL only once the migration has committed.
      if (path !== ":memory:") db.pragma("journal_mode = WAL");
      return { store: new SqliteAdmin(db, path), report, created, schemaBefore, schemaAfter: schemaCookie(db) };
    } catch (err) {
      db.close();
      throw err;
    }
  });
}

export function inspectSqlite(path: string, opts: OpenOptions): Inspection {
  return guarded(path, () => {
    const db = connect(path, { busyTimeoutMs: opts.busyTimeoutMs, readonly: false });
    try {
      const problem = schemaProblem(db);
      let writable: true | string = true;
      try {
        db.exec("BEGIN IMMEDIATE");
        db.exec("ROLLBACK");
      } catch (err) {
        writable = err instanceof Error ? err.message : String(err);
      }
      return { schemaProblem: problem, writable };
    } finally {
      db.close();
    }
  });
}
