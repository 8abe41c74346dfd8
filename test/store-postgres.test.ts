// The PostgreSQL store against a real PostgreSQL 15 (test/helpers/postgres.ts):
// db-init.pgsql's keys and checks, the same admin results and reader answers
// as the SQLite store for the same commands, changes committed by another
// client seen by the reader within the stated bound (NOTIFY, and the version
// check when a notification never comes), and outages: reads fail with
// StoreError "unavailable" (never an old answer), one line each way, and
// recover by themselves.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import type { PostgresSettings } from "../src/config/store.js";
import { STORE_DEFAULTS } from "../src/config/store.js";
import { isStoreError } from "../src/store/errors.js";
import { PostgresAdminStore } from "../src/store/postgres-admin.js";
import { PostgresStore } from "../src/store/postgres-reader.js";
import { initStore, openStore } from "../src/store/open.js";
import { senderAddress } from "../src/store/validate.js";
import type { AdminStore, StoreReader } from "../src/store/types.js";
import { PostgresServer, postgresUnavailable } from "./helpers/postgres.js";

const skip = postgresUnavailable();
if (skip !== null && process.env.CI === "true") throw new Error(`${skip}; CI must install it (see .ci/run)`);

let server: PostgresServer;
const root = mkdtempSync(join(tmpdir(), "mailcloak-pgstore-"));
let dbs = 0;

/** Settings for a fresh database of its own. */
async function freshDb(over: Partial<PostgresSettings> = {}): Promise<PostgresSettings> {
  const name = await server.createDatabase(`t${++dbs}`);
  return {
    url: server.url(name), password: server.password, poolSize: 2, queryTimeoutMs: 3000, connectTimeoutMs: 2000,
    checkIntervalMs: STORE_DEFAULTS.checkIntervalMs, maxStaleMs: STORE_DEFAULTS.maxStaleMs, ...over,
  };
}

async function initDb(over: Partial<PostgresSettings> = {}): Promise<{ settings: PostgresSettings; admin: PostgresAdminStore }> {
  const settings = await freshDb(over);
  const { store: admin } = await PostgresAdminStore.init(settings);
  return { settings, admin };
}

/** A plain client, standing for "another host" (or psql). */
async function other(settings: PostgresSettings): Promise<pg.Client> {
  const u = new URL(settings.url);
  u.password = encodeURIComponent(settings.password);
  const c = new pg.Client({ connectionString: u.toString() });
  c.on("error", () => undefined);
  await c.connect();
  return c;
}

