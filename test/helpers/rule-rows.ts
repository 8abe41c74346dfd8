// The decision tables of the README as rows for the pure rules
// (src/rules/policy.ts, src/rules/maps.ts): a request, the plain facts the
// rule may look at, and the answer and reason it must give. A row names the
// README row it stands for (`readme`: the first cell of that row, or a reply
// text quoted in a README section), so test/rules-readme.test.ts can check
// that every README row has one. A row gives only the facts its path needs:
// a rule that asks for another one fails the row (it would have made a
// lookup the row says it does not need).

import { emptyPolicyRequest, type PolicyRequest } from "../../src/protocol/policy.js";
import { DECISIONS, type Decision, type PolicyFacts } from "../../src/rules/policy.js";
import type { MapFacts } from "../../src/rules/maps.js";
import type { AddressRows, AliasTarget, ListLookup, MailList, RuleSettings, UserLookup } from "../../src/rules/facts.js";

export const SETTINGS: RuleSettings = {
  failureMode: "tempfail",
  delimiter: "+",
  sendAllowedAttribute: "mailSendAllowed",
  configDomains: new Set(["conf.test"]),
};
export const DUNNO_MODE: RuleSettings = { ...SETTINGS, failureMode: "dunno" };

export const found = (username: string, email: string | null, o: { enabled?: boolean; sendAllowed?: string } = {}): UserLookup => ({
  kind: "found",
  value: { username, email, enabled: o.enabled ?? true, attributes: o.sendAllowed === undefined ? {} : { mailSendAllowed: [o.sendAllowed] } },
});
export const NOBODY: UserLookup = { kind: "notfound" };
export const IDP_DOWN: UserLookup = { kind: "unavailable", reason: "keycloak: timeout" };
export const alias = (targetUser: string, domain: string, active = true): AliasTarget => ({ targetUser, domain, active });
export const rows = (r: Partial<AddressRows>): AddressRows => ({ domainEnabled: undefined, exact: undefined, base: undefined, catchAll: undefined, ...r });
export const NO_LIST: ListLookup = { kind: "none" };
export const LISTS_DOWN: ListLookup = { kind: "unavailable", reason: "keycloak: 503" };
export function list(o: Partial<MailList> & { members?: readonly string[] }): ListLookup {
  const members = o.members ?? ["alice@d1.test", "dave@d2.test"];
  return {
    kind: "list",
    list: { address: "team@d1.test", path: "/lists/team", members, logins: new Set(["alice", "dave"]), posting: "members", sendAs: new Set<string>(), ...o },
  };
}

type Facts<F> = Omit<F, "settings" | "listsOn"> & { settings?: RuleSettings; listsOn?: boolean };

export interface PolicyRow {
  readonly name: string;
  /** The README row (first cell) or quoted reply this row stands for. */
  readonly readme?: string;
  readonly req: Partial<PolicyRequest>;
  readonly facts: Facts<PolicyFacts>;
  readonly want: Decision;
}

export function policyRequest(attrs: Partial<PolicyRequest>): PolicyRequest {
  return { ...emptyPolicyRequest(), request: "smtpd_access_policy", ...attrs };
}

/** Sender checks alone (MAIL: the recipient is not checked). */
const MAIL = (login: string, sender: string): Partial<PolicyRequest> => ({ protocol_state: "MAIL", sasl_username: login, sender });
/** Recipient checks alone (policy_context=recipient). */
const RCPT = (recipient: string, login = ""): Partial<PolicyRequest> => ({ protocol_state: "RCPT", sasl_username: login, sender: "ext@ext.test", recipient, policy_context: "recipient" });
const ALICE = found("alice", "alice@d1.test");
/** What a logged-in user's sender check reads before ownership. */
const USER_FACTS = { app: false, loginUser: ALICE } as const;
const NOT_OWNED = { senderAlias: null, senderBaseAlias: null, senderDelegates: [], senderBaseDelegates: [], senderDomainRow: true } as const;

