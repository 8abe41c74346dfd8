// The daemon with the Keycloak identity source, over the real sockets. What
// depends only on the directory's users (the policy and socketmap tables of
// helpers/tables.ts, lookups, attribute changes, cache flush) runs against
// the emulator and a real Keycloak, both holding the fixture realm; token
// reuse, coalescing, the shared failure mode, stale answers and config reload
// use the emulator's knobs (latency, revocation, outages on demand; the SMTP
// suite shows outages of a real server).

import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { Client, ctlOk, DaemonProcess, policyQuery, socketmapQuery, tempDir, mergeTree, type ConfigTree } from "./helpers/daemon.js";
import type { FakeKeycloak } from "./fake-keycloak.js";
import { keycloakIdpFor, tableSources } from "./helpers/directory.js";
import { fixtureDeclaredAttributes, startFixtureFake } from "./helpers/fixture-users.js";
import { policyTable, socketmapTable } from "./helpers/tables.js";
import { ACTIONS } from "../src/handlers/policy.js";

const RCPT = (recipient: string) => ({ protocol_state: "RCPT", sender: "ext@ext.test", recipient });

/** A daemon on a fresh DB (domain d1.test, alias sales -> alice) with the given idp section and overrides. */
async function daemonWith(idp: ConfigTree, extra: ConfigTree = {}): Promise<DaemonProcess> {
  const dir = tempDir();
  const db = `${dir}/state.db`;
  await ctlOk(db, "init");
  await ctlOk(db, "domains", "add", "d1.test");
  await ctlOk(db, "aliases", "add", "sales@d1.test", "alice");
  const d = new DaemonProcess(dir);
  d.writeConfig(mergeTree(idp, extra));
  await d.spawn();
  return d;
}

/** A daemon on the emulator `kc`. */
function stack(kc: FakeKeycloak, extra: ConfigTree = {}): Promise<DaemonProcess> {
  return daemonWith(keycloakIdpFor(kc.url, { cache_ttl_seconds: 60, timeout_ms: 500 }), extra);
}

const directories = await tableSources();
let kc: FakeKeycloak;

before(async () => {
  // The fixture's people, and 300 more for the load-shaped tests. The SIGHUP
  // test's second flag is declared in the user profile, as a realm admin
  // would have to (Keycloak hides undeclared attributes).
  kc = await startFixtureFake({ declaredAttributes: [...fixtureDeclaredAttributes(), "otherFlag"] });
  for (let i = 0; i < 300; i++) kc.addUser({ username: `u${i}`, email: `u${i}@d1.test` });
});

after(async () => {
  await kc.stop();
  await directories.release();
});

for (const source of directories.sources) {
  describe(`the decision tables with users from ${source.name}`, { skip: source.skip ?? false }, () => {
    describe("policy", () => {
      policyTable(source.name, () => source.config());
    });
    describe("socketmap", () => {
      socketmapTable(source.name, () => source.config());
    });
  });

  describe(`users from ${source.name}`, { skip: source.skip ?? false }, () => {
    let d: DaemonProcess;
    let c: Client;
    before(async () => {
      d = await daemonWith(source.config({ idp: { keycloak: { cache_ttl_seconds: 1 } } }), { policy: { send_allowed_attribute: "mailSendAllowed" }, cache: { negative_ttl_seconds: 1, stale_seconds: 0 } });
      c = await Client.connect(d.policySocket);
    });
    after(async () => {
      c?.destroy();
      await d?.cleanup();
    });

    test("users and their status come from Keycloak", async () => {
      assert.equal(await policyQuery(c, RCPT("alice@d1.test")), ACTIONS.dunno);
      assert.equal(await policyQuery(c, RCPT("carol@d1.test")), ACTIONS.noSuchUser);
      assert.equal(await policyQuery(c, RCPT("nobody@d1.test")), ACTIONS.noSuchUser);
      const s = await Client.connect(d.socketmapSocket);
      assert.equal(await socketmapQuery(s, "mailbox", "alice@d1.test"), "OK d1.test/alice/");
      s.destroy();
    });

    test("the send attribute is honoured and toggling it applies within the TTL, no restart", async () => {
      const users = source.users!;
      const heidi = { protocol_state: "RCPT", sasl_username: "heidi", sender: "heidi@d1.test", recipient: "x@ext.test" };
      assert.equal(await policyQuery(c, heidi), ACTIONS.dunno);
      await users.update("heidi", { attributes: { mailSendAllowed: ["false"] } });
      try {
        await sleep(1200);
        assert.equal(await policyQuery(c, heidi), ACTIONS.sendingDisabled);
        assert.equal(await policyQuery(c, RCPT("heidi@d1.test")), ACTIONS.dunno, "heidi still receives");
      } finally {
        await users.update("heidi", { attributes: { mailSendAllowed: ["true"] } });
      }
      await sleep(1200);
      assert.equal(await policyQuery(c, heidi), ACTIONS.dunno);
    });

    test("SIGUSR1 empties the cache", async () => {
      const users = source.users!;
      const ttl60 = await daemonWith(source.config({ idp: { keycloak: { cache_ttl_seconds: 60 } } }));
      const x = await Client.connect(ttl60.policySocket);
      await users.add("temp", "temp@d1.test");
      let removed = false;
      try {
        assert.equal(await policyQuery(x, RCPT("temp@d1.test")), ACTIONS.dunno);
        await users.remove("temp");
        removed = true;
        assert.equal(await policyQuery(x, RCPT("temp@d1.test")), ACTIONS.dunno, "still cached");
        ttl60.signal("SIGUSR1");
        await sleep(200);
        assert.equal(await policyQuery(x, RCPT("temp@d1.test")), ACTIONS.noSuchUser);
      } finally {
        if (!removed) await users.remove("temp");
        x.destroy();
        await ttl60.cleanup();
      }
    });
  });
}

