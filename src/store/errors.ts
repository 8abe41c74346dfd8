// The store's errors: one class, a closed set of kinds. Every backend throws
// only these (a SQLite or PostgreSQL driver error is translated at the
// backend's edge), so callers sort failures by `kind` and never import a
// driver: the CLI maps a kind to an exit status, the admin API to an HTTP
// status, the daemon's handlers to 451 / TEMP.

export type StoreErrorKind =
  /** The database does not exist yet (create it with mailcloakctl init). */
  | "missing"
  /** The row named does not exist (HTTP 404, exit 1). */
  | "not-found"
  /** The row to create already exists (HTTP 409, exit 1). */
  | "conflict"
  /** A value the admin gave is wrong (HTTP 400, exit 1); nothing was written. */
  | "invalid"
  /** A user's own request touched what is not theirs (HTTP 403, exit 1). */
  | "forbidden"
  /** The database cannot be used right now: gone, unreadable, locked past the busy timeout, a mirror that cannot be vouched for (451 / TEMP, HTTP 503, exit 3). */
  | "unavailable"
  /** The database's layout is older than this version (run mailcloakctl init, which migrates in place); exit 3. */
  | "schema";

export const STORE_ERROR_KINDS: readonly StoreErrorKind[] = ["missing", "not-found", "conflict", "invalid", "forbidden", "unavailable", "schema"];

export class StoreError extends Error {
  override readonly name = "StoreError";
  readonly kind: StoreErrorKind;

  constructor(kind: StoreErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
  }
}

/** `err` is a StoreError, of `kind` when one is given. */
export function isStoreError(err: unknown, kind?: StoreErrorKind): err is StoreError {
  return err instanceof StoreError && (kind === undefined || err.kind === kind);
}
