// The store: section of the config file: where domains, aliases, apps,
// senders, delegations and quota limits live. SQLite (sqlite.path) is the
// default; `backend: postgres` shares one PostgreSQL between several hosts
// (docs/several-hosts.md). The password is never part of what is logged:
// it comes from password_file, MAILCLOAK_STORE_PASSWORD or `password`, and
// describeStore() prints the URL without it.

import { readFileSync } from "node:fs";
import type { Section } from "./reader.js";

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

export const STORE_DEFAULTS = {
  /** Enough for mailcloakctl and a web admin; the daemon uses one connection of its own. */
  poolSize: 4,
  /** Well inside Postfix's policy and socketmap timeouts; an admin write waits no longer. */
  queryTimeoutMs: 5000,
  connectTimeoutMs: 3000,
  /** A lost notification is caught within this. */
  checkIntervalMs: 250,
  /** The stated bound: no answer is given from a copy older than 1 s that the server did not confirm. */
  maxStaleMs: 1000,
  passwordEnv: "MAILCLOAK_STORE_PASSWORD",
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

function readPassword(s: Section, env: NodeJS.ProcessEnv, inUrl: string): string {
  const inline = s.optionalString("password");
  const file = s.optionalString("password_file");
  if (inline !== undefined && file !== undefined) throw s.error(s.key("password"), "set password or password_file, not both");
  let password = inline ?? inUrl;
  if (file !== undefined) {
    try {
      password = readFileSync(file, "utf8").replace(/\r?\n$/, "");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      throw s.error(s.key("password_file"), `cannot read ${file} (${code})`);
    }
  }
  const fromEnv = env[STORE_DEFAULTS.passwordEnv];
  if (fromEnv !== undefined && fromEnv !== "") password = fromEnv;
  return password;
}

/** Parse the store: section (absent: SQLite at sqlite.path). */
export function parseStore(s: Section, env: NodeJS.ProcessEnv): StoreSettings {
  const backend = s.oneOf("backend", ["sqlite", "postgres"] as const, "sqlite");
  if (backend === "sqlite") {
    s.finish();
    return { backend };
  }
  const raw = s.optionalString("url");
  if (raw === undefined) throw s.error(s.key("url"), "is required with backend: postgres (postgres://USER@HOST:PORT/DATABASE)");
  let parts: { url: string; password: string };
  try {
    parts = splitPostgresUrl(raw);
  } catch (err) {
    throw s.error(s.key("url"), (err as Error).message);
  }
  const password = readPassword(s, env, parts.password);
  const postgres: PostgresSettings = {
    url: parts.url,
    password,
    poolSize: s.int("pool_size", STORE_DEFAULTS.poolSize, 1, 100),
    queryTimeoutMs: s.int("query_timeout_ms", STORE_DEFAULTS.queryTimeoutMs, 100, 60_000),
    connectTimeoutMs: s.int("connect_timeout_ms", STORE_DEFAULTS.connectTimeoutMs, 100, 60_000),
    checkIntervalMs: s.int("check_interval_ms", STORE_DEFAULTS.checkIntervalMs, 50, 10_000),
    maxStaleMs: s.int("max_stale_ms", STORE_DEFAULTS.maxStaleMs, 100, 60_000),
  };
  if (postgres.maxStaleMs < postgres.checkIntervalMs * 2) {
    throw s.error(s.key("max_stale_ms"), `must be at least twice check_interval_ms (${postgres.checkIntervalMs}), got ${postgres.maxStaleMs}`);
  }
  if (parts.password !== "") {
    s.warn(s.key("url"), "holds a password: move it to store.password_file or the environment variable MAILCLOAK_STORE_PASSWORD");
  }
  s.finish();
  return { backend, postgres };
}
