// The quota check at the end of a message (Postfix's
// smtpd_end_of_data_restrictions, or smtpd_data_restrictions): the limits of
// the login (mailcloakctl quota set, else the Keycloak attributes named in
// quotas.*_attribute, else the config's defaults), one atomic
// check-and-count in the counter store, and the decision. Only
// authenticated submissions are counted, once per message, with Postfix's
// recipient_count.
//
// Nothing here refuses wrongly: a bad attribute value is ignored (the default
// applies, one warning per user and cache TTL), and a failing counter store,
// or a Keycloak that cannot tell a user's quota attributes (with no cached
// answer), gives the configured failure mode (open by default), counted in a
// metric.

import type { Logger } from "pino";
import type { QuotaSettings } from "../config/types.js";
import type { CachedLookup } from "../directory/cache.js";
import type { Facts } from "../facts.js";
import { then, type Maybe } from "../maybe.js";
import type { Backend, Counters, TakeResult } from "./counters.js";
import { attributeLimit, effectiveLimits, NO_OVERRIDE, unlimited, type LimitName, type LimitOverride } from "./limits.js";

export interface QuotaDecision {
  readonly action: string;
  readonly reason: string;
  /** Only on a refusal: what the log line and the metric report. */
  readonly detail?: { readonly login: string; readonly limit: LimitName; readonly used: number; readonly max: number; readonly recipients: number };
}

export interface QuotaEvents {
  onCheck?(result: "counted" | "over" | "unlimited" | "error"): void;
  onRefusal?(login: string, limit: LimitName): void;
  onBackendError?(backend: Backend): void;
}

const decision = (action: string, reason: string): QuotaDecision => Object.freeze({ action, reason });
const D = {
  unauthenticated: decision("DUNNO", "quota-not-authenticated"),
  unlimited: decision("DUNNO", "quota-unlimited"),
  counted: decision("DUNNO", "quota-ok"),
  failOpen: decision("DUNNO", "quota-store-unavailable-fail-open"),
  failClosed: decision("451 4.3.0 Temporary quota check failure, try again later", "quota-store-unavailable"),
  idpFailOpen: decision("DUNNO", "quota-idp-unavailable-fail-open"),
  idpFailClosed: decision("451 4.3.0 Temporary quota check failure, try again later", "quota-idp-unavailable"),
} as const;

/** Keycloak could not say what a user's attributes are. */
const IDP_UNAVAILABLE = Symbol("idp-unavailable");

const MAX_WARNED = 10_000;
/** Limit name → the setting that names its attribute. */
const ATTRIBUTE_KEY: Readonly<Record<LimitName, string>> = {
  per_hour: "quotas.per_hour_attribute", per_day: "quotas.per_day_attribute", recipients_per_hour: "quotas.recipients_per_hour_attribute",
};

export interface QuotaCheckOptions {
  readonly facts: Facts;
  readonly counters: Counters;
  readonly settings: QuotaSettings;
  /** How long a bad attribute value stays quiet after its warning (the cache TTL). */
  readonly warnTtlMs: number;
  readonly log: Logger;
  readonly events?: QuotaEvents;
  readonly now?: () => number;
}

export class QuotaCheck {
  readonly #facts: Facts;
  readonly #counters: Counters;
  readonly #log: Logger;
  readonly #events: QuotaEvents;
  readonly #now: () => number;
  settings: QuotaSettings;
  warnTtlMs: number;
  readonly #warned = new Map<string, number>();
  #failing = false;

  constructor(o: QuotaCheckOptions) {
    this.#facts = o.facts;
    this.#counters = o.counters;
    this.settings = o.settings;
    this.warnTtlMs = o.warnTtlMs;
    this.#log = o.log;
    this.#events = o.events ?? {};
    this.#now = o.now ?? Date.now;
  }

  get counters(): Counters {
    return this.#counters;
  }

