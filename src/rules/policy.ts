// Policy delegation decisions (check_policy_service), as a pure function of
// the request and plain facts. Sender rules first, then recipient rules;
// every reply is an access(5) action with a reason code for the log line.
// The README's "Policy decisions" tables are these rules, row by row
// (test/rules-policy.test.ts checks that they match).

import type { PolicyRequest } from "../protocol/policy.js";
import { domainOf, normalize, stripExtension } from "./address.js";
import { isLocal, sendingDisabledBy, type AddressRows, type AliasTarget, type ListLookup, type RuleSettings, type UserLookup } from "./facts.js";

/** Reply texts, as the Go original's (a reject code is always followed by text). */
export const ACTIONS = {
  dunno: "DUNNO",
  tempfailIdp: "451 4.3.0 Temporary authentication/lookup failure",
  tempfailInternal: "451 4.3.0 Temporary internal error",
  noSuchUser: "550 5.1.1 No such user",
  notOwned: "553 5.7.1 Sender not owned by authenticated user",
  sendingDisabled: "554 5.7.1 Sending is disabled for this account",
  localNeedsAuth: "553 5.7.1 Sending from local domains requires authentication",
  notLocal: "550 5.7.1 Recipient domain not local",
  listMembersOnly: "550 5.7.1 Only members may write to this list",
  listLocalOnly: "550 5.7.1 Only local senders may write to this list",
} as const;

export interface Decision {
  readonly action: string;
  readonly reason: string;
}

const decision = (action: string, reason: string): Decision => Object.freeze({ action, reason });

/** Every decision the rules make (shared objects: the hot path allocates none). */
export const DECISIONS = {
  stateNotChecked: decision(ACTIONS.dunno, "state-not-checked"),
  idpTempfail: decision(ACTIONS.tempfailIdp, "idp-unavailable"),
  idpFailOpen: decision(ACTIONS.dunno, "idp-unavailable-fail-open"),
  senderOk: decision(ACTIONS.dunno, "sender-ok"),
  localNeedsAuth: decision(ACTIONS.localNeedsAuth, "unauthenticated-local-sender"),
  appNotAllowed: decision(ACTIONS.notOwned, "app-sender-not-allowed"),
  loginDisabled: decision(ACTIONS.notOwned, "login-disabled"),
  loginUnknown: decision(ACTIONS.notOwned, "login-unknown"),
  sendingDisabled: decision(ACTIONS.sendingDisabled, "sending-disabled"),
  notOwned: decision(ACTIONS.notOwned, "sender-not-owned"),
  noDomain: decision(ACTIONS.dunno, "no-recipient-domain"),
  authRelay: decision(ACTIONS.dunno, "authenticated-relay"),
  notLocal: decision(ACTIONS.notLocal, "recipient-not-local"),
  alias: decision(ACTIONS.dunno, "recipient-alias"),
  aliasDisabled: decision(ACTIONS.noSuchUser, "alias-disabled"),
  user: decision(ACTIONS.dunno, "recipient-user"),
  userDisabled: decision(ACTIONS.noSuchUser, "user-disabled"),
  catchAll: decision(ACTIONS.dunno, "recipient-catch-all"),
  list: decision(ACTIONS.dunno, "recipient-list"),
  listEmpty: decision(ACTIONS.noSuchUser, "list-empty"),
  listMembersOnly: decision(ACTIONS.listMembersOnly, "list-members-only"),
  listLocalOnly: decision(ACTIONS.listLocalOnly, "list-local-senders-only"),
  noSuchUser: decision(ACTIONS.noSuchUser, "no-such-user"),
  dbError: decision(ACTIONS.tempfailInternal, "database-error"),
  internalError: decision(ACTIONS.tempfailInternal, "internal-error"),
} as const;
const D = DECISIONS;

/** The states at which a message is counted against its login's quota (one of them, once per message). */
export function countsQuota(req: PolicyRequest): boolean {
  const s = req.protocol_state;
  if (s === "RCPT" || s === "MAIL") return false; // the hot path: no case folding
  const u = s.toUpperCase();
  return u === "END-OF-MESSAGE" || u === "DATA";
}

