// One cache in front of the identity source, shared by both servers.
// lru-cache bounds the entry count and expires entries; on top of it:
// negative answers get their own shorter TTL, concurrent misses for a key
// share one source request, and while the source is failing a known answer
// is served stale for at most `staleSeconds` past its TTL. The clock is
// injectable so tests step time instead of sleeping through a TTL.

import { LRUCache } from "lru-cache";
import { NOT_FOUND, type DirectoryUser, type IdentitySource, type Lookup } from "./lookup.js";
import { detach } from "../strings.js";
import type { Maybe } from "../maybe.js";

export interface CacheSettings {
  readonly ttlSeconds: number;
  readonly negativeTtlSeconds: number;
  readonly maxEntries: number;
  readonly staleSeconds: number;
}

export type CacheOutcome = "hit" | "miss" | "stale" | "coalesced";

export interface CachedLookup {
  readonly lookup: Lookup<DirectoryUser>;
  readonly cache: CacheOutcome;
}

interface Entry {
  /** What a fresh hit returns (shared: a hit allocates nothing). Found or notfound, never unavailable. */
  readonly hit: CachedLookup;
  readonly freshUntil: number;
}

/** The answer for a key its screen refused. */
const NOT_ASKED: CachedLookup = Object.freeze({ lookup: NOT_FOUND, cache: "hit" as const });

/** Username keys carry a prefix no address has; addresses are their own keys. */
const USERNAME = "\u0001";

export interface CacheEvents {
  onLookup?(outcome: CacheOutcome): void;
}

/** Milliseconds; only differences are used. */
export type Clock = () => number;

export interface CacheOptions extends CacheEvents {
  /**
   * One clock for freshness and the LRU's expiry (tests pass a manual one).
   * Default: Date.now for freshness and lru-cache's own performance.now.
   */
  readonly now?: Clock | undefined;
}

export class DirectoryCache {
  #source: IdentitySource;
  #settings: CacheSettings;
  readonly #lru: LRUCache<string, Entry>;
  readonly #inflight = new Map<string, Promise<CachedLookup>>();
  readonly #events: CacheEvents;
  readonly #now: Clock;

  constructor(source: IdentitySource, settings: CacheSettings, options: CacheOptions = {}) {
    this.#source = source;
    this.#settings = settings;
    this.#events = options;
    this.#now = options.now ?? Date.now;
    // An injected clock also drives the LRU, read on every check (lru-cache
    // otherwise reuses a reading for 1 ms through a timer of its own).
    this.#lru = options.now
      ? new LRUCache<string, Entry>({ max: settings.maxEntries, perf: { now: options.now }, ttlResolution: 0 })
      : new LRUCache<string, Entry>({ max: settings.maxEntries });
  }

  get size(): number {
    return this.#lru.size;
  }

  get source(): IdentitySource {
    return this.#source;
  }

  /** New TTLs apply to entries stored from now on (SIGHUP). */
  reconfigure(settings: CacheSettings, source?: IdentitySource): void {
    this.#settings = settings;
    if (source && source !== this.#source) {
      this.#source = source;
      this.clear();
    }
  }

  /** Lookups already in flight when the cache is cleared do not refill it. */
  #generation = 0;

  clear(): void {
    this.#generation++;
    this.#lru.clear();
  }

  /**
   * `admit` screens keys before they reach the source (a key that fails it
   * is "not found", never asked); only admitted keys are ever cached, so a
   * hit needs no screening.
   */
  byUsername(username: string, admit?: (username: string) => boolean): Maybe<CachedLookup> {
    return this.#get(USERNAME + username, username, "userByUsername", admit);
  }

  /** Addresses are their own keys; one starting like a username key is refused before the LRU is asked. */
  byEmail(email: string, admit?: (email: string) => boolean): Maybe<CachedLookup> {
    if (email.startsWith(USERNAME)) return NOT_ASKED;
    return this.#get(email, email, "userByEmail", admit);
  }

  /** Synchronous on a fresh hit (no promise, no allocation beyond the result). */
  #get(key: string, arg: string, op: "userByUsername" | "userByEmail", admit?: (arg: string) => boolean): Maybe<CachedLookup> {
    const now = this.#now();
    const entry = this.#lru.get(key);
    if (entry && now < entry.freshUntil) {
      this.#events.onLookup?.("hit");
      return entry.hit;
    }
    if (!entry && admit && !admit(arg)) return NOT_ASKED;
    const pending = this.#inflight.get(key);
    if (pending) {
      this.#events.onLookup?.("coalesced");
      return pending.then((r) => ({ lookup: r.lookup, cache: "coalesced" as const }));
    }
    const gen = this.#generation;
    const p = this.#source[op](arg).then(
      (lookup) => this.#settle(key, lookup, gen),
      (err: unknown) => this.#settle(key, { kind: "unavailable", reason: err instanceof Error ? err.message : String(err) }, gen),
    );
    this.#inflight.set(key, p);
    return p;
  }

  #settle(key: string, lookup: Lookup<DirectoryUser>, gen: number): CachedLookup {
    if (this.#inflight.get(key) !== undefined) this.#inflight.delete(key);
    if (gen !== this.#generation) {
      this.#events.onLookup?.("miss");
      return { lookup, cache: "miss" };
    }
    const s = this.#settings;
    const now = this.#now();
    if (lookup.kind === "unavailable") {
      const old = this.#lru.get(key); // undefined once past TTL + stale window
      if (old) {
        this.#events.onLookup?.("stale");
        return { lookup: old.hit.lookup, cache: "stale" };
      }
      this.#events.onLookup?.("miss");
      return { lookup, cache: "miss" };
    }
    const ttl = (lookup.kind === "found" ? s.ttlSeconds : s.negativeTtlSeconds) * 1000;
    if (ttl > 0) {
      // The LRU keeps the entry past its freshness for the stale window only.
      // The key outlives the request it came from: a detached copy, or the
      // user's own email string when that is the key (one string, not two).
      const k = lookup.kind === "found" && lookup.value.email === key ? lookup.value.email : detach(key);
      const hit: CachedLookup = Object.freeze({ lookup, cache: "hit" as const });
      this.#lru.set(k, { hit, freshUntil: now + ttl }, { ttl: ttl + s.staleSeconds * 1000 });
    } else this.#lru.delete(key);
    this.#events.onLookup?.("miss");
    return { lookup, cache: "miss" };
  }
}
