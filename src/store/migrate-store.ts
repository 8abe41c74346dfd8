// `mailcloakctl migrate-store`: copy a SQLite installation into PostgreSQL,
// every row and column as it is (updated_at included), in one transaction
// on the target. A target that already holds a row is refused before
// anything is written; the row counts are compared before the commit.
// The source is opened read-only and must have the current layout (an older
// one: run mailcloakctl init on it first, which migrates it in place).

import type pg from "pg";
import type { PostgresSettings } from "../config/store.js";
import { StoreError } from "./errors.js";
import { PostgresAdminStore } from "./postgres-admin.js";
import { columns, connect, guarded, hasTable } from "./sqlite/connection.js";
import { schemaProblem } from "./sqlite/schema.js";

/** Parents before children (foreign keys). */
export const COPIED_TABLES = ["domains", "aliases", "apps", "app_from", "app_owners", "quota_limits", "sender_delegations"] as const;

export interface CopyReport {
  readonly counts: Readonly<Record<(typeof COPIED_TABLES)[number], number>>;
}

type Row = Record<string, unknown>;

function readSource(path: string): Map<string, { cols: string[]; rows: Row[] }> {
  return guarded(path, () => {
    const db = connect(path, { busyTimeoutMs: 5000, readonly: true });
    try {
      const problem = schemaProblem(db);
      if (problem !== null) throw new StoreError("schema", `database ${path}: ${problem}; run: mailcloakctl --db ${path} init (it migrates in place), then migrate-store again`);
      const out = new Map<string, { cols: string[]; rows: Row[] }>();
      // One read transaction: a consistent copy even while the daemon or an admin writes.
      db.transaction(() => {
        for (const t of COPIED_TABLES) {
          // app_owners, quota_limits and sender_delegations exist only once first used.
          if (!hasTable(db, t)) {
            out.set(t, { cols: [], rows: [] });
            continue;
          }
          out.set(t, { cols: [...columns(db, t)], rows: db.prepare(`SELECT * FROM ${t}`).all() as Row[] });
        }
      })();
      return out;
    } finally {
      db.close();
    }
  });
}

async function insertAll(c: pg.ClientBase, table: string, cols: string[], rows: Row[]): Promise<void> {
  const CHUNK = 500;
  for (let i = 0; i < rows.length; i += CHUNK) {
    const part = rows.slice(i, i + CHUNK);
    const values: unknown[] = [];
    const tuples = part.map((r) => `(${cols.map((col) => {
      values.push(r[col] ?? null);
      return `$${values.length}`;
    }).join(", ")})`);
    await c.query(`INSERT INTO ${table} (${cols.join(", ")}) VALUES ${tuples.join(", ")}`, values);
  }
}

/** Copy the SQLite database at `from` into the PostgreSQL of `to` (created there by init if needed). */
export async function copySqliteToPostgres(from: string, to: PostgresSettings): Promise<CopyReport> {
  const source = readSource(from);
  const { store } = await PostgresAdminStore.init(to);
  try {
    return await store.transaction(async (c) => {
      // Nothing another admin commits meanwhile can slip in between the check and the copy.
      await c.query(`LOCK TABLE ${COPIED_TABLES.join(", ")} IN EXCLUSIVE MODE`);
      const held: string[] = [];
      for (const t of COPIED_TABLES) {
        const r = await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`);
        if (Number(r.rows[0]!.n) > 0) held.push(`${t} (${r.rows[0]!.n})`);
      }
      if (held.length > 0) {
        throw new StoreError("conflict", `refused: ${store.location} is not empty (${held.join(", ")}); migrate-store copies only into an empty database, nothing was written`);
      }
      const pgCols = await c.query<{ table_name: string; column_name: string }>(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ANY($1)", [[...COPIED_TABLES]]);
      const counts = {} as Record<(typeof COPIED_TABLES)[number], number>;
      for (const t of COPIED_TABLES) {
        const { cols, rows } = source.get(t)!;
        const known = new Set(pgCols.rows.filter((r) => r.table_name === t).map((r) => r.column_name));
        const extra = cols.filter((col) => !known.has(col));
        if (extra.length > 0) throw new StoreError("schema", `database ${from}: table ${t} has columns PostgreSQL's schema lacks (${extra.join(", ")}); nothing was written`);
        await insertAll(c, t, cols, rows);
        const n = Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`)).rows[0]!.n);
        if (n !== rows.length) throw new StoreError("unavailable", `copy of ${t}: ${n} rows in PostgreSQL for ${rows.length} in SQLite; nothing was written`);
        counts[t] = n;
      }
      return { counts };
    });
  } finally {
    await store.close();
  }
}
