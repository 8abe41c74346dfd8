// Keycloak as an identity source: exact username/email lookups through the
// Admin REST API, authenticated with a cached client_credentials token.
//
// A user Keycloak imported from a federation (LDAP) is listed even while
// Keycloak cannot reach that directory, marked disabled; one not imported yet
// is not listed at all. So for a disabled user with a federationLink, and for
// a user not found once a federation has been seen, the federation itself is
// asked for a username no directory holds (GET users/f:{federationLink}:
// {probe}, which Keycloak answers from the directory: 404 while it answers,
// 5xx while it cannot). A 5xx is an outage (`unavailable`, the failure mode),
// never "disabled" or "unknown" (550); a user an admin disabled stays
// disabled. Not the user's own name: Keycloak answers that by importing her
// again, which re-enables her.
//
// Failure handling, in order: every HTTP call has its own deadline; a 401
// renews the token and retries once; a 403 is a permissions problem and is
// explained once in the log; after `failureThreshold` consecutive unavailable
// answers a circuit breaker answers `unavailable` without touching the network
// for `openMs`, then lets a single trial lookup through.
//
// The users query is the cache-miss hot path, so it goes through undici (the
// engine of Node's fetch, without fetch's WHATWG layers): dispatch() on a
// keep-alive Pool of its own, with a small handler and a deadline signal
// shared per millisecond. Measured with the benchmark's (b) scenario at 20 ms,
// C=50 (bench/README.md, "Figures at the shipped defaults"): 2,300 µs of
// daemon CPU per miss with @keycloak/keycloak-admin-client's users.find()
// (URL templates, Headers and a fetch() per call), 540 µs with undici's
// request() (later measured warm: median 588), median 238 µs now. The query is the one
// the admin client sent (same parameters, same order); the token request and
// the group reads (adminGet) stay on fetch: they are rare.

import { setMaxListeners } from "node:events";
import { performance } from "node:perf_hooks";
import { Pool, type Dispatcher } from "undici";
import type { Logger } from "pino";
import { Failure, describeFailure } from "./failure.js";
import { RemoteSource, type RemoteSourceOptions, type SourceEvents } from "./guard.js";
import type { DirectoryUser, Lookup } from "./lookup.js";
import { NOT_FOUND, found, unavailable, unavailableBehindIdp } from "./lookup.js";
import { isRecord, lower, userAttributes } from "./user-json.js";

/** Metrics hooks: calls are the token request ("token") or a users query ("users"). */
export interface KeycloakEvents extends SourceEvents<"token" | "users"> {
  /** A new access token was obtained (the first one included). */
  onTokenRenewal?(): void;
}

/** baseUrl e.g. https://kc.example or https://kc.example/auth; timeoutMs applies to token and users calls alike. */
export interface KeycloakSourceOptions extends RemoteSourceOptions<KeycloakEvents> {
  realm: string;
  clientId: string;
  clientSecret: string;
}

export const FORBIDDEN_HINT =
  "Keycloak answered 403 Forbidden for user lookups: give the client's service account the " +
  "realm-management roles view-users (or query-users) and check they are in the token";

/** Logged (error) when a federated user's directory first cannot be read; once per outage. */
export const STORAGE_DOWN =
  "Keycloak cannot read a federated user from its user storage (LDAP down, not answering, or Keycloak's bind to it refused; Keycloak's log says which): " +
  "its users get the failure mode until it answers again";
/** Logged (info) when that directory answers again. */
export const STORAGE_BACK = "Keycloak reads federated users from their user storage again";

/** Federations remembered (a realm has a few; the bound only keeps hostile data from growing the set). */
const MAX_FEDERATIONS = 16;

/** The username the federation check asks for: one no directory is expected to hold (spaces, unusual for a uid). */
export const FEDERATION_PROBE = "mailcloak federation probe";

type Field = "username" | "email";

