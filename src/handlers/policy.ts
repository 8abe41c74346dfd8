// Policy delegation decisions (check_policy_service). Sender rules first,
// then recipient rules; every reply is an access(5) action.

import type { Logger } from "pino";
import type { Facts } from "../facts.js";
import { StoreError } from "../store/errors.js";
import type { CacheOutcome, CachedLookup } from "../directory/cache.js";
import { domainOf, normalize } from "../rules/address.js";
import { formatPolicyReply, PolicyDecoder, type PolicyRequest } from "../protocol/policy.js";
import type { ConnectionInfo, Framing, Protocol } from "../server/listener.js";
import { recover, then, type Maybe } from "./maybe.js";
import type { QuotaCheck, QuotaDecision } from "../quota/check.js";
import type { ListLookup } from "../directory/lists.js";

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
  /** A quota refusal's facts, for its log line (logged at warn). */
  readonly detail?: QuotaDecision["detail"];
}

/** The states at which a message is counted against its login's quota (one of them, once per message). */
export function countsQuota(req: PolicyRequest): boolean {
  const s = req.protocol_state;
  if (s === "RCPT" || s === "MAIL") return false; // the hot path: no case folding
  const u = s.toUpperCase();
  return u === "END-OF-MESSAGE" || u === "DATA";
}

export interface PolicyEvents {
  onDecision?(state: string, action: string, reason: string, seconds: number): void;
}

const decision = (action: string, reason: string): Decision => Object.freeze({ action, reason });

