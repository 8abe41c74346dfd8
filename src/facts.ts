// The one fact-gathering layer: the store's rows, the cached identity source
// and the list directory, turned into the plain facts the pure rules
// (src/rules/) decide on. A rule names the fact it needs next; this layer
// looks it up and asks again, so facts are read in the rules' order and only
// on the path a request takes. Synchronous while every lookup is answered
// from memory (the store, a cache hit); a Keycloak round trip makes the rest
// a promise. An outage is a value: an identity source that cannot answer is
// an `unavailable` lookup, a failing store read sets `storeError`; only our
// own bugs are exceptions.

import type { Config } from "./config/types.js";
import type { CacheOutcome, CachedLookup, DirectoryCache } from "./directory/cache.js";
import type { ListDirectory } from "./directory/lists.js";
import { StoreError } from "./store/errors.js";
import type { StoreReader } from "./store/types.js";
import { isValidAddress, stripExtension } from "./rules/address.js";
import type { ListLookup, RuleSettings, UserLookup } from "./rules/facts.js";
import type { PolicyRequest } from "./protocol/policy.js";
import { decidePolicy, policyView, type Decision, type PolicyFacts, type PolicyNeed, type PolicyView } from "./rules/policy.js";
import { answerMap, type MapAnswer, type MapFacts, type MapNeed, type MapView } from "./rules/maps.js";
import { then, type Maybe } from "./maybe.js";

export type { RuleSettings } from "./rules/facts.js";

export function ruleSettings(cfg: Config): RuleSettings {
  return {
    failureMode: cfg.policy.failureMode,
    delimiter: cfg.policy.recipientDelimiter,
    sendAllowedAttribute: cfg.policy.sendAllowedAttribute,
    configDomains: new Set(cfg.policy.localDomains),
  };
}

/** An error of the store (SQLite busy or I/O, the database file gone): the database-error answers, not a bug. */
export function isStoreError(err: unknown): boolean {
  return err instanceof StoreError; // the reader throws nothing else for a database failure
}

/** Usernames that could be a Keycloak login; others never reach the IdP. */
function plausibleUsername(username: string): boolean {
  return username !== "" && username.length <= 255 && !/[\s\x00-\x1f]/.test(username);
}

const NO_LIST: ListLookup = Object.freeze({ kind: "none" });
/** More lookups than any rule has facts: a rule that keeps asking is a bug. */
const MAX_STEPS = 32;

/**
 * One request's facts while its rule asks for them: the fields a rule reads
 * (PolicyFacts, MapFacts) start undefined and are set by fetch().
 */
abstract class Ask<V, R extends object, N extends string> {
  protected readonly facts: Facts;
  readonly view: V;
  readonly settings: RuleSettings;
  readonly listsOn: boolean;
  answer: R | null = null;
  storeError: string | undefined = undefined;

  constructor(f: Facts, view: V) {
    this.facts = f;
    this.view = view;
    this.settings = f.settings;
    this.listsOn = f.lists !== null;
  }

  protected abstract rule(): R | N;

  /** Look up `need` and record it; a store read that throws throws here (synchronously). */
  protected abstract lookUp(need: N): Maybe<void>;

  /** Look up `need` and record it; a store error is recorded as storeError. */
  fetch(need: N): Maybe<void> {
    try {
      return this.lookUp(need);
    } catch (err) {
      if (!isStoreError(err)) throw err;
      this.storeError = err instanceof Error ? err.message : String(err);
      return undefined;
    }
  }

  decide(): R | N {
    const r = this.rule();
    if (typeof r === "object") this.answer = r;
    return r;
  }
}

/** Run a rule to its answer, looking up each fact it names. */
function gather<R extends object, N extends string>(ask: Ask<unknown, R, N>): Maybe<R> {
  for (let i = 0; i < MAX_STEPS; i++) {
    const r = ask.decide();
    if (typeof r !== "object") {
      const p = ask.fetch(r);
      if (p instanceof Promise) return p.then(() => gather(ask));
      continue;
    }
    return r;
  }
  throw new Error("a rule asked for more facts than it has");
}

/** Cache outcome summary for the log line: the worst of the lookups made. */
class Trace {
  cache: CacheOutcome | "none" = "none";
  note(c: CachedLookup): UserLookup {
    if (this.cache === "none" || this.cache === "hit") this.cache = c.cache;
    return c.lookup;
  }
}

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

  /** Decide a policy request (no quota check: quota/check.ts). */
  policy(req: PolicyRequest): Maybe<PolicyAsk> {
    const ask = new PolicyAsk(this, policyView(req, this.settings));
    return this.#run(ask);
  }

  /** Answer a socketmap lookup (its view: rules/maps.ts mapView). */
  map(view: MapView): Maybe<MapAsk> {
    return this.#run(new MapAsk(this, view));
  }

  #run<A extends Ask<unknown, object, string>>(ask: A): Maybe<A> {
    const r = this.store.within(() => gather(ask));
    return r instanceof Promise ? r.then(() => ask) : ask;
  }

  /** The list at `addr` (exact, then without its extension); "none" when lists are off. */
  list(addr: string): Maybe<ListLookup> {
    const lists = this.lists;
    if (lists === null) return NO_LIST;
    const ext = stripExtension(addr, this.settings.delimiter);
    const exact = lists.lookup(addr);
    if (!ext) return exact;
    return then(exact, (l) => (l.kind === "none" ? lists.lookup(ext.base) : l));
  }

  isLocalDomain(domain: string): boolean {
    return this.settings.configDomains.has(domain) || this.store.domainEnabled(domain) === true;
  }

  /** A user by primary email; syntactically impossible addresses never reach the IdP. */
  userByEmail(addr: string): Maybe<CachedLookup> {
    return this.cache.byEmail(addr, isValidAddress);
  }

  userByUsername(username: string): Maybe<CachedLookup> {
    return this.cache.byUsername(username, plausibleUsername);
  }
}