interface CachedToken {
  readonly value: string;
  /** Epoch ms after which Keycloak rejects it. */
  readonly expiresAt: number;
  /** Epoch ms after which we fetch a new one. */
  readonly renewAt: number;
}

/** #select's answer when more than one user has the key. */
const SEVERAL = Symbol("several users");
const UNAUTHORIZED = Symbol("401");

/** Pooled connections to Keycloak: at most this many at once (the misses in flight share them), kept open this long when idle. */
const POOL_CONNECTIONS = 64;
const KEEP_ALIVE_MS = 30_000;
/**
 * Users queries started within this many ms of each other share one deadline
 * signal (each deadline may fire up to this much early): AbortSignal.timeout()
 * per call was a tenth of the client's CPU per miss (bench/README.md).
 */
const DEADLINE_SHARE_MS = 1;

export class KeycloakSource extends RemoteSource<KeycloakEvents> {
  readonly #opts: Required<Pick<KeycloakSourceOptions, "realm" | "clientId" | "clientSecret">> & Pick<KeycloakSourceOptions, "attributes">;
  readonly #baseUrl: string;
  readonly #timeoutMs: number;
  readonly #log: Logger;
  readonly #pool: Pool;
  readonly #usersPath: string;
  #deadline: AbortSignal | null = null;
  #deadlineSince = 0;

  #token: CachedToken | null = null;
  #renewing: Promise<CachedToken> | null = null;
  #lastTokenWarning = "";
  /** Federations (their component ids) seen on users so far: a not-found is checked against them. */
  readonly #federations = new Set<string>();
  /** Those whose directory cannot be read now: one log line per outage. */
  readonly #storageDown = new Set<string>();
  readonly #probes = new Map<string, Promise<number>>();