  /** Decide one end-of-message (or DATA) request; never throws. */
  check(rawLogin: string, recipientCount: string, note?: (c: CachedLookup) => void): Maybe<QuotaDecision> {
    const trimmed = rawLogin.trim();
    if (trimmed === "") return D.unauthenticated;
    const login = trimmed.toLowerCase();
    const n = Number(recipientCount);
    // Postfix always sends it here; a message has at least one recipient.
    const recipients = Number.isInteger(n) && n > 0 ? n : 1;
    let set: LimitOverride;
    try {
      set = this.#facts.store.quotaOverride(login);
    } catch (err) {
      return this.#failed(err);
    }
    return then(this.#fromAttributes(trimmed, login, note), (attrs) => {
      if (attrs === IDP_UNAVAILABLE) {
        // The attributes might allow more than the defaults: never refuse on a guess.
        // Limits all set with mailcloakctl need no Keycloak.
        const a = this.settings.attributes;
        const needed = (["per_hour", "per_day", "recipients_per_hour"] as const).some((k) => a[k] !== null && set[k] === null);
        if (needed) {
          this.#emit((e) => e.onCheck?.("error"));
          return this.settings.failureMode === "open" ? D.idpFailOpen : D.idpFailClosed;
        }
        attrs = NO_OVERRIDE;
      }
      const limits = effectiveLimits(this.settings.defaults, set, attrs);
      if (unlimited(limits)) {
        this.#emit((e) => e.onCheck?.("unlimited"));
        return D.unlimited;
      }
      let r: Maybe<TakeResult>;
      try {
        r = this.#counters.take({ login, limits, recipients, nowMs: this.#now() });
      } catch (err) {
        return this.#failed(err);
      }
      return r instanceof Promise
        ? r.then((x) => this.#decided(login, recipients, x), (err: unknown) => this.#failed(err))
        : this.#decided(login, recipients, r);
    });
  }

  #decided(login: string, recipients: number, r: TakeResult): QuotaDecision {
    if (this.#failing) {
      this.#failing = false;
      this.#log.info({ backend: this.#counters.backend }, "quota counters available again");
    }
    if (r.kind === "counted") {
      this.#emit((e) => e.onCheck?.("counted"));
      return D.counted;
    }
    const x = r.exceeded;
    this.#emit((e) => e.onCheck?.("over"));
    this.#emit((e) => e.onRefusal?.(login, x.limit));
    return {
      action: `450 4.7.1 ${this.settings.message}`,
      reason: "quota-exceeded",
      detail: { login, limit: x.limit, used: Math.round(x.used * 10) / 10, max: x.max, recipients },
    };
  }

  #failed(err: unknown): QuotaDecision {
    this.#emit((e) => e.onCheck?.("error"));
    this.#emit((e) => e.onBackendError?.(this.#counters.backend));
    if (!this.#failing) {
      this.#failing = true;
      this.#log.warn({ backend: this.#counters.backend, err: err instanceof Error ? err.message : String(err), failureMode: this.settings.failureMode },
        this.settings.failureMode === "open" ? "quota counters unavailable: letting messages through unchecked until they are back"
          : "quota counters unavailable: deferring authenticated messages (451 4.3.0) until they are back");
    }
    return this.settings.failureMode === "open" ? D.failOpen : D.failClosed;
  }

  /** The limits a Keycloak user's attributes set (an app login or an unknown user sets none), or IDP_UNAVAILABLE. */
  #fromAttributes(rawLogin: string, login: string, note?: (c: CachedLookup) => void): Maybe<LimitOverride | typeof IDP_UNAVAILABLE> {
    const names = this.settings.attributes;
    if (names.per_hour === null && names.per_day === null && names.recipients_per_hour === null) return NO_OVERRIDE;
    let app: boolean;
    try {
      app = this.#facts.store.appEnabled(rawLogin) === true;
    } catch {
      app = false;
    }
    if (app) return NO_OVERRIDE;
    return then(this.#facts.userByUsername(login), (c): LimitOverride | typeof IDP_UNAVAILABLE => {
      note?.(c);
      if (c.lookup.kind === "unavailable") return IDP_UNAVAILABLE;
      if (c.lookup.kind !== "found") return NO_OVERRIDE;
      const attrs = c.lookup.value.attributes;
      const pick = (k: LimitName): number | null => {
        const name = names[k];
        if (name === null) return null;
        const v = attributeLimit(attrs[name]);
        if (v === "bad") {
          this.#warnBad(login, k, name, attrs[name]!);
          return null;
        }
        return v ?? null;
      };
      return { per_hour: pick("per_hour"), per_day: pick("per_day"), recipients_per_hour: pick("recipients_per_hour") };
    });
  }

  #warnBad(login: string, limit: LimitName, attribute: string, values: readonly string[]): void {
    const key = `${login}\n${attribute}`;
    const now = this.#now();
    const until = this.#warned.get(key);
    if (until !== undefined && until > now) return;
    if (this.#warned.size >= MAX_WARNED) this.#warned.clear();
    this.#warned.set(key, now + this.warnTtlMs);
    this.#log.warn({ login, attribute, value: String(values[0]).slice(0, 64), setting: ATTRIBUTE_KEY[limit], default: this.settings.defaults[limit] },
      "ignoring a quota attribute that is not a whole number >= 0; the default applies");
  }

  #emit(fn: (e: QuotaEvents) => void): void {
    try {
      fn(this.#events);
    } catch {
      /* metrics hooks never break a decision */
    }
  }
}
