// The plain facts the rules decide on: settings, store rows, directory
// answers. Shapes only, written here so that src/rules/ imports nothing from
// the store, the directory or the config (the fact layer, src/facts.ts, fills
// them from those; their types are structurally the same).
//
// A fact the fact layer has not looked up yet is `undefined`: a rule that
// reaches it returns the fact's name instead of a decision, and is asked again
// once it is there (src/facts.ts: gather). Rules therefore look facts up in
// their own order, and only those their path reaches (no Keycloak round trip
// for an app login, no list lookup for a user's own address).

export type FailureMode = "tempfail" | "dunno";

export interface RuleSettings {
  readonly failureMode: FailureMode;
  readonly delimiter: string;
  readonly sendAllowedAttribute: string | null;
  /** policy.domain: domains local whatever the store says. */
  readonly configDomains: ReadonlySet<string>;
}

export interface User {
  readonly username: string;
  readonly email: string | null;
  readonly enabled: boolean;
  readonly attributes: Readonly<Record<string, readonly string[]>>;
}

/** A directory answer: found, not found, or the identity source could not say (never folded into "not found"). */
export type UserLookup =
  | { readonly kind: "found"; readonly value: User }
  | { readonly kind: "notfound" }
  | { readonly kind: "unavailable"; readonly reason: string };

export type Posting = "anyone" | "members" | "local";

export interface MailList {
  readonly address: string;
  /** The group's path, for log lines. */
  readonly path: string;
  /** Primary emails of the enabled members (subgroups included), deduplicated, in a stable order. */
  readonly members: readonly string[];
  /** Usernames of those members. */
  readonly logins: ReadonlySet<string>;
  readonly posting: Posting;
  /** Usernames that may send as the list address. */
  readonly sendAs: ReadonlySet<string>;
}

/** The list at an address (exact, then without its extension); "none" also when lists are off. */
export type ListLookup =
  | { readonly kind: "list"; readonly list: MailList }
  | { readonly kind: "none" }
  | { readonly kind: "unavailable"; readonly reason: string };

/** An alias row: `active` is the alias and its domain both enabled. */
export interface AliasTarget {
  readonly targetUser: string;
  readonly domain: string;
  readonly active: boolean;
}

/** Everything an address in one domain can match in the store, read together. */
export interface AddressRows {
  /** The domain's row: true enabled, false disabled, undefined absent. */
  readonly domainEnabled: boolean | undefined;
  readonly exact: AliasTarget | undefined;
  /** The alias for the address without its extension. */
  readonly base: AliasTarget | undefined;
  readonly catchAll: AliasTarget | undefined;
}

/** Local: named in policy.domain or an enabled row of `domains`. */
export function isLocal(s: RuleSettings, domain: string, domainEnabled: boolean | undefined): boolean {
  return domainEnabled === true || s.configDomains.has(domain);
}

/** The send-allowed rule: attribute `name` (when configured) holding "false" disables sending; absent allows it. */
export function sendingDisabledBy(name: string | null, attrs: Readonly<Record<string, readonly string[]>>): boolean {
  if (!name) return false;
  const v = attrs[name];
  return v !== undefined && v.some((x) => x.trim().toLowerCase() === "false");
}
