// What every remote identity source does around one lookup, in one place:
// refuse after close(), consult the circuit breaker, turn a thrown error into
// `unavailable`, log outcomes and breaker changes, and remember when the IdP
// last answered (readiness). The source supplies only the query itself.

import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import { Breaker } from "./breaker.js";
import type { DirectoryUser, IdentitySource, Lookup } from "./lookup.js";
import { unavailable } from "./lookup.js";

/** Hooks for the metrics layer; every callback is optional and must not throw (errors are swallowed). */
export interface SourceEvents<Op extends string> {
  /** One HTTP call finished. */
  onCall?(op: Op, outcome: "ok" | "error", seconds: number): void;
  /** The circuit breaker opened (or re-opened after a failed trial). */
  onBreakerOpen?(): void;
  /** A lookup was refused because the breaker is open. */
  onBreakerReject?(): void;
}

/** The names of the HTTP calls a source's events count (SourceEvents' Op). */
export type CallOf<E extends SourceEvents<string>> = E extends SourceEvents<infer Op> ? Op : never;

/** The circuit breaker's settings; `now` is its clock (default Date.now; tests step it). */
export interface BreakerOptions {
  failureThreshold?: number | undefined;
  openMs?: number | undefined;
  now?: (() => number) | undefined;
}

/** What every remote source is given besides where and how to log in. */
export interface RemoteSourceOptions<E> {
  /** Server root including any relative path. */
  baseUrl: string;
  /** Deadline for each HTTP call (default 2000). */
  timeoutMs?: number;
  logger: Logger;
  events?: E | undefined;
  breaker?: BreakerOptions | undefined;
  /**
   * The user attributes the rules read (policy.send_allowed_attribute); only
   * these are kept in cached users. Default: all.
   */
  attributes?: readonly string[];
}

export interface GuardOptions<E> {
  /** Lower-case IdP name for log lines and reasons ("keycloak"). */
  name: string;
  logger: Logger;
  events?: E | undefined;
  breaker?: BreakerOptions | undefined;
  /** A log-safe reason for an error the query threw. */
  describe(err: unknown): string;
}

/** Remembered keys for warn-once messages; bounded so hostile keys cannot grow it. */
const MAX_REMEMBERED = 1000;

export class LookupGuard<E extends SourceEvents<string>> {
  readonly #name: string;
  readonly #log: Logger;
  readonly #events: E | undefined;
  readonly #breaker: Breaker;
  readonly #describe: (err: unknown) => string;
  readonly #warned = new Set<string>();
  #closed = false;
  #lastAnswer = 0;

  constructor(opts: GuardOptions<E>) {
    this.#name = opts.name;
    this.#log = opts.logger;
    this.#events = opts.events;
    this.#describe = opts.describe;
    this.#breaker = new Breaker(opts.breaker?.failureThreshold ?? 5, opts.breaker?.openMs ?? 5000, () => {
      this.emit((e) => e.onBreakerOpen?.());
    }, opts.breaker?.now);
  }

  /** Run one lookup under the breaker; never throws. */
  async run(field: string, query: () => Promise<Lookup<DirectoryUser>>): Promise<Lookup<DirectoryUser>> {
    if (this.#closed) return unavailable(`${this.#name} source closed`);
    const ticket = this.#breaker.admit();
    if (ticket === null) {
      this.emit((e) => e.onBreakerReject?.());
      return unavailable(`${this.#name} circuit open`);
    }
    let result: Lookup<DirectoryUser>;
    try {
      result = await query();
    } catch (err) {
      result = unavailable(this.#describe(err));
    }
    if (result.kind === "unavailable") this.#log.debug({ field, reason: result.reason }, `${this.#name} lookup unavailable`);
    if (result.kind === "unavailable" && result.behindIdp !== true) {
      if (this.#breaker.failure(ticket)) {
        this.#log.warn({ reason: result.reason }, `${this.#name} circuit breaker opened`);
      }
    } else {
      this.#lastAnswer = Date.now();
      if (this.#breaker.success()) this.#log.info(`${this.#name} circuit breaker closed`);
    }
    return result;
  }

  /**
   * Readiness: null while the IdP answers, or while its last answer is
   * recent enough (within `staleMs`) for the cache to bridge the outage.
   */
  health(staleMs: number): string | null {
    if (this.#breaker.state === "closed") return null;
    if (Date.now() - this.#lastAnswer < staleMs) return null;
    return `${this.#name} unreachable (circuit open) and no answer within the stale window`;
  }

  close(): void {
    this.#closed = true;
  }

  /** Call `warn` the first time `key` is seen (bounded memory; may repeat after many keys). */
  once(key: string, warn: () => void): void {
    if (this.#warned.has(key)) return;
    if (this.#warned.size >= MAX_REMEMBERED) this.#warned.clear();
    this.#warned.add(key);
    warn();
  }

  /** Start timing one HTTP call `op`; the function returned reports its outcome and duration (onCall). */
  timer(op: CallOf<E>): (outcome: "ok" | "error") => void {
    const started = performance.now();
    return (outcome) => this.emit((e) => e.onCall?.(op, outcome, (performance.now() - started) / 1000));
  }

  emit(fn: (events: E) => void): void {
    if (this.#events === undefined) return;
    try {
      fn(this.#events);
    } catch {
      // Metrics hooks must never break a lookup.
    }
  }
}

/**
 * An identity source that asks a remote IdP: the IdentitySource methods are
 * the guard's; a subclass supplies the query.
 */
export abstract class RemoteSource<E extends SourceEvents<string>> implements IdentitySource {
  readonly name: string;
  protected readonly guard: LookupGuard<E>;

  constructor(opts: GuardOptions<E>) {
    this.name = opts.name;
    this.guard = new LookupGuard(opts);
  }

  userByUsername(username: string): Promise<Lookup<DirectoryUser>> {
    return this.guard.run("username", () => this.query("username", username));
  }

  userByEmail(email: string): Promise<Lookup<DirectoryUser>> {
    return this.guard.run("email", () => this.query("email", email));
  }

  /** Readiness (see LookupGuard.health). */
  health(staleMs: number): string | null {
    return this.guard.health(staleMs);
  }

  async close(): Promise<void> {
    // No timers or pooled sockets of our own (fetch's idle sockets are unref'd).
    this.guard.close();
  }

  /** One lookup; the key is lower-cased and trimmed. May throw: the guard turns errors into `unavailable`. */
  protected abstract query(field: "username" | "email", key: string): Promise<Lookup<DirectoryUser>>;
}