export const POLICY_SENDER_ROWS: PolicyRow[] = [
  { name: "unauthenticated sender in an enabled domain", readme: "not logged in, sender in a local domain", req: MAIL("", "alice@d1.test"), facts: { senderDomainRow: true }, want: DECISIONS.localNeedsAuth },
  { name: "unauthenticated sender in a policy.domain", readme: "not logged in, sender in a local domain", req: MAIL("", "x@conf.test"), facts: {}, want: DECISIONS.localNeedsAuth },
  { name: "unauthenticated foreign sender", readme: "not logged in, any other sender (or the null sender)", req: MAIL("", "x@ext.test"), facts: { senderDomainRow: null }, want: DECISIONS.senderOk },
  { name: "unauthenticated sender in a disabled domain", readme: "not logged in, any other sender (or the null sender)", req: MAIL("", "x@off.test"), facts: { senderDomainRow: false }, want: DECISIONS.senderOk },
  { name: "unauthenticated null sender", readme: "not logged in, any other sender (or the null sender)", req: MAIL("", ""), facts: {}, want: DECISIONS.senderOk },
  { name: "logged in, null sender", readme: "logged in, null sender", req: MAIL("alice", ""), facts: {}, want: DECISIONS.senderOk },
  { name: "app sending as an allowed address", readme: "login is an enabled app, sender is one of its allowed addresses (exact, no extension)", req: MAIL("crm", "sales@d1.test"), facts: { app: true, appAllowsSender: true }, want: DECISIONS.senderOk },
  { name: "app sending as another address", readme: "login is an enabled app, any other sender", req: MAIL("crm", "alice@d1.test"), facts: { app: true, appAllowsSender: false }, want: DECISIONS.appNotAllowed },
  { name: "app sending as an allowed address with an extension", readme: "login is an enabled app, any other sender", req: MAIL("crm", "sales+x@d1.test"), facts: { app: true, appAllowsSender: false }, want: DECISIONS.appNotAllowed },
  { name: "unknown login (or a disabled app)", readme: "login is not an enabled app and not an enabled Keycloak user", req: MAIL("mallory", "alice@d1.test"), facts: { app: false, loginUser: NOBODY }, want: DECISIONS.loginUnknown },
  { name: "disabled user", readme: "login is not an enabled app and not an enabled Keycloak user", req: MAIL("carol", "carol@d1.test"), facts: { app: false, loginUser: found("carol", "carol@d1.test", { enabled: false }) }, want: DECISIONS.loginDisabled },
  { name: "sending disabled by attribute", readme: "user's `send_allowed_attribute` is `false`", req: MAIL("bob", "bob@d1.test"), facts: { app: false, loginUser: found("bob", "bob@d1.test", { sendAllowed: "false" }) }, want: DECISIONS.sendingDisabled },
  { name: "sending disabled by attribute in upper case", readme: "user's `send_allowed_attribute` is `false`", req: MAIL("ivy", "ivy@d1.test"), facts: { app: false, loginUser: found("ivy", "ivy@d1.test", { sendAllowed: " FALSE " }) }, want: DECISIONS.sendingDisabled },
  { name: "attribute TRUE allows sending", readme: "sender (or sender without extension) is the user's primary email, or an enabled alias they own in an enabled domain", req: MAIL("kim", "kim@d1.test"), facts: { app: false, loginUser: found("kim", "kim@d1.test", { sendAllowed: "TRUE" }) }, want: DECISIONS.senderOk },
  { name: "own primary email, other case", readme: "sender (or sender without extension) is the user's primary email, or an enabled alias they own in an enabled domain", req: MAIL("Alice", " ALICE@D1.test "), facts: { app: false, loginUser: ALICE }, want: DECISIONS.senderOk },
  { name: "own primary email with an extension", readme: "sender (or sender without extension) is the user's primary email, or an enabled alias they own in an enabled domain", req: MAIL("alice", "alice+x@d1.test"), facts: { ...USER_FACTS, senderAlias: null, senderDelegates: [], senderDomainRow: true }, want: DECISIONS.senderOk },
  { name: "own alias", readme: "sender (or sender without extension) is the user's primary email, or an enabled alias they own in an enabled domain", req: MAIL("alice", "sales@d1.test"), facts: { ...USER_FACTS, senderAlias: alias("alice", "d1.test") }, want: DECISIONS.senderOk },
  { name: "own alias with an extension", readme: "sender (or sender without extension) is the user's primary email, or an enabled alias they own in an enabled domain", req: MAIL("alice", "sales+x@d1.test"), facts: { ...USER_FACTS, senderAlias: null, senderDelegates: [], senderDomainRow: true, senderBaseAlias: alias("Alice", "d1.test") }, want: DECISIONS.senderOk },
  { name: "own but disabled alias", readme: "any other sender (an address covered only by a catch-all included)", req: MAIL("alice", "old@d1.test"), facts: { ...USER_FACTS, ...NOT_OWNED, senderAlias: alias("alice", "d1.test", false) }, want: DECISIONS.notOwned },
  { name: "delegated address", readme: "sender (or sender without extension) is delegated to the login (`mailcloakctl senders allow`) and its domain is local", req: MAIL("ALICE", "info@d1.test"), facts: { ...USER_FACTS, senderAlias: null, senderDomainRow: true, senderDelegates: ["bob", "alice"] }, want: DECISIONS.senderOk },
  { name: "delegated address with an extension", readme: "sender (or sender without extension) is delegated to the login (`mailcloakctl senders allow`) and its domain is local", req: MAIL("alice", "info+x@d1.test"), facts: { ...USER_FACTS, ...NOT_OWNED, senderBaseDelegates: ["alice"] }, want: DECISIONS.senderOk },
  { name: "a delegation in a domain no longer local", readme: "any other sender (an address covered only by a catch-all included)", req: MAIL("alice", "info@gone.test"), facts: { ...USER_FACTS, senderAlias: null, senderDomainRow: null }, want: DECISIONS.notOwned },
  { name: "someone else's delegation", readme: "any other sender (an address covered only by a catch-all included)", req: MAIL("dave", "info@d1.test"), facts: { app: false, loginUser: found("dave", "dave@d2.test"), ...NOT_OWNED, senderDelegates: ["alice"] }, want: DECISIONS.notOwned },
  { name: "list address the login may send as", readme: "sender is a list address whose send-as right (`mailSendAs`) includes the login", req: MAIL("alice", "team@d1.test"), facts: { ...USER_FACTS, ...NOT_OWNED, listsOn: true, senderList: list({ sendAs: new Set(["alice"]) }) }, want: DECISIONS.senderOk },
  { name: "list address the login may not send as", readme: "any other sender (an address covered only by a catch-all included)", req: MAIL("alice", "team@d1.test"), facts: { ...USER_FACTS, ...NOT_OWNED, listsOn: true, senderList: list({ sendAs: new Set(["dave"]) }) }, want: DECISIONS.notOwned },
  { name: "someone else's address", readme: "any other sender (an address covered only by a catch-all included)", req: MAIL("alice", "bob@d1.test"), facts: { ...USER_FACTS, ...NOT_OWNED }, want: DECISIONS.notOwned },
  { name: "an address covered by a catch-all", readme: "any other sender (an address covered only by a catch-all included)", req: MAIL("dave", "random@d2.test"), facts: { app: false, loginUser: found("dave", "dave@d2.test"), ...NOT_OWNED }, want: DECISIONS.notOwned },
  { name: "a user without an email owns no address", readme: "any other sender (an address covered only by a catch-all included)", req: MAIL("frank", "frank@d1.test"), facts: { app: false, loginUser: found("frank", null), ...NOT_OWNED }, want: DECISIONS.notOwned },
];