const nullable = <T>(v: T | undefined): T | null => (v === undefined ? null : v);

/** A policy request's facts, filled in as the rules ask (rules/policy.ts). */
export class PolicyAsk extends Ask<PolicyView, Decision, PolicyNeed> implements PolicyFacts {
  readonly trace = new Trace();
  senderDomainRow: boolean | null | undefined = undefined;
  app: boolean | undefined = undefined;
  appAllowsSender: boolean | undefined = undefined;
  loginUser: UserLookup | undefined = undefined;
  senderAlias: PolicyFacts["senderAlias"] = undefined;
  senderBaseAlias: PolicyFacts["senderBaseAlias"] = undefined;
  senderDelegates: readonly string[] | undefined = undefined;
  senderBaseDelegates: readonly string[] | undefined = undefined;
  senderList: ListLookup | undefined = undefined;
  recipientRows: PolicyFacts["recipientRows"] = undefined;
  recipientUser: UserLookup | undefined = undefined;
  recipientBaseUser: UserLookup | undefined = undefined;
  recipientList: ListLookup | undefined = undefined;

  protected rule(): Decision | PolicyNeed {
    return decidePolicy(this.view, this);
  }

  protected lookUp(need: PolicyNeed): Maybe<void> {
    const f = this.facts;
    const v = this.view;
    const st = f.store;
    switch (need) {
      case "senderDomainRow":
        this.senderDomainRow = nullable(st.domainEnabled(v.senderDomain!));
        return;
      case "app":
        this.app = st.appEnabled(v.login) === true;
        return;
      case "appAllowsSender":
        this.appAllowsSender = st.appAllowsSender(v.login, v.sender);
        return;
      case "loginUser":
        return then(f.userByUsername(v.loginLower), (c) => void (this.loginUser = this.trace.note(c)));
      case "senderAlias":
        this.senderAlias = nullable(st.alias(v.sender));
        return;
      case "senderBaseAlias":
        this.senderBaseAlias = nullable(st.alias(v.senderBase!));
        return;
      case "senderDelegates":
        this.senderDelegates = st.delegatedLogins(v.sender);
        return;
      case "senderBaseDelegates":
        this.senderBaseDelegates = st.delegatedLogins(v.senderBase!);
        return;
      case "senderList":
        return then(f.list(v.sender), (l) => void (this.senderList = l));
      case "recipientRows":
        this.recipientRows = st.addressRows(v.recipient, v.recipientBase, v.recipientDomain!);
        return;
      case "recipientUser":
        return then(f.userByEmail(v.recipient), (c) => void (this.recipientUser = this.trace.note(c)));
      case "recipientBaseUser":
        return then(f.userByEmail(v.recipientBase!), (c) => void (this.recipientBaseUser = this.trace.note(c)));
      case "recipientList":
        return then(f.list(v.recipient), (l) => void (this.recipientList = l));
    }
  }
}

/** A socketmap lookup's facts, filled in as the maps ask (rules/maps.ts). */
export class MapAsk extends Ask<MapView, MapAnswer, MapNeed> implements MapFacts {
  domainRow: boolean | null | undefined = undefined;
  rows: MapFacts["rows"] = undefined;
  list: ListLookup | undefined = undefined;
  user: UserLookup | undefined = undefined;
  baseUser: UserLookup | undefined = undefined;
  alias: MapFacts["alias"] = undefined;
  baseAlias: MapFacts["baseAlias"] = undefined;
  delegates: readonly string[] | undefined = undefined;
  baseDelegates: readonly string[] | undefined = undefined;
  apps: readonly string[] | undefined = undefined;

  protected rule(): MapAnswer | MapNeed {
    return answerMap(this.view, this);
  }

  protected lookUp(need: MapNeed): Maybe<void> {
    const f = this.facts;
    const v = this.view;
    const st = f.store;
    switch (need) {
      case "domainRow": {
        const d = v.map === "domain" ? v.key : v.parts!.domain;
        this.domainRow = nullable(st.domainEnabled(d));
        return;
      }
      case "rows":
        this.rows = st.addressRows(v.key, v.base, v.parts!.domain);
        return;
      case "list":
        return then(f.list(v.key), (l) => void (this.list = l));
      case "user":
        return then(f.userByEmail(v.key), (c) => void (this.user = c.lookup));
      case "baseUser":
        return then(f.userByEmail(v.base!), (c) => void (this.baseUser = c.lookup));
      case "alias":
        this.alias = nullable(st.alias(v.key));
        return;
      case "baseAlias":
        this.baseAlias = nullable(st.alias(v.base!));
        return;
      case "delegates":
        this.delegates = st.delegatedLogins(v.key);
        return;
      case "baseDelegates":
        this.baseDelegates = st.delegatedLogins(v.base!);
        return;
      case "apps":
        this.apps = st.appsForSender(v.key);
        return;
    }
  }
}
