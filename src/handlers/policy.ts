// The policy server's handler: the quota check at the end of a message, the
// rules (rules/policy.ts) with their facts (facts.ts) for everything else,
// one log line per decision and the metrics (handlers/record.ts); and the
// wire glue from decoded requests to access(5) replies.

import type { Logger } from "pino";
import { isStoreError, type Facts, type PolicyAsk } from "../facts.js";
import { countsQuota, DECISIONS, type Decision } from "../rules/policy.js";
import { formatPolicyReply, PolicyDecoder, type PolicyRequest } from "../protocol/policy.js";
import type { Framing, Protocol } from "../server/listener.js";
import type { CacheOutcome } from "../directory/cache.js";
import type { QuotaCheck, QuotaDecision } from "../quota/check.js";
import { then, type Maybe } from "../maybe.js";
import { recorded, type Recorder } from "./record.js";
import { infoLine, type InfoLine } from "../log.js";

// Reply texts live with the rules; tests and the README name them from here.
export { ACTIONS } from "../rules/policy.js";

export interface PolicyEvents {
  onDecision?(state: string, action: string, reason: string, seconds: number): void;
}

const decisionOf = (o: Outcome): Decision => o.d;

/** A decision with what its log line reports. */
interface Outcome {
  readonly d: Decision & { readonly detail?: QuotaDecision["detail"] };
  readonly cache: CacheOutcome | "none";
}

export class PolicyHandler {
  readonly #facts: Facts;
  readonly #log: Logger;
  /** The decision line's writer (log.ts infoLine: pino's format, without its generic serializer). */
  readonly #line: InfoLine;
  readonly #events: PolicyEvents;
  readonly #quota: QuotaCheck | null;
  readonly #recorder: Recorder<PolicyRequest, Outcome>;

  constructor(facts: Facts, log: Logger, events: PolicyEvents = {}, quota: QuotaCheck | null = null) {
    this.#facts = facts;
    this.#log = log;
    this.#line = infoLine(log);
    this.#events = events;
    this.#quota = quota;
    this.#recorder = {
      timed: () => this.#events.onDecision !== undefined || this.#log.isLevelEnabled("info"),
      // A quota refusal is always logged (at warn), whatever the log level says about decisions.
      alwaysReported: (o) => o.d.detail !== undefined,
      failed: (_req, err) => this.#failed(err),
      report: (req, o, seconds) => this.#report(req, o, seconds),
    };
  }

  /** Decide one request; never throws or rejects. Synchronous when every lookup is answered from memory. */
  decide(req: PolicyRequest): Maybe<Decision> {
    return then(recorded(req, this.#decide, this.#recorder), decisionOf);
  }

  readonly #decide = (req: PolicyRequest): Maybe<Outcome> => {
    const quota = this.#quota;
    if (req.request === "smtpd_access_policy" && quota !== null && countsQuota(req)) {
      let cache: CacheOutcome | "none" = "none";
      const d = this.#facts.store.within(() => quota.check(req.sasl_username, req.recipient_count, (c) => {
        if (cache === "none" || cache === "hit") cache = c.cache;
      }));
      return then(d, (x): Outcome => ({ d: x, cache }));
    }
    return then(this.#facts.policy(req), this.#decided);
  };

  readonly #decided = (ask: PolicyAsk): Outcome => {
    if (ask.storeError !== undefined) this.#logError(true, ask.storeError);
    return { d: ask.answer!, cache: ask.trace.cache };
  };

  #logError(store: boolean, message: string): void {
    // An outage the store has announced (one line) is not logged again per request.
    if (store && this.#facts.store.problem !== null) return;
    this.#log.error({ err: message }, store ? "database error during policy decision" : "internal error during policy decision");
  }

  #failed(err: unknown): Outcome {
    const store = isStoreError(err);
    this.#logError(store, err instanceof Error ? err.message : String(err));
    return { d: store ? DECISIONS.dbError : DECISIONS.internalError, cache: "none" };
  }

  #report(req: PolicyRequest, o: Outcome, seconds: number): void {
    const d = o.d;
    if (this.#events.onDecision) {
      const sp = d.action.indexOf(" ");
      this.#events.onDecision(req.protocol_state, sp < 0 ? d.action : d.action.slice(0, sp), d.reason, seconds);
    }
    if (d.detail !== undefined) {
      this.#log.warn({
        state: req.protocol_state, login: d.detail.login, sender: req.sender, queue_id: req.queue_id || undefined, action: d.action, reason: d.reason,
        limit: d.detail.limit, used: d.detail.used, max: d.detail.max, recipients: d.detail.recipients, ms: Math.round(seconds * 10000) / 10,
      }, "sending quota exceeded");
    } else if (this.#log.isLevelEnabled("info")) this.#line({
      state: req.protocol_state, login: req.sasl_username || undefined, sender: req.sender, recipient: req.recipient || undefined,
      context: req.policy_context || undefined, action: d.action, reason: d.reason, cache: o.cache, ms: Math.round(seconds * 10000) / 10,
    }, "policy decision");
  }
}

/** Wire glue: policy requests in, access(5) replies out, in order. */
export function policyProtocol(handler: PolicyHandler): Protocol<PolicyRequest> {
  // Replies are few distinct texts: each is framed once.
  const replies = new Map<string, string>();
  const encode = (d: Decision): string => {
    let r = replies.get(d.action);
    if (r === undefined) {
      r = formatPolicyReply(d.action);
      if (replies.size < 256) replies.set(d.action, r);
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
    handle(req: PolicyRequest) {
      return then(handler.decide(req), encode);
    },
  };
}
