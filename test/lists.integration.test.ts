// Distribution lists from Keycloak groups, against the real Keycloak's test
// realm (test/fixtures/keycloak-realm.json: /lists/team with a subgroup, a
// disabled member and one without email; /lists/board open to anyone, its
// members may send as it; /lists/bad and /lists/foreign with unusable
// addresses): the alias map's expansion, the policy's list rules, send-as,
// a member removed in Keycloak gone after a cache flush, and one paged read
// per TTL.

import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { ctlOk, policyQuery, socketmapQuery, type Client, type DaemonProcess } from "./helpers/daemon.js";
import { servedDaemon, type ServedDaemon } from "./helpers/fixtures.js";
import { AUTH, RCPT } from "./helpers/tables.js";
import { KeycloakAdmin, releaseKeycloak, sharedKeycloak } from "./helpers/keycloak-real.js";
import { ACTIONS } from "../src/handlers/policy.js";
import { startFixtureFake } from "./helpers/fixture-users.js";
import { keycloakIdpFor } from "./helpers/directory.js";
import type { FakeKeycloak } from "./fake-keycloak.js";

/** Where the lists come from, and how a test changes a membership there. */
interface ListIdp {
  readonly baseUrl: string;
  removeLouFromCore(): Promise<() => Promise<void>>;
  stop(): Promise<void>;
}

const TEAM = "lars@d1.test,lena@d1.test,lou@d1.test";

