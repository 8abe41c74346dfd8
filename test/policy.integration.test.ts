// Every policy rule, table-driven, against the real daemon over its real
// policy socket (static identity source; Keycloak flows are in
// keycloak-daemon.integration.test.ts).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE_USERS, Client, ctlOk, DaemonProcess, policyQuery, tempDir } from "./helpers/daemon.js";
import { ACTIONS } from "../src/handlers/policy.js";

let d: DaemonProcess;
let c: Client;

before(async () => {
  const dir = tempDir();
  const db = `${dir}/state.db`;
  await ctlOk(db, "init");
  for (const dom of ["d1.test", "d2.test", "off.test"]) await ctlOk(db, "domains", "add", dom);
  await ctlOk(db, "domains", "disable", "off.test");
  await ctlOk(db, "aliases", "add", "sales@d1.test", "alice");
  await ctlOk(db, "aliases", "add", "old@d1.test", "alice");
  await ctlOk(db, "aliases", "disable", "old@d1.test");
  await ctlOk(db, "aliases", "add", "@d2.test", "dave");
  await ctlOk(db, "apps", "add", "crm", "crm-password");
  await ctlOk(db, "apps", "allow", "crm", "sales@d1.test");
  await ctlOk(db, "apps", "add", "oldapp", "old-password");
  await ctlOk(db, "apps", "allow", "oldapp", "alice@d1.test");
  await ctlOk(db, "apps", "disable", "oldapp");
  // LDAP's Boolean syntax spells the flag TRUE/FALSE (an LDAP federation in Keycloak passes it as is).
  const ldapStyle = [
    { username: "ivy", email: "ivy@d1.test", enabled: true, attributes: { mailSendAllowed: ["FALSE"] } },
    { username: "kim", email: "kim@d1.test", enabled: true, attributes: { mailSendAllowed: ["TRUE"] } },
  ];
  d = await DaemonProcess.start({ dir, config: { idp: { static: { users: [...BASE_USERS, ...ldapStyle] } } } });
  c = await Client.connect(d.policySocket);
});

after(async () => {
  c?.destroy();
  await d?.cleanup();
});

type Row = [name: string, attrs: Record<string, string>, want: string];
const RCPT = (attrs: Record<string, string>) => ({ protocol_state: "RCPT", sender: "ext@ext.test", ...attrs });
const AUTH = (login: string, sender: string, recipient = "x@ext.test") =>
  ({ protocol_state: "RCPT", sasl_method: "PLAIN", sasl_username: login, sender, recipient });

const rows: Row[] = [
  // Recipients in local domains.
  ["user's primary email", RCPT({ recipient: "alice@d1.test" }), ACTIONS.dunno],
  ["case and extension ignored", RCPT({ recipient: "ALICE+tag@D1.test" }), ACTIONS.dunno],
  ["enabled alias", RCPT({ recipient: "sales@d1.test" }), ACTIONS.dunno],
  ["alias with extension", RCPT({ recipient: "sales+news@d1.test" }), ACTIONS.dunno],
  ["disabled alias", RCPT({ recipient: "old@d1.test" }), ACTIONS.noSuchUser],
  ["disabled user", RCPT({ recipient: "carol@d1.test" }), ACTIONS.noSuchUser],
  ["unknown user", RCPT({ recipient: "nobody@d1.test" }), ACTIONS.noSuchUser],
  ["an app id does not receive", RCPT({ recipient: "crm@d1.test" }), ACTIONS.noSuchUser],
  ["catch-all domain", RCPT({ recipient: "anything@d2.test" }), ACTIONS.dunno],
  ["user with sending disabled still receives", RCPT({ recipient: "bob@d1.test" }), ACTIONS.dunno],
  ["authenticated user to unknown local address", AUTH("alice", "alice@d1.test", "nobody@d1.test"), ACTIONS.noSuchUser],
  // Recipients elsewhere.
  ["unauthenticated to a foreign domain", RCPT({ recipient: "x@ext.test" }), ACTIONS.notLocal],
  ["unauthenticated to a disabled domain", RCPT({ recipient: "x@off.test" }), ACTIONS.notLocal],
  ["authenticated to a foreign domain", AUTH("alice", "alice@d1.test"), ACTIONS.dunno],
  // Authenticated senders: users.
  ["own primary email", AUTH("alice", "alice@d1.test"), ACTIONS.dunno],
  ["own primary email, other case, extension", AUTH("alice", "ALICE+x@D1.TEST"), ACTIONS.dunno],
  ["login name case-insensitive", AUTH("Alice", "alice@d1.test"), ACTIONS.dunno],
  ["own alias", AUTH("alice", "sales@d1.test"), ACTIONS.dunno],
  ["own alias with extension", AUTH("alice", "sales+x@d1.test"), ACTIONS.dunno],
  ["someone else's address", AUTH("alice", "bob@d1.test"), ACTIONS.notOwned],
  ["own but disabled alias", AUTH("alice", "old@d1.test"), ACTIONS.notOwned],
  ["a catch-all does not grant sending", AUTH("dave", "random@d2.test"), ACTIONS.notOwned],
  ["foreign address", AUTH("alice", "alice@ext.test"), ACTIONS.notOwned],
  ["null sender", AUTH("alice", ""), ACTIONS.dunno],
  ["sending disabled by attribute", AUTH("bob", "bob@d1.test"), ACTIONS.sendingDisabled],
  ["sending disabled by attribute in upper case (FALSE)", AUTH("ivy", "ivy@d1.test"), ACTIONS.sendingDisabled],
  ["attribute TRUE allows sending", AUTH("kim", "kim@d1.test"), ACTIONS.dunno],
  ["disabled user", AUTH("carol", "carol@d1.test"), ACTIONS.notOwned],
  ["unknown login", AUTH("mallory", "alice@d1.test"), ACTIONS.notOwned],
  // Authenticated senders: apps.
  ["app, allowed address", AUTH("crm", "sales@d1.test"), ACTIONS.dunno],
  ["app, not an allowed address", AUTH("crm", "alice@d1.test"), ACTIONS.notOwned],
  ["app, allowed address with extension is not allowed", AUTH("crm", "sales+x@d1.test"), ACTIONS.notOwned],
  ["disabled app", AUTH("oldapp", "alice@d1.test"), ACTIONS.notOwned],
  // Unauthenticated senders.
  ["unauthenticated local sender", RCPT({ sender: "alice@d1.test", recipient: "alice@d1.test" }), ACTIONS.localNeedsAuth],
  ["unauthenticated null sender", RCPT({ sender: "", recipient: "alice@d1.test" }), ACTIONS.dunno],
  // MAIL stage (smtpd_delay_reject=no).
  ["MAIL, not owned", { protocol_state: "MAIL", sasl_username: "alice", sender: "bob@d1.test" }, ACTIONS.notOwned],
  ["MAIL, owned", { protocol_state: "MAIL", sasl_username: "alice", sender: "sales@d1.test" }, ACTIONS.dunno],
  ["MAIL, unauthenticated local sender", { protocol_state: "MAIL", sender: "alice@d1.test" }, ACTIONS.localNeedsAuth],
  // Other states.
  ["CONNECT", { protocol_state: "CONNECT" }, ACTIONS.dunno],
  ["DATA", { protocol_state: "DATA", sasl_username: "alice", sender: "bob@d1.test", recipient: "x@ext.test" }, ACTIONS.dunno],
  ["END-OF-MESSAGE", { protocol_state: "END-OF-MESSAGE", sender: "alice@d1.test" }, ACTIONS.dunno],
  ["VRFY", { protocol_state: "VRFY", recipient: "nobody@d1.test" }, ACTIONS.dunno],
  // policy_context splits the checks when listed in both restriction lists.
  ["context recipient skips the sender check", { ...AUTH("alice", "bob@d1.test", "alice@d1.test"), policy_context: "recipient" }, ACTIONS.dunno],
  ["context sender skips the recipient check", { ...RCPT({ recipient: "nobody@d1.test" }), policy_context: "sender" }, ACTIONS.dunno],
  ["context sender still checks the sender", { ...AUTH("alice", "bob@d1.test"), policy_context: "sender" }, ACTIONS.notOwned],
];

