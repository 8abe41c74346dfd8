// A small but faithful fake of the two Keycloak endpoints mailcloak uses: the
// client_credentials token endpoint and the Admin REST user queries. It speaks
// real HTTP on 127.0.0.1 so the real admin client (and fetch) run against it,
// and it has knobs for latency and failure modes so test suites can exercise
// timeouts, outages and permission problems. Wire details follow
// PROTOCOLS.md section 4.

import { randomBytes, randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { FakeHttpServer, safeDecode, sendJson as send, type Json } from "./helpers/fake-http.js";

/** What the fake does with requests; can be changed at any time. */
export type FakeKeycloakMode =
  /** Behave like a healthy Keycloak. */
  | "ok"
  /** Admin endpoints: valid token but 403 (service account lacks view-users). */
  | "users403"
  /** Admin endpoints: 500. */
  | "users500"
  /** Admin endpoints: 200 with a truncated, unparseable JSON body. */
  | "usersMalformed"
  /** Admin endpoints: always 401, even with a freshly issued token. */
  | "unauthorizedForever"
  /** Token endpoint: 500; tokens issued earlier keep working. */
  | "tokenFails"
  /** Every request is accepted and left unanswered until the mode changes or the fake stops. */
  | "hang";

export interface FakeKeycloakOptions {
  /** Realm served (default "test"); other realms get 404. */
  realm?: string;
  /** Accepted client id (default "mailcloak"). */
  clientId?: string;
  /** Accepted client secret (default "s3cret"). */
  clientSecret?: string;
  /** Lifetime of issued tokens in seconds (default 300). */
  expiresIn?: number;
  /** Port to listen on (default 0 = pick a free one). */
  port?: number;
}

/** Fields a test may give when creating or patching a user. */
export interface FakeUserInput {
  username: string;
  email?: string;
  enabled?: boolean;
  emailVerified?: boolean;
  firstName?: string;
  lastName?: string;
  attributes?: Record<string, string[]>;
  /** Set to make this a service-account user (as Keycloak does for client service accounts). */
  serviceAccountClientId?: string;
}

/** A stored user, in the shape Keycloak returns (UserRepresentation subset). */
export interface FakeUser {
  id: string;
  username: string;
  email?: string;
  emailVerified: boolean;
  enabled: boolean;
  firstName?: string;
  lastName?: string;
  createdTimestamp: number;
  attributes: Record<string, string[]>;
  serviceAccountClientId?: string;
}

export class FakeKeycloak extends FakeHttpServer<FakeKeycloakMode> {
  readonly realm: string;
  clientId: string;
  clientSecret: string;
  /** Lifetime (seconds) given to tokens issued from now on. */
  expiresIn: number;
  /**
   * Simulate the keycloak#30580 class of bug: `exact=true` is ignored and
   * username/email use the non-exact (LIKE) match. Off by default.
   */
  ignoreExact = false;
  /** POSTs that reached the token endpoint (successful or not). */
  tokenRequests = 0;
  /** GETs that reached the users endpoints (list or by id), whatever the outcome. */
  userQueries = 0;

  readonly #tokens = new Map<string, number>(); // token -> expiry (epoch ms)
  readonly #users = new Map<string, FakeUser>(); // by username

  private constructor(opts: FakeKeycloakOptions) {
    super("ok");
    this.realm = opts.realm ?? "test";
    this.clientId = opts.clientId ?? "mailcloak";
    this.clientSecret = opts.clientSecret ?? "s3cret";
    this.expiresIn = opts.expiresIn ?? 300;
  }

  /** Start listening on 127.0.0.1 (a free port unless opts.port is given). */
  static async start(opts: FakeKeycloakOptions = {}): Promise<FakeKeycloak> {
    const fake = new FakeKeycloak(opts);
    await fake.listen(opts.port ?? 0);
    return fake;
  }

  /** Revoke every token issued so far; the next admin call with one gets 401. */
  expireAllTokens(): void {
    this.#tokens.clear();
  }

  resetCounters(): void {
    this.tokenRequests = 0;
    this.userQueries = 0;
  }

  /** Create a user; username/email are stored lower-cased. Returns a copy of the stored user. */
  addUser(input: FakeUserInput): FakeUser {
    const username = input.username.toLowerCase();
    if (this.#users.has(username)) throw new Error(`fake keycloak: user ${username} exists`);
    const user: FakeUser = {
      id: randomUUID(),
      username,
      emailVerified: input.emailVerified ?? false,
      enabled: input.enabled ?? true,
      createdTimestamp: Date.now(),
      attributes: {},
    };
    this.#apply(user, input);
    this.#users.set(username, user);
    return structuredClone(user);
  }

  /** Change fields of an existing user (a new username renames it). */
  updateUser(username: string, patch: Partial<FakeUserInput>): FakeUser {
    const user = this.#users.get(username.toLowerCase());
    if (!user) throw new Error(`fake keycloak: no user ${username}`);
    this.#users.delete(user.username);
    if (patch.username !== undefined) user.username = patch.username.toLowerCase();
    this.#apply(user, patch);
    this.#users.set(user.username, user);
    return structuredClone(user);
  }

  /** Delete a user; returns whether it existed. */
  removeUser(username: string): boolean {
    return this.#users.delete(username.toLowerCase());
  }

  #apply(user: FakeUser, input: Partial<FakeUserInput>): void {
    if (input.email !== undefined) user.email = input.email.toLowerCase();
    if (input.enabled !== undefined) user.enabled = input.enabled;
    if (input.emailVerified !== undefined) user.emailVerified = input.emailVerified;
    if (input.firstName !== undefined) user.firstName = input.firstName;
    if (input.lastName !== undefined) user.lastName = input.lastName;
    if (input.attributes !== undefined) user.attributes = structuredClone(input.attributes);
    if (input.serviceAccountClientId !== undefined) user.serviceAccountClientId = input.serviceAccountClientId;
  }

  // ---- request handling ----

  protected arrived(req: IncomingMessage, url: URL): void {
    const path = segments(url);
    if (isToken(path) && req.method === "POST") this.tokenRequests++;
    if (isUsers(path) && req.method === "GET") this.userQueries++;
  }

  protected answer(req: IncomingMessage, url: URL, body: string, res: ServerResponse): void {
    const path = segments(url);
    if (isToken(path)) this.#token(req, body, path[1]!, res);
    else if (isUsers(path)) this.#admin(req, url, path, res);
    else send(res, 404, { error: "Not Found" });
  }

  #token(req: IncomingMessage, body: string, realm: string, res: ServerResponse): void {
    if (req.method !== "POST") return send(res, 405, { error: "Method Not Allowed" });
    if (realm !== this.realm) {
      return send(res, 404, { error: "Realm does not exist", error_description: "Realm does not exist" });
    }
    if (this.mode === "tokenFails") return send(res, 500, { error: "unknown_error" });
    const form = new URLSearchParams(body);
    let id = form.get("client_id");
    let secret = form.get("client_secret");
    const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? "");
    if (basic) {
      // RFC 6749 2.3.1: id and secret are form-urlencoded before base64.
      const decoded = Buffer.from(basic[1]!, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon >= 0) {
        id = formDecode(decoded.slice(0, colon));
        secret = formDecode(decoded.slice(colon + 1));
      }
    }
    if (id !== this.clientId || secret !== this.clientSecret) {
      return send(res, 401, {
        error: "invalid_client",
        error_description: "Invalid client or Invalid client credentials",
      });
    }
    if (form.get("grant_type") !== "client_credentials") {
      return send(res, 400, { error: "unsupported_grant_type", error_description: "Unsupported grant_type" });
    }
    const token = this.#issueToken();
    send(res, 200, {
      access_token: token,
      expires_in: this.expiresIn,
      refresh_expires_in: 0,
      token_type: "Bearer",
      "not-before-policy": 0,
      scope: "profile email",
    });
  }

  /** A JWT-looking opaque token (unsigned; only this fake can check it). */
  #issueToken(): string {
    const now = Date.now();
    const b64 = (v: Json): string => Buffer.from(JSON.stringify(v)).toString("base64url");
    const claims = {
      exp: Math.floor(now / 1000) + this.expiresIn,
      iat: Math.floor(now / 1000),
      jti: randomUUID(),
      iss: `${this.url}/realms/${this.realm}`,
      azp: this.clientId,
      typ: "Bearer",
    };
    const token = `${b64({ alg: "none", typ: "JWT" })}.${b64(claims)}.${randomBytes(16).toString("base64url")}`;
    this.#tokens.set(token, now + this.expiresIn * 1000);
    return token;
  }

  #admin(req: IncomingMessage, url: URL, path: string[], res: ServerResponse): void {
    if (req.method !== "GET") return send(res, 405, { error: "HTTP 405 Method Not Allowed" });
    if (this.mode === "users500") return send(res, 500, { error: "unknown_error" });
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "");
    const expiry = bearer ? this.#tokens.get(bearer[1]!) : undefined;
    if (expiry === undefined || expiry <= Date.now() || this.mode === "unauthorizedForever") {
      return send(res, 401, { error: "HTTP 401 Unauthorized" });
    }
    if (this.mode === "users403") return send(res, 403, { error: "HTTP 403 Forbidden" });
    if (path[2] !== this.realm) return send(res, 404, { error: "Realm not found." });
    if (this.mode === "usersMalformed") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('[{"id":"0b1c","username":"trunc');
      return;
    }

    const q = url.searchParams;
    const brief = q.get("briefRepresentation") === "true";
    if (path.length === 5) {
      const user = [...this.#users.values()].find((u) => u.id === path[4]);
      if (!user) return send(res, 404, { error: "User not found" });
      return send(res, 200, represent(user, false));
    }
    const first = intParam(q.get("first"), 0);
    const max = intParam(q.get("max"), 100);
    const list = this.#query(q)
      .sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : 0))
      .slice(first, max < 0 ? undefined : first + max)
      .map((u) => represent(u, brief));
    send(res, 200, list);
  }

  /** The JPA store's filtering, as described in PROTOCOLS.md 4.4. */
  #query(q: URLSearchParams): FakeUser[] {
    const exact = q.get("exact") === "true" && !this.ignoreExact;
    let users = [...this.#users.values()];
    const search = q.get("search");
    if (search !== null && search.trim() !== "") {
      // search= excludes service accounts; terms are ANDed.
      users = users.filter((u) => u.serviceAccountClientId === undefined);
      for (const term of search.trim().split(/\s+/)) {
        const match = searchMatcher(term);
        users = users.filter((u) =>
          [u.username, u.email, u.firstName, u.lastName].some((v) => v !== undefined && match(v.toLowerCase())));
      }
    }
    for (const field of ["username", "email", "firstName", "lastName"] as const) {
      const value = q.get(field);
      if (value === null || value === "") continue;
      const wanted = value.toLowerCase();
      users = users.filter((u) => {
        const have = u[field]?.toLowerCase();
        if (have === undefined) return false;
        // Non-exact is SQL LIKE '%v%' with `_` and `%` left unescaped.
        return exact ? have === wanted : likeRegExp(`%${wanted}%`).test(have);
      });
    }
    const enabled = q.get("enabled");
    if (enabled === "true" || enabled === "false") users = users.filter((u) => u.enabled === (enabled === "true"));
    return users;
  }
}

