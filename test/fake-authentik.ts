// An emulator of the part of Authentik's API mailcloak uses: the core users
// list (GET /api/v3/core/users/), a user by pk and the token's own user
// (GET /api/v3/core/users/me/, used by mailcloak test-idp), behind API-token
// authentication. Real HTTP on 127.0.0.1, so the real fetch runs against it,
// and knobs for latency and faults a real Authentik cannot be made to show on
// demand.
//
// Written from Authentik's published API schema (the generated clients'
// CoreUsersListRequest, PaginatedUserList, Pagination, User, GenericError) and
// its source (api/authentication.py, api/pagination.py, core/api/users.py,
// rbac/filters.py), with behaviour observed on a running 2026.8 instance:
// - a missing or unknown token is 403, not 401: {"detail": "Authentication
//   credentials were not provided."} / {"detail": "Token invalid/expired"};
// - a token whose user may not view users is 403 {"detail": "You do not have
//   permission to perform this action."} (versions before the RBAC filter
//   answered 200 with an empty list instead: `deniedListing: "empty"`);
// - username= and email= are exact and case-sensitive; usernames are unique
//   only as typed ("alice" and "Alice" may both exist); emails are not unique;
// - search= is a case-insensitive substring match over username, name, email
//   and uuid, whitespace/comma-separated terms all having to match;
// - pages: ?page=N&page_size=M, {"pagination": {next, previous, count,
//   current, total_pages, start_index, end_index}, "results": [...],
//   "autocomplete": {}}; a page past the end is 404 {"detail": "Invalid page."};
// - paths need their trailing slash; unknown paths are Django's HTML 404.
// Not emulated: writes (POST/PUT/PATCH/DELETE answer 405), the query
// language of search=, the anonymous user, groups and roles contents.

