// Quotas: the pure rules (limits.ts) as tables, and both counter stores
// for real: SQLite files shared by several connections (threads stand for
// daemons), and a private redis-server whose Lua script must decide exactly
// as limits.ts does.

import { test, before, after, mock } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { rawDb } from "./helpers/sqlite.js";
import {
  attributeLimit, effectiveLimits, estimate, exceeded, NO_OVERRIDE, parseLimit, windowsAt, type QuotaLimits, type Usage,
} from "../src/quota/limits.js";
import { SqliteCounters } from "../src/store/sqlite/counters.js";
import { RedisCounters } from "../src/quota/redis-counters.js";
import { CounterError, type Counters } from "../src/quota/counters.js";
import { QUOTA_LIMITS_DDL } from "../src/store/sqlite/schema.js";
import { ROOT, tempDir } from "./helpers/daemon.js";
import { RedisServer, redisUnavailable } from "./helpers/redis.js";

const CI = process.env.CI === "true";
const HOUR = 3_600_000;
/** A fixed moment 30 minutes into an hour (and some way into a UTC day). */
const T0 = Date.UTC(2026, 0, 15, 10, 30, 0);

const limits = (per_hour: number, per_day = 0, recipients_per_hour = 0): QuotaLimits => ({ per_hour, per_day, recipients_per_hour });
const usage = (mh: [number, number], rh: [number, number] = [0, 0], md: [number, number] = [0, 0]): Usage => ({
  messagesHour: { cur: mh[0], prev: mh[1] }, recipientsHour: { cur: rh[0], prev: rh[1] }, messagesDay: { cur: md[0], prev: md[1] },
});

test("parseLimit accepts whole numbers from 0 and refuses anything else", () => {
  const rows: [string, number | null][] = [
    ["0", 0], ["5", 5], [" 12 ", 12], ["1000000000", 1_000_000_000],
    ["-1", null], ["1.5", null], ["abc", null], ["", null], ["1e3", null], ["0x10", null], ["1000000001", null], ["12345678901", null],
  ];
  for (const [input, want] of rows) assert.equal(parseLimit(input), want, `parseLimit(${JSON.stringify(input)})`);
});

test("attributeLimit: absent, a limit, or bad (the first value counts)", () => {
  assert.equal(attributeLimit(undefined), undefined);
  assert.equal(attributeLimit([]), undefined);
  assert.equal(attributeLimit(["7"]), 7);
  assert.equal(attributeLimit(["0"]), 0);
  assert.equal(attributeLimit(["lots"]), "bad");
  assert.equal(attributeLimit(["-3"]), "bad");
});

test("effectiveLimits takes each field from the first source that sets it", () => {
  const defaults = limits(10, 100, 50);
  assert.deepEqual(effectiveLimits(defaults), defaults);
  assert.deepEqual(effectiveLimits(defaults, NO_OVERRIDE, NO_OVERRIDE), defaults);
  assert.deepEqual(effectiveLimits(defaults, { per_hour: 3, per_day: null, recipients_per_hour: null }, { per_hour: 7, per_day: 0, recipients_per_hour: null }), limits(3, 0, 50));
});

test("exceeded: the (N+1)th message over a limit of N, each limit, 0 = unlimited", () => {
  const w = windowsAt(T0);
  const rows: { name: string; u: Usage; l: QuotaLimits; rcpts: number; want: string | null }[] = [
    { name: "below the hourly limit", u: usage([2, 0]), l: limits(3), rcpts: 1, want: null },
    { name: "at the hourly limit", u: usage([3, 0]), l: limits(3), rcpts: 1, want: "per_hour" },
    { name: "unlimited", u: usage([1000, 1000], [9999, 0], [5000, 0]), l: limits(0), rcpts: 500, want: null },
    { name: "recipients: this message would pass the limit", u: usage([1, 0], [8, 0]), l: limits(0, 0, 10), rcpts: 3, want: "recipients_per_hour" },
    { name: "recipients: exactly up to the limit", u: usage([1, 0], [8, 0]), l: limits(0, 0, 10), rcpts: 2, want: null },
    { name: "daily limit", u: usage([0, 0], [0, 0], [20, 0]), l: limits(100, 20), rcpts: 1, want: "per_day" },
    { name: "half the previous hour still counts, 30 minutes in", u: usage([1, 4]), l: limits(3), rcpts: 1, want: "per_hour" },
    { name: "previous hour weighted, 30 minutes in: 4/2 = 2 sent, a 3rd passes", u: usage([0, 4]), l: limits(3), rcpts: 1, want: null },
  ];
  for (const r of rows) assert.equal(exceeded(r.u, r.l, r.rcpts, w)?.limit ?? null, r.want, r.name);
});