export const POLICY_RECIPIENT_ROWS: PolicyRow[] = [
  { name: "recipient without a domain", readme: "recipient without a domain", req: RCPT("alice"), facts: {}, want: DECISIONS.noDomain },
  { name: "empty recipient", readme: "recipient without a domain", req: RCPT(""), facts: {}, want: DECISIONS.noDomain },
  { name: "logged in, foreign domain", readme: "domain not local (not an enabled domain, not `policy.domain`), logged in", req: RCPT("x@ext.test", "alice"), facts: { recipientRows: rows({}) }, want: DECISIONS.authRelay },
  { name: "not logged in, foreign domain", readme: "domain not local, not logged in", req: RCPT("x@ext.test"), facts: { recipientRows: rows({}) }, want: DECISIONS.notLocal },
  { name: "not logged in, disabled domain", readme: "domain not local, not logged in", req: RCPT("info@off.test"), facts: { recipientRows: rows({ domainEnabled: false, exact: alias("alice", "off.test", false) }) }, want: DECISIONS.notLocal },
  { name: "enabled alias", readme: "an alias (exact, or without extension): enabled, in an enabled domain", req: RCPT("SALES@d1.test"), facts: { recipientRows: rows({ domainEnabled: true, exact: alias("alice", "d1.test") }) }, want: DECISIONS.alias },
  { name: "enabled alias with an extension", readme: "an alias (exact, or without extension): enabled, in an enabled domain", req: RCPT("sales+news@d1.test"), facts: { recipientRows: rows({ domainEnabled: true, base: alias("alice", "d1.test") }) }, want: DECISIONS.alias },
  { name: "alias in a policy.domain", readme: "an alias (exact, or without extension): enabled, in an enabled domain", req: RCPT("sales@conf.test"), facts: { recipientRows: rows({ exact: alias("alice", "conf.test") }) }, want: DECISIONS.alias },
  { name: "disabled alias", readme: "a disabled alias (exact, or without extension)", req: RCPT("old@d1.test"), facts: { recipientRows: rows({ domainEnabled: true, exact: alias("alice", "d1.test", false) }) }, want: DECISIONS.aliasDisabled },
  { name: "disabled alias wins over an enabled one without the extension", readme: "a disabled alias (exact, or without extension)", req: RCPT("old+x@d1.test"), facts: { recipientRows: rows({ domainEnabled: true, exact: alias("alice", "d1.test", false), base: alias("alice", "d1.test") }) }, want: DECISIONS.aliasDisabled },
  { name: "user's primary email", readme: "primary email of a Keycloak user (exact, or without extension): enabled", req: RCPT("alice@d1.test"), facts: { recipientRows: rows({ domainEnabled: true }), recipientUser: ALICE }, want: DECISIONS.user },
  { name: "user's primary email with an extension", readme: "primary email of a Keycloak user (exact, or without extension): enabled", req: RCPT("ALICE+tag@D1.test"), facts: { recipientRows: rows({ domainEnabled: true }), recipientUser: NOBODY, recipientBaseUser: ALICE }, want: DECISIONS.user },
  { name: "disabled user", readme: "... of a disabled user", req: RCPT("carol@d1.test"), facts: { recipientRows: rows({ domainEnabled: true }), recipientUser: found("carol", "carol@d1.test", { enabled: false }) }, want: DECISIONS.userDisabled },
  { name: "a user's address wins over a list's", readme: "primary email of a Keycloak user (exact, or without extension): enabled", req: RCPT("team@d1.test"), facts: { listsOn: true, recipientRows: rows({ domainEnabled: true }), recipientUser: found("team", "team@d1.test") }, want: DECISIONS.user },
  { name: "list without members", readme: "a list address (exact, or without extension; `lists.parent_group` set), the list has no member", req: RCPT("team@d1.test", "alice"), facts: { listsOn: true, recipientRows: rows({ domainEnabled: true }), recipientUser: NOBODY, recipientList: list({ members: [], posting: "anyone" }) }, want: DECISIONS.listEmpty },
  { name: "members-only list, a member writes", readme: "... any other list address", req: RCPT("team@d1.test", "Alice"), facts: { listsOn: true, recipientRows: rows({ domainEnabled: true }), recipientUser: NOBODY, recipientList: list({}) }, want: DECISIONS.list },
  { name: "members-only list, not a member", readme: "... a members-only list, the login is not a member (or not logged in)", req: RCPT("team@d1.test", "bob"), facts: { listsOn: true, recipientRows: rows({ domainEnabled: true }), recipientUser: NOBODY, recipientList: list({}) }, want: DECISIONS.listMembersOnly },
  { name: "members-only list, not logged in", readme: "... a members-only list, the login is not a member (or not logged in)", req: RCPT("team+x@d1.test"), facts: { listsOn: true, recipientRows: rows({ domainEnabled: true }), recipientUser: NOBODY, recipientBaseUser: NOBODY, recipientList: list({}) }, want: DECISIONS.listMembersOnly },
  { name: "local-senders-only list, not logged in", readme: "... a local-senders-only list, not logged in", req: RCPT("team@d1.test"), facts: { listsOn: true, recipientRows: rows({ domainEnabled: true }), recipientUser: NOBODY, recipientList: list({ posting: "local" }) }, want: DECISIONS.listLocalOnly },
  { name: "local-senders-only list, logged in", readme: "... any other list address", req: RCPT("team@d1.test", "bob"), facts: { listsOn: true, recipientRows: rows({ domainEnabled: true }), recipientUser: NOBODY, recipientList: list({ posting: "local" }) }, want: DECISIONS.list },
  { name: "open list", readme: "... any other list address", req: RCPT("team@d1.test"), facts: { listsOn: true, recipientRows: rows({ domainEnabled: true }), recipientUser: NOBODY, recipientList: list({ posting: "anyone" }) }, want: DECISIONS.list },
  { name: "catch-all domain", readme: "the domain has an enabled catch-all", req: RCPT("anything@d2.test"), facts: { recipientRows: rows({ domainEnabled: true, catchAll: alias("dave", "d2.test") }), recipientUser: NOBODY }, want: DECISIONS.catchAll },
  { name: "catch-all after lists", readme: "the domain has an enabled catch-all", req: RCPT("anything@d2.test"), facts: { listsOn: true, recipientRows: rows({ domainEnabled: true, catchAll: alias("dave", "d2.test") }), recipientUser: NOBODY, recipientList: NO_LIST }, want: DECISIONS.catchAll },
  { name: "disabled catch-all", readme: "anything else", req: RCPT("anything@d2.test"), facts: { recipientRows: rows({ domainEnabled: true, catchAll: alias("dave", "d2.test", false) }), recipientUser: NOBODY }, want: DECISIONS.noSuchUser },
  { name: "unknown local address", readme: "anything else", req: RCPT("nobody+x@d1.test"), facts: { recipientRows: rows({ domainEnabled: true }), recipientUser: NOBODY, recipientBaseUser: NOBODY }, want: DECISIONS.noSuchUser },
  { name: "unknown local address, lists on", readme: "anything else", req: RCPT("nobody@d1.test"), facts: { listsOn: true, recipientRows: rows({ domainEnabled: true }), recipientUser: NOBODY, recipientList: NO_LIST }, want: DECISIONS.noSuchUser },
];