/** A result without its updated_at fields (the two stores write them a moment apart). */
function stripTimes(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripTimes);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).filter(([k]) => k !== "updated_at").map(([k, x]) => [k, stripTimes(x)]));
  }
  return v;
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<number> {
  const t0 = performance.now();
  while (!check()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
  return performance.now() - t0;
}

before(async () => {
  if (skip === null) server = await PostgresServer.start();
});
after(async () => {
  await server?.dispose();
  rmSync(root, { recursive: true, force: true });
});

describe("PostgreSQL store", { skip: skip ?? false }, () => {
  test("db-init.pgsql keeps the SQLite schema's keys, checks and cascades, and init runs twice", async () => {
    const { settings, admin } = await initDb();
    const again = await PostgresAdminStore.init(settings);
    assert.equal(again.created, false, "second init finds the tables");
    await again.store.close();
    const c = await other(settings);
    try {
      await c.query("INSERT INTO domains(domain_name) VALUES ('d1.test')");
      await assert.rejects(c.query("INSERT INTO domains(domain_name, enabled) VALUES ('d2.test', 2)"), /check constraint/);
      await assert.rejects(c.query("INSERT INTO aliases(alias_email, target_user, alias_domain_name) VALUES ('x@d2.test', 'a', 'd1.test')"), /aliases_domain_matches/);
      await assert.rejects(c.query("INSERT INTO aliases(alias_email, target_user, alias_domain_name) VALUES ('nodomain', 'a', 'd1.test')"), /aliases_alias_email_has_at|aliases_domain_matches/);
      await assert.rejects(c.query("INSERT INTO aliases(alias_email, target_user, alias_domain_name) VALUES ('x@d9.test', 'a', 'd9.test')"), /foreign key/);
      await c.query("INSERT INTO aliases(alias_email, target_user, alias_domain_name) VALUES ('x@d1.test', 'a', 'd1.test')");
      await c.query("INSERT INTO apps(app_id, secret_hash) VALUES ('app', 'h')");
      await c.query("INSERT INTO app_from(app_id, from_addr) VALUES ('app', 'x@d1.test')");
      await c.query("INSERT INTO app_owners(app_id, username) VALUES ('app', 'alice')");
      await assert.rejects(c.query("INSERT INTO quota_limits(login, per_hour) VALUES ('a', -1)"), /check constraint/);
      await c.query("UPDATE domains SET updated_at = 1 WHERE domain_name = 'd1.test'");
      await c.query("UPDATE domains SET enabled = 0 WHERE domain_name = 'd1.test'");
      const t = await c.query<{ updated_at: string }>("SELECT updated_at FROM domains");
      assert.ok(Number(t.rows[0]!.updated_at) > 1_000_000_000, "an UPDATE that does not set updated_at sets it to now");
      await c.query("DELETE FROM domains");
      await c.query("DELETE FROM apps");
      for (const table of ["aliases", "app_from", "app_owners"]) {
        assert.equal((await c.query(`SELECT 1 FROM ${table}`)).rowCount, 0, `${table} rows cascade away`);
      }
      const v = await c.query<{ version: string }>("SELECT version FROM mailcloak_version");
      assert.ok(Number(v.rows[0]!.version) >= 10, "every statement bumped the version");
    } finally {
      await c.end();
      await admin.close();
    }
  });

  test("admin writes and reader answers are the same as the SQLite store's for the same commands", async () => {
    const settings = await freshDb();
    const opened = [
      await initStore(settings.url, { busyTimeoutMs: 1000, postgres: settings }),
      await initStore(join(root, "same.db"), { busyTimeoutMs: 1000 }),
    ];
    const [pgAdmin, sqAdmin] = opened.map((r) => r.store) as [AdminStore, AdminStore];
    assert.equal(pgAdmin.location, settings.url);
    /** Run one command on both; both must give the same result, or refuse with the same kind and message. */
    const both = async (call: (a: AdminStore) => Promise<unknown>): Promise<void> => {
      const [a, b] = await Promise.all([pgAdmin, sqAdmin].map((st) => call(st).then((v) => stripTimes(v), (err: unknown) => err)));
      if (a instanceof Error || b instanceof Error) {
        assert.ok(isStoreError(a) && isStoreError(b), `both refuse: ${String(a)} / ${String(b)}`);
        assert.equal(a.kind, b.kind);
        assert.equal(a.message, b.message);
        return;
      }
      assert.deepEqual(a, b);
    };
    await both((a) => a.addDomain("D1.test"));
    await both((a) => a.addDomain("d2.test"));
    await both((a) => a.addDomain("d1.test"));
    await both((a) => a.addDomain("not a domain"));
    for (const [al, u] of [["sales@d1.test", "Alice"], ["off@d1.test", "alice"], ["x@d2.test", "bob"], ["@d1.test", "carol"], ["z@d9.test", "bob"], ["sales@d1.test", "bob"], ["bad", "bob"]] as const) {
      await both((a) => a.addAlias(al, u));
    }
    await both((a) => a.setAliasEnabled("off@d1.test", false));
    await both((a) => a.setAliasEnabled("nope@d1.test", false));
    await both((a) => a.setDomainEnabled("d2.test", false));
    await both((a) => a.setDomainEnabled("d9.test", false));
    await both((a) => a.upsertApp("app1", "{ARGON2ID}$h1"));
    await both((a) => a.upsertApp("app1", "{ARGON2ID}$h1b"));
    await both((a) => a.upsertApp("app2", "{ARGON2ID}$h2"));
    await both((a) => a.upsertApp("bad id", "{ARGON2ID}$h2"));
    await both((a) => a.allowAppSender("app1", "A@d1.test"));
    await both((a) => a.allowAppSender("app1", "b@d1.test"));
    await both((a) => a.allowAppSender("app2", "a@d1.test"));
    await both((a) => a.allowAppSender("app9", "a@d1.test"));
    await both((a) => a.disallowAppSender("app1", "b@d1.test"));
    await both((a) => a.disallowAppSender("app1", "b@d1.test"));
    await both((a) => a.setAppEnabled("app2", false));
    await both((a) => a.createOwnedApp("mine", "{ARGON2ID}$m", "alice"));
    await both((a) => a.createOwnedApp("mine", "{ARGON2ID}$m", "alice"));
    await both((a) => a.appOwner("mine"));
    await both((a) => a.appOwner("app1"));
    await both((a) => a.listOwnedApps("alice"));
    await both((a) => a.setQuotaLimits("Alice", { per_hour: 5 }));
    await both((a) => a.setQuotaLimits("alice", { per_day: 50 }));
    await both((a) => a.setQuotaLimits("bob", { per_day: 7 }));
    await both((a) => a.setQuotaLimits("bob", { per_day: null }));
    await both((a) => a.deleteQuotaLimits("nobody"));
    await both((a) => a.quotaLimitsOf("alice"));
    await both((a) => a.allowDelegation(senderAddress("Team@d1.test"), "bob"));
    await both((a) => a.allowDelegation("team@d1.test", "bob"));
    await both((a) => a.allowDelegation("team@d1.test", "alice"));
    await both((a) => a.denyDelegation("team@d1.test", "carol"));
    for (const list of [(a: AdminStore) => a.listDomains(), (a: AdminStore) => a.listAliases(), (a: AdminStore) => a.listAliases("alice"),
      (a: AdminStore) => a.listApps(), (a: AdminStore) => a.listQuotaLimits(), (a: AdminStore) => a.listDelegations(), (a: AdminStore) => a.listDelegations("bob")]) {
      await both(list);
    }

    const pgReader = await openStore(settings.url, { busyTimeoutMs: 1000, postgres: settings });
    const sqReader = await openStore(join(root, "same.db"), { busyTimeoutMs: 1000 });
    try {
      const ask = (r: StoreReader): unknown[] => [
        r.domainEnabled("d1.test"), r.domainEnabled("d2.test"), r.domainEnabled("d3.test"),
        r.alias("sales@d1.test"), r.alias("off@d1.test"), r.alias("x@d2.test"), r.alias("none@d1.test"),
        r.addressRows("sales+tag@d1.test", "sales@d1.test", "d1.test"), r.addressRows("who@d1.test", null, "d1.test"),
        r.addressRows("x@d2.test", null, "d2.test"), r.addressRows("q@d3.test", null, "d3.test"),
        r.aliasOwnedBy("sales@d1.test", "alice"), r.aliasOwnedBy("off@d1.test", "alice"), r.aliasOwnedBy("sales@d1.test", "bob"),
        r.appEnabled("app1"), r.appEnabled("app2"), r.appEnabled("nope"),
        r.appAllowsSender("app1", "a@d1.test"), r.appAllowsSender("app1", "b@d1.test"), r.appAllowsSender("app2", "a@d1.test"),
        r.appsForSender("a@d1.test"), r.appsForSender("b@d1.test"),
        r.quotaOverride("alice"), r.quotaOverride("bob"), r.delegatedLogins("team@d1.test"), r.delegatedLogins("x@d1.test"),
      ];
      const want = sqReader.within(() => ask(sqReader));
      assert.deepEqual(pgReader.within(() => ask(pgReader)), want);
      await both((a) => a.deleteDomain("d1.test"));
      await both((a) => a.deleteApp("app1"));
      await until("the reader to see the deletes", () => pgReader.domainEnabled("d1.test") === undefined && pgReader.appEnabled("app1") === undefined);
      assert.notDeepEqual(sqReader.within(() => ask(sqReader)), want, "the deletes changed answers");
      assert.deepEqual(pgReader.within(() => ask(pgReader)), sqReader.within(() => ask(sqReader)));
    } finally {
      pgReader.close();
      sqReader.close();
      await pgAdmin.close();
      await sqAdmin.close();
    }
  });

  test("a change committed by another client is seen by the reader within 1 s (NOTIFY)", async () => {
    const { settings, admin } = await initDb();
    await admin.addDomain("d1.test");
    // A long check interval: only the notification can make the change visible this fast.
    const reader = await PostgresStore.open({ ...settings, checkIntervalMs: 5000, maxStaleMs: 60_000 });
    const c = await other(settings);
    const latencies: number[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const addr = `a${i}@d1.test`;
        const t0 = performance.now();
        await c.query("INSERT INTO aliases(alias_email, target_user, alias_domain_name) VALUES ($1, 'alice', 'd1.test')", [addr]);
        await until(`${addr} in the reader`, () => reader.alias(addr) !== undefined, 1000);
        latencies.push(performance.now() - t0);
      }
      latencies.sort((a, b) => a - b);
      const max = latencies[latencies.length - 1]!;
      console.log(`notify latency over 20 commits: median ${latencies[10]!.toFixed(1)} ms, max ${max.toFixed(1)} ms`);
      assert.ok(max < 1000, `every change seen within 1 s (max ${max.toFixed(1)} ms)`);
    } finally {
      await c.end();
      reader.close();
      await admin.close();
    }
  });

  test("a change that sends no notification is found by the version check within check_interval_ms", async () => {
    const { settings, admin } = await initDb();
    await admin.addDomain("d1.test");
    const reader = await PostgresStore.open({ ...settings, checkIntervalMs: 200, maxStaleMs: 2000 });
    const c = await other(settings);
    try {
      // Triggers off for this session (as a restore with replication role would do): no NOTIFY, no version bump...
      const db = new URL(settings.url).pathname.slice(1);
      await server.sql("SET session_replication_role = replica; INSERT INTO aliases(alias_email, target_user, alias_domain_name) VALUES ('quiet@d1.test', 'alice', 'd1.test')", db);
      await sleep(600);
      assert.equal(reader.alias("quiet@d1.test"), undefined, "no notification, same version: nothing to see yet");
      // ...then only the version moves, still without a notification.
      await c.query("UPDATE mailcloak_version SET version = version + 1");
      const ms = await until("the version check to reload", () => reader.alias("quiet@d1.test") !== undefined, 2000);
      assert.ok(ms < 1000, `found in ${ms.toFixed(0)} ms`);
    } finally {
      await c.end();
      reader.close();
      await admin.close();
    }
  });

  test("a dropped notification connection is re-listened and reloaded", async () => {
    const { settings, admin } = await initDb();
    await admin.addDomain("d1.test");
    const reader = await PostgresStore.open(settings);
    const c = await other(settings);
    try {
      const before = reader.reloads;
      const killed = await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'mailcloak' AND datname = current_database()");
      assert.equal(killed.rowCount, 1, "the reader's one connection");
      await until("a reload on a new connection", () => reader.reloads > before, 5000);
      await admin.addAlias("after@d1.test", "alice");
      await until("the change after reconnecting", () => reader.alias("after@d1.test") !== undefined, 1000);
    } finally {
      await c.end();
      reader.close();
      await admin.close();
    }
  });

  test("a reader that cannot start (wrong password, no tables) says why, without the password", async () => {
    const settings = await freshDb();
    await assert.rejects(PostgresStore.open(settings), (err: unknown) => isStoreError(err, "schema") && /table \w+ is missing; run: mailcloakctl --db postgres:\/\/mailcloak@/.test((err as Error).message));
    const wrong = { ...settings, password: "definitely-wrong-pw" };
    await assert.rejects(PostgresStore.open(wrong), (err: unknown) => {
      const msg = (err as Error).message;
      return isStoreError(err, "unavailable") && /password authentication failed/.test(msg) && !msg.includes("definitely-wrong-pw") && !msg.includes(server.password);
    });
    await assert.rejects(PostgresAdminStore.open(settings), (err: unknown) => isStoreError(err, "schema"));
  });
});

