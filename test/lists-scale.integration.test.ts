// Lists against the Keycloak emulator where the real server cannot be made to
// misbehave or grow cheaply: a list of 2,000 members (paged reads, one
// expansion per TTL however many lookups; time and requests measured), a
// list too large for Postfix's socketmap reply limit (TEMP and one error
// line, never a truncated list), and an outage (an expansion that cannot be read
// is TEMP / 451 while nothing is cached: never fewer members).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Client, ctlOk, DaemonProcess, policyQuery, socketmapQuery } from "./helpers/daemon.js";
import { servedDaemon, type ServedDaemon } from "./helpers/fixtures.js";
import { AUTH, RCPT } from "./helpers/tables.js";
import { ACTIONS } from "../src/handlers/policy.js";
import { startFixtureFake } from "./helpers/fixture-users.js";
import { keycloakIdpFor } from "./helpers/directory.js";
import type { FakeKeycloak } from "./fake-keycloak.js";

let fake: FakeKeycloak;
let served: ServedDaemon | undefined;
let daemon: DaemonProcess;
let sm: Client;
let pol: Client;
const BIG = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  fake = await startFixtureFake();
  fake.addGroup("/lists/big", { mail: ["big@d1.test"], mailPosting: ["anyone"] });
  // A list whose address is a user's primary email, and a second group with team's address.
  fake.addGroup("/lists/alice-list", { mail: ["Alice@D1.test"], mailPosting: ["anyone"] });
  fake.addMember("lou", "/lists/alice-list");
  fake.addGroup("/lists/zz-team-again", { mail: ["team@d1.test"], mailPosting: ["anyone"] });
  fake.addMember("lou", "/lists/zz-team-again");
  for (let i = 0; i < BIG; i++) {
    const name = `m${String(i).padStart(4, "0")}`;
    fake.addUser({ username: name, email: `${name}@d1.test`, enabled: true });
    fake.addMember(name, "/lists/big");
  }
  // 1,500 members with 70-character addresses: about 106 kB of expansion.
  fake.addGroup("/lists/huge", { mail: ["huge@d1.test"], mailPosting: ["anyone"] });
  for (let i = 0; i < 1500; i++) {
    const name = `h${String(i).padStart(4, "0")}-${"x".repeat(56)}`;
    fake.addUser({ username: name, email: `${name}@d1.test`, enabled: true });
    fake.addMember(name, "/lists/huge");
  }
  served = await servedDaemon({
    config: {
      ...keycloakIdpFor(fake.url, { timeout_ms: 3000, cache_ttl_seconds: 300 }),
      cache: { stale_seconds: 2 },
      lists: { parent_group: "/lists" },
    },
  });
  ({ daemon, sm, pol } = served);
});

after(async () => {
  await served?.close();
  await fake?.stop();
});

const reads = () => daemon.records().filter((r) => r.msg === "lists read from Keycloak");

test("2,000 members: paged reads, one expansion for many lookups", async (t) => {
  fake.resetCounters();
  const started = performance.now();
  const first = await socketmapQuery(sm, "alias", "big@d1.test");
  const firstMs = performance.now() - started;
  const members = first.slice(3).split(",");
  assert.equal(members.length, BIG);
  assert.equal(members[0], "m0000@d1.test");
  assert.equal(new Set(members).size, BIG);
  const loopStart = performance.now();
  for (let i = 0; i < 200; i++) assert.equal(await socketmapQuery(sm, "alias", "big@d1.test"), first);
  for (let i = 0; i < 50; i++) assert.equal(await policyQuery(pol, RCPT({ recipient: "big@d1.test" })), ACTIONS.dunno);
  const loopMs = performance.now() - loopStart;
  await sleep(200);
  assert.equal(reads().length, 1, "one expansion within the TTL");
  const rec = reads()[0]!;
  // page_size 500: /lists by path, its children, and per list the members in pages of 500.
  assert.ok(fake.groupQueries <= 20, `${fake.groupQueries} group requests`);
  assert.ok(fake.groupQueries >= 2 + Math.ceil(BIG / 500), `paged: ${fake.groupQueries} group requests`);
  assert.equal(fake.userQueries, 1, "no per-member user lookups: one, for the list address (no user may have it)");
  t.diagnostic(`2,000-member list: first expansion ${firstMs.toFixed(0)} ms (read of all lists ${String(rec.ms)} ms, ${fake.groupQueries} Keycloak requests); 250 more lookups in ${loopMs.toFixed(0)} ms`);
});