/** The request as the rules read it: normalised once, before any fact is looked up. */
export interface PolicyView {
  /** An smtpd_access_policy request at RCPT or MAIL. */
  readonly checked: boolean;
  readonly checkSender: boolean;
  readonly checkRecipient: boolean;
  /** Trimmed sasl_username, as app ids are stored; "" when not logged in. */
  readonly login: string;
  /** The same, lower-cased, as Keycloak usernames are. */
  readonly loginLower: string;
  readonly sender: string;
  readonly senderDomain: string | null;
  /** A delegation needs a local part ("@d" has none). */
  readonly senderDelegable: boolean;
  /** The sender without its extension, or null. */
  readonly senderBase: string | null;
  readonly recipient: string;
  readonly recipientDomain: string | null;
  readonly recipientBase: string | null;
}

export function policyView(req: PolicyRequest, s: RuleSettings): PolicyView {
  const state = req.protocol_state.toUpperCase();
  const checked = req.request === "smtpd_access_policy" && (state === "RCPT" || state === "MAIL");
  const ctx = req.policy_context.trim().toLowerCase();
  const sender = normalize(req.sender);
  const recipient = normalize(req.recipient);
  const login = req.sasl_username.trim();
  return {
    checked,
    checkSender: ctx !== "recipient",
    checkRecipient: ctx !== "sender" && state === "RCPT",
    login,
    loginLower: login.toLowerCase(),
    sender,
    senderDomain: sender === "" ? null : domainOf(sender),
    senderDelegable: sender.lastIndexOf("@") > 0,
    senderBase: stripExtension(sender, s.delimiter)?.base ?? null,
    recipient,
    recipientDomain: domainOf(recipient),
    recipientBase: stripExtension(recipient, s.delimiter)?.base ?? null,
  };
}

/**
 * What the policy rules may need, each looked up at most once per request.
 * A name not yet set is asked for by name (see src/rules/facts.ts).
 */
export interface PolicyFacts {
  readonly settings: RuleSettings;
  /** Lists are configured (lists.parent_group, Keycloak). */
  readonly listsOn: boolean;
  /** A store read failed (its message): every decision is then the database error. */
  storeError?: string | undefined;
  /** The `domains` row of the sender's domain: enabled, or null when absent. */
  senderDomainRow?: boolean | null | undefined;
  /** The login is an enabled app. */
  app?: boolean | undefined;
  /** That app may send as the sender (exact address). */
  appAllowsSender?: boolean | undefined;
  /** The login's directory user. */
  loginUser?: UserLookup | undefined;
  senderAlias?: AliasTarget | null | undefined;
  senderBaseAlias?: AliasTarget | null | undefined;
  /** Logins delegated to send as the sender (mailcloakctl senders allow). */
  senderDelegates?: readonly string[] | undefined;
  senderBaseDelegates?: readonly string[] | undefined;
  senderList?: ListLookup | undefined;
  recipientRows?: AddressRows | undefined;
  recipientUser?: UserLookup | undefined;
  recipientBaseUser?: UserLookup | undefined;
  recipientList?: ListLookup | undefined;
}

export type PolicyNeed = Exclude<keyof PolicyFacts, "settings" | "listsOn" | "storeError">;

/** The identity source (users or lists) could not say: the failure mode decides. */
const OUTAGE = Symbol("outage");
/** A sender with no objection. */
const PASS = null;

type SenderVerdict = Decision | typeof PASS | typeof OUTAGE | PolicyNeed;
type RecipientVerdict = Decision | typeof OUTAGE | PolicyNeed;

/** Decide one request, or name the next fact it needs. */
export function decidePolicy(v: PolicyView, f: PolicyFacts): Decision | PolicyNeed {
  if (f.storeError !== undefined) return D.dbError;
  if (!v.checked) return D.stateNotChecked;
  const failOpen = f.settings.failureMode === "dunno";
  if (v.checkSender) {
    const s = senderVerdict(v, f);
    // Failing open on the sender gives no verdict on it; the recipient may still be checked.
    if (s === OUTAGE) {
      if (!failOpen) return D.idpTempfail;
    } else if (s !== PASS) return s;
  }
  if (!v.checkRecipient) return D.senderOk;
  const r = recipientVerdict(v, f);
  return r === OUTAGE ? (failOpen ? D.idpFailOpen : D.idpTempfail) : r;
}

/** The sender's domain is local; null until its row is known. */
function senderLocal(v: PolicyView, f: PolicyFacts): boolean | "senderDomainRow" {
  const d = v.senderDomain;
  if (d === null) return false;
  if (f.settings.configDomains.has(d)) return true;
  return f.senderDomainRow === undefined ? "senderDomainRow" : f.senderDomainRow === true;
}

