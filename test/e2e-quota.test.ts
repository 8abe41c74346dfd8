// Outbound quotas end to end: swaks submits whole messages to a private
// Postfix running configs/postfix-main.cf as shipped (its
// smtpd_end_of_data_restrictions asks mailcloak after each message's data),
// with the real mailcloak daemon and Dovecot (test/helpers/mailstack.ts).
// Then the same with the counters in a private redis-server shared by a
// second daemon, and Redis stopped and started again mid-run.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Client, ctlOk, DaemonProcess, freePort, policyQuery } from "./helpers/daemon.js";
import { metric, scrape } from "./helpers/faults.js";
import { MailStack, PASSWORDS, run, smtp, stackUnavailable, uniqueSubject, waitFor, waitForMessage, type SmtpResult } from "./helpers/mailstack.js";
import { RedisServer, redisUnavailable } from "./helpers/redis.js";

const CI = process.env.CI === "true";
const unavailable = stackUnavailable() ?? redisUnavailable();
const opts = { skip: unavailable !== null && !CI ? unavailable : false, timeout: 120_000 } as const;

const QUEUED = /^250 2\.0\.0 Ok: queued as \w+/;
/** mailcloak's action, and Postfix's reply to the client carrying it (its wording for end-of-data restrictions). */
const ACTION = "450 4.7.1 Sending quota exceeded, try again later";
const REFUSED = "450 4.7.1 <END-OF-MESSAGE>: End-of-data rejected: Sending quota exceeded, try again later";
const DEFERRED = "451 4.3.0 <END-OF-MESSAGE>: End-of-data rejected: Temporary quota check failure, try again later";

let s: MailStack;
let redis: RedisServer | null = null;
let second: DaemonProcess | null = null;
let metricsPort = 0;

before(async () => {
  if (unavailable !== null) {
    if (CI) throw new Error(`e2e-quota: ${unavailable}; .ci/run must install them`);
    return;
  }
  metricsPort = await freePort();
  s = await MailStack.start({ config: { metrics: { listen: `127.0.0.1:${metricsPort}` } } });
});

after(async () => {
  await second?.cleanup();
  await s?.stop();
  await redis?.stop();
});

/** A whole message, logged in on the submission port. */
async function submit(user: keyof typeof PASSWORDS, to = "dave@d2.test", subject = uniqueSubject("quota")): Promise<SmtpResult> {
  const from = user === "crm" ? "sales@d1.test" : `${user}@${user === "dave" ? "d2" : "d1"}.test`;
  return smtp({ port: s.submissionPort, from, to, auth: { user, password: PASSWORDS[user] }, quitAfter: null, headers: { Subject: subject } });
}

function expectEnd(r: SmtpResult, want: string | RegExp, label: string): void {
  const msg = `${label}\n--- swaks ---\n${r.transcript}\n${s.diagnostics()}`;
  if (typeof want === "string") assert.equal(r.endOfData, want, msg);
  else assert.match(r.endOfData ?? "", want, msg);
}

async function sendAll(user: keyof typeof PASSWORDS, n: number): Promise<SmtpResult[]> {
  const out: SmtpResult[] = [];
  for (let i = 0; i < n; i++) out.push(await submit(user));
  return out;
}

test("the shipped postfix-main.cf asks mailcloak at the end of each message's data", opts, async () => {
  const h = (await run("postconf", ["-c", s.postfixDir, "-h", "smtpd_end_of_data_restrictions"])).stdout.trim();
  assert.match(h, /check_policy_service \{ unix:private\/mailcloak-policy, policy_context=quota, timeout=10s, \{ default_action = DUNNO \} \}/);
});

test("SQLite: a login over a quota of 3 (set with mailcloakctl only) gets 450 4.7.1 for its 4th message; another login is unaffected", opts, async () => {
  await ctlOk(s.daemon.db, "quota", "set", "alice", "--per-hour", "3");
  const subject = uniqueSubject("quota-delivered");
  expectEnd(await submit("alice", "dave@d2.test", subject), QUEUED, "1st");
  await waitForMessage(s.maildirNew("d2.test", "dave"), subject);
  for (const [i, r] of (await sendAll("alice", 2)).entries()) expectEnd(r, QUEUED, `message ${i + 2}`);
  expectEnd(await submit("alice"), REFUSED, "4th");
  for (const [i, r] of (await sendAll("dave", 4)).entries()) expectEnd(r, QUEUED, `dave ${i + 1}`);
  const reject = await waitFor("Postfix's reject line", () => s.postfixLog().split("\n").find((l) => l.includes("reject: END-OF-MESSAGE") && l.includes(REFUSED)), 5000);
  assert.match(reject, /from=<alice@d1\.test> to=<dave@d2\.test>/);
  const warn = s.daemon.records().filter((r) => r.msg === "sending quota exceeded");
  assert.equal(warn.length, 1);
  assert.equal(warn[0]!.login, "alice");
  assert.equal(metric(await scrape(metricsPort), "mailcloak_quota_refusals_total", { login: "alice", limit: "per_hour" }), 1);
  const top = (await ctlOk(s.daemon.db, "quota", "top")).split("\n");
  assert.equal(top[1], "alice\t3/3\t3/-\t3/-\t100%\t1");
});

