// The daemon with idp.provider authentik against the Authentik emulator
// holding the fixture realm's people, over the real sockets: the policy and
// socketmap tables (helpers/tables.ts, the same rows as every source), the
// failure mode when Authentik is down or refuses the token, and the send
// attribute read from Authentik's JSON attributes.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { Client, ctlOk, DaemonProcess, freePort, mergeTree, policyQuery, socketmapQuery, tempDir, type ConfigTree } from "./helpers/daemon.js";
import { authentikIdpFor, startAuthentikEmulator } from "./helpers/directory.js";
import { policyTable, socketmapTable } from "./helpers/tables.js";
import type { FakeAuthentik } from "./fake-authentik.js";
import { TOKEN_HINT } from "../src/directory/authentik.js";
import { ACTIONS } from "../src/handlers/policy.js";

let fake: FakeAuthentik;

before(async () => {
  fake = await startAuthentikEmulator();
  // Authentik's search matches substrings: an address that contains alice@d1.test.
  fake.addUser({ username: "malice", email: "malice@d1.test" });
});

after(async () => {
  await fake.stop();
});

/** The idp section for the emulator, merged over the harness's base config. */
function authentik(extra: ConfigTree = {}): ConfigTree {
  return mergeTree(authentikIdpFor(fake, { cache_ttl_seconds: 60, timeout_ms: 500 }), extra);
}

describe("the policy table with Authentik as the identity provider", () => {
  const stack = policyTable("authentik", () => authentik());

  test("the table was answered by Authentik, searched case-insensitively", () => {
    const started = stack().daemon.records().find((r) => r.msg === "mailcloak started");
    assert.equal(started?.idp, "authentik");
    assert.ok(fake.queries.some((q) => q.get("search") === "alice@d1.test"), "alice@d1.test was looked up in Authentik");
    // Stored as typed, "Erin.Mixed@D1.Test": asked in lower case, matched regardless of case.
    assert.ok(fake.queries.some((q) => q.get("search") === "erin.mixed@d1.test"), "erin.mixed@d1.test was looked up in Authentik");
  });
});

describe("the socketmap table with Authentik as the identity provider", () => {
  socketmapTable("authentik", () => authentik());
});

