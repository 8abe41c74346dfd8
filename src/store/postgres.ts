// The PostgreSQL backend's entries, called by src/store/open.ts only. The
// location is a postgres:// URL; the password and the tuning come from the
// config's store: section when there is one (OpenOptions.postgres), else
// from MAILCLOAK_STORE_PASSWORD (or the URL itself) with the defaults.

import type { PostgresSettings } from "../config/store.js";
import { splitPostgresUrl, STORE_DEFAULTS } from "../config/store.js";
import { redactUrl } from "../redact-url.js";
import { StoreError } from "./errors.js";
import { PostgresAdminStore } from "./postgres-admin.js";
import { PostgresStore } from "./postgres-reader.js";
import { clientConfig, pgError, TABLES } from "./postgres-schema.js";
import type { InitResult, Inspection, OpenOptions, StoreEvents } from "./types.js";
import pg from "pg";

/** The settings for `location`: the config's when it names the same URL, else the defaults. */
export function postgresSettingsFor(location: string, opts: OpenOptions, env: NodeJS.ProcessEnv = process.env): PostgresSettings {
  let parts: { url: string; password: string };
  try {
    parts = splitPostgresUrl(location);
  } catch (err) {
    throw new StoreError("invalid", `database URL ${redactUrl(location)}: ${(err as Error).message}`);
  }
  const given = opts.postgres;
  if (given !== undefined && given.url === parts.url) return given;
  const fromEnv = env[STORE_DEFAULTS.passwordEnv];
  return {
    url: parts.url,
    password: fromEnv !== undefined && fromEnv !== "" ? fromEnv : parts.password,
    poolSize: given?.poolSize ?? STORE_DEFAULTS.poolSize,
    queryTimeoutMs: given?.queryTimeoutMs ?? STORE_DEFAULTS.queryTimeoutMs,
    connectTimeoutMs: given?.connectTimeoutMs ?? STORE_DEFAULTS.connectTimeoutMs,
    checkIntervalMs: given?.checkIntervalMs ?? STORE_DEFAULTS.checkIntervalMs,
    maxStaleMs: given?.maxStaleMs ?? STORE_DEFAULTS.maxStaleMs,
  };
}

export function openPostgresReader(location: string, opts: OpenOptions & { readonly events?: StoreEvents | undefined }): Promise<PostgresStore> {
  return PostgresStore.open(postgresSettingsFor(location, opts), opts.events ?? {});
}

export function openPostgresAdmin(location: string, opts: OpenOptions): Promise<PostgresAdminStore> {
  return PostgresAdminStore.open(postgresSettingsFor(location, opts));
}

/** How many of the tables exist, as the "schema cookie" init compares. */
async function tablesPresent(settings: PostgresSettings): Promise<number> {
  const c = new pg.Client(clientConfig(settings, "mailcloakctl"));
  c.on("error", () => undefined);
  try {
    await c.connect();
    const r = await c.query<{ n: string }>("SELECT count(*) AS n FROM pg_class WHERE relkind = 'r' AND relname = ANY($1) AND pg_table_is_visible(oid)", [[...TABLES]]);
    return Number(r.rows[0]!.n);
  } catch (err) {
    throw pgError(settings.url, err, "unavailable");
  } finally {
    await c.end().catch(() => undefined);
  }
}

export async function initPostgres(location: string, opts: OpenOptions): Promise<InitResult> {
  const settings = postgresSettingsFor(location, opts);
  const before = await tablesPresent(settings);
  const { store, created } = await PostgresAdminStore.init(settings);
  return {
    store, created, report: { migrated: false, steps: [] },
    schemaBefore: before === 0 ? undefined : before, schemaAfter: TABLES.length,
  };
}

export async function inspectPostgres(location: string, opts: OpenOptions): Promise<Inspection> {
  const settings = postgresSettingsFor(location, opts);
  const c = new pg.Client(clientConfig(settings, "mailcloak-admin"));
  c.on("error", () => undefined);
  try {
    await c.connect();
    const n = await tablesPresent(settings);
    const problem = n === TABLES.length ? null : "tables are missing (run: mailcloakctl init)";
    const w = await c.query<{ ok: boolean }>("SELECT has_table_privilege('domains', 'INSERT') AS ok").catch(() => null);
    return { schemaProblem: problem, writable: w?.rows[0]?.ok === true ? true : "no INSERT privilege on the tables" };
  } catch (err) {
    throw pgError(settings.url, err, "unavailable");
  } finally {
    await c.end().catch(() => undefined);
  }
}
