// mailcloakctl's exit statuses, and the mapping of every error it can meet
// to one status and one line of text.

import { ConfigError } from "../config/reader.js";
import { StoreError, type StoreErrorKind } from "../store/errors.js";

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

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, "; ").trim();
}

/** The exit status of each store error kind. */
const STORE_EXIT: Record<StoreErrorKind, ExitCode> = {
  missing: EXIT_CODES.unavailable, schema: EXIT_CODES.unavailable, unavailable: EXIT_CODES.unavailable,
  "not-found": EXIT_CODES.refused, conflict: EXIT_CODES.refused, invalid: EXIT_CODES.refused, forbidden: EXIT_CODES.refused,
};

export interface Failure {
  readonly exitCode: ExitCode;
  readonly message: string;
}

/** The exit status and the one-line message for anything a command threw. */
export function describeFailure(err: unknown): Failure {
  if (err instanceof CliError) return { exitCode: err.exitCode, message: oneLine(err.message) };
  if (err instanceof ConfigError) return { exitCode: EXIT_CODES.usage, message: oneLine(err.message) };
  if (err instanceof StoreError) return { exitCode: STORE_EXIT[err.kind], message: oneLine(err.message) };
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

/** Any failure, as a CliError with that status and line (a CliError as is). */
export function asCliError(err: unknown): CliError {
  if (err instanceof CliError) return err;
  const f = describeFailure(err);
  return new CliError(f.exitCode, f.message);
}
