// mailcloakctl's exit statuses, and the mapping of every error it can meet
// to one status and one line of text.

import Database from "better-sqlite3";
import { ConfigError } from "../config/reader.js";
import { MissingDatabaseError, StoreError } from "../store/sqlite.js";

/** better-sqlite3's error instance type (its typings name only the class value). */
type SqliteError = InstanceType<typeof Database.SqliteError>;

export const EXIT_CODES = {
  /** The command did what was asked. */
  ok: 0,
  /** Refused: invalid value, unknown or duplicate row, empty password. Nothing was written. */
  refused: 1,
  /** Usage error: unknown command or option, missing argument, invalid config file. */
  usage: 2,
  /** Database unavailable: missing, cannot be opened, needs migration, or locked past the busy timeout. */
  unavailable: 3,
} as const;

export type ExitCode = (typeof EXIT_CODES)[keyof typeof EXIT_CODES];

export const EXIT_CODES_HELP = `
Exit status:
  0  success
  1  refused: invalid value, unknown or duplicate row, empty password (nothing written)
  2  usage error: unknown command or option, missing argument, invalid config file
  3  database unavailable: missing (create it with: mailcloakctl init), cannot be
     opened, needs migration (run: mailcloakctl init), or locked past the busy timeout`;

/** An error mailcloakctl reports as is, with its exit status. */
export class CliError extends Error {
  override readonly name: string = "CliError";
  readonly exitCode: ExitCode;

  constructor(exitCode: ExitCode, message: string) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** A SQLite failure that means "the database cannot be used right now", not "this value is wrong". */
function sqliteExitCode(code: string): ExitCode {
  return code.startsWith("SQLITE_CONSTRAINT") ? EXIT_CODES.refused : EXIT_CODES.unavailable;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, "; ").trim();
}

/** Context added to SQLite's terse messages. */
function describeSqlite(err: SqliteError, dbPath: string | undefined): string {
  const where = dbPath === undefined ? "database" : `database ${dbPath}`;
  if (err.code.startsWith("SQLITE_BUSY") || err.code.startsWith("SQLITE_LOCKED")) {
    return `${where} is locked by another process (busy timeout exceeded); try again`;
  }
  if (err.code.startsWith("SQLITE_CONSTRAINT")) return `${where}: refused: ${err.message}`;
  return `${where}: ${err.message} (${err.code})`;
}

export interface Failure {
  readonly exitCode: ExitCode;
  readonly message: string;
}

/** The exit status and the one-line message for anything a command threw. */
export function describeFailure(err: unknown, dbPath?: string): Failure {
  if (err instanceof CliError) return { exitCode: err.exitCode, message: oneLine(err.message) };
  if (err instanceof ConfigError) return { exitCode: EXIT_CODES.usage, message: oneLine(err.message) };
  if (err instanceof MissingDatabaseError) return { exitCode: EXIT_CODES.unavailable, message: oneLine(err.message) };
  if (err instanceof StoreError) return { exitCode: EXIT_CODES.refused, message: oneLine(err.message) };
  if (err instanceof Database.SqliteError) {
    return { exitCode: sqliteExitCode(err.code), message: oneLine(describeSqlite(err, dbPath)) };
  }
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === "string" && /^E[A-Z]+$/.test(code)) {
      // A file-system failure (permissions, missing directory, full disk).
      return { exitCode: EXIT_CODES.unavailable, message: oneLine(err.message) };
    }
    return { exitCode: EXIT_CODES.refused, message: oneLine(err.message) };
  }
  return { exitCode: EXIT_CODES.refused, message: oneLine(String(err)) };
}
