// Policy delegation decisions (check_policy_service). Sender rules first,
// then recipient rules; every reply is an access(5) action.

import type { Logger } from "pino";
import Database from "better-sqlite3";
import type { Facts } from "../facts.js";
import { StoreError } from "../store/sqlite.js";
import type { CacheOutcome, CachedLookup } from "../directory/cache.js";
import { domainOf, normalize } from "../rules/address.js";
import { formatPolicyReply, PolicyDecoder, type PolicyRequest } from "../protocol/policy.js";
import type { ConnectionInfo, Framing, Protocol } from "../server/listener.js";

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
} as const;

export interface Decision {
  readonly action: string;
  readonly reason: string;
}

export interface PolicyEvents {
  onDecision?(state: string, action: string, reason: string, seconds: number): void;
}

class Outage extends Error {}

/** Cache outcome summary for the log line: worst of the lookups made. */
class Trace {
  cache: CacheOutcome | "none" = "none";
  note(c: CachedLookup): CachedLookup {
    if (this.cache === "none" || this.cache === "hit") this.cache = c.cache;
    return c;
  }
}

export class PolicyHandler {
  readonly #facts: Facts;
  readonly #log: Logger;
  readonly #events: PolicyEvents;

  constructor(facts: Facts, log: Logger, events: PolicyEvents = {}) {
    this.#facts = facts;
    this.#log = log;
    this.#events = events;
  }

