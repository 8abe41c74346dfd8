// The counter store interface shared by the SQLite (default) and Redis
// backends. take() is the daemon's one call per message: check and count in
// one atomic step, so several daemons sharing a store never let more than the
// limit through between them. The other calls serve mailcloakctl quota.

import type { Maybe } from "../maybe.js";
import type { Exceeded, QuotaLimits, Usage } from "./limits.js";

export type Backend = "sqlite" | "redis";

export interface TakeRequest {
  /** Lower-cased SMTP login. */
  readonly login: string;
  readonly limits: QuotaLimits;
  readonly recipients: number;
  readonly nowMs: number;
}

/** Counted (sent), or refused without being counted as sent. */
export type TakeResult = { readonly kind: "counted" } | { readonly kind: "over"; readonly exceeded: Exceeded };

export const COUNTED: TakeResult = Object.freeze({ kind: "counted" });

/** One login's counters, as mailcloakctl shows them. */
export interface LoginUsage {
  readonly login: string;
  readonly usage: Usage;
  /** Messages refused in the current hour window. */
  readonly refusedHour: number;
  /** The limits the daemon applied at its last check of this login (they include Keycloak attributes). */
  readonly applied: QuotaLimits | null;
  /** Epoch seconds of that check. */
  readonly lastAt: number | null;
}

export interface Counters {
  readonly backend: Backend;
  /** Check one message against `limits` and count it when it may go. Throws (or rejects) CounterError when the store fails. */
  take(req: TakeRequest): Maybe<TakeResult>;
  usage(login: string, nowMs: number): Promise<LoginUsage>;
  /** Forget a login's counters; resolves to whether there were any. */
  reset(login: string): Promise<boolean>;
  /** Every login checked within the last day. */
  all(nowMs: number): Promise<LoginUsage[]>;
  close(): Promise<void>;
}

/** The counter store cannot be used right now (the configured failure mode applies). */
export class CounterError extends Error {
  override readonly name = "CounterError";
}

/** Retention: an hour window is read while it is the current or the previous one; a day window likewise. */
export const HOUR_KEEP_S = 2 * 3600;
export const DAY_KEEP_S = 2 * 86_400;
