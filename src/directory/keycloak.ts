// Keycloak as an identity source: exact username/email lookups through the
// Admin REST API, authenticated with a cached client_credentials token.
//
// Failure handling, in order: every HTTP call has its own deadline; a 401
// renews the token and retries once; a 403 is a permissions problem and is
// explained once in the log; after `failureThreshold` consecutive unavailable
// answers a circuit breaker answers `unavailable` without touching the network
// for `openMs`, then lets a single trial lookup through.
//
// Library notes (@keycloak/keycloak-admin-client 26.x): its RequestOptions
// type omits `signal`, but ConnectionConfig.timeout makes it create a fresh
// AbortSignal.timeout() for every request, which is what we need. Non-JSON
// 200 bodies are returned as a plain string rather than thrown, so the result
// is validated here. The token comes from our own provider; the library's
// auth() would never renew by itself.

import { performance } from "node:perf_hooks";
import KcAdminClient, { NetworkError } from "@keycloak/keycloak-admin-client";
import type { Logger } from "pino";
import { detach } from "../strings.js";
import type { DirectoryUser, IdentitySource, Lookup } from "./lookup.js";
import { NOT_FOUND, found, unavailable } from "./lookup.js";

/** Hooks for the metrics layer; every callback is optional and must not throw (errors are swallowed). */
export interface KeycloakEvents {
  /** One HTTP call finished: the token request or a users query. */
  onCall?(op: "token" | "users", outcome: "ok" | "error", seconds: number): void;
  /** A new access token was obtained (the first one included). */
  onTokenRenewal?(): void;
  /** The circuit breaker opened (or re-opened after a failed trial). */
  onBreakerOpen?(): void;
  /** A lookup was refused because the breaker is open. */
  onBreakerReject?(): void;
}

export interface KeycloakSourceOptions {
  /** Server root including any relative path, e.g. https://kc.example or https://kc.example/auth */
  baseUrl: string;
  realm: string;
  clientId: string;
  clientSecret: string;
  /** Deadline for each HTTP call, token or users (default 2000). */
  timeoutMs?: number;
  logger: Logger;
  events?: KeycloakEvents;
  breaker?: { failureThreshold?: number; openMs?: number };
  /**
   * The user attributes the rules read (policy.send_allowed_attribute); only
   * these are kept in cached users. Default: all.
   */
  attributes?: readonly string[];
}

export const FORBIDDEN_HINT =
  "Keycloak answered 403 Forbidden for user lookups: give the client's service account the " +
  "realm-management roles view-users (or query-users) and check they are in the token";

type Field = "username" | "email";

interface CachedToken {
  readonly value: string;
  /** Epoch ms after which Keycloak rejects it. */
  readonly expiresAt: number;
  /** Epoch ms after which we fetch a new one. */
  readonly renewAt: number;
}

/** An expected failure with a log-safe reason (no secret, no token). */
class Failure extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

const UNAUTHORIZED = Symbol("401");
const MAX_REMEMBERED_AMBIGUOUS = 1000;

export class KeycloakSource implements IdentitySource {
  readonly name = "keycloak";

  readonly #opts: Required<Pick<KeycloakSourceOptions, "realm" | "clientId" | "clientSecret">> & Pick<KeycloakSourceOptions, "attributes">;
  readonly #baseUrl: string;
  readonly #timeoutMs: number;
  readonly #log: Logger;
  readonly #events: KeycloakEvents;
  readonly #breaker: Breaker;
  readonly #kc: KcAdminClient;
  /** The token a given users call must send; read by the admin client's token provider. */

  #token: CachedToken | null = null;
  #renewing: Promise<CachedToken> | null = null;
  #closed = false;
  #warned403 = false;
  #warned404 = false;
  #lastTokenWarning = "";
  readonly #warnedAmbiguous = new Set<string>();