/** Every decision the rules make (shared objects: the hot path allocates none). */
const D = {
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

class Outage extends Error {}
const isOutage = (err: unknown): err is Outage => err instanceof Outage;

/** Cache outcome summary for the log line: worst of the lookups made. */
class Trace {
  cache: CacheOutcome | "none" = "none";
  note(c: CachedLookup): CachedLookup {
    if (this.cache === "none" || this.cache === "hit") this.cache = c.cache;
    return c;
  }
}

type Verdict = Decision | null;

export class PolicyHandler {
  readonly #facts: Facts;
  readonly #log: Logger;
  readonly #events: PolicyEvents;
  readonly #quota: QuotaCheck | null;

  constructor(facts: Facts, log: Logger, events: PolicyEvents = {}, quota: QuotaCheck | null = null) {
    this.#facts = facts;
    this.#log = log;
    this.#events = events;
    this.#quota = quota;
  }

  /**
   * Decide one request; never throws or rejects. Synchronous when every
   * lookup is answered from memory. Timing and the cache trace are kept only
   * when metrics or the info log will use them.
   */
  decide(req: PolicyRequest): Maybe<Decision> {
    const timed = this.#events.onDecision !== undefined || this.#log.isLevelEnabled("info");
    const started = timed ? performance.now() : 0;
    const trace = timed ? new Trace() : null;
    let d: Maybe<Decision>;
    try {
      d = this.#facts.store.within(() => this.#decide(req, trace));
    } catch (err) {
      d = this.#failed(err);
    }
    // A quota refusal is always logged (at warn), whatever the log level says about decisions.
    if (d instanceof Promise) return d.catch((err: unknown) => this.#failed(err)).then((x) => (timed || x.detail ? this.#report(req, x, trace, started) : x));
    return timed || d.detail ? this.#report(req, d, trace, started) : d;
  }

  /** For a memo of decisions: the store's state they were made on (Store.generation). */
  get storeGeneration(): number {
    return this.#facts.store.generation;
  }

  storeUnchangedSince(generation: number): boolean {
    return this.#facts.store.unchangedSince(generation);
  }

  #failed(err: unknown): Decision {
    // An outage the store has announced (one line) is not logged again per request.
    if (err instanceof StoreError && err.kind === "unavailable" && this.#facts.store.problem !== null) return D.dbError;
    const sqlite = err instanceof StoreError;
    this.#log.error({ err: err instanceof Error ? err.message : String(err) }, sqlite ? "database error during policy decision" : "internal error during policy decision");
    return sqlite ? D.dbError : D.internalError;
  }

  #report(req: PolicyRequest, d: Decision, trace: Trace | null, started: number): Decision {
    const seconds = started === 0 ? 0 : (performance.now() - started) / 1000;
    if (this.#events.onDecision) {
      const sp = d.action.indexOf(" ");
      this.#events.onDecision(req.protocol_state, sp < 0 ? d.action : d.action.slice(0, sp), d.reason, seconds);
    }
    if (d.detail !== undefined) {
      this.#log.warn({
        state: req.protocol_state, login: d.detail.login, sender: req.sender, queue_id: req.queue_id || undefined, action: d.action, reason: d.reason,
        limit: d.detail.limit, used: d.detail.used, max: d.detail.max, recipients: d.detail.recipients, ms: Math.round(seconds * 10000) / 10,
      }, "sending quota exceeded");
    } else if (this.#log.isLevelEnabled("info")) this.#log.info({
      state: req.protocol_state, login: req.sasl_username || undefined, sender: req.sender, recipient: req.recipient || undefined,
      context: req.policy_context || undefined, action: d.action, reason: d.reason, cache: trace?.cache ?? "none", ms: Math.round(seconds * 10000) / 10,
    }, "policy decision");
    return d;
  }

  #decide(req: PolicyRequest, trace: Trace | null): Maybe<Decision> {
    const state = req.protocol_state.toUpperCase();
    if (req.request === "smtpd_access_policy" && this.#quota !== null && countsQuota(req)) {
      return this.#quota.check(req.sasl_username, req.recipient_count, trace ? (c) => trace.note(c) : undefined);
    }
    if (req.request !== "smtpd_access_policy" || (state !== "RCPT" && state !== "MAIL")) return D.stateNotChecked;
    const ctx = req.policy_context.trim().toLowerCase();
    const checkSender = ctx !== "recipient";
    const checkRecipient = ctx !== "sender" && state === "RCPT";
    const failOpen = this.#facts.settings.failureMode === "dunno";

    const recipient = (): Maybe<Decision> => !checkRecipient ? D.senderOk
      : recover(() => this.#checkRecipient(req, trace), isOutage, () => (failOpen ? D.idpFailOpen : D.idpTempfail));
    if (!checkSender) return recipient();
    // Failing open on the sender gives no verdict on it; the recipient may still be checked.
    const sender = recover(() => this.#checkSender(req, trace), isOutage, (): Verdict => (failOpen ? null : D.idpTempfail));
    return then(sender, (v) => v ?? recipient());
  }

  /** The user behind a lookup; an outage is thrown (or rejected) as Outage. */
  #user(lookup: Maybe<CachedLookup>, trace: Trace | null): Maybe<CachedLookup["lookup"]> {
    return then(lookup, (c) => {
      trace?.note(c);
      if (c.lookup.kind === "unavailable") throw new Outage(c.lookup.reason);
      return c.lookup;
    });
  }

  /** A rejection, or null when the sender may be used. */
  #checkSender(req: PolicyRequest, trace: Trace | null): Maybe<Verdict> {
    const f = this.#facts;
    const sender = normalize(req.sender);
    const login = req.sasl_username.trim();
    if (login === "") {
      const d = sender === "" ? null : domainOf(sender);
      return d !== null && f.isLocalDomain(d) ? D.localNeedsAuth : null;
    }
    if (sender === "") return null; // the null sender (bounces) belongs to no one
    if (f.store.appEnabled(login) === true) return f.store.appAllowsSender(login, sender) ? null : D.appNotAllowed;
    return then(this.#user(f.userByUsername(login.toLowerCase()), trace), (u): Maybe<Verdict> => {
      if (u.kind !== "found" || !u.value.enabled) return u.kind === "found" ? D.loginDisabled : D.loginUnknown;
      const user = u.value;
      if (f.sendingDisabled(user.attributes)) return D.sendingDisabled;
      const ext = f.strip(sender);
      for (const c of ext ? [sender, ext.base] : [sender]) {
        if (user.email !== null && c === user.email) return null;
        if (f.store.aliasOwnedBy(c, user.username)) return null;
        if (f.delegatedLogins(c).includes(user.username.toLowerCase())) return null; // mailcloakctl senders allow
      }
      if (f.lists === null) return D.notOwned;
      return then(f.list(sender), (l: ListLookup): Verdict => {
        if (l.kind === "unavailable") throw new Outage(l.reason);
        return l.kind === "list" && l.list.sendAs.has(user.username) ? null : D.notOwned;
      });
    });
  }

  #checkRecipient(req: PolicyRequest, trace: Trace | null): Maybe<Decision> {
    const f = this.#facts;
    const rcpt = normalize(req.recipient);
    const domain = domainOf(rcpt);
    if (rcpt === "" || domain === null) return D.noDomain;
    const ext = f.strip(rcpt);
    const rows = f.store.addressRows(rcpt, ext ? ext.base : null, domain);
    if (!f.isLocal(domain, rows.domainEnabled)) return req.sasl_username.trim() !== "" ? D.authRelay : D.notLocal;
    // Aliases first: they need no IdP round trip.
    const a = rows.exact ?? rows.base;
    if (a) return a.active ? D.alias : D.aliasDisabled;
    const candidates = ext ? [rcpt, ext.base] : [rcpt];
    const login = req.sasl_username.trim().toLowerCase();
    // After users (a user's address wins over a list's), before the catch-all.
    const list = (): Maybe<Decision> => then(f.list(rcpt), (l: ListLookup): Decision => {
      if (l.kind === "unavailable") throw new Outage(l.reason);
      if (l.kind === "none") return rows.catchAll?.active ? D.catchAll : D.noSuchUser;
      const m = l.list;
      if (m.members.length === 0) return D.listEmpty;
      if (m.posting === "members" && !m.logins.has(login)) return D.listMembersOnly;
      if (m.posting === "local" && login === "") return D.listLocalOnly;
      return D.list;
    });
    const tryUser = (i: number): Maybe<Decision> => {
      if (i === candidates.length) return f.lists !== null ? list() : rows.catchAll?.active ? D.catchAll : D.noSuchUser;
      return then(this.#user(f.userByEmail(candidates[i]!), trace), (u) => {
        if (u.kind === "found") return u.value.enabled ? D.user : D.userDisabled;
        return tryUser(i + 1);
      });
    };
    return tryUser(0);
  }
}