function senderVerdict(v: PolicyView, f: PolicyFacts): SenderVerdict {
  if (v.login === "") {
    const local = senderLocal(v, f);
    return typeof local === "string" ? local : local ? D.localNeedsAuth : PASS;
  }
  if (v.sender === "") return PASS; // the null sender (bounces) belongs to no one
  if (f.app === undefined) return "app";
  if (f.app) {
    if (f.appAllowsSender === undefined) return "appAllowsSender";
    return f.appAllowsSender ? PASS : D.appNotAllowed;
  }
  const u = f.loginUser;
  if (u === undefined) return "loginUser";
  if (u.kind === "unavailable") return OUTAGE;
  if (u.kind === "notfound") return D.loginUnknown;
  const user = u.value;
  if (!user.enabled) return D.loginDisabled;
  if (sendingDisabledBy(f.settings.sendAllowedAttribute, user.attributes)) return D.sendingDisabled;
  const owned = ownedBy(v, f, user.username, user.email, v.sender, "senderAlias", "senderDelegates");
  if (owned !== false) return owned === true ? PASS : owned;
  if (v.senderBase !== null) {
    const base = ownedBy(v, f, user.username, user.email, v.senderBase, "senderBaseAlias", "senderBaseDelegates");
    if (base !== false) return base === true ? PASS : base;
  }
  if (!f.listsOn) return D.notOwned;
  const l = f.senderList;
  if (l === undefined) return "senderList";
  if (l.kind === "unavailable") return OUTAGE;
  return l.kind === "list" && l.list.sendAs.has(user.username) ? PASS : D.notOwned;
}

/** `addr` is the user's primary email, an enabled alias they own, or delegated to them in a local domain. */
function ownedBy(v: PolicyView, f: PolicyFacts, username: string, email: string | null, addr: string,
  aliasFact: "senderAlias" | "senderBaseAlias", delegatesFact: "senderDelegates" | "senderBaseDelegates"): boolean | PolicyNeed {
  if (email !== null && addr === email) return true;
  const a = f[aliasFact];
  if (a === undefined) return aliasFact;
  if (a !== null && a.active && a.targetUser.toLowerCase() === username) return true;
  // A delegation outlives its domain's removal, not its use.
  if (!v.senderDelegable) return false;
  const local = senderLocal(v, f);
  if (typeof local === "string") return local;
  if (!local) return false;
  const logins = f[delegatesFact];
  if (logins === undefined) return delegatesFact;
  return logins.includes(username.toLowerCase());
}

function recipientVerdict(v: PolicyView, f: PolicyFacts): RecipientVerdict {
  const domain = v.recipientDomain;
  if (v.recipient === "" || domain === null) return D.noDomain;
  const rows = f.recipientRows;
  if (rows === undefined) return "recipientRows";
  if (!isLocal(f.settings, domain, rows.domainEnabled)) return v.login !== "" ? D.authRelay : D.notLocal;
  // Aliases first: they need no IdP round trip.
  const a = rows.exact ?? rows.base;
  if (a) return a.active ? D.alias : D.aliasDisabled;
  // Users before lists (a user's address wins over a list's), lists before the catch-all.
  const u = f.recipientUser;
  if (u === undefined) return "recipientUser";
  if (u.kind === "unavailable") return OUTAGE;
  if (u.kind === "found") return u.value.enabled ? D.user : D.userDisabled;
  if (v.recipientBase !== null) {
    const b = f.recipientBaseUser;
    if (b === undefined) return "recipientBaseUser";
    if (b.kind === "unavailable") return OUTAGE;
    if (b.kind === "found") return b.value.enabled ? D.user : D.userDisabled;
  }
  if (f.listsOn) {
    const l = f.recipientList;
    if (l === undefined) return "recipientList";
    if (l.kind === "unavailable") return OUTAGE;
    if (l.kind === "list") {
      const m = l.list;
      if (m.members.length === 0) return D.listEmpty;
      if (m.posting === "members" && !m.logins.has(v.loginLower)) return D.listMembersOnly;
      if (m.posting === "local" && v.loginLower === "") return D.listLocalOnly;
      return D.list;
    }
  }
  return rows.catchAll?.active ? D.catchAll : D.noSuchUser;
}