describe("PostgreSQL store outages", { skip: skip ?? false }, () => {
  test("reads fail 'unavailable' while the server is down, with one line each way, and recover by themselves", async () => {
    const { settings, admin } = await initDb({ checkIntervalMs: 100, maxStaleMs: 500 });
    await admin.addDomain("d1.test");
    await admin.addAlias("sales@d1.test", "alice");
    await admin.close();
    const lines: string[] = [];
    const reader = await PostgresStore.open(settings, {
      onUnavailable: (reason) => lines.push(`down: ${reason}`),
      onRecovered: () => lines.push("up"),
    });
    try {
      assert.equal(reader.alias("sales@d1.test")?.targetUser, "alice");
      await server.stop();
      const downAfter = await until("reads to fail", () => {
        try {
          reader.within(() => reader.alias("sales@d1.test"));
          return false;
        } catch (err) {
          assert.ok(isStoreError(err, "unavailable"), `kind unavailable, got ${String(err)}`);
          return true;
        }
      }, 3000);
      assert.ok(downAfter <= 500 + 200, `unavailable within max_stale_ms (+ one check), took ${downAfter.toFixed(0)} ms`);
      assert.throws(() => reader.domainEnabled("d1.test"), (err: unknown) => isStoreError(err, "unavailable"));
      await sleep(1000);
      assert.equal(lines.length, 1, `one line for the outage: ${lines.join(" | ")}`);
      assert.match(lines[0]!, /^down: postgres:\/\/mailcloak@127\.0\.0\.1:\d+\/t\d+: no confirmation/);
      assert.ok(!lines[0]!.includes(server.password), "no password in the line");
      await server.resume();
      await until("reads to work again", () => reader.problem === null, 10_000);
      assert.equal(reader.alias("sales@d1.test")?.targetUser, "alice");
      assert.deepEqual(lines.slice(1), ["up"], "one line for the recovery");
    } finally {
      if (!server.running) await server.resume();
      reader.close();
    }
  });

  test("a reader started while the server is down starts unavailable and loads when it comes up", async () => {
    const { settings, admin } = await initDb({ checkIntervalMs: 100, maxStaleMs: 500 });
    await admin.addDomain("d1.test");
    await admin.close();
    await server.stop();
    let reader: PostgresStore | null = null;
    try {
      const lines: string[] = [];
      reader = await PostgresStore.open(settings, { onUnavailable: (r) => lines.push(r), onRecovered: () => lines.push("up") });
      assert.notEqual(reader.problem, null);
      assert.throws(() => reader!.domainEnabled("d1.test"), (err: unknown) => isStoreError(err, "unavailable"));
      assert.equal(lines.length, 1);
      await server.resume();
      await until("the first load", () => reader!.problem === null, 10_000);
      assert.equal(reader.domainEnabled("d1.test"), true);
      assert.deepEqual(lines.slice(1), ["up"]);
    } finally {
      if (!server.running) await server.resume();
      reader?.close();
    }
  });
});
