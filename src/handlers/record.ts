// The one wrapper around every decision of both servers: it times the
// decision, turns an exception (our bug, or a store error that escaped the
// fact layer) into the server's error answer, and reports the outcome (the
// server's log line and metrics). Timing is taken only when the report will
// use it: with metrics off and the line's log level disabled, the hot path
// reads no clock.

import type { Maybe } from "../maybe.js";

export interface Recorder<Q, R> {
  /** Metrics are on or the decision line's level is enabled. */
  timed(): boolean;
  /** An answer reported even when not timed (a quota refusal's warning). */
  alwaysReported?(r: R): boolean;
  /** The answer to an exception, after logging it. */
  failed(q: Q, err: unknown): R;
  /** Log and count one answer; `seconds` is 0 when not timed. */
  report(q: Q, r: R, seconds: number): void;
}

/** Decide `q` with `decide`; never throws or rejects. */
export function recorded<Q, R>(q: Q, decide: (q: Q) => Maybe<R>, rec: Recorder<Q, R>): Maybe<R> {
  const timed = rec.timed();
  const started = timed ? performance.now() : 0;
  let r: Maybe<R>;
  try {
    r = decide(q);
  } catch (err) {
    r = rec.failed(q, err);
  }
  if (r instanceof Promise) return r.catch((err: unknown) => rec.failed(q, err)).then((x) => finish(q, x, rec, started));
  return finish(q, r, rec, started);
}

/** `started` is 0 when not timed (no clock read on the hot path). */
function finish<Q, R>(q: Q, r: R, rec: Recorder<Q, R>, started: number): R {
  if (started !== 0 || rec.alwaysReported?.(r) === true) rec.report(q, r, started !== 0 ? (performance.now() - started) / 1000 : 0);
  return r;
}
