// The policy decision table: every rule, as rows of request -> action, run
// against a real daemon over its real policy socket. The table is the same
// for every identity source; a test file calls policyTable() with a daemon
// whose IdP holds the users below (static, or an emulated remote IdP).
//
// Users the IdP must hold: alice@d1.test; bob@d1.test with sending disabled
// by policy.send_allowed_attribute mailSendAllowed; carol@d1.test disabled;
// dave@d2.test.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Client, ctlOk, policyQuery, tempDir, type DaemonProcess } from "./daemon.js";
import { ACTIONS } from "../../src/handlers/policy.js";

/** Domains, aliases and apps the rows expect, written with the real mailcloakctl. */
export async function seedPolicyDb(db: string): Promise<void> {
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
  // Delegated senders: info@d1.test is nobody's address; alice, bob and carol may send as it.
  for (const login of ["alice", "bob", "carol"]) await ctlOk(db, "senders", "allow", "info@d1.test", login);
}

export const RCPT = (attrs: Record<string, string>) => ({ protocol_state: "RCPT", sender: "ext@ext.test", ...attrs });
export const AUTH = (login: string, sender: string, recipient = "x@ext.test") =>
  ({ protocol_state: "RCPT", sasl_method: "PLAIN", sasl_username: login, sender, recipient });

type Row = [name: string, attrs: Record<string, string>, want: string];
const ROWS: Row[] = [
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
  ["disabled user", AUTH("carol", "carol@d1.test"), ACTIONS.notOwned],
  ["unknown login", AUTH("mallory", "alice@d1.test"), ACTIONS.notOwned],
  // Authenticated senders: delegations (mailcloakctl senders allow).
  ["delegated address", AUTH("alice", "info@d1.test"), ACTIONS.dunno],
  ["delegated address, other case, extension", AUTH("ALICE", "Info+x@d1.test"), ACTIONS.dunno],
  ["someone else's delegation", AUTH("dave", "info@d1.test"), ACTIONS.notOwned],
  ["a delegation does not lift sending disabled", AUTH("bob", "info@d1.test"), ACTIONS.sendingDisabled],
  ["a delegation to a disabled user", AUTH("carol", "info@d1.test"), ACTIONS.notOwned],
  ["a delegation does not make a recipient", RCPT({ recipient: "info@d1.test" }), ACTIONS.noSuchUser],
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

export interface PolicyStack {
  readonly daemon: DaemonProcess;
  readonly client: Client;
}

/**
 * Register the table in the current suite: `start` gets a seeded DB
 * directory and returns the running daemon. The returned accessor gives the
 * daemon and a connected client to further tests of the suite.
 */
export function policyTable(idp: string, start: (dir: string) => Promise<DaemonProcess>): () => PolicyStack {
  let stack: PolicyStack | null = null;
  before(async () => {
    const dir = tempDir();
    await seedPolicyDb(`${dir}/state.db`);
    const daemon = await start(dir);
    stack = { daemon, client: await Client.connect(daemon.policySocket) };
  });
  after(async () => {
    stack?.client.destroy();
    await stack?.daemon.cleanup();
  });
  for (const [name, attrs, want] of ROWS) {
    test(`${idp}: ${name} -> ${want}`, async () => {
      assert.equal(await policyQuery(stack!.client, attrs), want);
    });
  }
  return () => stack!;
}
