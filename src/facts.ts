// The facts the rules need, from the SQLite store and the cached identity
// source. SQLite errors propagate as exceptions (the handlers turn them into
// "temporary internal error"); identity-source outages come back as
// `unavailable` lookups.

import type { Config, FailureMode } from "./config/types.js";
import type { CachedLookup, DirectoryCache } from "./directory/cache.js";
import type { AliasTarget, StoreReader } from "./store/types.js";
import { isValidAddress, stripExtension, type Extension } from "./rules/address.js";
import type { ListDirectory, ListLookup } from "./directory/lists.js";

export interface RuleSettings {
  readonly failureMode: FailureMode;
  readonly delimiter: string;
  readonly sendAllowedAttribute: string | null;
  readonly configDomains: ReadonlySet<string>;
}

export function ruleSettings(cfg: Config): RuleSettings {
  return {
    failureMode: cfg.policy.failureMode,
    delimiter: cfg.policy.recipientDelimiter,
    sendAllowedAttribute: cfg.policy.sendAllowedAttribute,
    configDomains: new Set(cfg.policy.localDomains),
  };
}

/** Usernames that could be a Keycloak login; others never reach the IdP. */
function plausibleUsername(username: string): boolean {
  return username !== "" && username.length <= 255 && !/[\s\x00-\x1f]/.test(username);
}

const NONE: readonly string[] = Object.freeze([]);
const NO_LIST: ListLookup = Object.freeze({ kind: "none" });

export class Facts {
  readonly store: StoreReader;
  readonly cache: DirectoryCache;
  settings: RuleSettings;
  /** Distribution lists from Keycloak groups, or null when lists.parent_group is unset. */
  lists: ListDirectory | null;

  constructor(store: StoreReader, cache: DirectoryCache, settings: RuleSettings, lists: ListDirectory | null = null) {
    this.store = store;
    this.cache = cache;
    this.settings = settings;
    this.lists = lists;
  }

  /** The list at `addr` (exact, then without its extension); "none" when lists are off. */
  list(addr: string): ListLookup | Promise<ListLookup> {
    if (this.lists === null) return NO_LIST;
    const ext = this.strip(addr);
    const exact = this.lists.lookup(addr);
    if (!ext) return exact;
    const base = (l: ListLookup): ListLookup | Promise<ListLookup> => (l.kind === "none" ? this.lists!.lookup(ext.base) : l);
    return exact instanceof Promise ? exact.then(base) : base(exact);
  }

  isLocalDomain(domain: string): boolean {
    return this.settings.configDomains.has(domain) || this.store.domainEnabled(domain) === true;
  }

  /** isLocalDomain, given the domain row already read. */
  isLocal(domain: string, domainEnabled: boolean | undefined): boolean {
    return domainEnabled === true || this.settings.configDomains.has(domain);
  }

  strip(addr: string): Extension | null {
    return stripExtension(addr, this.settings.delimiter);
  }

  /** An alias row, or undefined. */
  alias(addr: string): AliasTarget | undefined {
    return this.store.alias(addr);
  }

  /** A user by primary email; syntactically impossible addresses never reach the IdP. */
  userByEmail(addr: string): CachedLookup | Promise<CachedLookup> {
    return this.cache.byEmail(addr, isValidAddress);
  }

  userByUsername(username: string): CachedLookup | Promise<CachedLookup> {
    return this.cache.byUsername(username, plausibleUsername);
  }

  /**
   * Logins delegated to send as `addr` (mailcloakctl senders allow). Only in
   * a local domain: a delegation outlives its domain's removal, not its use.
   */
  delegatedLogins(addr: string): readonly string[] {
    const at = addr.lastIndexOf("@");
    if (at <= 0 || !this.isLocalDomain(addr.slice(at + 1))) return NONE;
    return this.store.delegatedLogins(addr);
  }

  /** Is sending disabled for this user by the configured attribute? */
  sendingDisabled(attrs: Readonly<Record<string, readonly string[]>>): boolean {
    return sendingDisabledBy(this.settings.sendAllowedAttribute, attrs);
  }
}

/** The send-allowed rule: attribute `name` (when configured) holding "false" disables sending; absent allows it. */
export function sendingDisabledBy(name: string | null, attrs: Readonly<Record<string, readonly string[]>>): boolean {
  if (!name) return false;
  const v = attrs[name];
  return v !== undefined && v.some((x) => x.trim().toLowerCase() === "false");
}
