// Where mailcloakctl finds its database: --db (a SQLite path or a
// postgres:// URL), else the config file's store.url (backend postgres) or
// sqlite.path, else the built-in default.

import { existsSync } from "node:fs";
import { ConfigError, DEFAULT_CONFIG_PATH, loadConfig } from "../config/load.js";
import type { Config } from "../config/types.js";
import { DEFAULTS } from "../config/types.js";
import { StoreError } from "../store/errors.js";
import { openAdmin } from "../store/open.js";
import type { AdminStore } from "../store/types.js";
import { isPostgresUrl, splitPostgresUrl, STORE_DEFAULTS, type PostgresSettings } from "../config/store.js";
import { postgresSettingsFor } from "../store/postgres.js";
import { CliError, EXIT_CODES } from "./exit.js";

/** The global options, as commander parsed them. */
export interface GlobalOptions {
  readonly db?: string;
  readonly config?: string;
}

export interface Settings {
  readonly dbPath: string;
  readonly busyTimeoutMs: number;
  /** The config file that was read, or null when none was. */
  readonly config: Config | null;
  /** The config's PostgreSQL settings (password, pool, deadlines), when store.backend is postgres. */
  readonly postgres?: PostgresSettings | undefined;
}

export type Warn = (line: string) => void;

/**
 * Resolve the global options. An explicit --config must load (else exit 2);
 * the default config file is used only when it exists and validates.
 */
export function resolveSettings(opts: GlobalOptions, warn: Warn): Settings {
  if (opts.db !== undefined && opts.db.trim() === "") throw new CliError(EXIT_CODES.usage, "--db: the path is empty");
  let config: Config | null = null;
  if (opts.config !== undefined) {
    if (opts.config.trim() === "") throw new CliError(EXIT_CODES.usage, "--config: the path is empty");
    config = loadConfig(opts.config); // ConfigError: exit 2
  } else if (existsSync(DEFAULT_CONFIG_PATH)) {
    try {
      config = loadConfig(DEFAULT_CONFIG_PATH);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      if (opts.db === undefined) {
        warn(`warning: ignoring ${err.message}; using ${DEFAULTS.sqlitePath} (pass --db or --config)`);
      }
    }
  }
  for (const w of config?.warnings ?? []) warn(`warning: ${w}`);
  const fromConfig = config?.store?.backend === "postgres" ? config.store.postgres : undefined;
  const dbPath = opts.db ?? fromConfig?.url ?? config?.sqlite.path ?? DEFAULTS.sqlitePath;
  const busyTimeoutMs = config?.sqlite.busyTimeoutMs ?? DEFAULTS.busyTimeoutMs;
  refuseDatabaseUrl(dbPath, opts.db !== undefined ? "--db" : fromConfig !== undefined ? `${config?.file ?? "config"}: store.url` : `${config?.file ?? "config"}: sqlite.path`);
  if (!isPostgresUrl(dbPath)) return { dbPath, busyTimeoutMs, config };
  // A password in --db is taken out at once, so no message can show it.
  let postgres: PostgresSettings;
  try {
    postgres = postgresSettingsFor(dbPath, { busyTimeoutMs, postgres: fromConfig });
  } catch (err) {
    throw new CliError(EXIT_CODES.usage, `--db: ${(err as Error).message}`);
  }
  if (opts.db !== undefined && splitPostgresUrl(dbPath).password !== "") {
    warn(`warning: --db holds a password (visible to other local users in the process list); set ${STORE_DEFAULTS.passwordEnv} or store.password_file instead`);
  }
  return { dbPath: postgres.url, busyTimeoutMs, config, postgres };
}

/** `scheme://...`: the scheme, else null. */
function urlScheme(value: string): string | null {
  return /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(value)?.[1] ?? null;
}

/**
 * A database location that looks like a URL of a scheme without a backend:
 * SQLite would take it as a relative path and create a directory named after
 * the scheme. Refused before anything is written. postgres:// and
 * postgresql:// name the PostgreSQL backend; this is the one place to admit
 * another scheme once a backend for it exists. The URL itself is not
 * repeated: it may carry a password.
 */
export function refuseDatabaseUrl(location: string, from: string): void {
  const scheme = urlScheme(location.trim());
  if (scheme === null || /^postgres(ql)?$/i.test(scheme)) return;
  throw new CliError(EXIT_CODES.usage, `${from}: a ${scheme}:// URL, but only SQLite files and postgres:// URLs are supported: give the database file's path (e.g. ${DEFAULTS.sqlitePath}) or postgres://USER@HOST:PORT/DATABASE`);
}

/** Open the DB for an admin command; any failure to open it is exit 3. */
export async function openAdminStore(s: Settings): Promise<AdminStore> {
  try {
    return await openAdmin(s.dbPath, { busyTimeoutMs: s.busyTimeoutMs, postgres: s.postgres });
  } catch (err) {
    if (err instanceof StoreError || err instanceof CliError) throw err; // the store's messages name the file
    const message = err instanceof Error ? err.message : String(err);
    throw new CliError(EXIT_CODES.unavailable, message.includes(s.dbPath) ? message : `cannot open database ${s.dbPath}: ${message}`);
  }
}
