// A small but faithful fake of the two Keycloak endpoints mailcloak uses: the
// client_credentials token endpoint and the Admin REST user queries. It speaks
// real HTTP on 127.0.0.1 so the real admin client (and fetch) run against it,
// and it has knobs for latency and failure modes so test suites can exercise
// timeouts, outages and permission problems. Wire details follow
// PROTOCOLS.md section 4 and, where they disagree, what Keycloak 26.5.6 does:
// test/keycloak-emulator-parity.integration.test.ts compares the two live
// (test/helpers/fixture-users.ts loads the realm fixture into a fake).

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
  /** More confidential clients with a service account, besides clientId/clientSecret (which has view-users). */
  clients?: readonly FakeClient[];
  /**
   * The attribute names the realm's user profile declares. Keycloak >= 24
   * stores undeclared ("unmanaged") attributes but leaves them out of user
   * representations. Default: every attribute is shown (unmanaged attributes enabled).
   */
  declaredAttributes?: readonly string[];
}

/** A client_credentials client and the realm-management roles of its service account. */
export interface FakeClient {
  id: string;
  secret: string;
  /**
   * "view-users" reads users; "query-users" alone may call the users endpoint
   * but sees nobody (200 []); none at all gets 403.
   */
  roles: readonly ("view-users" | "query-users")[];
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
  /**
   * Makes this the service-account user of that client. Keycloak keeps the
   * link but never sends it in admin representations; it only changes which
   * queries return the user.
   */
  serviceAccountClientId?: string;
  /** Imported from that user federation (its component id), as LDAP users are. */
  federationLink?: string;
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
  federationLink?: string;
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
  /** GETs that reached the group endpoints (group-by-path, children, members). */
  groupQueries = 0;
  /**
   * Federations (component ids) whose directory Keycloak cannot read, as
   * Keycloak 26.5.6 shows it (test/ldap-outage.integration.test.ts): their
   * imported users are listed with enabled false, and the federation's own
   * lookup GET users/f:{id}:{username} answers 500 instead of 404 or the user.
   */
  readonly unreachableFederations = new Set<string>();
  /** Usernames asked of a federation through GET users/f:{id}:{username}. */
  readonly federationLookups: string[] = [];

  readonly #tokens = new Map<string, IssuedToken>();
  readonly #clients: readonly FakeClient[];
  readonly #declared: ReadonlySet<string> | null;
  readonly #users = new Map<string, FakeUser>(); // by username
  readonly #groups = new Map<string, FakeGroup>(); // by path

  private constructor(opts: FakeKeycloakOptions) {
    super("ok");
    this.realm = opts.realm ?? "test";
    this.clientId = opts.clientId ?? "mailcloak";
    this.clientSecret = opts.clientSecret ?? "s3cret";
    this.expiresIn = opts.expiresIn ?? 300;
    this.#clients = (opts.clients ?? []).map((c) => ({ ...c, roles: [...c.roles] }));
    this.#declared = opts.declaredAttributes ? new Set(opts.declaredAttributes) : null;
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
    this.groupQueries = 0;
  }

  /** Create a group (and its missing parents) at `path`, e.g. "/lists/team"; attributes replace the group's. */
  addGroup(path: string, attributes?: Record<string, string[]>): void {
    const names = path.split("/").filter((n) => n !== "");
    let parentId: string | null = null;
    let last: FakeGroup | undefined;
    for (let i = 1; i <= names.length; i++) {
      const p = `/${names.slice(0, i).join("/")}`;
      let g = this.#groups.get(p);
      if (!g) {
        g = { id: randomUUID(), name: names[i - 1]!, path: p, parentId, attributes: {}, members: new Set<string>() };
        this.#groups.set(p, g);
      }
      parentId = g.id;
      last = g;
    }
    if (attributes !== undefined && last) last.attributes = structuredClone(attributes);
  }

  /** Make a user a direct member of a group (created when missing). */
  addMember(username: string, path: string): void {
    const user = this.#users.get(username.toLowerCase());
    if (!user) throw new Error(`fake keycloak: no user ${username}`);
    this.addGroup(path);
    this.#groups.get(path)!.members.add(user.id);
  }

