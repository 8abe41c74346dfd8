// The decision tables: every policy rule as rows of request -> action, and
// every socketmap lookup as rows of map + key -> reply, run against a real
// daemon over its real sockets. The rows are the same for every identity
// source: a test file calls policyTable() / socketmapTable() with the idp
// section of a source holding the people of test/fixtures/keycloak-realm.json
// (helpers/directory.ts: static, the Keycloak emulator, a real Keycloak, the
// Authentik emulator).
//
// The people the rows rely on: alice@d1.test; bob@d1.test with sending
// disabled by the attribute mailSendAllowed; carol@d1.test disabled;
// dave@d2.test; Erin.Mixed with "Erin.Mixed@D1.Test" given in mixed case;
// frank without an email; ivy and kim with the flag spelled as LDAP's Boolean
// syntax spells it (FALSE, TRUE), as a Keycloak LDAP federation passes it on.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Client, ctlOk, DaemonProcess, policyQuery, socketmapQuery, tempDir, type ConfigTree } from "./daemon.js";
import { ACTIONS } from "../../src/handlers/policy.js";

/** Domains, aliases and apps the rows expect, written with the real mailcloakctl. */
export async function seedTableDb(db: string): Promise<void> {
  await ctlOk(db, "init");
  for (const dom of ["d1.test", "d2.test", "off.test"]) await ctlOk(db, "domains", "add", dom);
  await ctlOk(db, "aliases", "add", "sales@d1.test", "alice");
  await ctlOk(db, "aliases", "add", "old@d1.test", "alice");
  await ctlOk(db, "aliases", "disable", "old@d1.test");
  await ctlOk(db, "aliases", "add", "info@off.test", "alice");
  await ctlOk(db, "domains", "disable", "off.test");
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

type PolicyRow = [name: string, attrs: Record<string, string>, want: string];
const POLICY_ROWS: PolicyRow[] = [
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
  ["email given in mixed case to the directory", RCPT({ recipient: "erin.mixed@d1.test" }), ACTIONS.dunno],
  ["a user without an email has no mailbox", RCPT({ recipient: "frank@d1.test" }), ACTIONS.noSuchUser],
  ["authenticated user to unknown local address", AUTH("alice", "alice@d1.test", "nobody@d1.test"), ACTIONS.noSuchUser],
  // Recipients elsewhere.
  ["unauthenticated to a foreign domain", RCPT({ recipient: "x@ext.test" }), ACTIONS.notLocal],
  ["unauthenticated to a disabled domain", RCPT({ recipient: "x@off.test" }), ACTIONS.notLocal],
  ["authenticated to a foreign domain", AUTH("alice", "alice@d1.test"), ACTIONS.dunno],
  // Authenticated senders: users.
  ["own primary email", AUTH("alice", "alice@d1.test"), ACTIONS.dunno],
  ["own primary email, other case, extension", AUTH("alice", "ALICE+x@D1.TEST"), ACTIONS.dunno],
  ["login name case-insensitive", AUTH("Alice", "alice@d1.test"), ACTIONS.dunno],
  ["mixed-case login and address given to the directory", AUTH("Erin.Mixed", "Erin.Mixed@D1.Test"), ACTIONS.dunno],
  ["a user without an email owns no address", AUTH("frank", "frank@d1.test"), ACTIONS.notOwned],
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

type SocketmapRow = [map: string, key: string, want: string];
const SOCKETMAP_ROWS: SocketmapRow[] = [
  ["alias", "sales@d1.test", "OK alice@d1.test"],
  ["alias", "SALES@D1.TEST", "OK alice@d1.test"],
  ["alias", "sales+news@d1.test", "OK alice+news@d1.test"],
  ["alias", "old@d1.test", "NOTFOUND"],
  ["alias", "info@off.test", "NOTFOUND"],
  ["alias", "nobody@d1.test", "NOTFOUND"],
  ["alias", "d1.test", "NOTFOUND"],
  ["alias", "anything@d2.test", "OK dave@d2.test"],
  ["alias", "dave@d2.test", "NOTFOUND"], // a real mailbox is never captured by the catch-all
  ["alias", "x@elsewhere.test", "NOTFOUND"],
  ["domain", "d1.test", "OK d1.test"],
  ["domain", "off.test", "NOTFOUND"],
  ["domain", "elsewhere.test", "NOTFOUND"],
  ["mailbox", "alice@d1.test", "OK d1.test/alice/"],
  ["mailbox", "alice+tag@d1.test", "OK d1.test/alice/"],
  ["mailbox", "carol@d1.test", "NOTFOUND"], // disabled user
  ["mailbox", "Erin.Mixed@D1.Test", "OK d1.test/erin.mixed/"], // given to the directory in mixed case
  ["mailbox", "frank@d1.test", "NOTFOUND"], // a user without an email
  ["mailbox", "sales@d1.test", "NOTFOUND"], // alias, not a mailbox
  ["senders", "alice@d1.test", "OK alice"], // not the disabled app oldapp
  ["senders", "sales@d1.test", "OK alice,crm"],
  ["senders", "bob@d1.test", "NOTFOUND"], // sending disabled by attribute
  ["senders", "ivy@d1.test", "NOTFOUND"], // disabled as FALSE
  ["senders", "kim@d1.test", "OK kim"], // allowed as TRUE
  ["senders", "erin.mixed@d1.test", "OK erin.mixed"],
  ["senders", "frank@d1.test", "NOTFOUND"],
  ["senders", "nobody@d1.test", "NOTFOUND"],
  ["nosuchmap", "x", "NOTFOUND"], // as the Go version answers a map it does not serve
];

export interface TableStack {
  readonly daemon: DaemonProcess;
  /** Connected to the socket the table asks. */
  readonly client: Client;
}

interface Row {
  readonly title: string;
  readonly want: string;
  ask(c: Client): Promise<string>;
}

/**
 * Register rows in the current suite, asked of a daemon on a seeded DB with
 * `idp()` (called in before(), once the source runs) merged over the base
 * config. The returned accessor gives the daemon and its client to further
 * tests of the suite.
 */
function table(source: string, idp: () => ConfigTree, socket: "policySocket" | "socketmapSocket", rows: readonly Row[]): () => TableStack {
  let stack: TableStack | null = null;
  before(async () => {
    const dir = tempDir();
    await seedTableDb(`${dir}/state.db`);
    const daemon = await DaemonProcess.start({ dir, config: idp() });
    stack = { daemon, client: await Client.connect(daemon[socket]) };
  });
  after(async () => {
    stack?.client.destroy();
    await stack?.daemon.cleanup();
  });
  for (const row of rows) {
    test(`${source}: ${row.title} -> ${row.want}`, async () => {
      assert.equal(await row.ask(stack!.client), row.want, stack!.daemon.output.slice(-2000));
    });
  }
  return () => stack!;
}

/** The policy decision table, over the policy socket. */
export function policyTable(source: string, idp: () => ConfigTree): () => TableStack {
  return table(source, idp, "policySocket", POLICY_ROWS.map(([title, attrs, want]) => ({ title, want, ask: (c) => policyQuery(c, attrs) })));
}

/** The socketmap lookup table, over the socketmap socket. */
export function socketmapTable(source: string, idp: () => ConfigTree): () => TableStack {
  return table(source, idp, "socketmapSocket", SOCKETMAP_ROWS.map(([map, key, want]) => ({ title: `${map} ${key}`, want, ask: (c) => socketmapQuery(c, map, key) })));
}