  constructor(opts: KeycloakSourceOptions) {
    const timeoutMs = opts.timeoutMs ?? 2000;
    super({ name: "keycloak", logger: opts.logger, events: opts.events, breaker: opts.breaker, describe: (err) => describe(err, "users", timeoutMs) });
    this.#opts = { realm: opts.realm, clientId: opts.clientId, clientSecret: opts.clientSecret, ...(opts.attributes ? { attributes: [...opts.attributes] } : {}) };
    this.#baseUrl = opts.baseUrl.replace(/\/+$/, "");
    this.#timeoutMs = timeoutMs;
    this.#log = opts.logger;
    // One origin, so a Pool rather than an Agent: the request names a path, not a URL to parse.
    const base = new URL(this.#baseUrl);
    this.#pool = new Pool(base.origin, { connections: POOL_CONNECTIONS, keepAliveTimeout: KEEP_ALIVE_MS, keepAliveMaxTimeout: KEEP_ALIVE_MS });
    this.#usersPath = `${base.pathname.replace(/\/+$/, "")}/admin/realms/${encodeURIComponent(opts.realm)}/users`;
  }

  override async close(): Promise<void> {
    await super.close();
    // Pooled sockets would keep a stopping process alive; requests in flight end now (the daemon has drained its own).
    await this.#pool.destroy().catch(() => undefined);
  }

  protected async query(field: Field, key: string): Promise<Lookup<DirectoryUser>> {
    let token = await this.#currentToken();
    let list = await this.#findUsers(field, key, token);
    if (list === UNAUTHORIZED) {
      // Revoked or expired early: renew once (shared with concurrent callers) and retry once.
      if (this.#token?.value === token) this.#token = null;
      token = await this.#currentToken();
      list = await this.#findUsers(field, key, token);
      if (list === UNAUTHORIZED) return unavailable("keycloak rejected the service-account token (401)");
    }
    const u = this.#select(field, key, list);
    // Several users share the key whether or not a directory answers: no check.
    if (u === SEVERAL) return NOT_FOUND;
    // A user not imported yet is not listed while the directory is down either.
    if (u === null) return this.#federations.size === 0 ? NOT_FOUND : this.#notFoundUnlessDown(field, key, token);
    const user: DirectoryUser = {
      username: lower(u.username) ?? "",
      email: lower(u.email),
      enabled: u.enabled === true,
      attributes: userAttributes(u.attributes, this.#opts.attributes, keycloakValues),
    };
    const link = u.federationLink;
    if (typeof link !== "string" || link === "") return found(user);
    if (!this.#federations.has(link) && this.#federations.size < MAX_FEDERATIONS) this.#federations.add(link);
    if (user.enabled) {
      this.#storageAnswered(link);
      return found(user);
    }
    // Disabled indeed while the federation answers; an outage while it cannot.
    const down = await this.#storageFails(link, "username", user.username, token);
    return down ?? found(user);
  }

  /** Not found, unless a federation seen so far cannot read its directory (the user may be there). */
  async #notFoundUnlessDown(field: Field, key: string, token: string): Promise<Lookup<DirectoryUser>> {
    for (const link of [...this.#federations]) {
      const down = await this.#storageFails(link, field, key, token);
      if (down) return down;
    }
    return NOT_FOUND;
  }

  /**
   * Ask federation `link` for FEDERATION_PROBE: null while it answers (404,
   * or 200 should the name exist), `unavailable` when Keycloak answers 5xx.
   * Any other answer cannot tell, and counts as answering (warned once).
   */
  async #storageFails(link: string, field: Field, key: string, token: string): Promise<Lookup<DirectoryUser> | null> {
    const status = await this.#probe(link, token);
    if (status >= 500) {
      if (!this.#storageDown.has(link) && this.#storageDown.size < MAX_FEDERATIONS) {
        this.#storageDown.add(link);
        this.#log.error({ federation: link, [field]: key, status }, STORAGE_DOWN);
      }
      return unavailableBehindIdp(`keycloak user storage ${link} unavailable (HTTP ${status})`);
    }
    if (!((status >= 200 && status <= 299) || status === 404)) {
      this.guard.once(`federated-${status}`, () => {
        this.#log.warn({ federation: link, status }, "Keycloak refused the check of a federated user's directory: during a directory outage its users are refused, not deferred");
      });
    }
    this.#storageAnswered(link);
    return null;
  }

  /** The status of GET users/f:{link}:{probe}; concurrent checks of one federation share a request. */
  #probe(link: string, token: string): Promise<number> {
    let p = this.#probes.get(link);
    if (p === undefined) {
      p = this.#probeOnce(link, token).finally(() => this.#probes.delete(link));
      this.#probes.set(link, p);
    }
    return p;
  }

  async #probeOnce(link: string, token: string): Promise<number> {
    const done = this.guard.timer("users");
    const { status } = await this.#usersGet(`/f:${encodeURIComponent(link)}:${encodeURIComponent(FEDERATION_PROBE)}`, token, done);
    done(status < 500 ? "ok" : "error");
    return status;
  }

  /** GET `rest` under the realm's users endpoint; a transport failure is timed as an error and thrown as a Failure. */
  async #usersGet(rest: string, token: string, done: (outcome: "ok" | "error") => void): Promise<{ status: number; text: string }> {
    try {
      return await usersGet(this.#pool, {
        method: "GET",
        path: `${this.#usersPath}${rest}`,
        headers: { authorization: `Bearer ${token}`, accept: "application/json" },
      }, this.#sharedDeadline());
    } catch (err) {
      done("error");
      throw new Failure(describe(undiciCause(err), "users", this.#timeoutMs));
    }
  }

  #storageAnswered(link: string): void {
    if (this.#storageDown.size === 0 || !this.#storageDown.delete(link)) return;
    this.#log.info({ federation: link }, STORAGE_BACK);
  }

  /** The one user of `list` whose `field` is `key`; null when none is, SEVERAL when more than one (treated as unknown, warned once). */
  #select(field: Field, key: string, list: readonly Record<string, unknown>[]): Record<string, unknown> | null | typeof SEVERAL {
    const byId = new Map<string, Record<string, unknown>>();
    for (const u of list) {
      // exact=true is sent, but equality is checked here too (keycloak#30580).
      if (lower(u[field]) !== key) continue;
      // No service-account filter: the admin API never marks service-account
      // users (no serviceAccountClientId in 26.x), so one an admin gave an
      // email is found like any user.
      byId.set(typeof u.id === "string" ? u.id : `${byId.size}`, u);
    }
    if (byId.size === 0) return null;
    if (byId.size > 1) {
      this.guard.once(`${field}:${key}`, () => {
        this.#log.warn({ [field]: key }, `several Keycloak users have this ${field}; treating it as unknown`);
      });
      return SEVERAL;
    }
    return [...byId.values()][0]!;
  }

  /** One users query; UNAUTHORIZED on 401, Failure on anything else that isn't a user list. */
  async #findUsers(field: Field, key: string, token: string): Promise<Record<string, unknown>[] | typeof UNAUTHORIZED> {
    const done = this.guard.timer("users");
    // As @keycloak/keycloak-admin-client's users.find() sent it (parameter order included).
    const { status, text } = await this.#usersGet(`?${field}=${encodeURIComponent(key)}&exact=true&max=2&briefRepresentation=false`, token, done);
    if (status < 200 || status > 299) {
      done("error");
      if (status === 401) return UNAUTHORIZED;
      if (status === 403) {
        this.guard.once("403", () => this.#log.warn(FORBIDDEN_HINT));
        throw new Failure("keycloak denied the user lookup (403)");
      }
      if (status === 404) {
        this.guard.once("404", () => {
          this.#log.warn({ realm: this.#opts.realm }, "Keycloak answered 404 for the users endpoint: check the realm name and base URL");
        });
        throw new Failure("keycloak users endpoint not found (404)");
      }
      throw new Failure(`keycloak users query HTTP ${status}`);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = text; // not JSON: a malformed list, below
    }
    if (!Array.isArray(body) || !body.every(isRecord)) {
      done("error");
      throw new Failure("keycloak returned a malformed user list");
    }
    done("ok");
    return body;
  }

  /** The deadline signal for a users query starting now (see DEADLINE_SHARE_MS). */
  #sharedDeadline(): AbortSignal {
    const now = performance.now();
    if (this.#deadline === null || now - this.#deadlineSince >= DEADLINE_SHARE_MS) {
      this.#deadline = AbortSignal.timeout(this.#timeoutMs);
      setMaxListeners(0, this.#deadline); // one abort listener per query in flight on it
      this.#deadlineSince = now;
    }
    return this.#deadline;
  }

  /**
   * One GET under /admin/realms/{realm} (the group reads of directory/lists.ts),
   * with the same token, 401 renewal and deadline as user lookups. Resolves to
   * the parsed JSON, or null on 404; rejects with Failure otherwise.
   */
  async adminGet(path: string): Promise<unknown> {
    const url = `${this.#baseUrl}/admin/realms/${encodeURIComponent(this.#opts.realm)}${path}`;
    const once = async (token: string): Promise<Response> => {
      try {
        return await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: "application/json" }, signal: AbortSignal.timeout(this.#timeoutMs) });
      } catch (err) {
        throw new Failure(describeFailure(err, "keycloak groups query", this.#timeoutMs));
      }
    };
    let token = await this.#currentToken();
    let res = await once(token);
    if (res.status === 401) {
      if (this.#token?.value === token) this.#token = null;
      token = await this.#currentToken();
      res = await once(token);
    }
    const text = await res.text();
    if (res.status === 404) return null;
    if (res.status === 403) {
      this.guard.once("403-groups", () => this.#log.warn("Keycloak answered 403 Forbidden for group reads: the client's service account needs realm-management view-users (it covers groups and members)"));
      throw new Failure("keycloak denied the group read (403)");
    }
    if (!res.ok) throw new Failure(`keycloak groups query HTTP ${res.status}`);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new Failure("keycloak returned a malformed group answer");
    }
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
    const done = this.guard.timer("token");
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
      done("ok");
      this.guard.emit((e) => e.onTokenRenewal?.());
      return token;
    } catch (err) {
      done("error");
      const reason = describe(err, "token", this.#timeoutMs);
      if (reason !== this.#lastTokenWarning) {
        this.#lastTokenWarning = reason;
        this.#log.warn({ reason, clientId }, "cannot get a Keycloak service-account token");
      }
      throw new Failure(reason);
    }
  }

}

/**
 * One GET through the pool's dispatch(), the body collected as text: what
 * request() + body.text() did, without their per-call stream, async resource
 * and promise layers. Rejects as request() did: with undici's error, or with
 * the signal's reason when it aborts. The whole body is always read, so the
 * pooled connection is free again when this settles.
 */
function usersGet(pool: Pool, opts: Dispatcher.DispatchOptions, signal: AbortSignal): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const call = new UsersCall(signal, resolve, reject);
    try {
      pool.dispatch(opts, call);
    } catch (err) {
      call.onError(err instanceof Error ? err : new Error(String(err)));
    }
  });
}

/** The handler of one usersGet: status, body chunks, settled once. */
class UsersCall implements Dispatcher.DispatchHandlers {
  readonly #signal: AbortSignal;
  readonly #resolve: (r: { status: number; text: string }) => void;
  readonly #reject: (err: unknown) => void;
  #abort: ((err?: Error) => void) | null = null;
  #status = 0;
  readonly #chunks: Buffer[] = [];
  #settled = false;
  readonly #onAbort = (): void => {
    const reason: unknown = this.#signal.reason;
    this.#abort?.(reason instanceof Error ? reason : new Error("aborted"));
  };