  removeMember(username: string, path: string): void {
    const user = this.#users.get(username.toLowerCase());
    if (user) this.#groups.get(path)?.members.delete(user.id);
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
    // An empty email removes it, as Keycloak's user update does.
    if (input.email === "") delete user.email;
    else if (input.email !== undefined) user.email = input.email.toLowerCase();
    if (input.enabled !== undefined) user.enabled = input.enabled;
    if (input.emailVerified !== undefined) user.emailVerified = input.emailVerified;
    if (input.firstName !== undefined) user.firstName = input.firstName;
    if (input.lastName !== undefined) user.lastName = input.lastName;
    if (input.attributes !== undefined) user.attributes = structuredClone(input.attributes);
    if (input.serviceAccountClientId !== undefined) user.serviceAccountClientId = input.serviceAccountClientId;
    if (input.federationLink !== undefined) user.federationLink = input.federationLink;
  }

  // ---- request handling ----

  protected arrived(req: IncomingMessage, url: URL): void {
    const path = segments(url);
    if (isToken(path) && req.method === "POST") this.tokenRequests++;
    if (isUsers(path) && req.method === "GET") this.userQueries++;
    if (isGroups(path) && req.method === "GET") this.groupQueries++;
  }

  protected answer(req: IncomingMessage, url: URL, body: string, res: ServerResponse): void {
    const path = segments(url);
    if (isToken(path)) this.#token(req, body, path[1]!, res);
    else if (isAdmin(path)) this.#admin(req, url, path, res);
    else send(res, 404, NOT_FOUND_BODY);
  }

  /** Every accepted client; the first is the one clientId/clientSecret name (they may change at any time). */
  #allClients(): FakeClient[] {
    return [{ id: this.clientId, secret: this.clientSecret, roles: ["view-users"] }, ...this.#clients];
  }

