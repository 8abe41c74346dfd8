// PostgreSQL connection settings, the schema (db-init.pgsql) and the one
// snapshot read the daemon's copy is built from. Shared by the daemon's
// reader (postgres-reader.ts) and the admin writer (postgres-admin.ts).

import { readFileSync } from "node:fs";
import pg from "pg";
import type { PostgresSettings } from "../config/store.js";
import type { MirrorRows } from "./postgres-mirror.js";
import { StoreError, type StoreErrorKind } from "./errors.js";

const SCHEMA_URL = new URL("../../../db-init.pgsql", import.meta.url);

export function pgSchemaSql(): string {
  return readFileSync(SCHEMA_URL, "utf8");
}

/** The channel the triggers of db-init.pgsql notify. */
export const CHANNEL = "mailcloak_changed";

/** Tables a served database must have (the rest are created by init too). */
export const TABLES = ["domains", "aliases", "apps", "app_from", "app_owners", "quota_limits", "sender_delegations", "mailcloak_version"] as const;

/** node-postgres options: deadlines on connect and on every query (client and server side). */
export function clientConfig(s: PostgresSettings, applicationName: string): pg.ClientConfig {
  // node-postgres lets the URL's (absent) password override a separate
  // password option, so it goes into the URL given to the driver, never shown.
  const u = new URL(s.url);
  if (s.password !== "") u.password = encodeURIComponent(s.password);
  return {
    connectionString: u.toString(),
    connectionTimeoutMillis: s.connectTimeoutMs,
    query_timeout: s.queryTimeoutMs,
    statement_timeout: s.queryTimeoutMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    application_name: applicationName,
  };
}

/** The PostgreSQL error code (SQLSTATE) of a driver error, or undefined. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * A failure no retry will cure: wrong password, unknown role or database,
 * missing tables. The daemon refuses to start on these; a refused
 * connection or a server going down is retried instead.
 */
export function isPermanent(err: unknown): boolean {
  const c = sqlState(err);
  return c !== undefined && (c.startsWith("28") || c === "3D000" || c === "42P01" || c === "42501");
}

/** Why the database cannot be served as is (a missing table), or null. */
export async function pgSchemaProblem(c: pg.ClientBase): Promise<string | null> {
  const r = await c.query<{ name: string }>("SELECT c.relname AS name FROM pg_class c WHERE c.relkind = 'r' AND c.relname = ANY($1) AND pg_table_is_visible(c.oid)", [[...TABLES]]);
  const have = new Set(r.rows.map((x) => x.name));
  const missing = TABLES.filter((t) => !have.has(t));
  return missing.length === 0 ? null : `table ${missing[0]} is missing`;
}

/** Apply db-init.pgsql (idempotent), serialised with other hosts running init at once. */
export async function applyPgSchema(c: pg.ClientBase): Promise<{ created: boolean }> {
  await c.query("BEGIN");
  try {
    await c.query("SELECT pg_advisory_xact_lock(hashtext('mailcloak init'))");
    const created = (await pgSchemaProblem(c)) !== null;
    await c.query(pgSchemaSql());
    await c.query("COMMIT");
    return { created };
  } catch (err) {
    await c.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}

/** Every row the daemon's copy needs, from one snapshot (REPEATABLE READ, read only). */
export async function readSnapshot(c: pg.ClientBase): Promise<MirrorRows> {
  await c.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  try {
    const q = async <R extends pg.QueryResultRow>(sql: string): Promise<R[]> => (await c.query<R>(sql)).rows;
    const version = await q<{ version: string }>("SELECT version FROM mailcloak_version WHERE id = 1");
    const rows: MirrorRows = {
      version: Number(version[0]?.version ?? 0),
      domains: await q("SELECT domain_name, enabled FROM domains"),
      aliases: await q("SELECT alias_email, target_user, alias_domain_name, enabled FROM aliases"),
      apps: await q("SELECT app_id, enabled FROM apps"),
      appFrom: await q("SELECT app_id, from_addr, enabled FROM app_from"),
      quotaLimits: await q("SELECT login, per_hour, per_day, recipients_per_hour FROM quota_limits"),
      delegations: await q("SELECT from_addr, login FROM sender_delegations"),
    };
    await c.query("COMMIT");
    return rows;
  } catch (err) {
    await c.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}

/** A store error with the URL (never a password) in its message. */
export function pgError(url: string, err: unknown, kind: StoreErrorKind): StoreError {
  const msg = err instanceof Error ? err.message : String(err);
  const code = sqlState(err);
  return new StoreError(kind, `database ${url}: ${msg}${code ? ` (${code})` : ""}`, { cause: err });
}
