// Outbound quotas, the pure part: which limits apply to a login, how a
// counter's value over the last hour (or day) is estimated, and whether one
// more message would exceed a limit. No I/O: the counter stores
// (store/sqlite/counters.ts, redis-counters.ts) and the policy glue (check.ts) call
// these, and the Redis Lua script repeats exactly the same arithmetic.
//
// Windows are sliding, approximated from two fixed windows (the current and
// the previous hour, or UTC day): the previous window's count is weighted by
// the share of it that still lies within the last 60 minutes (24 hours).
// So a burst just before the top of the hour still counts just after it,
// and no limit can be doubled by straddling a window edge.

/** A limit name as in config keys, mailcloakctl options and metrics labels. */
export type LimitName = "per_hour" | "per_day" | "recipients_per_hour";
export const LIMIT_NAMES: readonly LimitName[] = ["per_hour", "recipients_per_hour", "per_day"];

/** Whole numbers; 0 means unlimited. */
export interface QuotaLimits {
  readonly per_hour: number;
  readonly per_day: number;
  readonly recipients_per_hour: number;
}

/** A partial set of limits: null where this source says nothing. */
export type LimitOverride = { readonly [K in LimitName]: number | null };

export const UNLIMITED: QuotaLimits = Object.freeze({ per_hour: 0, per_day: 0, recipients_per_hour: 0 });
export const NO_OVERRIDE: LimitOverride = Object.freeze({ per_hour: null, per_day: null, recipients_per_hour: null });

/** The largest limit accepted anywhere (config, attribute, mailcloakctl). */
export const MAX_LIMIT = 1_000_000_000;

export const HOUR_S = 3600;
export const DAY_S = 86_400;

/** Each field from the first source that sets it: mailcloakctl, then the user attribute, then the default. */
export function effectiveLimits(defaults: QuotaLimits, ...overrides: readonly LimitOverride[]): QuotaLimits {
  const pick = (k: LimitName): number => {
    for (const o of overrides) {
      const v = o[k];
      if (v !== null) return v;
    }
    return defaults[k];
  };
  return { per_hour: pick("per_hour"), per_day: pick("per_day"), recipients_per_hour: pick("recipients_per_hour") };
}

export function unlimited(l: QuotaLimits): boolean {
  return l.per_hour === 0 && l.per_day === 0 && l.recipients_per_hour === 0;
}

/**
 * A quota value as text (a Keycloak attribute, a mailcloakctl argument):
 * a whole number from 0 to MAX_LIMIT, or null when it is not one.
 */
export function parseLimit(text: string): number | null {
  const t = text.trim();
  if (!/^\d{1,10}$/.test(t)) return null;
  const n = Number(t);
  return n <= MAX_LIMIT ? n : null;
}

/** A user attribute's values: absent (undefined), a limit, or "bad" (the default applies; warn). */
export function attributeLimit(values: readonly string[] | undefined): number | "bad" | undefined {
  if (values === undefined || values.length === 0) return undefined;
  const n = parseLimit(values[0]!);
  return n === null ? "bad" : n;
}

/** Counts of one quantity in the current and the previous fixed window. */
export interface WindowCount {
  readonly cur: number;
  readonly prev: number;
}

export const ZERO_WINDOW: WindowCount = Object.freeze({ cur: 0, prev: 0 });

/** What a login has sent, as the counter store holds it. */
export interface Usage {
  readonly messagesHour: WindowCount;
  readonly recipientsHour: WindowCount;
  readonly messagesDay: WindowCount;
}

export const NO_USAGE: Usage = Object.freeze({ messagesHour: ZERO_WINDOW, recipientsHour: ZERO_WINDOW, messagesDay: ZERO_WINDOW });

/** The fixed windows a moment falls in, and how far into them it is (0..1). */
export interface Windows {
  readonly hour: number;
  readonly day: number;
  readonly hourElapsed: number;
  readonly dayElapsed: number;
}

export function windowsAt(nowMs: number): Windows {
  const s = nowMs / 1000;
  return {
    hour: Math.floor(s / HOUR_S),
    day: Math.floor(s / DAY_S),
    hourElapsed: (s % HOUR_S) / HOUR_S,
    dayElapsed: (s % DAY_S) / DAY_S,
  };
}

/** The sliding-window estimate: the previous window weighted by the part of it still inside the span. */
export function estimate(w: WindowCount, elapsed: number): number {
  return w.prev * (1 - elapsed) + w.cur;
}

/** The estimates for display (mailcloakctl quota show/top). */
export interface UsedNow {
  readonly per_hour: number;
  readonly recipients_per_hour: number;
  readonly per_day: number;
}

export function usedNow(u: Usage, w: Windows): UsedNow {
  return {
    per_hour: estimate(u.messagesHour, w.hourElapsed),
    recipients_per_hour: estimate(u.recipientsHour, w.hourElapsed),
    per_day: estimate(u.messagesDay, w.dayElapsed),
  };
}

export interface Exceeded {
  readonly limit: LimitName;
  /** The estimate before this message (a real number: see estimate()). */
  readonly used: number;
  readonly max: number;
}

/**
 * The first limit one more message with `recipients` recipients would go
 * over, or null when it may be sent. Compared as real numbers: rounding the
 * weighted previous window down would let one message too many through.
 */
export function exceeded(u: Usage, limits: QuotaLimits, recipients: number, w: Windows): Exceeded | null {
  const used = usedNow(u, w);
  const add: UsedNow = { per_hour: 1, recipients_per_hour: recipients, per_day: 1 };
  for (const k of LIMIT_NAMES) {
    const max = limits[k];
    if (max > 0 && used[k] + add[k] > max) return { limit: k, used: used[k], max };
  }
  return null;
}

/** A refusal, said for people: "5 messages per hour". */
export function describeLimit(limit: LimitName, max: number): string {
  switch (limit) {
    case "per_hour": return `${max} message${max === 1 ? "" : "s"} per hour`;
    case "per_day": return `${max} message${max === 1 ? "" : "s"} per day`;
    case "recipients_per_hour": return `${max} recipient${max === 1 ? "" : "s"} per hour`;
    default: {
      const never: never = limit;
      return never;
    }
  }
}
