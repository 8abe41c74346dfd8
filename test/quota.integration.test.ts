// Quotas through the real daemon and its policy socket (END-OF-MESSAGE
// requests as Postfix's smtpd_end_of_data_restrictions sends them), with
// mailcloakctl for real: limits set while the daemon runs, Keycloak-style
// attributes (static users), bad attribute values, metrics, a counter store
// that fails, two daemons sharing one counter file, config errors.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { BASE_USERS, Client, ctl, ctlOk, DaemonProcess, freePort, policyQuery, tempDir, type ConfigTree } from "./helpers/daemon.js";
import { metric, scrape } from "./helpers/faults.js";
import { parseConfig } from "../src/config/load.js";
import { FakeKeycloak } from "./fake-keycloak.js";
import { stringify } from "yaml";

const daemons: DaemonProcess[] = [];
const dirs: string[] = [];
after(async () => {
  for (const d of daemons) await d.cleanup();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function start(config: ConfigTree = {}, dir?: string): Promise<DaemonProcess> {
  const d = await DaemonProcess.start({ config, ...(dir ? { dir } : {}) });
  daemons.push(d);
  return d;
}

const endOfMessage = (login: string, n = 1, i = 0): Record<string, string> => ({
  protocol_state: "END-OF-MESSAGE", sasl_username: login, sasl_method: login ? "PLAIN" : "", sender: `${login || "someone"}@d1.test`,
  recipient: n === 1 ? "friend@ext.test" : "", recipient_count: String(n), instance: `eom.${login}.${i}.${Math.random()}`, queue_id: `Q${i}`,
});

async function send(c: Client, login: string, count: number, rcpts = 1): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(await policyQuery(c, endOfMessage(login, rcpts, i)));
  return out;
}

const REFUSED = "450 4.7.1 Sending quota exceeded, try again later";
const refusals = (d: DaemonProcess, login?: string): Record<string, unknown>[] =>
  d.records().filter((r) => r.msg === "sending quota exceeded" && (login === undefined || r.login === login));

test("a quota set with mailcloakctl takes effect at once, with no other configuration; other logins, RCPT checks and unauthenticated mail are not counted", { timeout: 60_000 }, async () => {
  const port = await freePort();
  const d = await start({ metrics: { listen: `127.0.0.1:${port}` } });
  const c = await Client.connect(d.policySocket);
  // Before any quota: unlimited, nothing refused.
  assert.deepEqual(await send(c, "alice", 3), ["DUNNO", "DUNNO", "DUNNO"]);
  await ctlOk(d.db, "quota", "set", "alice", "--per-hour", "2");
  // RCPT-time requests of alice's messages are never counted.
  for (let i = 0; i < 5; i++) {
    assert.equal(await policyQuery(c, { protocol_state: "RCPT", policy_context: "sender", sasl_username: "alice", sender: "alice@d1.test", recipient: `r${i}@ext.test`, instance: `rcpt${i}` }), "DUNNO");
  }
  assert.deepEqual(await send(c, "alice", 4), ["DUNNO", "DUNNO", REFUSED, REFUSED]);
  assert.deepEqual(await send(c, "ALICE", 1), [REFUSED], "the login is compared without case");
  assert.deepEqual(await send(c, "dave", 5), ["DUNNO", "DUNNO", "DUNNO", "DUNNO", "DUNNO"]);
  assert.deepEqual(await send(c, "", 5), ["DUNNO", "DUNNO", "DUNNO", "DUNNO", "DUNNO"]);
  // One warn line per refusal, with the login and the limit.
  await sleep(200);
  const lines = refusals(d);
  assert.equal(lines.length, 3, JSON.stringify(lines));
  for (const l of lines) {
    assert.equal(l.level, 40);
    assert.equal(l.login, "alice");
    assert.equal(l.limit, "per_hour");
    assert.equal(l.max, 2);
  }
  const m = await scrape(port);
  assert.equal(metric(m, "mailcloak_quota_refusals_total", { login: "alice", limit: "per_hour" }), 3);
  assert.equal(metric(m, "mailcloak_quota_checks_total", { result: "counted" }), 2);
  assert.equal(metric(m, "mailcloak_quota_checks_total", { result: "over" }), 3);
  // What the admin sees.
  const show = JSON.parse(await ctlOk(d.db, "quota", "show", "alice", "--json")) as { limits: Record<string, { set: number | null; applied: number; used: number }>; refused_this_hour: number };
  assert.equal(show.limits.per_hour!.set, 2);
  assert.equal(show.limits.per_hour!.used, 2);
  assert.equal(show.refused_this_hour, 3);
  const top = (await ctlOk(d.db, "quota", "top")).trim().split("\n");
  assert.equal(top[0], "login\tper_hour\trecipients_per_hour\tper_day\t%\trefused");
  assert.equal(top[1], "alice\t2/2\t2/-\t2/-\t100%\t3");
  // Raising the limit, and reset, take effect at once too.
  await ctlOk(d.db, "quota", "set", "alice", "--per-hour", "3");
  assert.deepEqual(await send(c, "alice", 2), ["DUNNO", REFUSED]);
  assert.match(await ctlOk(d.db, "quota", "reset", "alice"), /counters reset/);
  assert.deepEqual(await send(c, "alice", 1), ["DUNNO"]);
  c.destroy();
});

test("recipients per hour count each message's recipient_count once", { timeout: 30_000 }, async () => {
  const d = await start({ quotas: { recipients_per_hour: 10 } });
  const c = await Client.connect(d.policySocket);
  assert.deepEqual(await send(c, "alice", 3, 4), ["DUNNO", "DUNNO", REFUSED]);
  assert.deepEqual(await send(c, "alice", 1, 2), ["DUNNO"]);
  c.destroy();
  const r = refusals(d, "alice");
  assert.equal(r.length, 1);
  assert.equal(r[0]!.limit, "recipients_per_hour");
});

test("quota attributes: a whole number overrides the default; a bad value is ignored with one warning per user and TTL", { timeout: 30_000 }, async () => {
  const users = [
    { ...BASE_USERS[0]!, attributes: { mailQuotaPerHour: ["lots"] } },
    { ...BASE_USERS[1]!, attributes: { mailQuotaPerHour: ["-5"] } },
    BASE_USERS[2]!,
    { ...BASE_USERS[3]!, attributes: { mailQuotaPerHour: ["4"] } },
  ];
  const d = await start({
    idp: { static: { users } },
    quotas: { per_hour: 2, per_hour_attribute: "mailQuotaPerHour" },
  });
  const c = await Client.connect(d.policySocket);
  assert.deepEqual(await send(c, "alice", 4), ["DUNNO", "DUNNO", REFUSED, REFUSED], "bad value: the default (2) applies");
  assert.deepEqual(await send(c, "bob", 3), ["DUNNO", "DUNNO", REFUSED], "negative value: the default applies");
  assert.deepEqual(await send(c, "dave", 5), ["DUNNO", "DUNNO", "DUNNO", "DUNNO", REFUSED], "the attribute's 4");
  // mailcloakctl wins over the attribute.
  await ctlOk(d.db, "quota", "set", "dave", "--per-hour", "6");
  assert.deepEqual(await send(c, "dave", 3), ["DUNNO", "DUNNO", REFUSED]);
  c.destroy();
  await sleep(200);
  const warnings = d.records().filter((r) => typeof r.msg === "string" && r.msg.startsWith("ignoring a quota attribute"));
  assert.deepEqual(warnings.map((w) => [w.login, w.value]).sort(), [["alice", "lots"], ["bob", "-5"]]);
  assert.equal(d.exitCode, null, "still running");
});

test("Keycloak attributes: read through the cache; when Keycloak cannot say, the failure mode applies rather than a refusal on the default", { timeout: 30_000 }, async () => {
  const kc = await FakeKeycloak.start({ realm: "test", clientId: "mailcloak", clientSecret: "s3cret" });
  try {
    kc.addUser({ username: "alice", email: "alice@d1.test", attributes: { mailQuotaPerHour: ["3"] } });
    kc.addUser({ username: "dave", email: "dave@d2.test" });
    const d = await start({
      idp: { provider: "keycloak", static: null, keycloak: { base_url: kc.url, realm: "test", client_id: "mailcloak", client_secret: "s3cret", cache_ttl_seconds: 1, timeout_ms: 500 } },
      cache: { negative_ttl_seconds: 1, stale_seconds: 0 },
      quotas: { per_hour: 1, per_hour_attribute: "mailQuotaPerHour" },
    });
    const c = await Client.connect(d.policySocket);
    assert.deepEqual(await send(c, "alice", 2), ["DUNNO", "DUNNO"], "the attribute's 3, not the default 1");
    assert.deepEqual(await send(c, "dave", 2), ["DUNNO", REFUSED], "no attribute: the default");
    await kc.down();
    await sleep(1300); // past the cache TTL, no stale answers
    assert.deepEqual(await send(c, "alice", 2), ["DUNNO", "DUNNO"], "Keycloak down: fail open, no refusal on the default");
    // A limit set with mailcloakctl needs no Keycloak: alice has 2 counted, the 3rd passes, the 4th is refused.
    await ctlOk(d.db, "quota", "set", "alice", "--per-hour", "3");
    assert.deepEqual(await send(c, "alice", 2), ["DUNNO", REFUSED]);
    c.destroy();
    assert.ok(d.records().some((r) => r.reason === "quota-idp-unavailable-fail-open"));
  } finally {
    await kc.stop();
  }
});

test("a counter store that fails gives the configured failure mode (open: DUNNO; closed: 451), a metric, and recovers", { timeout: 30_000 }, async () => {
  const port = await freePort();
  const where = tempDir("mailcloak-quota-dir-");
  dirs.push(where);
  const counters = join(where, "not-yet", "quota.db");
  const d = await start({ quotas: { per_hour: 2, sqlite_path: counters }, metrics: { listen: `127.0.0.1:${port}` } });
  const c = await Client.connect(d.policySocket);
  assert.deepEqual(await send(c, "alice", 3), ["DUNNO", "DUNNO", "DUNNO"], "fail open (the default)");
  assert.equal(metric(await scrape(port), "mailcloak_quota_backend_errors_total", { backend: "sqlite" }) >= 1, true);
  assert.ok(d.records().some((r) => r.msg === "quota counters unavailable: letting messages through unchecked until they are back"));
  c.destroy();
  await d.stop();
  d.writeConfig({ quotas: { per_hour: 2, sqlite_path: counters, failure_mode: "closed" }, metrics: { listen: `127.0.0.1:${port}` } });
  await d.spawn();
  const c2 = await Client.connect(d.policySocket);
  assert.equal(await policyQuery(c2, endOfMessage("alice")), "451 4.3.0 Temporary quota check failure, try again later");
  assert.equal(await policyQuery(c2, endOfMessage("")), "DUNNO", "unauthenticated mail never depends on the counters");
  mkdirSync(join(where, "not-yet"));
  await sleep(1100); // the reopen back-off
  assert.deepEqual(await send(c2, "alice", 3), ["DUNNO", "DUNNO", REFUSED]);
  assert.ok(d.records().some((r) => r.msg === "quota counters available again"));
  c2.destroy();
});

test("two daemons sharing one counter file let exactly the limit through between them", { timeout: 30_000 }, async () => {
  const shared = tempDir("mailcloak-quota-shared-");
  dirs.push(shared);
  const cfg = { quotas: { per_hour: 15, sqlite_path: join(shared, "quota.db") } };
  const [a, b] = await Promise.all([start(cfg), start(cfg)]);
  const conns = await Promise.all([a, b, a, b].map((d) => Client.connect(d!.policySocket)));
  const replies = (await Promise.all(conns.map((c, i) => (async () => {
    const out: string[] = [];
    for (let k = 0; k < 10; k++) out.push(await policyQuery(c, endOfMessage("alice", 1, i * 100 + k)));
    return out;
  })()))).flat();
  assert.equal(replies.filter((r) => r === "DUNNO").length, 15);
  assert.equal(replies.filter((r) => r === REFUSED).length, 25);
  for (const c of conns) c.destroy();
});

test("mailcloakctl quota refuses bad input with one line and writes nothing", { timeout: 30_000 }, async () => {
  const dir = tempDir("mailcloak-quota-ctl-");
  dirs.push(dir);
  const db = join(dir, "state.db");
  await ctlOk(db, "init");
  const cases: [string[], number, RegExp][] = [
    [["quota", "set", "alice", "--per-hour", "-1"], 2, /--per-hour: must be a whole number >= 0/],
    [["quota", "set", "alice", "--per-day", "many"], 2, /--per-day: must be a whole number/],
    [["quota", "set", "alice"], 2, /give at least one of --per-hour/],
    [["quota", "set", "two words", "--per-hour", "1"], 1, /invalid login/],
    [["quota", "del", "nobody"], 1, /no quota is set for nobody/],
    [["quota", "bogus"], 2, /quota: unknown command 'bogus'/],
  ];
  for (const [args, code, re] of cases) {
    const r = await ctl(db, ...args);
    assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split("\n").length, 1, "one line");
  }
  assert.equal((await ctlOk(db, "quota", "list")).trim(), "");
  assert.equal((await ctlOk(db, "quota", "set", "crm", "--per-day", "100", "--recipients-per-hour", "0")).trim(), "quota crm: per_hour default, per_day 100, recipients_per_hour unlimited");
  assert.match(await ctlOk(db, "quota", "list"), /^crm\tdefault\t100\tunlimited\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$/);
  assert.equal((await ctlOk(db, "quota", "set", "crm", "--per-day", "default", "--recipients-per-hour", "default")).trim(), "quota crm: back to the defaults");
  assert.deepEqual(JSON.parse(await ctlOk(db, "quota", "top", "--json")), []);
});