for (const [name, attrs, want] of rows) {
  test(`${name} -> ${want}`, async () => {
    assert.equal(await policyQuery(c, attrs), want);
  });
}

test("attribute order does not matter and unknown attributes are ignored", async () => {
  const attrs = { recipient: "nobody@d1.test", future_attribute: "x=y", client_address: "192.0.2.1", sender: "", protocol_state: "RCPT", tls_sni: "" };
  assert.equal(await policyQuery(c, attrs), ACTIONS.noSuchUser);
});

test("one RCPT asked twice (same service in two restriction lists) is decided once", async () => {
  const x = await Client.connect(d.policySocket);
  const attrs = { ...AUTH("alice", "alice+dedupe@d1.test", "sales@d1.test"), instance: "abc.123" };
  assert.equal(await policyQuery(x, attrs), ACTIONS.dunno);
  assert.equal(await policyQuery(x, attrs), ACTIONS.dunno);
  // A different recipient in the same transaction is a new decision.
  assert.equal(await policyQuery(x, { ...attrs, recipient: "nobody@d1.test" }), ACTIONS.noSuchUser);
  await new Promise((r) => setTimeout(r, 300));
  const logged = d.records().filter((r) => r.msg === "policy decision" && r.sender === "alice+dedupe@d1.test");
  assert.equal(logged.length, 2);
  x.destroy();
});

test("one RCPT asked twice with a commit in between is decided again", async () => {
  const x = await Client.connect(d.policySocket);
  const attrs = { ...RCPT({ recipient: "late@d1.test" }), instance: "def.456" };
  assert.equal(await policyQuery(x, attrs), ACTIONS.noSuchUser);
  await ctlOk(d.db, "aliases", "add", "late@d1.test", "bob");
  assert.equal(await policyQuery(x, attrs), ACTIONS.dunno, "the second ask sees the alias");
  await ctlOk(d.db, "aliases", "del", "late@d1.test");
  assert.equal(await policyQuery(x, attrs), ACTIONS.noSuchUser);
  x.destroy();
});

test("each decision is logged once with state, login, sender, recipient, action, reason, cache, duration", async () => {
  await policyQuery(c, AUTH("alice", "bob@d1.test", "x@ext.test"));
  await new Promise((r) => setTimeout(r, 200));
  const rec = d.records().filter((r) => r.msg === "policy decision" && r.sender === "bob@d1.test").pop();
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
  assert.equal(await policyQuery(c, RCPT({ recipient: "new@d1.test" })), ACTIONS.noSuchUser);
  await ctlOk(d.db, "aliases", "add", "new@d1.test", "bob");
  assert.equal(await policyQuery(c, RCPT({ recipient: "new@d1.test" })), ACTIONS.dunno);
});

test("a malformed request closes the connection without a reply; the daemon keeps serving", async () => {
  const x = await Client.connect(d.policySocket);
  x.write("this line has no equals sign\n\n");
  await x.waitClosed();
  const y = await Client.connect(d.policySocket);
  assert.equal(await policyQuery(y, RCPT({ recipient: "alice@d1.test" })), ACTIONS.dunno);
  y.destroy();
});