interface Memo {
  req: PolicyRequest;
  reply: string;
  /** The store's generation after the decision's synchronous reads. */
  generation: number;
}

/** The same question, as a duplicate request from the same SMTP transaction asks it. */
function sameQuestion(a: PolicyRequest, b: PolicyRequest): boolean {
  return a.instance === b.instance && a.protocol_state === b.protocol_state && a.recipient === b.recipient &&
    a.sender === b.sender && a.sasl_username === b.sasl_username && a.policy_context === b.policy_context;
}

/**
 * Wire glue. When the same service is listed in both sender and recipient
 * restrictions without distinct policy_context values, Postfix sends two
 * identical requests per RCPT in a row on one connection: the second is
 * answered from a one-entry memo instead of being decided again.
 */
export function policyProtocol(handler: PolicyHandler): Protocol<PolicyRequest> {
  const replies = new Map<string, string>();
  const encode = (action: string): string => {
    let r = replies.get(action);
    if (r === undefined) {
      r = formatPolicyReply(action);
      if (replies.size < 256) replies.set(action, r);
    }
    return r;
  };
  const reply = (conn: ConnectionInfo, req: PolicyRequest, generation: number, d: Decision): string => {
    const text = encode(d.action);
    // Temporary failures are not remembered: a retry should ask again. Nor
    // are quota checks: each one counts a message.
    conn.memo = d.action.startsWith("4") || countsQuota(req) ? undefined : ({ req, reply: text, generation } satisfies Memo);
    return text;
  };
  return {
    name: "policy",
    newFraming(max: number): Framing<PolicyRequest> {
      const d = new PolicyDecoder(max);
      return {
        push: (chunk) => {
          const r = d.push(chunk);
          return { items: r.requests, error: r.error };
        },
        get midRequest() {
          return d.midRequest;
        },
      };
    },
    handle(req: PolicyRequest, conn: ConnectionInfo) {
      const memo = conn.memo as Memo | undefined;
      // A commit since the first answer (even between the two requests) means deciding again.
      if (memo !== undefined && req.instance !== "" && sameQuestion(memo.req, req) && handler.storeUnchangedSince(memo.generation)) return memo.reply;
      const d = handler.decide(req);
      // Read after the synchronous part, which looked at the store: what the
      // decision was made on (a later commit seen by an async part bumps it,
      // so the memo then never matches).
      const generation = handler.storeGeneration;
      return d instanceof Promise ? d.then((x) => reply(conn, req, generation, x)) : reply(conn, req, generation, d);
    },
  };
}