test("config: quotas settings are validated with one-line errors", () => {
  const base = { idp: { provider: "static", static: { users: [] } }, sqlite: { path: "/tmp/x/state.db" } };
  const parse = (quotas: unknown) => parseConfig(stringify({ ...base, quotas }), "c.yaml");
  const q = parse({ per_hour: 10, per_day_attribute: "mailQuotaDay", backend: "redis", redis: { url: "redis://:pw@10.0.0.1:6379/2" } }).quotas;
  assert.equal(q.defaults.per_hour, 10);
  assert.equal(q.attributes.per_day, "mailQuotaDay");
  assert.equal(q.sqlitePath, "/tmp/x/quota.db");
  assert.equal(q.backend, "redis");
  const bad: [unknown, RegExp][] = [
    [{ per_hour: -1 }, /^c\.yaml: quotas\.per_hour: must be between 0 and 1000000000, got -1$/],
    [{ per_day: "ten" }, /^c\.yaml: quotas\.per_day: must be a whole number/],
    [{ failure_mode: "maybe" }, /quotas\.failure_mode: must be one of open, closed/],
    [{ backend: "memcached" }, /quotas\.backend: must be one of sqlite, redis/],
    [{ redis: { url: "http://x" } }, /quotas\.redis\.url: must be a redis:\/\/ or rediss:\/\/ URL/],
    [{ message: "450 over" }, /quotas\.message: is the text only/],
    [{ per_hour_attribute: "a b" }, /quotas\.per_hour_attribute: must be one Keycloak attribute name/],
    [{ sqlite_path: "/tmp/x/state.db" }, /quotas\.sqlite_path: must differ from sqlite\.path/],
  ];
  // Unknown keys are warnings everywhere (as the Go release ignores them); the daemon logs them at start.
  assert.match(parse({ per_hour_limit: 3 }).warnings.join("\n"), /quotas\.per_hour_limit: unknown key/);
  for (const [quotas, re] of bad) {
    assert.throws(() => parse(quotas), (err: Error) => re.test(err.message) && !err.message.includes("\n"), JSON.stringify(quotas));
  }
});
