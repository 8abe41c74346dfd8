// DirectoryCache: synchronous hits, separate positive/negative TTLs, one
// source call per key under concurrency, bounded stale serving while the
// source fails, and the entry bound.
//
// TTLs are whole seconds; the timing tests give the cache a manual clock and
// step it past a TTL instead of sleeping.

import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, test } from "node:test";
import { DirectoryCache } from "../src/directory/cache.js";
import type { CacheOutcome, CacheSettings, CachedLookup } from "../src/directory/cache.js";
import { NOT_FOUND, found, unavailable } from "../src/directory/lookup.js";
import type { DirectoryUser, IdentitySource, Lookup } from "../src/directory/lookup.js";
import { StaticSource } from "../src/directory/static.js";
import { manualClock } from "./helpers/fixtures.js";

const alice: DirectoryUser = { username: "alice", email: "alice@d1.test", enabled: true, attributes: {} };
const bob: DirectoryUser = { username: "bob", email: "bob@d1.test", enabled: true, attributes: { mailSendAllowed: ["false"] } };

const SETTINGS: CacheSettings = { ttlSeconds: 60, negativeTtlSeconds: 60, maxEntries: 1000, staleSeconds: 0 };

/**
 * A stand-in for an external directory whose answers, latency and failures
 * the test controls. It records every call.
 */
class ControlledSource implements IdentitySource {
  readonly name = "controlled";
  readonly users = new Map<string, DirectoryUser>();
  readonly calls: string[] = [];
  /** When set, every answer is `unavailable` with this reason. */
  failing: string | null = null;
  /** When set, every answer is a rejected promise (a contract breach the cache must survive). */
  throwing: Error | null = null;
  /** When set, answers wait until `release()`. */
  #gate: { promise: Promise<void>; resolve: () => void } | null = null;

  constructor(users: readonly DirectoryUser[] = []) {
    for (const u of users) this.users.set(u.username, u);
  }

  hold(): void {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.#gate = { promise, resolve };
  }

  release(): void {
    this.#gate?.resolve();
    this.#gate = null;
  }

  async #answer(kind: string, key: string, pick: () => DirectoryUser | undefined): Promise<Lookup<DirectoryUser>> {
    this.calls.push(`${kind}:${key}`);
    if (this.#gate) await this.#gate.promise;
    if (this.throwing) throw this.throwing;
    if (this.failing !== null) return unavailable(this.failing);
    const u = pick();
    return u ? found(u) : NOT_FOUND;
  }

  userByUsername(username: string): Promise<Lookup<DirectoryUser>> {
    return this.#answer("u", username, () => this.users.get(username));
  }

  userByEmail(email: string): Promise<Lookup<DirectoryUser>> {
    return this.#answer("e", email, () => [...this.users.values()].find((u) => u.email === email));
  }

  async close(): Promise<void> {}
}

function isThenable(v: unknown): boolean {
  return typeof v === "object" && v !== null && typeof (v as { then?: unknown }).then === "function";
}

