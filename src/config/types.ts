// The validated configuration model (defaults and bounds: schema.ts).

import type { ListsSettings } from "./lists.js";
import type { StoreSettings } from "./store.js";

export type ListenAddress =
  | { readonly kind: "unix"; readonly path: string }
  | { readonly kind: "tcp"; readonly host: string; readonly port: number };

export interface StaticUser {
  readonly username: string;
  readonly email: string | null;
  readonly enabled: boolean;
  readonly attributes: Readonly<Record<string, readonly string[]>>;
}

export type FailureMode = "tempfail" | "dunno";

/** Outbound quotas (src/quota/): limits 0 = unlimited; attribute names null = not read. */
export interface QuotaSettings {
  readonly defaults: { readonly per_hour: number; readonly per_day: number; readonly recipients_per_hour: number };
  readonly attributes: { readonly per_hour: string | null; readonly per_day: string | null; readonly recipients_per_hour: string | null };
  /** The text after "450 4.7.1 ". */
  readonly message: string;
  /** When the counter store fails: open lets the message through, closed defers it (451 4.3.0). */
  readonly failureMode: "open" | "closed";
  readonly backend: "sqlite" | "redis";
  readonly sqlitePath: string;
  readonly redis: { readonly url: string; readonly keyPrefix: string; readonly timeoutMs: number };
}

export interface KeycloakSettings {
  readonly baseUrl: string;
  readonly realm: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly timeoutMs: number;
}

export interface AuthentikSettings {
  /** Server root, e.g. https://auth.example.com (the API is under /api/v3/). */
  readonly baseUrl: string;
  readonly apiToken: string;
  readonly timeoutMs: number;
}

export interface Limits {
  readonly maxConnections: number;
  readonly idleTimeoutSeconds: number;
  readonly readTimeoutSeconds: number;
  readonly maxRequestBytes: number;
}

export interface Config {
  readonly file: string;
  /** One-line notices about the file (unknown keys, values read as the Go release reads them); logged at start. */
  readonly warnings: readonly string[];
  readonly idp: {
    readonly provider: "keycloak" | "authentik" | "static";
    readonly keycloak: KeycloakSettings | null;
    /** Set only when the provider is authentik. */
    readonly authentik: AuthentikSettings | null;
    readonly staticUsers: readonly StaticUser[];
  };
  readonly cache: {
    readonly ttlSeconds: number;
    readonly negativeTtlSeconds: number;
    readonly maxEntries: number;
    readonly staleSeconds: number;
  };
  readonly sqlite: { readonly path: string; readonly busyTimeoutMs: number };
  readonly policy: {
    readonly failureMode: FailureMode;
    readonly recipientDelimiter: string;
    readonly sendAllowedAttribute: string | null;
    /** Domains that are local whatever the DB says (the older layout's policy.domain). */
    readonly localDomains: readonly string[];
  };
  readonly sockets: {
    readonly policy: ListenAddress;
    readonly socketmap: ListenAddress;
    readonly ownerUser: string | null;
    readonly ownerGroup: string | null;
    readonly mode: number;
  };
  readonly daemon: {
    readonly user: string | null;
    readonly allowRoot: boolean;
    readonly pidFile: string | null;
    readonly shutdownGraceMs: number;
  };
  readonly limits: Limits;
  readonly log: { readonly level: string };
  readonly metrics: { readonly listen: { readonly host: string; readonly port: number } | null };
  readonly quotas: QuotaSettings;
  /** Distribution lists from Keycloak groups (config/lists.ts); absent: off. */
  readonly lists?: ListsSettings;
  /** The shared store (config/store.ts); absent: SQLite at sqlite.path. */
  readonly store?: StoreSettings;
}

export { DEFAULTS } from "./schema.js";
