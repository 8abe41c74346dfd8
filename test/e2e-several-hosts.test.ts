// Several MX hosts for real (issue 16): two mail stacks ("host A" and
// "host B"), each its own Postfix, Dovecot and mailcloak daemon
// (test/helpers/mailstack.ts), on one PostgreSQL (test/helpers/postgres.ts)
// with store: backend postgres, and Dovecot's passdb sql on that PostgreSQL
// (configs/dovecot-mailcloak-sql-pgsql.conf.ext, role dovecot_auth reading
// apps only). An alias added with host A's mailcloakctl is delivered
// through host B; an app password created on A authenticates on B; with
// A's mailcloak stopped, B goes on serving.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { MAILCLOAKCTL, ROOT, socketmapQuery, Client, tempDir, type CtlResult } from "./helpers/daemon.js";
import { MailStack, smtp, stackUnavailable, uniqueSubject, waitFor, waitForMessage, type StackStore } from "./helpers/mailstack.js";
import { PostgresServer, postgresUnavailable } from "./helpers/postgres.js";
import { RedisServer, redisUnavailable } from "./helpers/redis.js";

const CI = process.env.CI === "true";
const DOVECOT_PGSQL = "/usr/lib/dovecot/modules/auth/libdriver_pgsql.so";
const unavailable = stackUnavailable() ?? postgresUnavailable() ?? redisUnavailable() ?? (existsSync(DOVECOT_PGSQL) ? null : "Dovecot's pgsql driver is not installed (Debian package dovecot-pgsql)");
const opts = { skip: unavailable !== null && !CI ? unavailable : false, timeout: 180_000 } as const;
const QUEUED = /^250 2\.0\.0 Ok: queued as \w+/;
const DOVECOT_PW = "dovecot-auth-pw";

let pg: PostgresServer;
let redis: RedisServer;
let a: MailStack;
let b: MailStack;

/** mailcloakctl as run on a host: with that host's config file (store: section, password_file). */
function ctlOn(host: MailStack, ...args: string[]): Promise<CtlResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAILCLOAKCTL, "--config", host.daemon.configPath, ...args], { cwd: ROOT }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

before(async () => {
  if (unavailable !== null) {
    if (CI) throw new Error(`e2e-several-hosts: ${unavailable}; .ci/run must install them`);
    return;
  }
  pg = await PostgresServer.start();
  await pg.sql(`CREATE ROLE dovecot_auth LOGIN PASSWORD '${DOVECOT_PW}'`);
  const dir = tempDir("mailcloak-hosts-");
  const passwordFile = join(dir, "store-password");
  writeFileSync(passwordFile, `${pg.password}\n`, { mode: 0o600 });
  // Host A's first mailcloakctl runs (init, the usual rows) take --db URL: the password comes from the environment.
  process.env.MAILCLOAK_STORE_PASSWORD = pg.password;
  const store: StackStore = { url: pg.url(), passwordFile, dovecot: { user: "dovecot_auth", password: DOVECOT_PW }, seed: true };
  // One Redis for both hosts' quota counters.
  redis = await RedisServer.start();
  const config = { quotas: { backend: "redis", redis: { url: redis.url } } };
  a = await MailStack.start({ store, config });
  await pg.sql("GRANT SELECT (app_id, secret_hash, enabled) ON apps TO dovecot_auth", "mailcloak");
  b = await MailStack.start({ store: { ...store, seed: false }, config });
});

after(async () => {
  delete process.env.MAILCLOAK_STORE_PASSWORD;
  await b?.stop();
  await a?.stop();
  await pg?.dispose();
  await redis?.stop();
});

test("both hosts answer from the one PostgreSQL: the rows host A created are host B's", opts, async () => {
  for (const host of [a, b]) {
    const c = await Client.connect(host.socketmapSocket);
    try {
      assert.equal(await socketmapQuery(c, "alias", "sales@d1.test"), "OK alice@d1.test");
      assert.equal(await socketmapQuery(c, "alias", "old@d1.test"), "NOTFOUND");
    } finally {
      c.destroy();
    }
  }
  assert.ok(!a.daemon.output.includes(pg.password) && !b.daemon.output.includes(pg.password), "no daemon logs the password");
});

