// Distribution lists from Keycloak groups, against the real Keycloak's test
// realm (test/fixtures/keycloak-realm.json: /lists/team with a subgroup, a
// disabled member and one without email; /lists/board open to anyone, its
// members may send as it; /lists/bad and /lists/foreign with unusable
// addresses): the alias map's expansion, the policy's list rules, send-as,
// and one paged read per TTL. Nothing here changes the realm (the shared
// server's /lists is read by other files at the same time): a member removed
// is lists-rules.integration.test.ts's, under a parent group of its own.

import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { ctlOk, policyQuery, socketmapQuery } from "./helpers/daemon.js";
import { servedListsDaemon, suiteFixture } from "./helpers/fixtures.js";
import { AUTH, RCPT } from "./helpers/tables.js";
import { releaseKeycloak, sharedKeycloak } from "./helpers/keycloak-real.js";
import { ACTIONS } from "../src/handlers/policy.js";
import { startFixtureFake } from "./helpers/fixture-users.js";
import { keycloakIdpFor } from "./helpers/directory.js";
import type { FakeKeycloak } from "./fake-keycloak.js";

/** Where the lists come from (read only: the real realm is shared with other files, which read /lists too). */
interface ListIdp {
  readonly baseUrl: string;
  stop(): Promise<void>;
}

const TEAM = "lars@d1.test,lena@d1.test,lou@d1.test";

function listSuite(name: string, open: () => Promise<ListIdp | { skip: string }>): void {
describe(name, () => {
const f = suiteFixture({
  open,
  serve: (kc: ListIdp) => servedListsDaemon({
    config: {
      ...keycloakIdpFor(kc.baseUrl, { timeout_ms: 10_000, cache_ttl_seconds: 300 }),
      lists: { parent_group: "/lists", page_size: 10 },
      daemon: { pid_file: null },
    },
  }, "team@d1.test"),
  dispose: (kc) => kc.stop(),
});
const reads = (): number => f.served!.reads();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("the alias map expands a list: subgroups included, disabled and email-less members left out, duplicates removed, order stable", async (t) => {
  if (!f.source) return t.skip(f.skip);
  assert.equal(await socketmapQuery(f.sm, "alias", "team@d1.test"), `OK ${TEAM}`);
  assert.equal(await socketmapQuery(f.sm, "alias", "TEAM+tag@D1.test"), `OK ${TEAM}`);
  assert.equal(await socketmapQuery(f.sm, "alias", "board@d1.test"), "OK lou@d1.test");
  assert.equal(await socketmapQuery(f.sm, "alias", "nolist@d1.test"), "NOTFOUND");
  await sleep(200);
  assert.equal(reads(), 1, "one read for all lookups within the TTL");
  const rec = f.daemon.records().find((r) => r.msg === "lists read from Keycloak")!;
  assert.equal(rec.lists, 2);
  assert.equal(rec.members, 4);
  assert.ok(Number(rec.requests) >= 6, `paged reads: ${String(rec.requests)}`);
});

test("a malformed or foreign list address is ignored with one warning each", async (t) => {
  if (!f.source) return t.skip(f.skip);
  assert.equal(await socketmapQuery(f.sm, "alias", "x@elsewhere.test"), "NOTFOUND");
  const warns = f.daemon.records().filter((r) => r.component === "lists" && r.level === 40);
  assert.deepEqual(warns.map((r) => `${String(r.group)}: ${String(r.msg)}`).sort(), [
    "/lists/bad: list ignored: its mail attribute is not an address",
    "/lists/foreign: list ignored: its address is not in a local domain",
  ]);
});

test("policy: a list is a local recipient; members-only by default, board open to anyone", async (t) => {
  if (!f.source) return t.skip(f.skip);
  assert.equal(await policyQuery(f.pol, RCPT({ recipient: "team@d1.test" })), ACTIONS.listMembersOnly);
  assert.equal(await policyQuery(f.pol, AUTH("alice", "alice@d1.test", "team@d1.test")), ACTIONS.listMembersOnly);
  assert.equal(await policyQuery(f.pol, AUTH("lena", "lena@d1.test", "team@d1.test")), ACTIONS.dunno);
  assert.equal(await policyQuery(f.pol, AUTH("lou", "lou@d1.test", "team+x@d1.test")), ACTIONS.dunno, "a member of a subgroup is a member");
  assert.equal(await policyQuery(f.pol, RCPT({ recipient: "board@d1.test" })), ACTIONS.dunno);
  assert.equal(await policyQuery(f.pol, RCPT({ recipient: "nolist@d1.test" })), ACTIONS.noSuchUser);
});

test("send-as: board's members may send as it (policy and senders map); nobody may send as team", async (t) => {
  if (!f.source) return t.skip(f.skip);
  assert.equal(await policyQuery(f.pol, AUTH("lou", "board@d1.test")), ACTIONS.dunno);
  assert.equal(await policyQuery(f.pol, AUTH("lena", "board@d1.test")), ACTIONS.notOwned);
  assert.equal(await policyQuery(f.pol, AUTH("lena", "team@d1.test")), ACTIONS.notOwned);
  assert.equal(await socketmapQuery(f.sm, "senders", "board@d1.test"), "OK lou");
  assert.equal(await socketmapQuery(f.sm, "senders", "team@d1.test"), "NOTFOUND");
});

test("a list address that is also an SQLite alias: the alias wins, one warning", async (t) => {
  if (!f.source) return t.skip(f.skip);
  await ctlOk(f.daemon.db, "aliases", "add", "board@d1.test", "alice");
  try {
    assert.equal(await socketmapQuery(f.sm, "alias", "board@d1.test"), "OK alice@d1.test");
    const before = reads();
    for (let i = 0; i < 2; i++) { // two reads of the lists, each seeing the conflict
      f.daemon.signal("SIGUSR1");
      await sleep(300);
      assert.equal(await socketmapQuery(f.sm, "alias", "team@d1.test"), `OK ${TEAM}`);
      assert.equal(await socketmapQuery(f.sm, "alias", "board@d1.test"), "OK alice@d1.test");
    }
    await sleep(100);
    assert.equal(reads(), before + 2);
    const bad = f.daemon.records().filter((r) => r.component === "lists" && (r.group === "/lists/bad" || r.group === "/lists/foreign"));
    assert.equal(bad.length, 2, "the bad and foreign addresses are still logged once each, however many reads");
    const w = f.daemon.records().filter((r) => r.msg === "list address is also an SQLite alias: the alias wins, the list is ignored");
    assert.equal(w.length, 1);
    assert.equal(w[0]!.address, "board@d1.test");
  } finally {
    await ctlOk(f.daemon.db, "aliases", "del", "board@d1.test");
  }
});
});
}

listSuite("real Keycloak", async () => {
  const s = await sharedKeycloak();
  if ("skip" in s) return s;
  return {
    baseUrl: s.baseUrl,
    stop: () => releaseKeycloak(),
  };
});

listSuite("Keycloak emulator", async () => {
  const fake: FakeKeycloak = await startFixtureFake();
  return {
    baseUrl: fake.url,
    stop: () => fake.stop(),
  };
});
