// The one way to open a database: the daemon's reader, the admins' writer,
// init (create or migrate), and a look for the setup wizard. The location is
// a file path (SQLite); a URL names another backend, and each backend is one
// branch here.

import { StoreError } from "./errors.js";
import type { AdminStore, InitResult, Inspection, OpenOptions, StoreEvents, StoreReader } from "./types.js";
import { initSqlite, inspectSqlite, openSqliteAdmin, openSqliteReader } from "./sqlite/index.js";
import { initPostgres, inspectPostgres, openPostgresAdmin, openPostgresReader } from "./postgres.js";

export interface ReaderOptions extends OpenOptions {
  readonly events?: StoreEvents | undefined;
}

type Backend = "sqlite" | "postgres";

/** Which backend a location names; a URL of a scheme without a backend is refused in one line. */
function backendOf(location: string): Backend {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(location)?.[1];
  if (scheme !== undefined && /^postgres(ql)?$/i.test(scheme)) return "postgres";
  if (scheme !== undefined) {
    throw new StoreError("invalid", `database ${redact(location)}: no store backend for ${scheme}:// URLs in this version; give the path of a SQLite file`);
  }
  return "sqlite";
}

/** A location fit for messages: a URL's password is never shown. */
export function redact(location: string): string {
  return location.replace(/\/\/([^@/:]*):[^@/]*@/, "//$1:[redacted]@");
}

/** Open an existing, current database for the daemon (StoreError "missing" or "schema" otherwise). */
export async function openStore(location: string, opts: ReaderOptions): Promise<StoreReader> {
  switch (backendOf(location)) {
    case "sqlite":
      return openSqliteReader(location, opts);
    case "postgres":
      return openPostgresReader(location, opts);
  }
}

/** Open an existing, current database for an admin command. */
export async function openAdmin(location: string, opts: OpenOptions): Promise<AdminStore> {
  switch (backendOf(location)) {
    case "sqlite":
      return openSqliteAdmin(location, opts);
    case "postgres":
      return openPostgresAdmin(location, opts);
  }
}

/** Create the database, or migrate an older layout in place keeping every row. */
export async function initStore(location: string, opts: OpenOptions): Promise<InitResult> {
  switch (backendOf(location)) {
    case "sqlite":
      return initSqlite(location, opts);
    case "postgres":
      return initPostgres(location, opts);
  }
}

/** Look at an existing database without changing it. */
export async function inspectStore(location: string, opts: OpenOptions): Promise<Inspection> {
  switch (backendOf(location)) {
    case "sqlite":
      return inspectSqlite(location, opts);
    case "postgres":
      return inspectPostgres(location, opts);
  }
}