test("SQLite: after a daemon restart the count continues", opts, async () => {
  await ctlOk(s.daemon.db, "quota", "reset", "alice");
  for (const r of await sendAll("alice", 2)) expectEnd(r, QUEUED, "before the restart");
  await s.restartDaemon();
  expectEnd(await submit("alice"), QUEUED, "3rd, after the restart");
  expectEnd(await submit("alice"), REFUSED, "4th, after the restart");
});

test("a message is counted once, with its real recipient count", opts, async () => {
  await ctlOk(s.daemon.db, "quota", "set", "dave", "--recipients-per-hour", "3", "--per-hour", "0");
  await ctlOk(s.daemon.db, "quota", "reset", "dave");
  expectEnd(await submit("dave", "alice@d1.test,sales@d1.test"), QUEUED, "2 recipients");
  expectEnd(await submit("dave", "alice@d1.test,sales@d1.test"), REFUSED, "2 more would be 4 > 3");
  expectEnd(await submit("dave", "alice@d1.test"), QUEUED, "1 more is 3");
  const show = JSON.parse(await ctlOk(s.daemon.db, "quota", "show", "dave", "--json")) as { limits: Record<string, { used: number }> };
  assert.equal(show.limits.recipients_per_hour!.used, 3);
  assert.equal(show.limits.per_hour!.used, 2);
});

test("Redis: two mailcloak daemons on the same Redis share one count", opts, async () => {
  redis = await RedisServer.start();
  const quotas = { backend: "redis", redis: { url: redis.url }, per_hour: 3 };
  s.extraConfig = { ...s.extraConfig, quotas };
  await s.restartDaemon();
  // The first daemon's SQLite count for alice is full; Redis starts empty.
  for (const r of await sendAll("alice", 2)) expectEnd(r, QUEUED, "through Postfix, counted in Redis");
  second = await DaemonProcess.start({ config: { quotas } });
  const c = await Client.connect(second.policySocket);
  const eom = { protocol_state: "END-OF-MESSAGE", sasl_username: "alice", sender: "alice@d1.test", recipient: "dave@d2.test", recipient_count: "1", instance: "second.1" };
  assert.equal(await policyQuery(c, eom), "DUNNO", "the 3rd, through the second daemon");
  assert.equal(await policyQuery(c, { ...eom, instance: "second.2" }), ACTION, "the second daemon sees the first's two");
  c.destroy();
  expectEnd(await submit("alice"), REFUSED, "the first daemon sees the second's");
  expectEnd(await submit("dave"), QUEUED, "dave is unaffected");
});

test("Redis stopped mid-run: fail open lets mail through (counted in a metric), fail closed defers it, and counting resumes when Redis is back", opts, async () => {
  const before = metric(await scrape(metricsPort), "mailcloak_quota_backend_errors_total", { backend: "redis" });
  await redis!.stop();
  expectEnd(await submit("alice"), QUEUED, "fail open (the default): over quota, but Redis cannot say");
  assert.ok(metric(await scrape(metricsPort), "mailcloak_quota_backend_errors_total", { backend: "redis" }) > before);
  assert.ok(s.daemon.records().some((r) => r.msg === "quota counters unavailable: letting messages through unchecked until they are back"));

  s.extraConfig = { ...s.extraConfig, quotas: { ...(s.extraConfig.quotas as object), failure_mode: "closed" } };
  await s.restartDaemon();
  expectEnd(await submit("alice"), DEFERRED, "fail closed");
  expectEnd(await smtp({ port: s.smtpPort, from: "someone@ext.test", to: "alice@d1.test", quitAfter: null }), QUEUED, "unauthenticated mail does not depend on Redis");

  await redis!.resume(); // empty: no persistence
  await waitFor("the daemon to reconnect to Redis", () => s.daemon.records().some((r) => r.msg === "quota counters: redis available again"), 15_000);
  for (const r of await sendAll("alice", 3)) expectEnd(r, QUEUED, "counting again from zero");
  expectEnd(await submit("alice"), REFUSED, "and refusing again");
});