  constructor(signal: AbortSignal, resolve: (r: { status: number; text: string }) => void, reject: (err: unknown) => void) {
    this.#signal = signal;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    if (this.#settled) return;
    if (this.#signal.aborted) this.#onAbort();
    else this.#signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  onHeaders(statusCode: number): boolean {
    this.#status = statusCode;
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.#chunks.push(chunk);
    return true;
  }

  onComplete(): void {
    if (this.#settle()) return;
    const chunks = this.#chunks;
    let text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString("utf8");
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // body.text() drops a UTF-8 BOM too
    this.#resolve({ status: this.#status, text });
  }

  onError(err: Error): void {
    if (this.#settle()) return;
    this.#reject(err);
  }

  /** True when already settled; otherwise marks it settled and stops listening to the signal. */
  #settle(): boolean {
    if (this.#settled) return true;
    this.#settled = true;
    this.#signal.removeEventListener("abort", this.#onAbort);
    return false;
  }
}

/** Keycloak attribute values are lists of strings (a lone string is accepted too). */
function keycloakValues(values: unknown): readonly string[] | null {
  if (typeof values === "string") return [values];
  if (Array.isArray(values)) return values.filter((x): x is string => typeof x === "string");
  return null;
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

/**
 * undici's request() puts a system error's code (ECONNREFUSED) on the error
 * itself where fetch() puts it on `cause`: present it as fetch does, so the
 * reasons read the same for every call.
 */
function undiciCause(err: unknown): unknown {
  if (!(err instanceof Error) || err.cause !== undefined) return err;
  const code = "code" in err && typeof err.code === "string" ? err.code : undefined;
  if (code === undefined || err.name === "TimeoutError" || err.name === "AbortError") return err;
  const wrapped = new Error(err.message, { cause: { code } });
  wrapped.name = err.name;
  return wrapped;
}

/** A short, log-safe reason for a failed call. */
function describe(err: unknown, op: "token" | "users", timeoutMs: number): string {
  return describeFailure(err, op === "token" ? "keycloak token request" : "keycloak users query", timeoutMs);
}