  #token(req: IncomingMessage, body: string, realm: string, res: ServerResponse): void {
    if (req.method !== "POST") return send(res, 405, { error: "HTTP 405 Method Not Allowed" });
    if (realm !== this.realm) return send(res, 404, { error: "Realm does not exist" });
    if (this.mode === "tokenFails") return send(res, 500, { error: "unknown_error" });
    const form = new URLSearchParams(body);
    // Keycloak checks the grant type before it authenticates the client.
    const grant = form.get("grant_type");
    if (grant === null || grant === "") {
      return send(res, 400, { error: "invalid_request", error_description: "Missing form parameter: grant_type" });
    }
    if (grant !== "client_credentials" && grant !== "password") {
      return send(res, 400, { error: "unsupported_grant_type", error_description: "Unsupported grant_type" });
    }
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
    const client = this.#allClients().find((c) => c.id === id);
    const description = "Invalid client or Invalid client credentials";
    // An unknown client is invalid_client; a known one with a wrong secret is unauthorized_client.
    if (!client) return send(res, 401, { error: "invalid_client", error_description: description });
    if (secret !== client.secret) return send(res, 401, { error: "unauthorized_client", error_description: description });
    if (grant === "password") {
      // A grant Keycloak knows, refused after client authentication: these clients have no direct access grants.
      return send(res, 400, { error: "unauthorized_client", error_description: "Client not allowed for direct access grants" });
    }
    const token = this.#issueToken(client);
    send(res, 200, {
      access_token: token,
      expires_in: this.expiresIn,
      refresh_expires_in: 0,
      token_type: "Bearer",
      "not-before-policy": 0,
      scope: "email profile",
    });
  }

  /** A JWT-looking opaque token (unsigned; only this fake can check it). */
  #issueToken(client: FakeClient): string {
    const now = Date.now();
    const b64 = (v: Json): string => Buffer.from(JSON.stringify(v)).toString("base64url");
    const account = [...this.#users.values()].find((u) => u.serviceAccountClientId === client.id);
    const claims = {
      exp: Math.floor(now / 1000) + this.expiresIn,
      iat: Math.floor(now / 1000),
      jti: randomUUID(),
      iss: `${this.url}/realms/${this.realm}`,
      ...(account ? { sub: account.id } : {}),
      typ: "Bearer",
      azp: client.id,
      resource_access: { "realm-management": { roles: [...client.roles] } },
      preferred_username: `service-account-${client.id.toLowerCase()}`,
    };
    const token = `${b64({ alg: "none", typ: "JWT" })}.${b64(claims)}.${randomBytes(16).toString("base64url")}`;
    this.#tokens.set(token, { expiresAt: now + this.expiresIn * 1000, roles: [...client.roles] });
    return token;
  }

  /**
   * Keycloak's order: the bearer token (401), the realm (404), a realm the
   * token may not administer (403), the endpoint's role check (403).
   */
  #admin(req: IncomingMessage, url: URL, path: string[], res: ServerResponse): void {
    if (this.mode === "users500") return send(res, 500, { error: "unknown_error" });
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "");
    const token = bearer ? this.#tokens.get(bearer[1]!) : undefined;
    if (token === undefined || token.expiresAt <= Date.now() || this.mode === "unauthorizedForever") {
      return send(res, 401, { error: "HTTP 401 Unauthorized" });
    }
    if (path[2] !== this.realm) {
      // master exists on every server; a token of this realm may not administer it.
      return path[2] === "master" ? send(res, 403, FORBIDDEN_BODY) : send(res, 404, { error: "Realm not found." });
    }
    if (isGroups(path)) return this.#group(req, url, path, token, res);
    if (!isUsers(path)) return send(res, 404, NOT_FOUND_BODY);
    if (req.method !== "GET") return send(res, 405, { error: "HTTP 405 Method Not Allowed" });
    const view = token.roles.includes("view-users");
    if (this.mode === "users403" || !(view || token.roles.includes("query-users"))) return send(res, 403, FORBIDDEN_BODY);
    if (this.mode === "usersMalformed") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('[{"id":"0b1c","username":"trunc');
      return;
    }

    const q = url.searchParams;
    if (path.length === 5 && path[4]!.startsWith("f:")) return this.#federated(path[4]!, view, res);
    if (path.length === 5) {
      if (!view) return send(res, 403, FORBIDDEN_BODY);
      const user = [...this.#users.values()].find((u) => u.id === path[4]);
      if (!user) return send(res, 404, { error: "User not found" });
      return send(res, 200, this.#represent(user, "single"));
    }
    // first/max are Java ints: anything else fails the parameter conversion, which Keycloak answers 404.
    const first = intParam(q.get("first"), 0);
    const max = intParam(q.get("max"), 100);
    if (first === null || max === null) return send(res, 404, NOT_FOUND_BODY);
    // query-users alone passes the endpoint check, but the caller may view no one.
    if (!view) return send(res, 200, []);
    const brief = isTrue(q.get("briefRepresentation"));
    const list = this.#query(q)
      .sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : 0))
      .slice(Math.max(first, 0), max < 0 ? undefined : Math.max(first, 0) + max)
      .map((u) => this.#represent(u, brief ? "brief" : "full"));
    send(res, 200, list);
  }

  /**
   * The group reads, as Keycloak 26.5.6 answers them: group-by-path gives the
   * group with subGroups [] and subGroupCount (Keycloak 23+ loads children
   * lazily); children and members are paged (first/max), children sorted by
   * name, members by username. query-users alone gets 403 here.
   */
  #group(req: IncomingMessage, url: URL, path: string[], token: IssuedToken, res: ServerResponse): void {
    if (req.method !== "GET") return send(res, 405, { error: "HTTP 405 Method Not Allowed" });
    if (this.mode === "users403" || !token.roles.includes("view-users")) return send(res, 403, FORBIDDEN_BODY);
    if (this.mode === "usersMalformed") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('[{"id":"0b1c","name":"trunc');
      return;
    }
    const q = url.searchParams;
    if (path[3] === "group-by-path") {
      const g = this.#groups.get(`/${path.slice(4).join("/")}`);
      if (!g) return send(res, 404, { error: "Group path does not exist" });
      return send(res, 200, this.#representGroup(g, false));
    }
    const g = [...this.#groups.values()].find((x) => x.id === path[4]);
    if (!g) return send(res, 404, { error: "Could not find group by id" });
    const first = intParam(q.get("first"), 0);
    const max = intParam(q.get("max"), path[5] === "children" ? 10 : 100);
    if (first === null || max === null) return send(res, 404, NOT_FOUND_BODY);
    const page = <T>(xs: T[]): T[] => xs.slice(Math.max(first, 0), max < 0 ? undefined : Math.max(first, 0) + max);
    if (path[5] === "children") {
      const kids = [...this.#groups.values()].filter((x) => x.parentId === g.id).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      return send(res, 200, page(kids).map((k) => this.#representGroup(k, true)));
    }
    const brief = isTrue(q.get("briefRepresentation"));
    const members = [...this.#users.values()].filter((u) => g.members.has(u.id)).sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : 0));
    send(res, 200, page(members).map((u) => {
      const r = this.#represent(u, brief ? "brief" : "full") as Record<string, Json>;
      delete r.access; // members carry no access block
      return r;
    }));
  }

  #representGroup(g: FakeGroup, child: boolean): Json {
    const subGroupCount = [...this.#groups.values()].filter((x) => x.parentId === g.id).length;
    return {
      id: g.id, name: g.name, path: g.path, ...(g.parentId !== null ? { parentId: g.parentId } : {}),
      subGroupCount, subGroups: [], attributes: structuredClone(g.attributes), realmRoles: [], clientRoles: {},
      ...(child ? { access: { view: true, viewMembers: true, manageMembers: false, manage: false, manageMembership: false } } : {}),
    };
  }

  /** The JPA store's filtering, as described in PROTOCOLS.md 4.4. */
  #query(q: URLSearchParams): FakeUser[] {
    const given = (name: string): string | null => {
      const v = q.get(name);
      return v === null || v === "" ? null : v;
    };
    const exact = isTrue(given("exact")) && !this.ignoreExact;
    let users = [...this.#users.values()];
    const search = given("search");
    if (search !== null) {
      // search= excludes service accounts; terms are ANDed. A blank search is a plain listing.
      users = users.filter((u) => u.serviceAccountClientId === undefined);
      for (const term of search.trim().split(/\s+/).filter((t) => t !== "")) {
        const match = searchMatcher(term);
        users = users.filter((u) =>
          [u.username, u.email, u.firstName, u.lastName].some((v) => v !== undefined && match(v.toLowerCase())));
      }
      return users;
    }
    // Without any (non-empty) filter the list leaves service accounts out; any filter, even exact=true alone, includes them.
    if (!SERVICE_ACCOUNT_FILTERS.some((name) => given(name) !== null)) {
      users = users.filter((u) => u.serviceAccountClientId === undefined);
    }
    for (const field of ["username", "email", "firstName", "lastName"] as const) {
      const value = given(field);
      if (value === null) continue;
      const wanted = value.toLowerCase();
      users = users.filter((u) => {
        const have = u[field]?.toLowerCase();
        if (have === undefined) return false;
        // Non-exact is SQL LIKE '%v%' with `_` and `%` left unescaped.
        return exact ? have === wanted : likeRegExp(`%${wanted}%`).test(have);
      });
    }
    for (const flag of ["enabled", "emailVerified"] as const) {
      const v = given(flag)?.toLowerCase();
      if (v === "true" || v === "false") users = users.filter((u) => u[flag] === (v === "true"));
    }
    // No federated identities here.
    if (given("idpAlias") !== null || given("idpUserId") !== null) users = [];
    return users;
  }

  /** GET users/f:{federation}:{username}: the federation's own lookup, read from its directory. */
  #federated(id: string, view: boolean, res: ServerResponse): void {
    if (!view) return send(res, 403, FORBIDDEN_BODY);
    const rest = id.slice(2);
    const colon = rest.indexOf(":");
    const federation = colon < 0 ? rest : rest.slice(0, colon);
    const username = colon < 0 ? "" : rest.slice(colon + 1);
    this.federationLookups.push(username);
    if (this.unreachableFederations.has(federation)) return send(res, 500, { error: "unknown_error", error_description: "For more on this error consult the server log." });
    const user = this.#users.get(username.toLowerCase());
    if (!user || user.federationLink !== federation) return send(res, 404, { error: "User not found" });
    return send(res, 200, this.#represent(user, "single"));
  }

  /** A UserRepresentation: "brief" and "full" as in lists, "single" as GET /users/{id} (view-users) gives it. */
  #represent(u: FakeUser, shape: "brief" | "full" | "single"): Json {
    const names = {
      id: u.id,
      username: u.username,
      ...(u.firstName !== undefined ? { firstName: u.firstName } : {}),
      ...(u.lastName !== undefined ? { lastName: u.lastName } : {}),
      ...(u.email !== undefined ? { email: u.email } : {}),
      emailVerified: u.emailVerified,
    };
    // The service-account link is never sent; undeclared attributes are stored but not shown.
    const attributes = Object.fromEntries(Object.entries(u.attributes)
      .filter(([name]) => this.#declared === null || this.#declared.has(name)));
    const link = u.federationLink;
    const unreachable = link !== undefined && this.unreachableFederations.has(link);
    const common = { enabled: u.enabled && !unreachable, createdTimestamp: u.createdTimestamp, ...(link !== undefined ? { federationLink: link } : {}) };
    if (shape === "brief") return { ...names, ...common, access: { manage: false } };
    return {
      ...names,
      // Keycloak leaves `attributes` out when the user has none.
      ...(Object.keys(attributes).length > 0 ? { attributes: structuredClone(attributes) } : {}),
      ...common,
      totp: false,
      disableableCredentialTypes: [],
      requiredActions: [],
      notBefore: 0,
      access: shape === "single"
        ? { manageGroupMembership: false, resetPassword: false, view: true, mapRoles: false, impersonate: false, manage: false }
        : { manage: false },
    };
  }
}

interface FakeGroup {
  readonly id: string;
  readonly name: string;
  readonly path: string;
  readonly parentId: string | null;
  attributes: Record<string, string[]>;
  /** User ids of the direct members. */
  readonly members: Set<string>;
}

interface IssuedToken {
  /** Epoch ms. */
  readonly expiresAt: number;
  readonly roles: readonly string[];
}

const NOT_FOUND_BODY = { error: "HTTP 404 Not Found" };
const FORBIDDEN_BODY = { error: "HTTP 403 Forbidden" };
/** Query parameters whose presence (non-empty) makes a user list include service accounts. */
const SERVICE_ACCOUNT_FILTERS = ["username", "email", "firstName", "lastName", "exact", "enabled", "emailVerified", "idpAlias", "idpUserId", "q"];

function segments(url: URL): string[] {
  return url.pathname.split("/").filter((p) => p !== "").map(safeDecode);
}

function isToken(path: string[]): boolean {
  return path.length === 5 && path[0] === "realms" && path.slice(2).join("/") === "protocol/openid-connect/token";
}

/** Anything under /admin/realms/{realm}: the realm and token checks come before the endpoint's. */
function isAdmin(path: string[]): boolean {
  return path.length >= 3 && path[0] === "admin" && path[1] === "realms";
}

function isUsers(path: string[]): boolean {
  return isAdmin(path) && (path.length === 4 || path.length === 5) && path[3] === "users";
}

function isGroups(path: string[]): boolean {
  return isAdmin(path) && ((path.length >= 5 && path[3] === "group-by-path") ||
    (path.length === 6 && path[3] === "groups" && (path[5] === "children" || path[5] === "members")));
}

/** Java's Boolean.parseBoolean. */
function isTrue(v: string | null): boolean {
  return v?.toLowerCase() === "true";
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

/** A Java int (Integer.valueOf), the default when absent or empty, null when unparseable. */
function intParam(v: string | null, dflt: number): number | null {
  if (v === null || v === "") return dflt;
  if (!/^[+-]?\d+$/.test(v)) return null;
  const n = Number(v);
  return n >= -(2 ** 31) && n < 2 ** 31 ? n : null;
}