test("the sliding estimate is not rounded down: a full previous hour refuses just after the top of the hour", () => {
  const w = windowsAt(Date.UTC(2026, 0, 15, 11, 0, 1));
  assert.ok(estimate({ cur: 0, prev: 3 }, w.hourElapsed) < 3 && estimate({ cur: 0, prev: 3 }, w.hourElapsed) > 2.99);
  assert.equal(exceeded(usage([0, 3]), limits(3), 1, w)?.limit, "per_hour");
});

test("db-init.sql creates quota_limits with the statement mailcloakctl runs on an older database", () => {
  const sql = readFileSync(join(ROOT, "db-init.sql"), "utf8");
  assert.ok(sql.includes(QUOTA_LIMITS_DDL), "db-init.sql and QUOTA_LIMITS_DDL differ");
});

// ---- the SQLite counter store ----

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function counterFile(): string {
  const d = tempDir("mailcloak-quota-");
  dirs.push(d);
  return join(d, "quota.db");
}

async function takeN(c: Counters, n: number, l: QuotaLimits, at: number, login = "alice", rcpts = 1): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await c.take({ login, limits: l, recipients: rcpts, nowMs: at + i });
    out.push(r.kind === "counted" ? "ok" : r.exceeded.limit);
  }
  return out;
}

test("SQLite counters: N messages pass, the next is refused and not counted; another login is unaffected", async () => {
  const c = new SqliteCounters({ path: counterFile(), busyTimeoutMs: 1000, create: true });
  assert.deepEqual(await takeN(c, 4, limits(3), T0), ["ok", "ok", "ok", "per_hour"]);
  assert.deepEqual(await takeN(c, 2, limits(3), T0, "dave"), ["ok", "ok"]);
  const u = await c.usage("alice", T0 + 10);
  assert.equal(u.usage.messagesHour.cur, 3);
  assert.equal(u.refusedHour, 1);
  assert.deepEqual(u.applied, limits(3));
  await c.close();
});

test("SQLite counters survive a reopen (a daemon restart) and the count continues", async () => {
  const path = counterFile();
  const a = new SqliteCounters({ path, busyTimeoutMs: 1000, create: true });
  assert.deepEqual(await takeN(a, 2, limits(3), T0), ["ok", "ok"]);
  await a.close();
  const b = new SqliteCounters({ path, busyTimeoutMs: 1000, create: true });
  assert.deepEqual(await takeN(b, 2, limits(3), T0 + 1000), ["ok", "per_hour"]);
  assert.equal(String(rawDb(path, { readonly: true }).pragma("journal_mode", { simple: true })), "wal");
  await b.close();
});

test("SQLite counters: recipients per hour count the message's recipients; old windows are pruned", async () => {
  const path = counterFile();
  const c = new SqliteCounters({ path, busyTimeoutMs: 1000, create: true });
  assert.deepEqual(await takeN(c, 3, limits(0, 0, 10), T0, "alice", 4), ["ok", "ok", "recipients_per_hour"]);
  // Three hours later nothing of it counts, and the rows are gone (pruned at the next take).
  assert.deepEqual(await takeN(c, 1, limits(0, 0, 10), T0 + 3 * HOUR + 120_000, "alice", 4), ["ok"]);
  const db = rawDb(path, { readonly: true });
  const hours = db.prepare("SELECT bucket FROM quota_counters WHERE span = 'h' ORDER BY bucket").all() as { bucket: number }[];
  db.close();
  assert.deepEqual(hours.map((h) => h.bucket), [windowsAt(T0 + 3 * HOUR + 120_000).hour]);
  await c.close();
});

test("SQLite counters: a file that cannot be opened is a CounterError, and works once it can be", async (t) => {
  mock.timers.enable({ apis: ["Date"], now: Date.now() });
  t.after(() => mock.timers.reset());
  const d = tempDir("mailcloak-quota-");
  dirs.push(d);
  const path = join(d, "missing-dir", "quota.db");
  const c = new SqliteCounters({ path, busyTimeoutMs: 100, create: true });
  assert.throws(() => c.take({ login: "alice", limits: limits(3), recipients: 1, nowMs: T0 }), CounterError);
  const { mkdirSync } = await import("node:fs");
  mkdirSync(join(d, "missing-dir"));
  mock.timers.tick(1100); // past the reopen back-off (the counters read Date.now)
  assert.equal((await c.take({ login: "alice", limits: limits(3), recipients: 1, nowMs: T0 })).kind, "counted");
  await c.close();
});