describe("DirectoryCache over StaticSource", () => {
  test("a miss returns a promise; the next lookup is a synchronous hit with the same answer", async () => {
    const cache = new DirectoryCache(new StaticSource([alice, bob]), SETTINGS);
    const first = cache.byUsername("alice");
    assert.ok(isThenable(first), "first lookup goes to the source");
    const a = await first;
    assert.deepEqual(a, { lookup: { kind: "found", value: alice }, cache: "miss" });
    const second = cache.byUsername("alice");
    assert.ok(!isThenable(second), "a fresh hit is not a promise");
    assert.deepEqual(second, { lookup: { kind: "found", value: alice }, cache: "hit" });
  });

  test("answers by username and by email", async () => {
    const cache = new DirectoryCache(new StaticSource([alice, bob]), SETTINGS);
    const cases: Array<{ how: "byUsername" | "byEmail"; key: string; want: Lookup<DirectoryUser> }> = [
      { how: "byUsername", key: "alice", want: found(alice) },
      { how: "byUsername", key: "bob", want: found(bob) },
      { how: "byUsername", key: "carol", want: NOT_FOUND },
      { how: "byEmail", key: "bob@d1.test", want: found(bob) },
      { how: "byEmail", key: "carol@d1.test", want: NOT_FOUND },
      // A username and an email are different keys, even with the same text.
      { how: "byUsername", key: "alice@d1.test", want: NOT_FOUND },
      { how: "byEmail", key: "alice", want: NOT_FOUND },
    ];
    for (const round of ["miss", "hit"] as const) {
      for (const { how, key, want } of cases) {
        const got = await cache[how](key);
        assert.deepEqual(got, { lookup: want, cache: round }, `${how}(${key}) round ${round}`);
      }
    }
  });

  test("an email lookup cached first does not answer the username lookup of the same text", async () => {
    const odd: DirectoryUser = { username: "x@d", email: "y@d", enabled: true, attributes: {} };
    const cache = new DirectoryCache(new StaticSource([odd]), SETTINGS);
    assert.equal((await cache.byEmail("x@d")).lookup.kind, "notfound");
    assert.equal((await cache.byUsername("x@d")).lookup.kind, "found");
    assert.equal((await cache.byEmail("y@d")).lookup.kind, "found");
  });

  test("a cached username is never the answer to an email lookup, whatever the email text", async () => {
    const u: DirectoryUser = { username: "alice@d1.test", email: "other@d1.test", enabled: true, attributes: {} };
    const cache = new DirectoryCache(new StaticSource([u]), SETTINGS);
    assert.equal((await cache.byUsername("alice@d1.test")).lookup.kind, "found");
    // A key that starts like the internal username key of the same text.
    assert.deepEqual(await cache.byEmail("\u0001alice@d1.test"), { lookup: NOT_FOUND, cache: "hit" });
    assert.equal((await cache.byEmail("alice@d1.test")).lookup.kind, "notfound");
  });

  test("clear() empties the cache", async () => {
    const cache = new DirectoryCache(new StaticSource([alice, bob]), SETTINGS);
    await cache.byUsername("alice");
    await cache.byEmail("bob@d1.test");
    await cache.byUsername("nobody");
    assert.equal(cache.size, 3);
    cache.clear();
    assert.equal(cache.size, 0);
    const again = cache.byUsername("alice");
    assert.ok(isThenable(again), "after clear() the next lookup is a miss");
    assert.equal((await again).cache, "miss");
  });
});

// The timing tests each own their cache and source, so they run side by side.
describe("DirectoryCache: TTLs", { concurrency: true }, () => {
  test("negativeTtlSeconds 0: notfound is never cached, found is", async () => {
    const src = new ControlledSource([alice]);
    const cache = new DirectoryCache(src, { ...SETTINGS, ttlSeconds: 1, negativeTtlSeconds: 0 });
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await cache.byUsername("alice"), { lookup: found(alice), cache: i === 0 ? "miss" : "hit" });
      assert.deepEqual(await cache.byUsername("ghost"), { lookup: NOT_FOUND, cache: "miss" });
    }
    assert.deepEqual(src.calls, ["u:alice", "u:ghost", "u:ghost", "u:ghost"]);
    assert.equal(cache.size, 1);
  });

  test("a notfound entry expires after the negative TTL while a found entry is still fresh", async () => {
    const src = new ControlledSource([alice]);
    const clock = manualClock();
    const cache = new DirectoryCache(src, { ...SETTINGS, ttlSeconds: 5, negativeTtlSeconds: 1 }, { now: clock.now });
    await cache.byUsername("alice");
    await cache.byUsername("ghost");
    assert.equal((cache.byUsername("ghost") as CachedLookup).cache, "hit", "notfound is cached within its TTL");
    clock.advance(999);
    assert.equal((cache.byUsername("ghost") as CachedLookup).cache, "hit", "still cached 1 ms before the negative TTL ends");
    clock.advance(101);
    const hit = cache.byUsername("alice");
    assert.ok(!isThenable(hit));
    assert.deepEqual(hit, { lookup: found(alice), cache: "hit" });
    const refetch = cache.byUsername("ghost");
    assert.ok(isThenable(refetch), "the negative entry has expired");
    assert.deepEqual(await refetch, { lookup: NOT_FOUND, cache: "miss" });
    assert.deepEqual(src.calls, ["u:alice", "u:ghost", "u:ghost"]);
  });

  test("a user created after a notfound is seen once the negative TTL has passed", async () => {
    const src = new ControlledSource();
    const clock = manualClock();
    const cache = new DirectoryCache(src, { ...SETTINGS, ttlSeconds: 60, negativeTtlSeconds: 1 }, { now: clock.now });
    assert.equal((await cache.byUsername("alice")).lookup.kind, "notfound");
    src.users.set("alice", alice);
    assert.equal((await cache.byUsername("alice")).lookup.kind, "notfound", "still the cached answer");
    clock.advance(1100);
    assert.deepEqual(await cache.byUsername("alice"), { lookup: found(alice), cache: "miss" });
  });
});

