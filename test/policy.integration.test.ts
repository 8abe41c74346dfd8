// Every policy rule, table-driven (helpers/tables.ts), against the real
// daemon over its real policy socket with the static identity source holding
// the fixture realm's people, and the policy server's own behaviour. The same
// table runs against the Keycloak emulator and a real Keycloak in
// keycloak-daemon.integration.test.ts, and against the Authentik emulator in
// authentik-daemon.integration.test.ts.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Client, ctlOk, DaemonProcess, policyQuery } from "./helpers/daemon.js";
import { staticSource } from "./helpers/directory.js";
import { AUTH, RCPT, policyTable } from "./helpers/tables.js";
import { ACTIONS } from "../src/handlers/policy.js";

const stack = policyTable("static", () => staticSource.config());
/** The daemon and a client connected to its policy socket, once the table's before() has run. */
const daemon = (): DaemonProcess => stack().daemon;
const client = (): Client => stack().client;

test("attribute order does not matter and unknown attributes are ignored", async () => {
  const attrs = { recipient: "nobody@d1.test", future_attribute: "x=y", client_address: "192.0.2.1", sender: "", protocol_state: "RCPT", tls_sni: "" };
  assert.equal(await policyQuery(client(), attrs), ACTIONS.noSuchUser);
});

// Issue 12: the duplicate-request memo is gone (no gain at log.level info in
// the benchmark); a repeated question is decided, and logged, again.
test("one RCPT asked twice (same service in two restriction lists) is decided and logged each time", async () => {
  const x = await Client.connect(daemon().policySocket);
  const attrs = { ...AUTH("alice", "alice+dedupe@d1.test", "sales@d1.test"), instance: "abc.123" };
  assert.equal(await policyQuery(x, attrs), ACTIONS.dunno);
  assert.equal(await policyQuery(x, attrs), ACTIONS.dunno);
  // A different recipient in the same transaction is a new decision.
  assert.equal(await policyQuery(x, { ...attrs, recipient: "nobody@d1.test" }), ACTIONS.noSuchUser);
  await new Promise((r) => setTimeout(r, 300));
  const logged = daemon().records().filter((r) => r.msg === "policy decision" && r.sender === "alice+dedupe@d1.test");
  assert.deepEqual(logged.map((r) => r.reason), ["recipient-alias", "recipient-alias", "no-such-user"]);
  x.destroy();
});

test("one RCPT asked twice with a commit in between is decided again", async () => {
  const x = await Client.connect(daemon().policySocket);
  const attrs = { ...RCPT({ recipient: "late@d1.test" }), instance: "def.456" };
  assert.equal(await policyQuery(x, attrs), ACTIONS.noSuchUser);
  await ctlOk(daemon().db, "aliases", "add", "late@d1.test", "bob");
  assert.equal(await policyQuery(x, attrs), ACTIONS.dunno, "the second ask sees the alias");
  await ctlOk(daemon().db, "aliases", "del", "late@d1.test");
  assert.equal(await policyQuery(x, attrs), ACTIONS.noSuchUser);
  x.destroy();
});

test("each decision is logged once with state, login, sender, recipient, action, reason, cache, duration", async () => {
  await policyQuery(client(), AUTH("alice", "bob@d1.test", "x@ext.test"));
  await new Promise((r) => setTimeout(r, 200));
  const rec = daemon().records().filter((r) => r.msg === "policy decision" && r.sender === "bob@d1.test").pop();
  assert.ok(rec, "decision logged");
  assert.equal(rec.state, "RCPT");
  assert.equal(rec.login, "alice");
  assert.equal(rec.recipient, "x@ext.test");
  assert.equal(rec.action, ACTIONS.notOwned);
  assert.equal(rec.reason, "sender-not-owned");
  assert.ok(["hit", "miss", "coalesced", "stale", "none"].includes(String(rec.cache)));
  assert.equal(typeof rec.ms, "number");
});

test("a change made with mailcloakctl applies at the next request", async () => {
  assert.equal(await policyQuery(client(), RCPT({ recipient: "new@d1.test" })), ACTIONS.noSuchUser);
  await ctlOk(daemon().db, "aliases", "add", "new@d1.test", "bob");
  assert.equal(await policyQuery(client(), RCPT({ recipient: "new@d1.test" })), ACTIONS.dunno);
});

test("a malformed request closes the connection without a reply; the daemon keeps serving", async () => {
  const x = await Client.connect(daemon().policySocket);
  x.write("this line has no equals sign\n\n");
  await x.waitClosed();
  const y = await Client.connect(daemon().policySocket);
  assert.equal(await policyQuery(y, RCPT({ recipient: "alice@d1.test" })), ACTIONS.dunno);
  y.destroy();
});