/** States, contexts and both checks in one request. */
export const POLICY_FLOW_ROWS: PolicyRow[] = [
  { name: "CONNECT is not checked", readme: "Every other state gets `DUNNO`", req: { protocol_state: "CONNECT" }, facts: {}, want: DECISIONS.stateNotChecked },
  { name: "DATA is not checked (no quotas)", readme: "Every other state gets `DUNNO`", req: { protocol_state: "DATA", sasl_username: "alice", sender: "bob@d1.test" }, facts: {}, want: DECISIONS.stateNotChecked },
  { name: "another request type is not checked", req: { request: "junk", protocol_state: "RCPT", sender: "alice@d1.test" }, facts: {}, want: DECISIONS.stateNotChecked },
  { name: "state in lower case is checked", req: { protocol_state: "rcpt", sender: "", recipient: "x@ext.test" }, facts: { recipientRows: rows({}) }, want: DECISIONS.notLocal },
  { name: "the sender is checked first", req: { protocol_state: "RCPT", sasl_username: "alice", sender: "bob@d1.test", recipient: "nobody@d1.test" }, facts: { ...USER_FACTS, ...NOT_OWNED }, want: DECISIONS.notOwned },
  { name: "a passing sender, then the recipient", req: { protocol_state: "RCPT", sasl_username: "alice", sender: "alice@d1.test", recipient: "nobody@d1.test" }, facts: { ...USER_FACTS, recipientRows: rows({ domainEnabled: true }), recipientUser: NOBODY }, want: DECISIONS.noSuchUser },
  { name: "context sender skips the recipient check", req: { protocol_state: "RCPT", sender: "ext@ext.test", recipient: "nobody@d1.test", policy_context: " Sender " }, facts: { senderDomainRow: null }, want: DECISIONS.senderOk },
  { name: "context recipient skips the sender check", req: { protocol_state: "RCPT", sasl_username: "alice", sender: "bob@d1.test", recipient: "alice@d1.test", policy_context: "recipient" }, facts: { recipientRows: rows({ domainEnabled: true }), recipientUser: ALICE }, want: DECISIONS.user },
];