test("a list larger than socketmap_max_reply_size: TEMP and one error line, never a truncated list", async () => {
  for (let i = 0; i < 2; i++) {
    const r = await socketmapQuery(sm, "alias", "huge@d1.test");
    assert.ok(r === "TEMP list expansion exceeds socketmap_max_reply_size", r.slice(0, 80));
  }
  await sleep(100);
  const lines = daemon.records().filter((r) => String(r.msg).startsWith("list expansion is larger than Postfix's socketmap_max_reply_size"));
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.address, "huge@d1.test");
  assert.ok(Number(lines[0]!.bytes) > 100_000);
});

test("an outage never shrinks a list: with nothing cached it is TEMP / 451, and the whole list once Keycloak answers", async () => {
  const full = await socketmapQuery(sm, "alias", "team@d1.test");
  assert.equal(full, "OK lars@d1.test,lena@d1.test,lou@d1.test");
  fake.mode = "users500";
  try {
    daemon.signal("SIGUSR1"); // a flush empties the lists too: nothing stale left, so TEMP
    await sleep(300);
    assert.equal(await socketmapQuery(sm, "alias", "team@d1.test"), "TEMP identity provider lookup failed");
    assert.equal(await policyQuery(pol, AUTH("lena", "lena@d1.test", "team@d1.test")), ACTIONS.tempfailIdp);
  } finally {
    fake.mode = "ok";
  }
  assert.equal(await socketmapQuery(sm, "alias", "team@d1.test"), full);
});

test("a list address that is a user's email: the user wins, one warning; a second group with a list's address is ignored, one warning", async () => {
  for (let i = 0; i < 2; i++) assert.equal(await socketmapQuery(sm, "alias", "alice@d1.test"), "NOTFOUND");
  assert.equal(await socketmapQuery(sm, "mailbox", "alice@d1.test"), "OK d1.test/alice/");
  assert.equal(await policyQuery(pol, RCPT({ recipient: "alice@d1.test" })), ACTIONS.dunno);
  assert.equal(await socketmapQuery(sm, "alias", "team@d1.test"), "OK lars@d1.test,lena@d1.test,lou@d1.test");
  await sleep(100);
  const user = daemon.records().filter((r) => r.msg === "list address is also a user's email: the user's mailbox wins, the list is ignored");
  assert.equal(user.length, 1);
  assert.equal(user[0]!.address, "alice@d1.test");
  const dup = daemon.records().filter((r) => r.msg === "two list groups have the same address; the first (by name) is used");
  assert.deepEqual(dup.map((r) => [r.address, r.kept, r.ignored]), [["team@d1.test", "/lists/team", "/lists/zz-team-again"]]);
});

test("an outage after a read: the last expansion is served for cache.stale_seconds, then TEMP, never a shorter list", async () => {
  const d = await DaemonProcess.start({
    config: {
      ...keycloakIdpFor(fake.url, { timeout_ms: 1000, cache_ttl_seconds: 1 }),
      cache: { negative_ttl_seconds: 1, stale_seconds: 3 },
      lists: { parent_group: "/lists" },
    },
  });
  const c = await Client.connect(d.socketmapSocket);
  try {
    await ctlOk(d.db, "domains", "add", "d1.test");
    const full = "OK lars@d1.test,lena@d1.test,lou@d1.test";
    assert.equal(await socketmapQuery(c, "alias", "team@d1.test"), full);
    fake.mode = "users500";
    await sleep(1500); // past the TTL, inside the stale window
    assert.equal(await socketmapQuery(c, "alias", "team@d1.test"), full);
    await sleep(3500); // past TTL + stale_seconds
    assert.equal(await socketmapQuery(c, "alias", "team@d1.test"), "TEMP identity provider lookup failed");
    await sleep(200); // the log is written asynchronously
    assert.ok(d.records().some((r) => r.msg === "lists cannot be read from Keycloak; serving the last ones read"), d.output.slice(-2000));
  } finally {
    fake.mode = "ok";
    c.destroy();
    await d.cleanup();
  }
});
