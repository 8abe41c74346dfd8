// The one way to open a database: the daemon's reader, the admins' writer,
// init (create or migrate), and a look for the setup wizard. The location
// names the backend: a file path is SQLite (src/store/sqlite/); a URL names
// another backend, which is one more Backend object in backendOf().

import { redactUrl } from "../redact-url.js";
import { StoreError } from "./errors.js";
import type { AdminStore, InitResult, Inspection, OpenOptions, StoreEvents, StoreReader } from "./types.js";
import { initSqlite, inspectSqlite, openSqliteAdmin, openSqliteReader } from "./sqlite/index.js";
import { initPostgres, inspectPostgres, openPostgresAdmin, openPostgresReader } from "./postgres.js";

export interface ReaderOptions extends OpenOptions {
  readonly events?: StoreEvents | undefined;
}

/** What a backend provides: each entry throws (or rejects with) StoreError only. */
export interface Backend {
  /** An existing, current database for the daemon; resolves once reads can be answered. */
  reader(location: string, opts: ReaderOptions): StoreReader | Promise<StoreReader>;
  /** An existing, current database for an admin command. */
  admin(location: string, opts: OpenOptions): AdminStore | Promise<AdminStore>;
  /** Create the database, or migrate an older layout in place keeping every row. */
  init(location: string, opts: OpenOptions): InitResult | Promise<InitResult>;
  /** Look at an existing database without changing it. */
  inspect(location: string, opts: OpenOptions): Inspection | Promise<Inspection>;
}

const SQLITE: Backend = { reader: openSqliteReader, admin: openSqliteAdmin, init: initSqlite, inspect: inspectSqlite };
/** postgres:// URLs: the shared store of several hosts (src/store/postgres.ts, docs/several-hosts.md). */
const POSTGRES: Backend = { reader: openPostgresReader, admin: openPostgresAdmin, init: initPostgres, inspect: inspectPostgres };

/** Which backend a location names; a URL of a scheme without a backend is refused in one line. */
function backendOf(location: string): Backend {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(location)?.[1];
  if (scheme !== undefined && /^postgres(ql)?$/i.test(scheme)) return POSTGRES;
  if (scheme !== undefined) {
    throw new StoreError("invalid", `database ${redact(location)}: no store backend for ${scheme}:// URLs in this version; give the path of a SQLite file`);
  }
  return SQLITE;
}

/** A location fit for messages: a URL's password is never shown (src/redact-url.ts). */
export function redact(location: string): string {
  return redactUrl(location);
}

/** Open an existing, current database for the daemon (StoreError "missing" or "schema" otherwise). */
export async function openStore(location: string, opts: ReaderOptions): Promise<StoreReader> {
  return backendOf(location).reader(location, opts);
}

/** Open an existing, current database for an admin command. */
export async function openAdmin(location: string, opts: OpenOptions): Promise<AdminStore> {
  return backendOf(location).admin(location, opts);
}

/** Create the database, or migrate an older layout in place keeping every row. */
export async function initStore(location: string, opts: OpenOptions): Promise<InitResult> {
  return backendOf(location).init(location, opts);
}

/** Look at an existing database without changing it. */
export async function inspectStore(location: string, opts: OpenOptions): Promise<Inspection> {
  return backendOf(location).inspect(location, opts);
}