describe("DirectoryCache: concurrency", () => {
  test("100 concurrent misses for one key make exactly one source call and share the answer", async () => {
    const src = new ControlledSource([alice]);
    const outcomes: CacheOutcome[] = [];
    const cache = new DirectoryCache(src, SETTINGS, { onLookup: (o) => outcomes.push(o) });
    src.hold();
    const pending = Array.from({ length: 100 }, () => cache.byUsername("alice"));
    assert.ok(pending.every(isThenable));
    await sleep(5);
    assert.equal(src.calls.length, 1, "one source call while the others wait");
    src.release();
    const results = await Promise.all(pending);
    assert.equal(src.calls.length, 1);
    for (const r of results) assert.deepEqual(r.lookup, found(alice));
    const first = results[0]!.lookup;
    assert.ok(results.every((r) => r.lookup === first), "all callers get the same answer object");
    assert.deepEqual(results.map((r) => r.cache).sort(), ["miss", ...Array<string>(99).fill("coalesced")].sort());
    assert.equal(outcomes.filter((o) => o === "coalesced").length, 99);
    assert.equal(outcomes.filter((o) => o === "miss").length, 1);
    // And afterwards it is a plain hit.
    assert.deepEqual(cache.byUsername("alice"), { lookup: found(alice), cache: "hit" });
  });

  test("concurrent misses for different keys are not merged", async () => {
    const src = new ControlledSource([alice, bob]);
    const cache = new DirectoryCache(src, SETTINGS);
    src.hold();
    const p = [cache.byUsername("alice"), cache.byUsername("bob"), cache.byEmail("alice@d1.test"), cache.byUsername("alice")];
    await sleep(5);
    src.release();
    const r = await Promise.all(p);
    assert.deepEqual(src.calls.sort(), ["e:alice@d1.test", "u:alice", "u:bob"]);
    assert.deepEqual(r.map((x) => x.lookup), [found(alice), found(bob), found(alice), found(alice)]);
  });

  test("a coalesced failure reaches every waiter and is not cached", async () => {
    const src = new ControlledSource([alice]);
    const cache = new DirectoryCache(src, SETTINGS);
    src.failing = "connection refused";
    src.hold();
    const p = Array.from({ length: 10 }, () => cache.byUsername("alice"));
    await sleep(5);
    src.release();
    const r = await Promise.all(p);
    assert.equal(src.calls.length, 1);
    for (const x of r) assert.deepEqual(x.lookup, unavailable("connection refused"));
    assert.equal(cache.size, 0);
  });
});