describe("Authentik failures in the daemon", () => {
  /** A daemon on a fresh DB with one local domain and one alias (no IdP needed for it). */
  async function daemon(extra: ConfigTree): Promise<{ d: DaemonProcess; policy: Client; socketmap: Client }> {
    const dir = tempDir();
    await ctlOk(`${dir}/state.db`, "init");
    await ctlOk(`${dir}/state.db`, "domains", "add", "d1.test");
    await ctlOk(`${dir}/state.db`, "aliases", "add", "sales@d1.test", "bob");
    const d = await DaemonProcess.start({ dir, config: authentik(extra) });
    return { d, policy: await Client.connect(d.policySocket), socketmap: await Client.connect(d.socketmapSocket) };
  }
  const rcpt = (recipient: string) => ({ protocol_state: "RCPT", sender: "ext@ext.test", recipient });

  test("Authentik down: 451 4.3.0 and TEMP while aliases still answer; recovers by itself", async (t) => {
    const { d, policy, socketmap } = await daemon({ cache: { stale_seconds: 0 } });
    // Cleaned up on failure too: a live daemon or socket would keep the test file from exiting.
    t.after(async () => {
      policy.destroy();
      socketmap.destroy();
      await d.cleanup();
    });
    await fake.down();
    try {
      assert.equal(await policyQuery(policy, rcpt("alice@d1.test")), ACTIONS.tempfailIdp);
      assert.match(await socketmapQuery(socketmap, "mailbox", "alice@d1.test"), /^TEMP /);
      assert.equal(await socketmapQuery(socketmap, "alias", "sales@d1.test"), "OK bob@d1.test");
    } finally {
      await fake.up();
    }
    let last = "";
    for (const deadline = Date.now() + 8000; Date.now() < deadline && last !== ACTIONS.dunno; await sleep(250)) {
      last = await policyQuery(policy, rcpt("alice@d1.test"));
    }
    assert.equal(last, ACTIONS.dunno, "answers again once Authentik is back");
  });

  test("a refused API token: the failure mode applies, the hint is logged, the token is never printed", async (t) => {
    const wrong = "not-the-token-4711";
    const { d, policy, socketmap } = await daemon({ idp: { authentik: { api_token: wrong } }, policy: { idp_failure_mode: "dunno" } });
    // Cleaned up on failure too: a live daemon or socket would keep the test file from exiting.
    t.after(async () => {
      policy.destroy();
      socketmap.destroy();
      await d.cleanup();
    });
    assert.equal(await policyQuery(policy, rcpt("nobody@d1.test")), ACTIONS.dunno, "fail-open, not 550");
    assert.equal(await socketmapQuery(socketmap, "mailbox", "dave@d1.test"), "OK d1.test/dave/");
    await sleep(200);
    assert.ok(d.records().some((r) => r.msg === TOKEN_HINT), d.output);
    assert.ok(!d.output.includes(wrong) && !d.output.includes(fake.token), "no API token in the daemon's output");
  });

  test("the send attribute changed in Authentik applies within the TTL, as a boolean or a string", async (t) => {
    const { d, policy, socketmap } = await daemon({ idp: { authentik: { cache_ttl_seconds: 1 } }, cache: { negative_ttl_seconds: 1 } });
    // Cleaned up on failure too: a live daemon or socket would keep the test file from exiting.
    t.after(async () => {
      policy.destroy();
      socketmap.destroy();
      await d.cleanup();
    });
    const bob = { protocol_state: "RCPT", sasl_username: "bob", sender: "bob@d1.test", recipient: "x@ext.test" };
    try {
      assert.equal(await policyQuery(policy, bob), ACTIONS.sendingDisabled);
      fake.updateUser("bob", { attributes: { mailSendAllowed: true } });
      await sleep(1200);
      assert.equal(await policyQuery(policy, bob), ACTIONS.dunno);
      fake.updateUser("bob", { attributes: { mailSendAllowed: ["FALSE"] } });
      await sleep(1200);
      assert.equal(await policyQuery(policy, bob), ACTIONS.sendingDisabled);
    } finally {
      fake.updateUser("bob", { attributes: { mailSendAllowed: false } });
    }
  });

  test("Authentik calls and its breaker are counted in /metrics; /ready fails while it is unreachable", async (t) => {
    const port = await freePort();
    // A roomy deadline: the first lookup must not time out on a loaded machine (down is a refused connection, not a hang).
    const { d, policy, socketmap } = await daemon({ idp: { authentik: { timeout_ms: 5000 } }, metrics: { listen: `127.0.0.1:${port}` }, cache: { stale_seconds: 0, negative_ttl_seconds: 0 } });
    // Cleaned up on failure too: a live daemon or socket would keep the test file from exiting.
    t.after(async () => {
      policy.destroy();
      socketmap.destroy();
      await d.cleanup();
    });
    const scrape = async (path: string): Promise<[number, string]> => {
      const r = await fetch(`http://127.0.0.1:${port}${path}`);
      return [r.status, await r.text()];
    };
    try {
      assert.equal(await policyQuery(policy, rcpt("dave@d1.test")), ACTIONS.noSuchUser, "dave's address is in d2.test");
      let [, m] = await scrape("/metrics");
      // A search with no match, then the check that the token sees users.
      assert.match(m, /mailcloak_authentik_requests_total\{op="users",outcome="ok"\} 2/);
      assert.match(m, /mailcloak_authentik_request_duration_seconds_count\{op="users"\} 2/);
      assert.equal((await scrape("/ready"))[0], 200);
      await fake.down();
      for (let i = 0; i < 6; i++) await policyQuery(policy, rcpt(`n${i}@d1.test`));
      const [status, why] = await scrape("/ready");
      assert.equal(status, 503);
      assert.match(why, /authentik unreachable/);
      [, m] = await scrape("/metrics");
      assert.match(m, /mailcloak_authentik_circuit_open_total 1/);
      assert.match(m, /mailcloak_authentik_circuit_rejected_total [1-9]/);
      assert.match(m, /mailcloak_authentik_requests_total\{op="users",outcome="error"\} 5/);
    } finally {
      await fake.up();
    }
  });
});