test("SQLite counters shared by four concurrent writers let exactly the limit through", async () => {
  const path = counterFile();
  new SqliteCounters({ path, busyTimeoutMs: 1000, create: true }).tryOpen();
  const LIMIT = 50;
  const EACH = 40;
  const code = `
    const { workerData, parentPort } = require("node:worker_threads");
    import(workerData.module).then(async ({ SqliteCounters }) => {
      const c = new SqliteCounters({ path: workerData.path, busyTimeoutMs: 5000, create: true });
      let ok = 0;
      for (let i = 0; i < workerData.each; i++) {
        const r = c.take({ login: "alice", limits: { per_hour: workerData.limit, per_day: 0, recipients_per_hour: 0 }, recipients: 1, nowMs: workerData.t0 + i });
        if (r.kind === "counted") ok++;
      }
      await c.close();
      parentPort.postMessage(ok);
    });`;
  const module = new URL("../src/store/sqlite/counters.js", import.meta.url).href;
  const counts = await Promise.all([0, 1, 2, 3].map(() => new Promise<number>((resolve, reject) => {
    const w = new Worker(code, { eval: true, workerData: { module, path, each: EACH, limit: LIMIT, t0: T0 } });
    w.once("message", (n: number) => resolve(n));
    w.once("error", reject);
  })));
  assert.equal(counts.reduce((a, b) => a + b, 0), LIMIT, `accepted per writer: ${counts.join(", ")}`);
});

// ---- Redis ----

const noRedis = redisUnavailable();
const redisOpts = { skip: noRedis !== null && !CI ? noRedis : false } as const;
let redis: RedisServer | null = null;

before(async () => {
  if (noRedis !== null) {
    if (CI) throw new Error(`quota tests: ${noRedis}; .ci/run must install it`);
    return;
  }
  redis = await RedisServer.start();
});
after(async () => {
  await redis?.stop();
});

async function redisCounters(prefix: string, reconnect = true): Promise<RedisCounters> {
  const c = new RedisCounters({ url: redis!.url, keyPrefix: prefix, timeoutMs: 500, reconnect });
  await c.connect();
  return c;
}

test("Redis counters decide exactly as the SQLite counters (the Lua script repeats limits.ts)", redisOpts, async () => {
  const r = await redisCounters("t1:");
  const s = new SqliteCounters({ path: counterFile(), busyTimeoutMs: 1000, create: true });
  // A pseudo-random but fixed run of messages over two hours and a day edge, three logins, all three limits.
  let seed = 7;
  const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  const l = limits(6, 15, 20);
  let t = Date.UTC(2026, 0, 15, 23, 10, 0);
  const got: string[] = [];
  const want: string[] = [];
  for (let i = 0; i < 120; i++) {
    t += rnd(5) * 60_000;
    const login = ["alice", "bob", "crm"][rnd(3)]!;
    const rcpts = 1 + rnd(4);
    const a = await r.take({ login, limits: l, recipients: rcpts, nowMs: t });
    const b = s.take({ login, limits: l, recipients: rcpts, nowMs: t });
    got.push(a.kind === "counted" ? "ok" : a.exceeded.limit);
    want.push(b.kind === "counted" ? "ok" : b.exceeded.limit);
  }
  assert.deepEqual(got, want);
  assert.ok(want.includes("ok") && want.some((x) => x !== "ok"), "the run exercises both outcomes");
  const ru = await r.usage("alice", t);
  const su = await s.usage("alice", t);
  assert.deepEqual(ru.usage, su.usage);
  assert.equal(ru.refusedHour, su.refusedHour);
  assert.deepEqual((await r.all(t)).map((x) => x.login), ["alice", "bob", "crm"]);
  assert.equal(await r.reset("alice"), true);
  assert.equal((await r.usage("alice", t)).usage.messagesHour.cur, 0);
  await r.close();
  await s.close();
});

test("Redis counters shared by two clients give one count", redisOpts, async () => {
  const a = await redisCounters("t2:");
  const b = await redisCounters("t2:");
  const results = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).take({ login: "alice", limits: limits(10), recipients: 1, nowMs: T0 })));
  assert.equal(results.filter((x) => x.kind === "counted").length, 10);
  await a.close();
  await b.close();
});

test("Redis counters: a stopped Redis is an immediate CounterError, and counting resumes when it is back", redisOpts, async () => {
  const c = await redisCounters("t3:");
  assert.equal((await c.take({ login: "alice", limits: limits(5), recipients: 1, nowMs: T0 })).kind, "counted");
  await redis!.stop();
  const started = Date.now();
  await assert.rejects(c.take({ login: "alice", limits: limits(5), recipients: 1, nowMs: T0 }), CounterError);
  assert.ok(Date.now() - started < 2000, "the failure is not a long wait");
  await redis!.resume();
  const deadline = Date.now() + 10_000;
  let kind = "";
  while (Date.now() < deadline) {
    try {
      kind = (await c.take({ login: "alice", limits: limits(5), recipients: 1, nowMs: T0 })).kind;
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  assert.equal(kind, "counted");
  await c.close();
});