import { createHash, randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { FakeHttpServer, safeDecode, sendJson, sendText, type Json } from "./helpers/fake-http.js";

export type FakeAuthentikMode =
  /** Behave like a healthy Authentik. */
  | "ok"
  /** Users endpoints: 500 with an empty body (as Authentik's unhandled errors). */
  | "error500"
  /** Users endpoints: 200 with a truncated, unparseable JSON body. */
  | "malformed"
  /** Users endpoints: 200 with valid JSON that is not a page (a wrong base_url pointing elsewhere). */
  | "wrongShape"
  /** A reverse proxy in front answers 401 before Authentik sees the request. */
  | "proxy401"
  /** Every request is accepted and left unanswered until the mode changes or the emulator stops. */
  | "hang";

export type UserType = "internal" | "external" | "service_account" | "internal_service_account";

export interface FakeAuthentikOptions {
  /** Key of the token created at start (default "ak-test-token"), owned by service account "mailcloak" that may view users. */
  token?: string;
  /** How a token without permission is answered: 403 (current versions, default) or an empty 200 list (older ones). */
  deniedListing?: "403" | "empty";
  /** Port to listen on (default 0 = pick a free one). */
  port?: number;
}

/** Fields a test may give when creating or patching a user; stored as given (Authentik does not lower-case). */
export interface FakeAuthentikUserInput {
  username: string;
  name?: string;
  email?: string;
  isActive?: boolean;
  attributes?: { [key: string]: Json };
  type?: UserType;
  path?: string;
}

/** A stored user, in the shape Authentik returns (User serializer). */
export interface FakeAuthentikUser {
  pk: number;
  username: string;
  name: string;
  is_active: boolean;
  email: string;
  attributes: { [key: string]: Json };
  type: UserType;
  path: string;
  uuid: string;
  date_joined: string;
}

interface FakeToken {
  readonly username: string;
  canViewUsers: boolean;
}

const USERS_PATH = "/api/v3/core/users/";
const DEFAULT_PAGE_SIZE = 100;
const SEARCH_FIELDS = ["username", "name", "email", "uuid"] as const;
const DJANGO_404 = '<!doctype html>\n<html lang="en">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n</body>\n</html>\n';

export class FakeAuthentik extends FakeHttpServer<FakeAuthentikMode> {
  /** Key of the token created at start. */
  readonly token: string;
  deniedListing: "403" | "empty";
  /** Requests that reached the users endpoints (list or by pk), whatever the outcome. */
  userQueries = 0;
  /** The query strings of those requests, oldest first. */
  readonly queries: URLSearchParams[] = [];
  /** The Authorization headers they carried (undefined when absent). */
  readonly authorizations: Array<string | undefined> = [];

  readonly #users: FakeAuthentikUser[] = [];
  readonly #tokens = new Map<string, FakeToken>();
  #nextPk = 1;

  private constructor(opts: FakeAuthentikOptions) {
    super("ok");
    this.token = opts.token ?? "ak-test-token";
    this.deniedListing = opts.deniedListing ?? "403";
    this.addUser({ username: "mailcloak", name: "mailcloak", type: "service_account", path: "goauthentik.io/service-accounts" });
    this.addToken(this.token, "mailcloak");
  }

  /** Start listening on 127.0.0.1 (a free port unless opts.port is given). */
  static async start(opts: FakeAuthentikOptions = {}): Promise<FakeAuthentik> {
    const fake = new FakeAuthentik(opts);
    await fake.listen(opts.port ?? 0);
    return fake;
  }

  /** An API token (intent API) for an existing user. */
  addToken(key: string, username: string, canViewUsers = true): void {
    if (!this.#users.some((u) => u.username === username)) throw new Error(`fake authentik: no user ${username}`);
    this.#tokens.set(key, { username, canViewUsers });
  }

  /** Grant or take away "Can view User" for the user of a token. */
  setPermission(key: string, canViewUsers: boolean): void {
    const t = this.#tokens.get(key);
    if (!t) throw new Error("fake authentik: no such token");
    t.canViewUsers = canViewUsers;
  }

  /** Delete a token; requests with it get 403 Token invalid/expired. */
  revokeToken(key: string): void {
    this.#tokens.delete(key);
  }

  resetCounters(): void {
    this.userQueries = 0;
    this.queries.length = 0;
    this.authorizations.length = 0;
  }

  /** Create a user (username unique as typed). Returns a copy of the stored user. */
  addUser(input: FakeAuthentikUserInput): FakeAuthentikUser {
    if (this.#users.some((u) => u.username === input.username)) throw new Error(`fake authentik: user ${input.username} exists`);
    const user: FakeAuthentikUser = {
      pk: this.#nextPk++,
      username: input.username,
      name: input.name ?? "",
      is_active: true,
      email: "",
      attributes: {},
      type: "internal",
      path: "users",
      uuid: randomUUID(),
      date_joined: new Date().toISOString(),
    };
    this.#apply(user, input);
    this.#users.push(user);
    return structuredClone(user);
  }

  /** Change fields of an existing user (found by username as typed). */
  updateUser(username: string, patch: Partial<FakeAuthentikUserInput>): FakeAuthentikUser {
    const user = this.#users.find((u) => u.username === username);
    if (!user) throw new Error(`fake authentik: no user ${username}`);
    this.#apply(user, patch);
    return structuredClone(user);
  }

  /** Delete a user; returns whether it existed. */
  removeUser(username: string): boolean {
    const i = this.#users.findIndex((u) => u.username === username);
    if (i >= 0) this.#users.splice(i, 1);
    return i >= 0;
  }

  #apply(user: FakeAuthentikUser, input: Partial<FakeAuthentikUserInput>): void {
    const given = { username: input.username, name: input.name, email: input.email, is_active: input.isActive, type: input.type, path: input.path };
    Object.assign(user, Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)));
    if (input.attributes !== undefined) user.attributes = structuredClone(input.attributes);
  }

  // ---- request handling ----

  protected arrived(req: IncomingMessage, url: URL): void {
    if (route(url) === null) return;
    this.userQueries++;
    this.queries.push(new URLSearchParams(url.searchParams));
    this.authorizations.push(req.headers.authorization);
  }

  protected answer(req: IncomingMessage, url: URL, _body: string, res: ServerResponse): void {
    const r = route(url);
    if (r === null) return sendText(res, 404, "text/html; charset=utf-8", DJANGO_404);
    if (this.mode === "proxy401") {
      res.setHeader("www-authenticate", 'Bearer realm="proxy"');
      return sendText(res, 401, "text/plain", "Unauthorized\n");
    }
    // DRF authenticates before it looks at the method.
    const token = this.#authenticate(req.headers.authorization);
    if (typeof token === "string") return sendJson(res, 403, { detail: token });
    const method = req.method ?? "GET";
    if (method !== "GET" && method !== "HEAD") return sendJson(res, 405, { detail: `Method "${method}" not allowed.` });
    if (this.mode === "error500") return sendText(res, 500, "text/html", "");
    if (this.mode === "malformed") return sendText(res, 200, "application/json", '{"pagination":{"next":0,"previous":0,"count":1},"results":[{"pk":7,"username":"trunc');
    if (this.mode === "wrongShape") return sendJson(res, 200, [{ username: "alice" }]);
    if (r.pk === "me") {
      // The token's own user; needs no permission (Authentik's UI asks it for every user).
      const me = this.#users.find((u) => u.username === token.username)!;
      return sendJson(res, 200, { user: { pk: me.pk, username: me.username, name: me.name, is_active: me.is_active, email: me.email, type: me.type, uid: createHash("sha256").update(`${me.pk}`).digest("hex") }, original: null });
    }
    if (!token.canViewUsers && (r.pk !== undefined || this.deniedListing === "403")) {
      return sendJson(res, 403, { detail: "You do not have permission to perform this action." });
    }
    if (r.pk !== undefined) {
      const user = this.#users.find((u) => String(u.pk) === r.pk);
      return user ? sendJson(res, 200, represent(user, true, true)) : sendJson(res, 404, { detail: "No User matches the given query." });
    }
    this.#list(url.searchParams, token.canViewUsers ? this.#users : [], res);
  }

  /** The token's user, or the 403 detail Authentik gives (api/authentication.py). */
  #authenticate(header: string | undefined): FakeToken | string {
    const notProvided = "Authentication credentials were not provided.";
    const value = (header ?? "").trim();
    if (value === "" || !value.includes(" ")) return notProvided;
    const space = value.indexOf(" ");
    if (value.slice(0, space).toLowerCase() !== "bearer") return "Unsupported authentication type";
    const token = this.#tokens.get(value.slice(space + 1));
    const user = token && this.#users.find((u) => u.username === token.username);
    if (!token || !user || !user.is_active) return "Token invalid/expired";
    return token;
  }

  #list(q: URLSearchParams, visible: readonly FakeAuthentikUser[], res: ServerResponse): void {
    let users = [...visible];
    for (const field of ["username", "email", "name"] as const) {
      const v = q.get(field);
      if (v !== null && v !== "") users = users.filter((u) => u[field] === v); // exact, case-sensitive
    }
    const active = booleanParam(q.get("is_active"));
    if (active !== null) users = users.filter((u) => u.is_active === active);
    const types = q.getAll("type");
    if (types.length > 0) users = users.filter((u) => types.includes(u.type));
    const terms = searchTerms(q.get("search") ?? "");
    users = users.filter((u) => terms.every((t) => SEARCH_FIELDS.some((f) => u[f].toLowerCase().includes(t))));
    users.sort(byOrdering(q.get("ordering")));

    const size = positiveInt(q.get("page_size")) ?? DEFAULT_PAGE_SIZE;
    const pages = Math.max(1, Math.ceil(users.length / size));
    const rawPage = q.get("page");
    const page = rawPage === null || rawPage === "" ? 1 : positiveInt(rawPage) ?? (rawPage === "last" ? pages : 0);
    if (page < 1 || page > pages) return sendJson(res, 404, { detail: "Invalid page." });
    const slice = users.slice((page - 1) * size, page * size);
    const start = users.length === 0 ? 0 : (page - 1) * size + 1;
    sendJson(res, 200, {
      pagination: {
        next: page < pages ? page + 1 : 0,
        previous: page > 1 ? page - 1 : 0,
        count: users.length,
        current: page,
        total_pages: pages,
        start_index: start,
        end_index: users.length === 0 ? 0 : start + slice.length - 1,
      },
      results: slice.map((u) => represent(u, q.get("include_groups") !== "false", q.get("include_roles") !== "false")),
      autocomplete: {},
    });
  }
}