/** README "Failure handling". */
export const POLICY_FAILURE_ROWS: PolicyRow[] = [
  { name: "identity source down at the sender check (tempfail)", readme: "451 4.3.0 Temporary authentication/lookup failure", req: MAIL("alice", "alice@d1.test"), facts: { app: false, loginUser: IDP_DOWN }, want: DECISIONS.idpTempfail },
  { name: "identity source down at the recipient check (tempfail)", readme: "451 4.3.0 Temporary authentication/lookup failure", req: RCPT("alice@d1.test"), facts: { recipientRows: rows({ domainEnabled: true }), recipientUser: IDP_DOWN }, want: DECISIONS.idpTempfail },
  { name: "identity source down for the address without extension", req: RCPT("alice+x@d1.test"), facts: { recipientRows: rows({ domainEnabled: true }), recipientUser: NOBODY, recipientBaseUser: IDP_DOWN }, want: DECISIONS.idpTempfail },
  { name: "lists down at the recipient check (tempfail)", readme: "451 4.3.0", req: RCPT("team@d1.test"), facts: { listsOn: true, recipientRows: rows({ domainEnabled: true }), recipientUser: NOBODY, recipientList: LISTS_DOWN }, want: DECISIONS.idpTempfail },
  { name: "lists down at the sender check (tempfail)", req: MAIL("alice", "team@d1.test"), facts: { ...USER_FACTS, ...NOT_OWNED, listsOn: true, senderList: LISTS_DOWN }, want: DECISIONS.idpTempfail },
  { name: "identity source down at the sender check (dunno): no verdict on the sender", readme: "DUNNO", req: MAIL("alice", "alice@d1.test"), facts: { settings: DUNNO_MODE, app: false, loginUser: IDP_DOWN }, want: DECISIONS.senderOk },
  { name: "identity source down at the sender check (dunno): the recipient is still checked", req: { protocol_state: "RCPT", sasl_username: "alice", sender: "alice@d1.test", recipient: "nobody@ext.test" }, facts: { settings: DUNNO_MODE, app: false, loginUser: IDP_DOWN, recipientRows: rows({}) }, want: DECISIONS.authRelay },
  { name: "identity source down at the recipient check (dunno)", req: RCPT("alice@d1.test"), facts: { settings: DUNNO_MODE, recipientRows: rows({ domainEnabled: true }), recipientUser: IDP_DOWN }, want: DECISIONS.idpFailOpen },
  { name: "an alias needs no identity source", req: RCPT("sales@d1.test"), facts: { recipientRows: rows({ domainEnabled: true, exact: alias("alice", "d1.test") }), recipientUser: IDP_DOWN }, want: DECISIONS.alias },
  { name: "a store error (tempfail or dunno)", readme: "451 4.3.0 Temporary internal error", req: RCPT("alice@d1.test"), facts: { settings: DUNNO_MODE, storeError: "SQLITE_BUSY: database is locked" }, want: DECISIONS.dbError },
  { name: "a store error at a state not checked", readme: "database-error", req: { protocol_state: "CONNECT" }, facts: { storeError: "database file missing" }, want: DECISIONS.dbError },
];

export const POLICY_ROWS: readonly PolicyRow[] = [...POLICY_SENDER_ROWS, ...POLICY_RECIPIENT_ROWS, ...POLICY_FLOW_ROWS, ...POLICY_FAILURE_ROWS];