function segments(url: URL): string[] {
  return url.pathname.split("/").filter((p) => p !== "").map(safeDecode);
}

function isToken(path: string[]): boolean {
  return path.length === 5 && path[0] === "realms" && path.slice(2).join("/") === "protocol/openid-connect/token";
}

function isUsers(path: string[]): boolean {
  return (path.length === 4 || path.length === 5) && path[0] === "admin" && path[1] === "realms" && path[3] === "users";
}

function represent(u: FakeUser, brief: boolean): Json {
  const rep: { [key: string]: Json } = {
    id: u.id,
    username: u.username,
    ...(u.firstName !== undefined ? { firstName: u.firstName } : {}),
    ...(u.lastName !== undefined ? { lastName: u.lastName } : {}),
    ...(u.email !== undefined ? { email: u.email } : {}),
    emailVerified: u.emailVerified,
    createdTimestamp: u.createdTimestamp,
    enabled: u.enabled,
    ...(u.serviceAccountClientId !== undefined ? { serviceAccountClientId: u.serviceAccountClientId } : {}),
  };
  if (brief) return rep;
  return {
    ...rep,
    // Keycloak leaves `attributes` out when the user has none.
    ...(Object.keys(u.attributes).length > 0 ? { attributes: structuredClone(u.attributes) } : {}),
    totp: false,
    disableableCredentialTypes: [],
    requiredActions: [],
    notBefore: 0,
    access: { manage: false },
  };
}

/** `"x"` exact, `*x*` infix (each `*` any run), plain `x` prefix; case-insensitive. */
function searchMatcher(term: string): (value: string) => boolean {
  const t = term.toLowerCase();
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) {
    const exact = t.slice(1, -1);
    return (v) => v === exact;
  }
  const re = t.includes("*")
    ? new RegExp(`^${t.split("*").map(escapeRegExp).join(".*")}$`, "s")
    : new RegExp(`^${escapeRegExp(t)}`, "s");
  return (v) => re.test(v);
}

function likeRegExp(pattern: string): RegExp {
  let src = "";
  for (const ch of pattern) src += ch === "%" ? ".*" : ch === "_" ? "." : escapeRegExp(ch);
  return new RegExp(`^${src}$`, "s");
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function formDecode(s: string): string {
  return safeDecode(s.replace(/\+/g, " "));
}

function intParam(v: string | null, dflt: number): number {
  if (v === null || v === "") return dflt;
  const n = Number.parseInt(v, 10);
  return Number.isFinite(n) ? n : dflt;
}
