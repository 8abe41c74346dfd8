// The list choices the fixture realm's /lists does not hold, on the emulator
// and on the real Keycloak, each under a parent group of its own
// (helpers/list-groups.ts; the shared realm's /lists stays as the other files
// expect it):
//   open   open@d1.test   mailPosting anyone                 lena
//   local  local@d1.test  mailPosting local, mailSendAs {parent}/desk   lena
//   desk   (no address: a group, not a list)                  lars, liv (disabled)
//   odd    odd@d1.test    mailPosting "sometimes" (unknown)   lena
//   ghost  ghost@d1.test  mailSendAs /no/such/group           lena
//   empty  empty@d1.test  only liv (disabled) and leo (no email)
//   roster roster@d1.test lena; roster/sub: lars (removed and re-added here)
// and lookups that arrive together after a flush sharing one read.

import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { Client, policyQuery, socketmapQuery } from "./helpers/daemon.js";
import { servedListsDaemon, suiteFixture } from "./helpers/fixtures.js";
import { AUTH, RCPT } from "./helpers/tables.js";
import { EmulatorListGroups, RealListGroups, type ListGroups } from "./helpers/list-groups.js";
import { ACTIONS } from "../src/handlers/policy.js";

function rulesSuite(name: string, open: () => Promise<ListGroups | { skip: string }>, keycloakTimeoutMs: number): void {
  describe(name, () => {
    const f = suiteFixture({
      open,
      serve: async (dir: ListGroups) => {
        const p = dir.parentGroup;
        await dir.addGroup("open", { mail: ["open@d1.test"], mailPosting: ["anyone"] });
        await dir.addGroup("desk");
        await dir.addGroup("local", { mail: ["local@d1.test"], mailPosting: ["local"], mailSendAs: [`${p}/desk`] });
        await dir.addGroup("odd", { mail: ["odd@d1.test"], mailPosting: ["sometimes"] });
        await dir.addGroup("ghost", { mail: ["ghost@d1.test"], mailSendAs: ["/no/such/group"] });
        await dir.addGroup("empty", { mail: ["empty@d1.test"] });
        await dir.addGroup("roster", { mail: ["roster@d1.test"] });
        await dir.addGroup("roster/sub");
        await dir.addMember("lena", "roster");
        await dir.addMember("lars", "roster/sub");
        for (const g of ["open", "local", "odd", "ghost"]) await dir.addMember("lena", g);
        for (const u of ["lars", "liv"]) await dir.addMember(u, "desk");
        for (const u of ["liv", "leo"]) await dir.addMember(u, "empty");
        return servedListsDaemon({
          config: {
            idp: dir.idp({ timeout_ms: keycloakTimeoutMs, cache_ttl_seconds: 300 }),
            lists: { parent_group: p },
            daemon: { pid_file: null },
          },
        }, "open@d1.test");
      },
      dispose: (dir) => dir.dispose(),
    });
    const reads = (): number => f.served!.reads();
    const warnings = (): string[] => f.daemon.records().filter((r) => r.component === "lists" && r.level === 40)
      .map((r) => `${String(r.group).slice(f.source!.parentGroup.length)}: ${String(r.msg)}`).sort();

    test("anyone: an outsider may write; local: any logged-in sender, nobody from outside", async (t) => {
      if (!f.source) return t.skip(f.skip);
      assert.equal(await policyQuery(f.pol, RCPT({ recipient: "open@d1.test" })), ACTIONS.dunno);
      assert.equal(await policyQuery(f.pol, RCPT({ recipient: "local@d1.test" })), ACTIONS.listLocalOnly);
      assert.equal(ACTIONS.listLocalOnly, "550 5.7.1 Only local senders may write to this list", "the README's reply");
      assert.equal(await policyQuery(f.pol, AUTH("alice", "alice@d1.test", "local@d1.test")), ACTIONS.dunno, "a logged-in non-member");
      assert.equal(await policyQuery(f.pol, AUTH("lena", "lena@d1.test", "local+x@d1.test")), ACTIONS.dunno);
    });

    test("an unknown mailPosting is the default (members only), with one warning", async (t) => {
      if (!f.source) return t.skip(f.skip);
      assert.equal(await policyQuery(f.pol, RCPT({ recipient: "odd@d1.test" })), ACTIONS.listMembersOnly);
      assert.equal(await policyQuery(f.pol, AUTH("alice", "alice@d1.test", "odd@d1.test")), ACTIONS.listMembersOnly);
      assert.equal(await policyQuery(f.pol, AUTH("lena", "lena@d1.test", "odd@d1.test")), ACTIONS.dunno);
    });

    test("a list with no usable member is no recipient: NOTFOUND, 550 5.1.1 No such user", async (t) => {
      if (!f.source) return t.skip(f.skip);
      assert.equal(await socketmapQuery(f.sm, "alias", "empty@d1.test"), "NOTFOUND");
      assert.equal(await policyQuery(f.pol, RCPT({ recipient: "empty@d1.test" })), ACTIONS.noSuchUser);
    });

    test("mailSendAs a group path: its enabled members may send as the list (policy and senders map); a missing group: nobody, one warning", async (t) => {
      if (!f.source) return t.skip(f.skip);
      assert.equal(await policyQuery(f.pol, AUTH("lars", "local@d1.test")), ACTIONS.dunno, "lars is in the send-as group, not in the list");
      assert.equal(await policyQuery(f.pol, AUTH("lena", "local@d1.test")), ACTIONS.notOwned, "a member of the list, not of the send-as group");
      assert.equal(await socketmapQuery(f.sm, "senders", "local@d1.test"), "OK lars");
      assert.equal(await policyQuery(f.pol, AUTH("lena", "ghost@d1.test")), ACTIONS.notOwned);
      assert.equal(await socketmapQuery(f.sm, "senders", "ghost@d1.test"), "NOTFOUND");
      assert.equal(await policyQuery(f.pol, AUTH("lena", "open@d1.test")), ACTIONS.notOwned, "nobody by default");
      await sleep(100);
      assert.deepEqual(warnings(), [
        "/ghost: list mailSendAs is neither \"members\" nor an existing group path: nobody may send as it",
        "/odd: list mailPosting is not one of anyone, members, local; using members",
      ]);
    });

    test("a member removed in Keycloak stays until the TTL or a flush (SIGUSR1), then is gone; back when re-added", async (t) => {
      const dir = f.source;
      if (!dir) return t.skip(f.skip);
      const both = "OK lena@d1.test,lars@d1.test";
      assert.equal(await socketmapQuery(f.sm, "alias", "roster@d1.test"), both);
      assert.equal(await policyQuery(f.pol, AUTH("lars", "lars@d1.test", "roster@d1.test")), ACTIONS.dunno, "a subgroup's member may write");
      await dir.removeMember("lars", "roster/sub");
      assert.equal(await socketmapQuery(f.sm, "alias", "roster@d1.test"), both, "cached for the TTL (300 s)");
      const before = reads();
      f.daemon.signal("SIGUSR1");
      await sleep(300);
      assert.equal(await socketmapQuery(f.sm, "alias", "roster@d1.test"), "OK lena@d1.test");
      assert.equal(await policyQuery(f.pol, AUTH("lars", "lars@d1.test", "roster@d1.test")), ACTIONS.listMembersOnly);
      assert.equal(reads(), before + 1);
      await dir.addMember("lars", "roster/sub");
      f.daemon.signal("SIGUSR1");
      await sleep(300);
      assert.equal(await socketmapQuery(f.sm, "alias", "roster@d1.test"), both);
    });

    test("lookups arriving together after a flush share one read; the warnings are not repeated", async (t) => {
      if (!f.source) return t.skip(f.skip);
      const before = reads();
      f.daemon.signal("SIGUSR1");
      await sleep(300);
      // Eight connections ready, then eight lookups sent at once: none finds a snapshot, and the read
      // (several Keycloak round trips) outlasts their arrival, so without coalescing each would read.
      const clients = await Promise.all(Array.from({ length: 8 }, () => Client.connect(f.daemon.socketmapSocket)));
      try {
        const answers = await Promise.all(clients.map((c, i) => socketmapQuery(c, "alias", i % 2 === 0 ? "open@d1.test" : "local@d1.test")));
        assert.deepEqual(answers, clients.map(() => "OK lena@d1.test"));
      } finally {
        for (const c of clients) c.destroy();
      }
      await sleep(200);
      assert.equal(reads(), before + 1, "one read for eight concurrent lookups");
      const last = f.daemon.records().filter((r) => r.msg === "lists read from Keycloak").at(-1)!;
      assert.ok(Number(last.requests) >= 8, `the read took ${String(last.requests)} Keycloak requests`);
      assert.equal(warnings().length, 2, "each problem is logged once, not once per read");
    });
  });
}

rulesSuite("list rules, real Keycloak", () => RealListGroups.start(), 10_000);
rulesSuite("list rules, Keycloak emulator", () => EmulatorListGroups.start(), 3000);
