// The store: section of the config file: where domains, aliases, apps,
// senders, delegations and quota limits live. SQLite (sqlite.path) is the
// default; `backend: postgres` shares one PostgreSQL between several hosts
// (docs/several-hosts.md). The password is never part of what is logged:
// it comes from password_file, MAILCLOAK_STORE_PASSWORD or `password`, and
// describeStore() prints the URL without it.

import { readFileSync } from "node:fs";
import { choice, int, optional } from "./fields.js";
import type { Section } from "./reader.js";
import { DEFAULTS, STORE } from "./schema.js";

const S = STORE.settings;

export interface PostgresSettings {
  /** postgres://user@host:port/database, without the password. */
  readonly url: string;
  /** "" when none is set (trust or peer authentication). Never log it. */
  readonly password: string;
  /** Connections of the admin pool (mailcloakctl, mailcloak-admin). */
  readonly poolSize: number;
  /** Deadline of one query, server side (statement_timeout) and client side. */
  readonly queryTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** How often the daemon compares its copy's version with the server's. */
  readonly checkIntervalMs: number;
  /** The daemon answers 451 / TEMP once its copy has not been confirmed for this long. */
  readonly maxStaleMs: number;
}

export type StoreSettings =
  | { readonly backend: "sqlite" }
  | { readonly backend: "postgres"; readonly postgres: PostgresSettings };

/** The schema's defaults by name (schema.ts STORE holds them and their bounds). */
export const STORE_DEFAULTS = {
  /** Enough for mailcloakctl and a web admin; the daemon uses one connection of its own. */
  poolSize: DEFAULTS.storePoolSize,
  /** Well inside Postfix's policy and socketmap timeouts; an admin write waits no longer. */
  queryTimeoutMs: DEFAULTS.storeQueryTimeoutMs,
  connectTimeoutMs: DEFAULTS.storeConnectTimeoutMs,
  /** A lost notification is caught within this. */
  checkIntervalMs: DEFAULTS.storeCheckIntervalMs,
  /** The stated bound: no answer is given from a copy older than 1 s that the server did not confirm. */
  maxStaleMs: DEFAULTS.storeMaxStaleMs,
  passwordEnv: DEFAULTS.storePasswordEnv,
} as const;

export function isPostgresUrl(text: string): boolean {
  return /^postgres(ql)?:\/\//i.test(text.trim());
}

/**
 * Split a postgres:// URL into the URL without its password and the
 * password; throws a one-line message on anything else.
 */
export function splitPostgresUrl(raw: string): { url: string; password: string } {
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    throw new Error(`not a URL: expected postgres://USER@HOST:PORT/DATABASE`);
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") {
    throw new Error(`must start with postgres://, got ${JSON.stringify(u.protocol)}`);
  }
  if (u.hostname === "" && !u.searchParams.has("host")) throw new Error("has no host: expected postgres://USER@HOST:PORT/DATABASE");
  if (u.pathname.length <= 1) throw new Error("names no database: expected postgres://USER@HOST:PORT/DATABASE");
  const password = decodeURIComponent(u.password);
  u.password = "";
  return { url: u.toString(), password };
}

/** The URL as it may be shown: never with a password. */
export function describeStore(s: StoreSettings, sqlitePath: string): string {
  if (s.backend === "sqlite") return `sqlite:${sqlitePath}`;
  return splitPostgresUrl(s.postgres.url).url;
}

/** The password: password_file, else `password`, else the URL's; the environment variable wins. */
function readPassword(s: Section, env: NodeJS.ProcessEnv, inUrl: string, inline: string | undefined, file: string | undefined): string {
  if (inline !== undefined && file !== undefined) throw s.error(s.key(S.password.name), "set password or password_file, not both");
  let password = inline ?? inUrl;
  if (file !== undefined) {
    try {
      password = readFileSync(file, "utf8").replace(/\r?\n$/, "");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      throw s.error(s.key(S.password_file.name), `cannot read ${file} (${code})`);
    }
  }
  const fromEnv = env[STORE_DEFAULTS.passwordEnv];
  if (fromEnv !== undefined && fromEnv !== "") password = fromEnv;
  return password;
}

/**
 * The store: section (absent: SQLite at sqlite.path). Every key is read and
 * checked whatever the backend, so a typo shows before the switch; with
 * sqlite the PostgreSQL keys are otherwise ignored.
 */
export function buildStore(s: Section, env: NodeJS.ProcessEnv): StoreSettings {
  const backend = choice(s, S.backend);
  const raw = optional(s, S.url);
  const inline = optional(s, S.password);
  const file = optional(s, S.password_file);
  const poolSize = int(s, S.pool_size);
  const queryTimeoutMs = int(s, S.query_timeout_ms);
  const connectTimeoutMs = int(s, S.connect_timeout_ms);
  const checkIntervalMs = int(s, S.check_interval_ms);
  const maxStaleMs = int(s, S.max_stale_ms);
  if (maxStaleMs < checkIntervalMs * 2) {
    throw s.error(s.key(S.max_stale_ms.name), `must be at least twice check_interval_ms (${checkIntervalMs}), got ${maxStaleMs}`);
  }
  let parts: { url: string; password: string } | undefined;
  if (raw !== undefined) {
    try {
      parts = splitPostgresUrl(raw);
    } catch (err) {
      throw s.error(s.key(S.url.name), (err as Error).message);
    }
  }
  if (parts !== undefined && parts.password !== "") {
    s.warn(s.key(S.url.name), `holds a password: move it to store.password_file or the environment variable ${STORE_DEFAULTS.passwordEnv}`);
  }
  if (backend === "sqlite") {
    s.finish();
    return { backend };
  }
  if (parts === undefined) throw s.error(s.key(S.url.name), "is required with backend: postgres (postgres://USER@HOST:PORT/DATABASE)");
  const password = readPassword(s, env, parts.password, inline, file);
  s.finish();
  return { backend, postgres: { url: parts.url, password, poolSize, queryTimeoutMs, connectTimeoutMs, checkIntervalMs, maxStaleMs } };
}