test("an alias added with host A's mailcloakctl is delivered through host B within 1 s", opts, async () => {
  const r = await ctlOn(a, "aliases", "add", "fleet@d1.test", "dave");
  assert.equal(r.code, 0, r.stderr);
  const t0 = Date.now();
  const c = await Client.connect(b.socketmapSocket);
  try {
    await waitFor("host B to answer the new alias", async () => (await socketmapQuery(c, "alias", "fleet@d1.test")) === "OK dave@d1.test", 1000, 10);
  } finally {
    c.destroy();
  }
  const seenMs = Date.now() - t0;
  const subject = uniqueSubject("fleet");
  const sent = await smtp({ port: b.smtpPort, from: "someone@ext.test", to: "fleet@d1.test", quitAfter: null, headers: { Subject: subject } });
  assert.match(sent.endOfData ?? "", QUEUED, `${sent.transcript}\n${b.diagnostics()}`);
  await waitForMessage(b.maildirNew("d1.test", "dave"), subject, 20_000);
  console.log(`alias added on A answered by B after ${seenMs} ms, delivered through B's Postfix`);
});

test("an app password created on host A authenticates on host B (Dovecot passdb sql on PostgreSQL)", opts, async () => {
  const add = await ctlOn(a, "apps", "add", "fleetapp", "fleet-app-secret-1");
  assert.equal(add.code, 0, add.stderr);
  assert.equal((await ctlOn(a, "apps", "allow", "fleetapp", "sales@d1.test")).code, 0);
  await waitFor("host B's daemon to know the app", async () => {
    const c = await Client.connect(b.socketmapSocket);
    try {
      return (await socketmapQuery(c, "senders", "sales@d1.test")).includes("fleetapp");
    } finally {
      c.destroy();
    }
  }, 1000, 10);
  const subject = uniqueSubject("app-on-b");
  const r = await smtp({
    port: b.submissionPort, from: "sales@d1.test", to: "sales@d1.test", auth: { user: "fleetapp", password: "fleet-app-secret-1" },
    quitAfter: null, headers: { Subject: subject },
  });
  assert.match(r.auth ?? "", /^235 /, `${r.transcript}\n${b.diagnostics()}`);
  assert.match(r.endOfData ?? "", QUEUED, `${r.transcript}\n${b.diagnostics()}`);
  await waitForMessage(b.maildirNew("d1.test", "alice"), subject, 20_000);
  const wrong = await smtp({ port: b.submissionPort, from: "sales@d1.test", to: "x@ext.test", auth: { user: "fleetapp", password: "not-it" }, clientAddress: "127.0.0.21", quitAfter: "AUTH" });
  assert.match(wrong.auth ?? "", /^535 /, "a wrong app password is refused on B");
  assert.ok(!b.dovecotLog().includes(DOVECOT_PW), "Dovecot does not log its database password");
});

test("a quota set on host A counts messages sent through both hosts (limits in PostgreSQL, counters in one Redis)", opts, async () => {
  const set = await ctlOn(a, "quota", "set", "alice", "--per-hour", "3");
  assert.equal(set.code, 0, set.stderr);
  const send = (host: MailStack): ReturnType<typeof smtp> => smtp({
    port: host.submissionPort, from: "alice@d1.test", to: "dave@d2.test", auth: { user: "alice", password: "alice-pw" },
    quitAfter: null, headers: { Subject: uniqueSubject("quota") },
  });
  for (const host of [a, b, a]) {
    const r = await send(host);
    assert.match(r.endOfData ?? "", QUEUED, `${r.transcript}\n${host.diagnostics()}`);
  }
  const fourth = await send(b);
  assert.equal(fourth.endOfData, "450 4.7.1 <END-OF-MESSAGE>: End-of-data rejected: Sending quota exceeded, try again later", `${fourth.transcript}\n${b.diagnostics()}`);
});

test("with host A's mailcloak stopped, host B goes on serving", opts, async () => {
  await a.daemon.stop();
  const r = await ctlOn(b, "aliases", "add", "late@d1.test", "alice");
  assert.equal(r.code, 0, r.stderr);
  const c = await Client.connect(b.socketmapSocket);
  try {
    await waitFor("host B to answer", async () => (await socketmapQuery(c, "alias", "late@d1.test")) === "OK alice@d1.test", 1000, 10);
  } finally {
    c.destroy();
  }
  const subject = uniqueSubject("b-alone");
  const sent = await smtp({ port: b.smtpPort, from: "someone@ext.test", to: "late@d1.test", quitAfter: null, headers: { Subject: subject } });
  assert.match(sent.endOfData ?? "", QUEUED, `${sent.transcript}\n${b.diagnostics()}`);
  await waitForMessage(b.maildirNew("d1.test", "alice"), subject, 20_000);
  // Host A's Postfix without its mailcloak defers (TEMP), never bounces.
  const onA = await smtp({ port: a.smtpPort, from: "someone@ext.test", to: "late@d1.test" });
  assert.match(onA.rcpt ?? "", /^4\d\d /, `host A without mailcloak defers: ${onA.transcript}`);
  await a.restartDaemon();
});
