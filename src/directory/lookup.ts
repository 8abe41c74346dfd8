// The identity-source contract: every directory answer is one of three
// outcomes. An outage is never folded into "not found" (that would turn a
// Keycloak or Authentik hiccup into 550 No such user); the caller maps `unavailable` to the
// configured failure mode.

export interface DirectoryUser {
  /** Login name, lower-cased (Keycloak stores usernames so; the Authentik source lower-cases them). */
  readonly username: string;
  /** Primary email, lower-cased, or null when the user has none. */
  readonly email: string | null;
  readonly enabled: boolean;
  /** Keycloak-style attributes: every value is a list of strings (Authentik's JSON values are mapped to this). */
  readonly attributes: Readonly<Record<string, readonly string[]>>;
}

export type Lookup<T> =
  | { readonly kind: "found"; readonly value: T }
  | { readonly kind: "notfound" }
  | {
    readonly kind: "unavailable";
    readonly reason: string;
    /**
     * The IdP itself answered, but a store behind it could not (Keycloak
     * without its LDAP federation): the failure mode applies, yet the IdP's
     * circuit breaker does not count it, so its own users are still asked.
     */
    readonly behindIdp?: true;
  };

export const NOT_FOUND: Lookup<never> = Object.freeze({ kind: "notfound" });

export function found<T>(value: T): Lookup<T> {
  return { kind: "found", value };
}

export function unavailable(reason: string): Lookup<never> {
  return { kind: "unavailable", reason };
}

/** `unavailable` for a store behind an IdP that answered (see `behindIdp`). */
export function unavailableBehindIdp(reason: string): Lookup<never> {
  return { kind: "unavailable", reason, behindIdp: true };
}

/**
 * An identity source answers two questions by exact match; both keys arrive
 * already lower-cased and trimmed. Implementations must not throw: failures
 * come back as `unavailable`.
 */
export interface IdentitySource {
  readonly name: string;
  userByUsername(username: string): Promise<Lookup<DirectoryUser>>;
  userByEmail(email: string): Promise<Lookup<DirectoryUser>>;
  /** Readiness: null when healthy, else why not (optional). */
  health?(staleMs: number): string | null;
  /** Release timers and sockets. */
  close(): Promise<void>;
}