describe("keycloak source in the daemon (emulator)", () => {
  let d: DaemonProcess;
  let c: Client;
  before(async () => {
    d = await stack(kc, { policy: { send_allowed_attribute: "mailSendAllowed" }, idp: { keycloak: { cache_ttl_seconds: 1 } }, cache: { negative_ttl_seconds: 1, stale_seconds: 0 } });
    c = await Client.connect(d.policySocket);
  });
  after(async () => {
    c.destroy();
    await d.cleanup();
  });

  test("one token for many lookups: 300 distinct misses cost one token request", async () => {
    kc.resetCounters();
    for (let i = 0; i < 300; i++) assert.equal(await policyQuery(c, RCPT(`u${i}@d1.test`)), ACTIONS.dunno);
    assert.ok(kc.tokenRequests <= 1, `token requests: ${kc.tokenRequests}`);
    assert.equal(kc.userQueries, 300);
  });

  test("100 simultaneous misses on one key make exactly one Keycloak query", async () => {
    kc.resetCounters();
    kc.latencyMs = 100;
    try {
      const clients = await Promise.all(Array.from({ length: 100 }, () => Client.connect(d.policySocket)));
      const answers = await Promise.all(clients.map((x) => policyQuery(x, RCPT("u7+same@d1.test"))));
      assert.ok(answers.every((a) => a === ACTIONS.dunno));
      // u7+same: exact address misses, then u7@d1.test (cached or one query): at most 2 queries.
      assert.ok(kc.userQueries <= 2, `user queries: ${kc.userQueries}`);
      clients.forEach((x) => x.destroy());
    } finally {
      kc.latencyMs = 0;
    }
  });

  test("a revoked token is renewed once and lookups keep working", async () => {
    kc.resetCounters();
    kc.expireAllTokens();
    await sleep(1100); // let cached answers expire
    assert.equal(await policyQuery(c, RCPT("alice@d1.test")), ACTIONS.dunno);
    assert.equal(await policyQuery(c, RCPT("u1@d1.test")), ACTIONS.dunno);
    assert.equal(kc.tokenRequests, 1);
  });

});

