// Log-safe reasons for failed HTTP calls to an identity provider. A reason
// never carries a secret, a token or a response body: it goes to logs and to
// `unavailable` lookups.

/** An expected failure whose reason is already log-safe. */
export class Failure extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** A short reason for `err` thrown by a call described as `what` ("keycloak users query"). */
export function describeFailure(err: unknown, what: string, timeoutMs: number): string {
  if (err instanceof Failure) return err.reason;
  if (err instanceof Error) {
    if (err.name === "TimeoutError" || err.name === "AbortError") return `${what} timed out after ${timeoutMs} ms`;
    const cause: unknown = err.cause;
    const code = typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string" ? cause.code : undefined;
    if (code !== undefined) return `${what} failed: ${code}`;
    if (err instanceof SyntaxError) return `${what} returned malformed JSON`;
    return `${what} failed: ${err.name}`;
  }
  return `${what} failed`;
}