  /** Decide one request; never throws. */
  async decide(req: PolicyRequest): Promise<Decision> {
    const started = performance.now();
    const trace = new Trace();
    let d: Decision;
    try {
      d = await this.#decide(req, trace);
    } catch (err) {
      const sqlite = err instanceof Database.SqliteError || err instanceof StoreError;
      this.#log.error({ err: err instanceof Error ? err.message : String(err) }, sqlite ? "database error during policy decision" : "internal error during policy decision");
      d = { action: ACTIONS.tempfailInternal, reason: sqlite ? "database-error" : "internal-error" };
    }
    const seconds = (performance.now() - started) / 1000;
    this.#events.onDecision?.(req.protocol_state, d.action.split(" ")[0]!, d.reason, seconds);
    if (this.#log.isLevelEnabled("info")) this.#log.info({
      state: req.protocol_state, login: req.sasl_username || undefined, sender: req.sender, recipient: req.recipient || undefined,
      context: req.policy_context || undefined, action: d.action, reason: d.reason, cache: trace.cache, ms: Math.round(seconds * 10000) / 10,
    }, "policy decision");
    return d;
  }

  async #decide(req: PolicyRequest, trace: Trace): Promise<Decision> {
    const state = req.protocol_state.toUpperCase();
    if (req.request !== "smtpd_access_policy" || (state !== "RCPT" && state !== "MAIL")) {
      return { action: ACTIONS.dunno, reason: "state-not-checked" };
    }
    const ctx = req.policy_context.trim().toLowerCase();
    const checkSender = ctx !== "recipient";
    const checkRecipient = ctx !== "sender" && state === "RCPT";
    const failOpen = this.#facts.settings.failureMode === "dunno";

    if (checkSender) {
      try {
        const s = await this.#checkSender(req, trace);
        if (s) return s;
      } catch (err) {
        if (!(err instanceof Outage)) throw err;
        if (!failOpen) return { action: ACTIONS.tempfailIdp, reason: "idp-unavailable" };
        // Fail open: no verdict on the sender; the recipient may still be checked.
      }
    }
    if (checkRecipient) {
      try {
        return await this.#checkRecipient(req, trace);
      } catch (err) {
        if (!(err instanceof Outage)) throw err;
        return failOpen ? { action: ACTIONS.dunno, reason: "idp-unavailable-fail-open" } : { action: ACTIONS.tempfailIdp, reason: "idp-unavailable" };
      }
    }
    return { action: ACTIONS.dunno, reason: "sender-ok" };
  }

  async #user(lookup: CachedLookup | Promise<CachedLookup>, trace: Trace): Promise<CachedLookup["lookup"]> {
    const c = trace.note(await lookup);
    if (c.lookup.kind === "unavailable") throw new Outage(c.lookup.reason);
    return c.lookup;
  }

  /** A rejection, or null when the sender may be used. */
  async #checkSender(req: PolicyRequest, trace: Trace): Promise<Decision | null> {
    const f = this.#facts;
    const sender = normalize(req.sender);
    const login = req.sasl_username.trim();
    if (login === "") {
      const d = sender === "" ? null : domainOf(sender);
      if (d !== null && f.isLocalDomain(d)) return { action: ACTIONS.localNeedsAuth, reason: "unauthenticated-local-sender" };
      return null;
    }
    if (sender === "") return null; // the null sender (bounces) belongs to no one
    if (f.store.appEnabled(login) === true) {
      return f.store.appAllowsSender(login, sender) ? null : { action: ACTIONS.notOwned, reason: "app-sender-not-allowed" };
    }
    const u = await this.#user(f.userByUsername(login.toLowerCase()), trace);
    if (u.kind !== "found" || !u.value.enabled) return { action: ACTIONS.notOwned, reason: u.kind === "found" ? "login-disabled" : "login-unknown" };
    const user = u.value;
    if (f.sendingDisabled(user.attributes)) return { action: ACTIONS.sendingDisabled, reason: "sending-disabled" };
    const ext = f.strip(sender);
    const candidates = ext ? [sender, ext.base] : [sender];
    for (const c of candidates) {
      if (user.email !== null && c === user.email) return null;
      if (f.store.aliasOwnedBy(c, user.username)) return null;
    }
    return { action: ACTIONS.notOwned, reason: "sender-not-owned" };
  }

  async #checkRecipient(req: PolicyRequest, trace: Trace): Promise<Decision> {
    const f = this.#facts;
    const rcpt = normalize(req.recipient);
    const domain = domainOf(rcpt);
    if (rcpt === "" || domain === null) return { action: ACTIONS.dunno, reason: "no-recipient-domain" };
    const ext = f.strip(rcpt);
    const rows = f.store.addressRows(rcpt, ext ? ext.base : null, domain);
    if (!f.isLocal(domain, rows.domainEnabled)) {
      if (req.sasl_username.trim() !== "") return { action: ACTIONS.dunno, reason: "authenticated-relay" };
      return { action: ACTIONS.notLocal, reason: "recipient-not-local" };
    }
    const candidates = ext ? [rcpt, ext.base] : [rcpt];
    // Aliases first: they need no IdP round trip.
    const a = rows.exact ?? rows.base;
    if (a) return a.active ? { action: ACTIONS.dunno, reason: "recipient-alias" } : { action: ACTIONS.noSuchUser, reason: "alias-disabled" };
    for (const c of candidates) {
      const u = await this.#user(f.userByEmail(c), trace);
      if (u.kind === "found") {
        return u.value.enabled ? { action: ACTIONS.dunno, reason: "recipient-user" } : { action: ACTIONS.noSuchUser, reason: "user-disabled" };
      }
    }
    const catchAll = rows.catchAll;
    if (catchAll?.active) return { action: ACTIONS.dunno, reason: "recipient-catch-all" };
    return { action: ACTIONS.noSuchUser, reason: "no-such-user" };
  }
}

interface Memo {
  key: string;
  reply: string;
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
      const key = req.instance === "" ? "" :
        `${req.instance}\0${req.protocol_state}\0${req.sender}\0${req.recipient}\0${req.sasl_username}\0${req.policy_context}`;
      const memo = conn.memo as Memo | undefined;
      if (key !== "" && memo?.key === key) return memo.reply;
      return handler.decide(req).then((d) => {
        const reply = encode(d.action);
        // Temporary failures are not remembered: a retry should ask again.
        conn.memo = d.action.startsWith("4") ? undefined : ({ key, reply } satisfies Memo);
        return reply;
      });
    },
  };
}