/** The users collection or one user; null for any other path. */
function route(url: URL): { pk?: string } | null {
  const path = url.pathname;
  if (path === USERS_PATH) return {};
  const m = /^\/api\/v3\/core\/users\/([^/]+)\/$/.exec(path);
  return m ? { pk: safeDecode(m[1]!) } : null;
}

function represent(u: FakeAuthentikUser, groups: boolean, roles: boolean): Json {
  return {
    pk: u.pk,
    username: u.username,
    name: u.name,
    is_active: u.is_active,
    last_login: null,
    date_joined: u.date_joined,
    is_superuser: false,
    groups: [],
    groups_obj: groups ? [] : null,
    roles: [],
    roles_obj: roles ? [] : null,
    email: u.email,
    avatar: "data:image/svg+xml;base64,PHN2Zy8+",
    attributes: structuredClone(u.attributes),
    uid: createHash("sha256").update(`${u.pk}`).digest("hex"),
    path: u.path,
    type: u.type,
    uuid: u.uuid,
    password_change_date: u.date_joined,
    last_updated: u.date_joined,
  };
}

/** DRF SearchFilter: commas and whitespace separate terms; a quoted term keeps its spaces. */
function searchTerms(search: string): string[] {
  const terms: string[] = [];
  for (const m of search.replace(/\x00/g, "").replace(/,/g, " ").matchAll(/"([^"]*)"|(\S+)/g)) {
    const t = (m[1] ?? m[2] ?? "").toLowerCase();
    if (t !== "") terms.push(t);
  }
  return terms;
}

function byOrdering(ordering: string | null): (a: FakeAuthentikUser, b: FakeAuthentikUser) => number {
  const desc = ordering?.startsWith("-") ?? false;
  const name = ordering?.replace(/^-/, "");
  const field = name === "email" || name === "name" || name === "pk" ? name : "username";
  return (a, b) => {
    const x = a[field];
    const y = b[field];
    const c = x < y ? -1 : x > y ? 1 : 0;
    return desc ? -c : c;
  };
}

function booleanParam(v: string | null): boolean | null {
  if (v === "true" || v === "True" || v === "1") return true;
  if (v === "false" || v === "False" || v === "0") return false;
  return null;
}

function positiveInt(v: string | null): number | null {
  if (v === null || !/^\d+$/.test(v)) return null;
  const n = Number(v);
  return n > 0 ? n : null;
}