export interface MapRow {
  readonly name: string;
  readonly readme?: string;
  readonly map: string;
  readonly key: string;
  readonly facts: Facts<MapFacts>;
  /** The reply as Postfix reads it (formatSocketmapReply), and the reason. */
  readonly want: readonly [reply: string, reason: string];
  /** The warning the answer carries (its key), if any. */
  readonly warns?: string;
}

/** 8,000 members of 11 characters but 12 UTF-8 bytes: 96,002 characters with "OK ", 104,002 bytes. */
const WIDE = Array.from({ length: 8_000 }, (_, i) => `é${String(i).padStart(4, "0")}@d1.te`);
const BIG = Array.from({ length: 8000 }, (_, i) => `member${i}@d1.test`);

export const MAP_ROWS: readonly MapRow[] = [
  // domain
  { name: "enabled domain", readme: "domain", map: "domain", key: "D1.test", facts: { domainRow: true }, want: ["OK d1.test", "domain-local"] },
  { name: "policy.domain", readme: "domain", map: "domain", key: "conf.test", facts: {}, want: ["OK conf.test", "domain-local"] },
  { name: "disabled domain", readme: "domain", map: "domain", key: "off.test", facts: { domainRow: false }, want: ["NOTFOUND", "not-local"] },
  { name: "unknown domain", readme: "domain", map: "domain", key: "elsewhere.test", facts: { domainRow: null }, want: ["NOTFOUND", "not-local"] },
  // mailbox
  { name: "user's primary email", readme: "mailbox", map: "mailbox", key: "alice@d1.test", facts: { domainRow: true, user: ALICE }, want: ["OK d1.test/alice/", "mailbox"] },
  { name: "user's primary email with an extension", readme: "mailbox", map: "mailbox", key: "Alice+tag@D1.test", facts: { domainRow: true, user: NOBODY, baseUser: ALICE }, want: ["OK d1.test/alice/", "mailbox-without-extension"] },
  { name: "disabled user", readme: "mailbox", map: "mailbox", key: "carol@d1.test", facts: { domainRow: true, user: found("carol", "carol@d1.test", { enabled: false }) }, want: ["NOTFOUND", "user-disabled"] },
  { name: "disabled user, with an extension", map: "mailbox", key: "carol+x@d1.test", facts: { domainRow: true, user: NOBODY, baseUser: found("carol", "carol@d1.test", { enabled: false }) }, want: ["NOTFOUND", "user-disabled"] },
  { name: "an alias is not a mailbox", readme: "mailbox", map: "mailbox", key: "sales@d1.test", facts: { domainRow: true, user: NOBODY }, want: ["NOTFOUND", "no-such-user"] },
  { name: "unknown, with an extension", map: "mailbox", key: "nobody+x@d1.test", facts: { domainRow: true, user: NOBODY, baseUser: NOBODY }, want: ["NOTFOUND", "no-such-user"] },
  { name: "not in a local domain", readme: "mailbox", map: "mailbox", key: "alice@ext.test", facts: { domainRow: null }, want: ["NOTFOUND", "not-local"] },
  { name: "a bare domain", map: "mailbox", key: "d1.test", facts: {}, want: ["NOTFOUND", "no-address"] },
  // alias, in the README's lookup order
  { name: "a bare domain is never an alias", readme: "alias", map: "alias", key: "d1.test", facts: {}, want: ["NOTFOUND", "no-address"] },
  { name: "outside the local domains", readme: "alias", map: "alias", key: "x@elsewhere.test", facts: { rows: rows({}) }, want: ["NOTFOUND", "not-local"] },
  { name: "alias in a disabled domain", map: "alias", key: "info@off.test", facts: { rows: rows({ domainEnabled: false, exact: alias("alice", "off.test", false) }) }, want: ["NOTFOUND", "not-local"] },
  { name: "exact alias, to the alias's domain", readme: "alias", map: "alias", key: "SALES@D1.TEST", facts: { rows: rows({ domainEnabled: true, exact: alias("alice", "d1.test") }) }, want: ["OK alice@d1.test", "alias"] },
  { name: "disabled alias: no fallback", readme: "alias", map: "alias", key: "old+x@d1.test", facts: { rows: rows({ domainEnabled: true, exact: alias("alice", "d1.test", false), base: alias("bob", "d1.test"), catchAll: alias("dave", "d1.test") }) }, want: ["NOTFOUND", "alias-disabled"] },
  { name: "without the extension, put back on the result", readme: "alias", map: "alias", key: "sales+news@d1.test", facts: { rows: rows({ domainEnabled: true, base: alias("alice", "d1.test") }) }, want: ["OK alice+news@d1.test", "alias-without-extension"] },
  { name: "disabled alias without the extension", map: "alias", key: "old+news@d1.test", facts: { rows: rows({ domainEnabled: true, base: alias("alice", "d1.test", false) }) }, want: ["NOTFOUND", "alias-disabled"] },
  { name: "catch-all", readme: "alias", map: "alias", key: "anything@d2.test", facts: { rows: rows({ domainEnabled: true, catchAll: alias("dave", "d2.test") }), user: NOBODY }, want: ["OK dave@d2.test", "catch-all"] },
  { name: "a catch-all never captures a user's address", readme: "alias", map: "alias", key: "dave+x@d2.test", facts: { rows: rows({ domainEnabled: true, catchAll: alias("dave", "d2.test") }), baseUser: found("dave", "dave@d2.test") }, want: ["NOTFOUND", "catch-all-user-exists"] },
  { name: "disabled catch-all", map: "alias", key: "anything@d2.test", facts: { rows: rows({ domainEnabled: true, catchAll: alias("dave", "d2.test", false) }) }, want: ["NOTFOUND", "no-alias"] },
  { name: "no alias", readme: "alias", map: "alias", key: "nobody@d1.test", facts: { rows: rows({ domainEnabled: true }) }, want: ["NOTFOUND", "no-alias"] },
  // lists (README: distribution lists)
  { name: "a list expands to its members", readme: "alias", map: "alias", key: "team@d1.test", facts: { listsOn: true, rows: rows({ domainEnabled: true }), list: list({}), user: NOBODY }, want: ["OK alice@d1.test,dave@d2.test", "list"] },
  { name: "a list with an extension", map: "alias", key: "team+x@d1.test", facts: { listsOn: true, rows: rows({ domainEnabled: true }), list: list({}), baseUser: NOBODY }, want: ["OK alice@d1.test,dave@d2.test", "list"] },
  { name: "an alias wins over a list", map: "alias", key: "team@d1.test", facts: { listsOn: true, rows: rows({ domainEnabled: true, exact: alias("bob", "d1.test") }) }, want: ["OK bob@d1.test", "alias"] },
  { name: "a user wins over a list (one warning)", map: "alias", key: "team@d1.test", facts: { listsOn: true, rows: rows({ domainEnabled: true }), list: list({}), user: found("team", "team@d1.test") }, want: ["NOTFOUND", "list-is-user"], warns: "user:team@d1.test" },
  { name: "a list without members", map: "alias", key: "team@d1.test", facts: { listsOn: true, rows: rows({ domainEnabled: true }), list: list({ members: [] }), user: NOBODY }, want: ["NOTFOUND", "list-empty"] },
  { name: "a list too large for Postfix (one error line)", readme: "TEMP list expansion exceeds socketmap_max_reply_size", map: "alias", key: "team@d1.test", facts: { listsOn: true, rows: rows({ domainEnabled: true }), list: list({ members: BIG }), user: NOBODY }, want: ["TEMP list expansion exceeds socketmap_max_reply_size", "list-too-large"], warns: "large:team@d1.test" },
  { name: "a list over the limit in bytes, not in characters", map: "alias", key: "team@d1.test", facts: { listsOn: true, rows: rows({ domainEnabled: true }), list: list({ members: WIDE }), user: NOBODY }, want: ["TEMP list expansion exceeds socketmap_max_reply_size", "list-too-large"], warns: "large:team@d1.test" },
  { name: "no list: the catch-all", map: "alias", key: "anything@d2.test", facts: { listsOn: true, rows: rows({ domainEnabled: true, catchAll: alias("dave", "d2.test") }), list: NO_LIST, user: NOBODY }, want: ["OK dave@d2.test", "catch-all"] },
  // senders
  { name: "the user whose primary email it is", readme: "senders", map: "senders", key: "alice@d1.test", facts: { user: ALICE, alias: null, domainRow: true, delegates: [], apps: [] }, want: ["OK alice", "senders"] },
  { name: "sending disabled by attribute", readme: "senders", map: "senders", key: "bob@d1.test", facts: { user: found("bob", "bob@d1.test", { sendAllowed: "FALSE" }), alias: null, domainRow: true, delegates: [], apps: [] }, want: ["NOTFOUND", "no-senders"] },
  { name: "a disabled user", map: "senders", key: "carol@d1.test", facts: { user: found("carol", "carol@d1.test", { enabled: false }), alias: null, domainRow: true, delegates: [], apps: [] }, want: ["NOTFOUND", "no-senders"] },
  { name: "alias owner and apps", readme: "senders", map: "senders", key: "sales@d1.test", facts: { user: NOBODY, alias: alias("alice", "d1.test"), domainRow: true, delegates: [], apps: ["crm"] }, want: ["OK alice,crm", "senders"] },
  { name: "with an extension: the user, the alias and the delegations without it", readme: "senders", map: "senders", key: "info+x@d1.test", facts: { user: NOBODY, baseUser: NOBODY, alias: null, baseAlias: alias("dave", "d1.test"), domainRow: true, delegates: ["bob"], baseDelegates: ["alice", "bob"], apps: [] }, want: ["OK dave,bob,alice", "senders"] },
  { name: "a disabled alias stops the search", map: "senders", key: "old+x@d1.test", facts: { user: NOBODY, baseUser: NOBODY, alias: alias("alice", "d1.test", false), domainRow: true, delegates: [], baseDelegates: [], apps: [] }, want: ["NOTFOUND", "no-senders"] },
  { name: "delegations only in a local domain", map: "senders", key: "info@gone.test", facts: { user: NOBODY, alias: null, domainRow: null, apps: [] }, want: ["NOTFOUND", "no-senders"] },
  { name: "list send-as logins first", map: "senders", key: "team@d1.test", facts: { listsOn: true, list: list({ sendAs: new Set(["dave", "alice"]) }), user: NOBODY, alias: null, domainRow: true, delegates: ["alice", "bob"], apps: [] }, want: ["OK dave,alice,bob", "senders"] },
  { name: "nobody", readme: "senders", map: "senders", key: "nobody@d1.test", facts: { user: NOBODY, alias: null, domainRow: true, delegates: [], apps: [] }, want: ["NOTFOUND", "no-senders"] },
  { name: "a bare domain", map: "senders", key: "d1.test", facts: {}, want: ["NOTFOUND", "no-address"] },
  // replies (README: socketmap notes)
  { name: "an unknown map", readme: "NOTFOUND", map: "nosuchmap", key: "x", facts: {}, want: ["NOTFOUND", "unknown-map"] },
  // failure handling
  { name: "mailbox, identity source down (tempfail)", readme: "TEMP identity provider lookup failed", map: "mailbox", key: "alice@d1.test", facts: { domainRow: true, user: IDP_DOWN }, want: ["TEMP identity provider lookup failed", "idp-unavailable"] },
  { name: "mailbox, identity source down (dunno): as if the user exists", map: "mailbox", key: "alice+x@d1.test", facts: { settings: DUNNO_MODE, domainRow: true, user: IDP_DOWN }, want: ["OK d1.test/alice/", "idp-unavailable-fail-open"] },
  { name: "mailbox, down for the address without extension (dunno)", map: "mailbox", key: "alice+x@d1.test", facts: { settings: DUNNO_MODE, domainRow: true, user: NOBODY, baseUser: IDP_DOWN }, want: ["OK d1.test/alice/", "idp-unavailable-fail-open"] },
  { name: "alias catch-all, identity source down (tempfail)", readme: "TEMP identity provider lookup failed", map: "alias", key: "anything@d2.test", facts: { rows: rows({ domainEnabled: true, catchAll: alias("dave", "d2.test") }), user: IDP_DOWN }, want: ["TEMP identity provider lookup failed", "idp-unavailable"] },
  { name: "alias catch-all, identity source down (dunno): skipped", map: "alias", key: "anything@d2.test", facts: { settings: DUNNO_MODE, rows: rows({ domainEnabled: true, catchAll: alias("dave", "d2.test") }), user: IDP_DOWN }, want: ["NOTFOUND", "idp-unavailable-fail-open"] },
  { name: "an alias needs no identity source", map: "alias", key: "sales@d1.test", facts: { rows: rows({ domainEnabled: true, exact: alias("alice", "d1.test") }), user: IDP_DOWN }, want: ["OK alice@d1.test", "alias"] },
  { name: "lists down (tempfail)", readme: "TEMP", map: "alias", key: "team@d1.test", facts: { listsOn: true, rows: rows({ domainEnabled: true }), list: LISTS_DOWN }, want: ["TEMP identity provider lookup failed", "idp-unavailable"] },
  { name: "list, user lookup down (tempfail): never a shorter list", map: "alias", key: "team@d1.test", facts: { listsOn: true, rows: rows({ domainEnabled: true }), list: list({}), user: IDP_DOWN }, want: ["TEMP identity provider lookup failed", "idp-unavailable"] },
  { name: "senders, identity source down (tempfail)", readme: "TEMP identity provider lookup failed", map: "senders", key: "alice@d1.test", facts: { user: IDP_DOWN }, want: ["TEMP identity provider lookup failed", "idp-unavailable"] },
  { name: "senders, lists down (tempfail)", map: "senders", key: "team@d1.test", facts: { listsOn: true, list: LISTS_DOWN }, want: ["TEMP identity provider lookup failed", "idp-unavailable"] },
  { name: "senders, identity source down (dunno): without the user", map: "senders", key: "sales@d1.test", facts: { settings: DUNNO_MODE, user: IDP_DOWN, alias: alias("alice", "d1.test"), domainRow: true, delegates: [], apps: ["crm"] }, want: ["OK alice,crm", "idp-unavailable-fail-open"] },
  { name: "senders, identity source down (dunno): nobody else", map: "senders", key: "alice@d1.test", facts: { settings: DUNNO_MODE, user: IDP_DOWN, alias: null, domainRow: true, delegates: [], apps: [] }, want: ["NOTFOUND", "idp-unavailable-fail-open"] },
  { name: "a store error, whatever the failure mode", readme: "database-error", map: "alias", key: "sales@d1.test", facts: { settings: DUNNO_MODE, storeError: "SQLITE_IOERR" }, want: ["TEMP", "database-error"] },
];