  constructor(opts: KeycloakSourceOptions) {
    this.#opts = { realm: opts.realm, clientId: opts.clientId, clientSecret: opts.clientSecret, ...(opts.attributes ? { attributes: [...opts.attributes] } : {}) };
    this.#baseUrl = opts.baseUrl.replace(/\/+$/, "");
    this.#timeoutMs = opts.timeoutMs ?? 2000;
    this.#log = opts.logger;
    this.#events = opts.events ?? {};
    this.#breaker = new Breaker(opts.breaker?.failureThreshold ?? 5, opts.breaker?.openMs ?? 5000, () => {
      this.#emit((e) => e.onBreakerOpen?.());
    });
    // `timeout` makes the library build a new AbortSignal.timeout() per request,
    // so concurrent lookups each get their own deadline.
    this.#kc = new KcAdminClient({ baseUrl: this.#baseUrl, realmName: opts.realm, timeout: this.#timeoutMs });
    // The current token (set by #currentToken before every call). Not
    // AsyncLocalStorage: enabling it installs promise hooks that slow every
    // promise in the process (measured by the benchmark).
    this.#kc.registerTokenProvider({ getAccessToken: async () => this.#token?.value });
  }

  userByUsername(username: string): Promise<Lookup<DirectoryUser>> {
    return this.#lookup("username", username);
  }

  userByEmail(email: string): Promise<Lookup<DirectoryUser>> {
    return this.#lookup("email", email);
  }

  /**
   * Readiness: null while Keycloak answers, or while its last answer is
   * recent enough (within `staleMs`) for the cache to bridge the outage.
   */
  health(staleMs: number): string | null {
    if (this.#breaker.state === "closed") return null;
    if (Date.now() - this.#lastAnswer < staleMs) return null;
    return "keycloak unreachable (circuit open) and no answer within the stale window";
  }

  #lastAnswer = 0;

  async close(): Promise<void> {
    // No timers or pooled sockets of our own (fetch's idle sockets are unref'd).
    this.#closed = true;
  }

  async #lookup(field: Field, key: string): Promise<Lookup<DirectoryUser>> {
    if (this.#closed) return unavailable("keycloak source closed");
    const ticket = this.#breaker.admit();
    if (ticket === null) {
      this.#emit((e) => e.onBreakerReject?.());
      return unavailable("keycloak circuit open");
    }
    let result: Lookup<DirectoryUser>;
    try {
      result = await this.#query(field, key);
    } catch (err) {
      result = unavailable(describe(err, "users", this.#timeoutMs));
    }
    if (result.kind === "unavailable") {
      this.#log.debug({ field, reason: result.reason }, "keycloak lookup unavailable");
      if (this.#breaker.failure(ticket)) {
        this.#log.warn({ reason: result.reason }, "keycloak circuit breaker opened");
      }
    } else {
      this.#lastAnswer = Date.now();
      if (this.#breaker.success()) this.#log.info("keycloak circuit breaker closed");
    }
    return result;
  }

  async #query(field: Field, key: string): Promise<Lookup<DirectoryUser>> {
    let token = await this.#currentToken();
    let list = await this.#findUsers(field, key, token);
    if (list === UNAUTHORIZED) {
      // Revoked or expired early: renew once (shared with concurrent callers) and retry once.
      if (this.#token?.value === token) this.#token = null;
      token = await this.#currentToken();
      list = await this.#findUsers(field, key, token);
      if (list === UNAUTHORIZED) return unavailable("keycloak rejected the service-account token (401)");
    }
    return this.#select(field, key, list);
  }

  #select(field: Field, key: string, list: readonly Record<string, unknown>[]): Lookup<DirectoryUser> {
    const byId = new Map<string, Record<string, unknown>>();
    for (const u of list) {
      // exact=true is sent, but equality is checked here too (keycloak#30580).
      if (lower(u[field]) !== key) continue;
      // No service-account filter: the admin API never marks service-account
      // users (no serviceAccountClientId in 26.x), so one an admin gave an
      // email is found like any user.
      byId.set(typeof u.id === "string" ? u.id : `${byId.size}`, u);
    }
    if (byId.size === 0) return NOT_FOUND;
    if (byId.size > 1) {
      if (!this.#warnedAmbiguous.has(`${field}:${key}`)) {
        if (this.#warnedAmbiguous.size >= MAX_REMEMBERED_AMBIGUOUS) this.#warnedAmbiguous.clear();
        this.#warnedAmbiguous.add(`${field}:${key}`);
        this.#log.warn({ [field]: key }, `several Keycloak users have this ${field}; treating it as unknown`);
      }
      return NOT_FOUND;
    }
    const u = [...byId.values()][0]!;
    return found({
      username: lower(u.username) ?? "",
      email: lower(u.email),
      enabled: u.enabled === true,
      attributes: attributesOf(u.attributes, this.#opts.attributes),
    });
  }

  /** One users query; UNAUTHORIZED on 401, Failure on anything else that isn't a user list. */
  async #findUsers(field: Field, key: string, token: string): Promise<Record<string, unknown>[] | typeof UNAUTHORIZED> {
    const started = performance.now();
    const done = (outcome: "ok" | "error"): void =>
      this.#emit((e) => e.onCall?.("users", outcome, (performance.now() - started) / 1000));
    let body: unknown;
    try {
      void token; // the provider sends the current token, which is this one unless renewed meanwhile
      body = await this.#kc.users.find({ [field]: key, exact: true, max: 2, briefRepresentation: false });
    } catch (err) {
      done("error");
      if (!(err instanceof NetworkError)) throw new Failure(describe(err, "users", this.#timeoutMs));
      const status = err.response.status;
      if (status === 401) return UNAUTHORIZED;
      if (status === 403) {
        if (!this.#warned403) {
          this.#warned403 = true;
          this.#log.warn(FORBIDDEN_HINT);
        }
        throw new Failure("keycloak denied the user lookup (403)");
      }
      if (status === 404) {
        if (!this.#warned404) {
          this.#warned404 = true;
          this.#log.warn({ realm: this.#opts.realm }, "Keycloak answered 404 for the users endpoint: check the realm name and base URL");
        }
        throw new Failure("keycloak users endpoint not found (404)");
      }
      throw new Failure(`keycloak users query HTTP ${status}`);
    }
    if (!Array.isArray(body) || !body.every(isRecord)) {
      done("error");
      throw new Failure("keycloak returned a malformed user list");
    }
    done("ok");
    return body;
  }

  /** The cached token, renewed (single-flight) when it is close to expiry. */
  async #currentToken(): Promise<string> {
    const cached = this.#token;
    if (cached && Date.now() < cached.renewAt) return cached.value;
    try {
      return (await this.#renew()).value;
    } catch (err) {
      // Early renewal failed but the old token is still good: keep using it.
      if (cached && this.#token === cached && Date.now() < cached.expiresAt) return cached.value;
      throw err;
    }
  }

  #renew(): Promise<CachedToken> {
    this.#renewing ??= this.#fetchToken().finally(() => {
      this.#renewing = null;
    });
    return this.#renewing;
  }

  async #fetchToken(): Promise<CachedToken> {
    const started = performance.now();
    const startedAt = Date.now();
    const { realm, clientId, clientSecret } = this.#opts;
    const url = `${this.#baseUrl}/realms/${encodeURIComponent(realm)}/protocol/openid-connect/token`;
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: {
          authorization: `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`).toString("base64")}`,
          "content-type": "application/x-www-form-urlencoded",
          accept: "application/json",
        },
        body: "grant_type=client_credentials",
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      const text = await res.text();
      if (!res.ok) throw new Failure(`keycloak token request HTTP ${res.status}${oauthError(text)}`);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new Failure("keycloak token response is not JSON");
      }
      const accessToken = isRecord(parsed) ? parsed.access_token : undefined;
      const expiresIn = isRecord(parsed) ? parsed.expires_in : undefined;
      if (typeof accessToken !== "string" || accessToken === "" || typeof expiresIn !== "number" || !(expiresIn > 0)) {
        throw new Failure("keycloak token response lacks access_token/expires_in");
      }
      const lifetimeMs = expiresIn * 1000;
      const expiresAt = startedAt + lifetimeMs;
      const token: CachedToken = {
        value: accessToken,
        expiresAt,
        renewAt: expiresAt - Math.min(30_000, lifetimeMs / 10),
      };
      this.#token = token;
      this.#lastTokenWarning = "";
      this.#emit((e) => e.onCall?.("token", "ok", (performance.now() - started) / 1000));
      this.#emit((e) => e.onTokenRenewal?.());
      return token;
    } catch (err) {
      this.#emit((e) => e.onCall?.("token", "error", (performance.now() - started) / 1000));
      const reason = describe(err, "token", this.#timeoutMs);
      if (reason !== this.#lastTokenWarning) {
        this.#lastTokenWarning = reason;
        this.#log.warn({ reason, clientId }, "cannot get a Keycloak service-account token");
      }
      throw new Failure(reason);
    }
  }

  #emit(fn: (events: KeycloakEvents) => void): void {
    try {
      fn(this.#events);
    } catch {
      // Metrics hooks must never break a lookup.
    }
  }
}

/**
 * Consecutive-failure circuit breaker. admit() hands out a ticket (or null when
 * open); in half-open state only one trial ticket is out at a time.
 */
class Breaker {
  #state: "closed" | "open" | "halfOpen" = "closed";
  #failures = 0;
  #openUntil = 0;
  #trialOut = false;

  get state(): "closed" | "open" | "halfOpen" {
    return this.#state;
  }

  constructor(
    private readonly threshold: number,
    private readonly openMs: number,
    private readonly onOpen: () => void,
  ) {}

  admit(): { trial: boolean } | null {
    if (this.#state === "open") {
      if (Date.now() < this.#openUntil) return null;
      this.#state = "halfOpen";
      this.#trialOut = false;
    }
    if (this.#state === "halfOpen") {
      if (this.#trialOut) return null;
      this.#trialOut = true;
      return { trial: true };
    }
    return { trial: false };
  }

  /** Keycloak answered: reset. Returns true when this closed an open breaker. */
  success(): boolean {
    const wasOpen = this.#state !== "closed";
    this.#state = "closed";
    this.#failures = 0;
    this.#trialOut = false;
    return wasOpen;
  }

  /** Returns true when this failure opened the breaker. */
  failure(ticket: { trial: boolean }): boolean {
    if (this.#state === "closed") {
      this.#failures++;
      if (this.#failures < this.threshold) return false;
    } else if (!(this.#state === "halfOpen" && ticket.trial)) {
      return false; // a straggler from before the breaker opened
    }
    this.#state = "open";
    this.#openUntil = Date.now() + this.openMs;
    this.#trialOut = false;
    this.onOpen();
    return true;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Lower-cased and detached: the user is cached, the response text it was parsed from is not. */
function lower(v: unknown): string | null {
  return typeof v === "string" ? detach(v.toLowerCase()) : null;
}

const NO_ATTRIBUTES: Readonly<Record<string, readonly string[]>> = Object.freeze({});
/** Distinct attribute sets seen (most users share one, e.g. {mailSendAllowed: ["true"]}); bounded. */
const ATTRIBUTE_SETS = new Map<string, Readonly<Record<string, readonly string[]>>>();
const MAX_ATTRIBUTE_SETS = 1024;

function attributesOf(v: unknown, wanted: readonly string[] | undefined): Readonly<Record<string, readonly string[]>> {
  if (!isRecord(v) || wanted?.length === 0) return NO_ATTRIBUTES;
  const out: Record<string, readonly string[]> = {};
  let n = 0;
  for (const [name, values] of Object.entries(v)) {
    if (wanted !== undefined && !wanted.includes(name)) continue;
    if (typeof values === "string") out[name] = [values];
    else if (Array.isArray(values)) out[name] = values.filter((x): x is string => typeof x === "string");
    else continue;
    n++;
  }
  if (n === 0) return NO_ATTRIBUTES;
  // Cached users share equal attribute sets instead of holding a copy each.
  const key = JSON.stringify(out);
  const shared = ATTRIBUTE_SETS.get(key);
  if (shared) return shared;
  const frozen = Object.freeze(Object.fromEntries(Object.entries(out).map(([k, vs]) => [k, Object.freeze([...vs])])));
  if (ATTRIBUTE_SETS.size < MAX_ATTRIBUTE_SETS) ATTRIBUTE_SETS.set(key, frozen);
  return frozen;
}

/** RFC 6749 2.3.1: client id and secret are form-urlencoded before Basic encoding. */
function formEncode(s: string): string {
  return encodeURIComponent(s).replace(/%20/g, "+");
}

/** " (invalid_client)" from an OAuth error body, when it has a plain error code. */
function oauthError(text: string): string {
  try {
    const body: unknown = JSON.parse(text);
    const code = isRecord(body) ? body.error : undefined;
    return typeof code === "string" && /^[A-Za-z0-9_ .-]{1,60}$/.test(code) ? ` (${code})` : "";
  } catch {
    return "";
  }
}

/** A short, log-safe reason for a failed call. */
function describe(err: unknown, op: "token" | "users", timeoutMs: number): string {
  if (err instanceof Failure) return err.reason;
  const what = op === "token" ? "keycloak token request" : "keycloak users query";
  if (err instanceof Error) {
    if (err.name === "TimeoutError" || err.name === "AbortError") return `${what} timed out after ${timeoutMs} ms`;
    const cause: unknown = err.cause;
    const code = isRecord(cause) && typeof cause.code === "string" ? cause.code : undefined;
    if (code !== undefined) return `${what} failed: ${code}`;
    if (err instanceof SyntaxError) return `${what} returned malformed JSON`;
    return `${what} failed: ${err.name}`;
  }
  return `${what} failed`;
}