describe("DirectoryCache: failures", { concurrency: true }, () => {
  test("unavailable answers are never cached", async () => {
    const src = new ControlledSource([alice]);
    const cache = new DirectoryCache(src, SETTINGS);
    src.failing = "timeout after 2000 ms";
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await cache.byUsername("alice"), { lookup: unavailable("timeout after 2000 ms"), cache: "miss" });
    }
    assert.equal(src.calls.length, 3, "every lookup asks the source again");
    assert.equal(cache.size, 0);
    src.failing = null;
    assert.deepEqual(await cache.byUsername("alice"), { lookup: found(alice), cache: "miss" });
    assert.equal(cache.size, 1);
  });

  test("a source that rejects becomes unavailable with the error message", async () => {
    const src = new ControlledSource([alice]);
    src.throwing = new Error("socket hang up");
    const cache = new DirectoryCache(src, SETTINGS);
    assert.deepEqual(await cache.byUsername("alice"), { lookup: unavailable("socket hang up"), cache: "miss" });
    assert.equal(cache.size, 0);
  });

  test("while the source fails, a known answer is served stale within staleSeconds, then unavailable", async () => {
    const src = new ControlledSource([alice]);
    const outcomes: CacheOutcome[] = [];
    const clock = manualClock();
    const cache = new DirectoryCache(src, { ...SETTINGS, ttlSeconds: 1, negativeTtlSeconds: 1, staleSeconds: 1 },
      { onLookup: (o) => outcomes.push(o), now: clock.now });
    assert.equal((await cache.byUsername("alice")).cache, "miss");
    assert.equal((await cache.byUsername("ghost")).cache, "miss");
    src.failing = "keycloak down";
    // Fresh: the failure is not even noticed.
    assert.deepEqual(cache.byUsername("alice"), { lookup: found(alice), cache: "hit" });
    clock.advance(1150); // past the TTL, inside the stale window
    assert.deepEqual(await cache.byUsername("alice"), { lookup: found(alice), cache: "stale" });
    assert.deepEqual(await cache.byUsername("ghost"), { lookup: NOT_FOUND, cache: "stale" });
    assert.deepEqual(await cache.byUsername("carol"), { lookup: unavailable("keycloak down"), cache: "miss" }, "nothing known: unavailable");
    assert.equal(src.calls.filter((c) => c === "u:alice").length, 2, "a stale answer still asks the source first");
    clock.advance(1000); // past TTL + stale window
    assert.deepEqual(await cache.byUsername("alice"), { lookup: unavailable("keycloak down"), cache: "miss" });
    assert.deepEqual(await cache.byUsername("ghost"), { lookup: unavailable("keycloak down"), cache: "miss" });
    assert.ok(outcomes.includes("stale"));
  });

  test("with staleSeconds 0 an expired entry is not served when the source fails", async () => {
    const src = new ControlledSource([alice]);
    const clock = manualClock();
    const cache = new DirectoryCache(src, { ...SETTINGS, ttlSeconds: 1, staleSeconds: 0 }, { now: clock.now });
    await cache.byUsername("alice");
    src.failing = "down";
    clock.advance(1100);
    assert.deepEqual(await cache.byUsername("alice"), { lookup: unavailable("down"), cache: "miss" });
  });

  test("a healthy source past the TTL refreshes the entry (no stale answer)", async () => {
    const src = new ControlledSource([alice]);
    const clock = manualClock();
    const cache = new DirectoryCache(src, { ...SETTINGS, ttlSeconds: 1, staleSeconds: 60 }, { now: clock.now });
    await cache.byUsername("alice");
    src.users.set("alice", { ...alice, enabled: false });
    clock.advance(1100);
    const r = await cache.byUsername("alice");
    assert.equal(r.cache, "miss");
    assert.deepEqual(r.lookup, found({ ...alice, enabled: false }));
    assert.deepEqual(cache.byUsername("alice"), { lookup: found({ ...alice, enabled: false }), cache: "hit" });
  });
});

describe("DirectoryCache: bounds", () => {
  test("size never exceeds maxEntries", async () => {
    const users = Array.from({ length: 60 }, (_, i): DirectoryUser => ({ username: `u${i}`, email: `u${i}@d`, enabled: true, attributes: {} }));
    const src = new ControlledSource(users);
    const cache = new DirectoryCache(src, { ...SETTINGS, maxEntries: 10 });
    for (let i = 0; i < 60; i++) {
      await cache.byUsername(`u${i}`);
      await cache.byEmail(`nobody${i}@d`);
      assert.ok(cache.size <= 10, `size ${cache.size} after ${i + 1} users`);
    }
    assert.equal(cache.size, 10);
    // The most recent entries are the ones kept.
    assert.deepEqual(cache.byEmail("nobody59@d"), { lookup: NOT_FOUND, cache: "hit" });
    assert.deepEqual(cache.byUsername("u59"), { lookup: found(users[59]!), cache: "hit" });
    assert.ok(isThenable(cache.byUsername("u0")), "the oldest entry was evicted");
  });
});