describe("failure mode, shared by both servers", () => {
  test("tempfail: Keycloak down → 451 4.3.0 (policy) and TEMP (socketmap); recovers by itself", async () => {
    const d = await stack(kc, { policy: { idp_failure_mode: "tempfail" }, cache: { stale_seconds: 0 } });
    const p = await Client.connect(d.policySocket);
    const s = await Client.connect(d.socketmapSocket);
    await kc.down();
    try {
      const t0 = Date.now();
      assert.equal(await policyQuery(p, RCPT("u10@d1.test")), ACTIONS.tempfailIdp);
      assert.ok(Date.now() - t0 < 1500, "answered within the Keycloak timeout");
      assert.match(await socketmapQuery(s, "mailbox", "u11@d1.test"), /^TEMP /);
      assert.match(await socketmapQuery(s, "senders", "u11@d1.test"), /^TEMP /);
      // Aliases need no Keycloak: still answered.
      assert.equal(await policyQuery(p, RCPT("sales@d1.test")), ACTIONS.dunno);
      assert.equal(await socketmapQuery(s, "alias", "sales@d1.test"), "OK alice@d1.test");
      assert.equal(await policyQuery(p, { protocol_state: "RCPT", sasl_username: "u12", sender: "u12@d1.test", recipient: "x@ext.test" }), ACTIONS.tempfailIdp);
    } finally {
      await kc.up();
    }
    // Recovery: within the circuit breaker's open time (5 s).
    const deadline = Date.now() + 8000;
    let last = "";
    while (Date.now() < deadline) {
      last = await policyQuery(p, RCPT("u10@d1.test"));
      if (last === ACTIONS.dunno) break;
      await sleep(250);
    }
    assert.equal(last, ACTIONS.dunno);
    p.destroy();
    s.destroy();
    await d.cleanup();
  });

  test("dunno: Keycloak down → DUNNO and fail-open socketmap answers", async () => {
    const d = await stack(kc, { policy: { idp_failure_mode: "dunno" }, cache: { stale_seconds: 0 } });
    const p = await Client.connect(d.policySocket);
    const s = await Client.connect(d.socketmapSocket);
    await kc.down();
    try {
      assert.equal(await policyQuery(p, RCPT("u20@d1.test")), ACTIONS.dunno);
      assert.equal(await policyQuery(p, { protocol_state: "RCPT", sasl_username: "u21", sender: "u21@d1.test", recipient: "x@ext.test" }), ACTIONS.dunno);
      assert.equal(await socketmapQuery(s, "mailbox", "u22@d1.test"), "OK d1.test/u22/");
    } finally {
      await kc.up();
    }
    p.destroy();
    s.destroy();
    await d.cleanup();
  });

  test("a recently known answer is served stale during an outage, then the failure mode applies", async () => {
    const d = await stack(kc, { idp: { keycloak: { cache_ttl_seconds: 1 } }, cache: { stale_seconds: 2 } });
    const p = await Client.connect(d.policySocket);
    assert.equal(await policyQuery(p, RCPT("u30@d1.test")), ACTIONS.dunno);
    await kc.down();
    try {
      await sleep(1200); // past the TTL, inside the stale window
      assert.equal(await policyQuery(p, RCPT("u30@d1.test")), ACTIONS.dunno);
      await sleep(2200); // past TTL + stale window
      assert.equal(await policyQuery(p, RCPT("u30@d1.test")), ACTIONS.tempfailIdp);
    } finally {
      await kc.up();
    }
    p.destroy();
    await d.cleanup();
  });

  test("a SQLite error gives 451 4.3.0 Temporary internal error and TEMP", async () => {
    const d = await stack(kc);
    const p = await Client.connect(d.policySocket);
    const s = await Client.connect(d.socketmapSocket);
    const { rawDb } = await import("./helpers/sqlite.js");
    const db = rawDb(d.db);
    db.exec("DROP TABLE aliases");
    db.close();
    assert.equal(await policyQuery(p, RCPT("sales@d1.test")), ACTIONS.tempfailInternal);
    assert.equal(await socketmapQuery(s, "alias", "sales@d1.test"), "TEMP");
    p.destroy();
    s.destroy();
    await d.cleanup();
  });
});

describe("SIGHUP", () => {
  test("a new send_allowed_attribute applies at once: cached users keep only the attribute read, so they are fetched again", async () => {
    kc.addUser({ username: "hank", email: "hank@d1.test", attributes: { mailSendAllowed: ["true"], otherFlag: ["false"] } });
    const idp = keycloakIdpFor(kc.url, { cache_ttl_seconds: 300, timeout_ms: 500 }).idp;
    const d = await stack(kc, { policy: { send_allowed_attribute: "mailSendAllowed" }, idp });
    const p = await Client.connect(d.policySocket);
    try {
      const hank = { protocol_state: "RCPT", sasl_username: "hank", sender: "hank@d1.test", recipient: "x@ext.test" };
      assert.equal(await policyQuery(p, hank), ACTIONS.dunno, "hank is now cached for 300 s");
      d.writeConfig({ policy: { send_allowed_attribute: "otherFlag" }, idp });
      d.signal("SIGHUP");
      await sleep(300);
      assert.equal(await policyQuery(p, hank), ACTIONS.sendingDisabled, "otherFlag=false applies without waiting for the TTL");
    } finally {
      p.destroy();
      await d.cleanup();
    }
  });

  test("a valid new config applies without dropping connections; an invalid one is refused", async () => {
    const d = await stack(kc, { policy: { idp_failure_mode: "tempfail" }, cache: { stale_seconds: 0 } });
    const p = await Client.connect(d.policySocket);
    await kc.down();
    try {
      assert.equal(await policyQuery(p, RCPT("u40@d1.test")), ACTIONS.tempfailIdp);
      const cfg = d.baseConfig();
      d.writeConfig({ ...keycloakIdpFor(kc.url), policy: { idp_failure_mode: "dunno" }, cache: { stale_seconds: 0 } });
      void cfg;
      d.signal("SIGHUP");
      await sleep(300);
      assert.equal(await policyQuery(p, RCPT("u41@d1.test")), ACTIONS.dunno, "same connection, new failure mode");
      writeFileSync(d.configPath, "policy: { idp_failure_mode: sometimes }\n");
      d.signal("SIGHUP");
      await sleep(300);
      assert.match(d.output, /reload refused/);
      assert.equal(await policyQuery(p, RCPT("u42@d1.test")), ACTIONS.dunno, "the running config stays");
      assert.equal(d.exitCode, null);
    } finally {
      await kc.up();
    }
    p.destroy();
    await d.cleanup();
  });
});