function listSuite(name: string, open: () => Promise<ListIdp | { skip: string }>): void {
describe(name, () => {
let kc: ListIdp | null = null;
let skip = "";
let served: ServedDaemon | undefined;
let daemon: DaemonProcess;
let sm: Client;
let pol: Client;

before(async () => {
  const s = await open();
  if ("skip" in s) {
    skip = s.skip;
    return;
  }
  kc = s;
  served = await servedDaemon({
    config: {
      ...keycloakIdpFor(kc.baseUrl, { timeout_ms: 5000, cache_ttl_seconds: 300 }),
      lists: { parent_group: "/lists", page_size: 10 },
      daemon: { pid_file: null },
    },
  });
  ({ daemon, sm, pol } = served);
});

after(async () => {
  await served?.close();
  await kc?.stop();
});

const reads = (): number => daemon.records().filter((r) => r.msg === "lists read from Keycloak").length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("the alias map expands a list: subgroups included, disabled and email-less members left out, duplicates removed, order stable", async (t) => {
  if (!kc) return t.skip(skip);
  assert.equal(await socketmapQuery(sm, "alias", "team@d1.test"), `OK ${TEAM}`);
  assert.equal(await socketmapQuery(sm, "alias", "TEAM+tag@D1.test"), `OK ${TEAM}`);
  assert.equal(await socketmapQuery(sm, "alias", "board@d1.test"), "OK lou@d1.test");
  assert.equal(await socketmapQuery(sm, "alias", "nolist@d1.test"), "NOTFOUND");
  await sleep(200);
  assert.equal(reads(), 1, "one read for all lookups within the TTL");
  const rec = daemon.records().find((r) => r.msg === "lists read from Keycloak")!;
  assert.equal(rec.lists, 2);
  assert.equal(rec.members, 4);
  assert.ok(Number(rec.requests) >= 6, `paged reads: ${String(rec.requests)}`);
});

test("a malformed or foreign list address is ignored with one warning each", async (t) => {
  if (!kc) return t.skip(skip);
  assert.equal(await socketmapQuery(sm, "alias", "x@elsewhere.test"), "NOTFOUND");
  const warns = daemon.records().filter((r) => r.component === "lists" && r.level === 40);
  assert.deepEqual(warns.map((r) => `${String(r.group)}: ${String(r.msg)}`).sort(), [
    "/lists/bad: list ignored: its mail attribute is not an address",
    "/lists/foreign: list ignored: its address is not in a local domain",
  ]);
});

test("policy: a list is a local recipient; members-only by default, board open to anyone", async (t) => {
  if (!kc) return t.skip(skip);
  assert.equal(await policyQuery(pol, RCPT({ recipient: "team@d1.test" })), ACTIONS.listMembersOnly);
  assert.equal(await policyQuery(pol, AUTH("alice", "alice@d1.test", "team@d1.test")), ACTIONS.listMembersOnly);
  assert.equal(await policyQuery(pol, AUTH("lena", "lena@d1.test", "team@d1.test")), ACTIONS.dunno);
  assert.equal(await policyQuery(pol, AUTH("lou", "lou@d1.test", "team+x@d1.test")), ACTIONS.dunno, "a member of a subgroup is a member");
  assert.equal(await policyQuery(pol, RCPT({ recipient: "board@d1.test" })), ACTIONS.dunno);
  assert.equal(await policyQuery(pol, RCPT({ recipient: "nolist@d1.test" })), ACTIONS.noSuchUser);
});

test("send-as: board's members may send as it (policy and senders map); nobody may send as team", async (t) => {
  if (!kc) return t.skip(skip);
  assert.equal(await policyQuery(pol, AUTH("lou", "board@d1.test")), ACTIONS.dunno);
  assert.equal(await policyQuery(pol, AUTH("lena", "board@d1.test")), ACTIONS.notOwned);
  assert.equal(await policyQuery(pol, AUTH("lena", "team@d1.test")), ACTIONS.notOwned);
  assert.equal(await socketmapQuery(sm, "senders", "board@d1.test"), "OK lou");
  assert.equal(await socketmapQuery(sm, "senders", "team@d1.test"), "NOTFOUND");
});

test("a member removed in Keycloak is gone after a cache flush (SIGUSR1), and back when re-added", async (t) => {
  if (!kc) return t.skip(skip);
  const restore = await kc.removeLouFromCore();
  try {
    assert.equal(await socketmapQuery(sm, "alias", "team@d1.test"), `OK ${TEAM}`, "cached until the TTL or a flush");
    const before = reads();
    daemon.signal("SIGUSR1");
    await sleep(300);
    assert.equal(await socketmapQuery(sm, "alias", "team@d1.test"), "OK lars@d1.test,lena@d1.test");
    assert.equal(await policyQuery(pol, AUTH("lou", "lou@d1.test", "team@d1.test")), ACTIONS.listMembersOnly);
    assert.equal(reads(), before + 1);
  } finally {
    await restore();
  }
  daemon.signal("SIGUSR1");
  await sleep(300);
  assert.equal(await socketmapQuery(sm, "alias", "team@d1.test"), `OK ${TEAM}`);
});

test("a list address that is also an SQLite alias: the alias wins, one warning", async (t) => {
  if (!kc) return t.skip(skip);
  await ctlOk(daemon.db, "aliases", "add", "board@d1.test", "alice");
  try {
    assert.equal(await socketmapQuery(sm, "alias", "board@d1.test"), "OK alice@d1.test");
    daemon.signal("SIGUSR1");
    await sleep(300);
    assert.equal(await socketmapQuery(sm, "alias", "team@d1.test"), `OK ${TEAM}`);
    await sleep(100);
    const w = daemon.records().filter((r) => r.msg === "list address is also an SQLite alias: the alias wins, the list is ignored");
    assert.equal(w.length, 1);
    assert.equal(w[0]!.address, "board@d1.test");
  } finally {
    await ctlOk(daemon.db, "aliases", "del", "board@d1.test");
  }
});
});
}

listSuite("real Keycloak", async () => {
  const s = await sharedKeycloak();
  if ("skip" in s) return s;
  const admin = new KeycloakAdmin(s.baseUrl);
  return {
    baseUrl: s.baseUrl,
    async removeLouFromCore() {
      const lou = await admin.userId("lou");
      const groups = await admin.ok("GET", `/users/${lou}/groups`) as { id: string; path: string }[];
      const core = groups.find((g) => g.path === "/lists/team/team-core")!;
      await admin.ok("DELETE", `/users/${lou}/groups/${core.id}`);
      return async () => void await admin.ok("PUT", `/users/${lou}/groups/${core.id}`);
    },
    stop: () => releaseKeycloak(),
  };
});

listSuite("Keycloak emulator", async () => {
  const fake: FakeKeycloak = await startFixtureFake();
  return {
    baseUrl: fake.url,
    removeLouFromCore() {
      fake.removeMember("lou", "/lists/team/team-core");
      return Promise.resolve(async () => fake.addMember("lou", "/lists/team/team-core"));
    },
    stop: () => fake.stop(),
  };
});
