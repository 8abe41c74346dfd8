// Authentik as an identity source: username/email lookups through the core
// users API (GET {base}/api/v3/core/users/), authenticated with a static API
// token (Authorization: Bearer). Around each lookup: the shared RemoteSource guard
// (circuit breaker, close, readiness) and a deadline on every HTTP call.
//
// Why `search` and not the `username=`/`email=` filters: those filters are
// exact and case-sensitive in Authentik, which stores both fields as typed
// ("Alice@Example.com"; "alice" and "Alice" may be two accounts), while our
// keys arrive lower-cased. `search` matches case-insensitively by substring
// (username, name, email, ...), so the user is always among its results; the
// exact, case-insensitive comparison is done here. A search so broad that it
// runs past `maxPages` pages falls back to the exact filter.
//
// Authentik answers 403 both for a bad token ({"detail": "Token
// invalid/expired"}) and for missing permissions; the detail tells them apart.
// Older versions answer a token without permission with an empty list rather
// than 403, so a search with no result is checked once a minute against an
// unfiltered listing: a token that sees no user at all is a permissions
// problem, not a directory without that user.

import type { Logger } from "pino";
import { Failure, describeFailure } from "./failure.js";
import { RemoteSource, type RemoteSourceOptions, type SourceEvents } from "./guard.js";
import type { DirectoryUser, Lookup } from "./lookup.js";
import { NOT_FOUND, found } from "./lookup.js";
import { isRecord, lower, userAttributes } from "./user-json.js";

/** Metrics hooks: every call is a users query. */
export type AuthentikEvents = SourceEvents<"users">;

/** baseUrl e.g. https://auth.example.com (the API is below /api/v3/). */
export interface AuthentikSourceOptions extends RemoteSourceOptions<AuthentikEvents> {
  apiToken: string;
  /** Results asked for per page (default 100). */
  pageSize?: number;
  /** Search pages read per lookup before falling back to the exact filter (default 5). */
  maxPages?: number;
}

export const TOKEN_HINT =
  "Authentik rejected the API token: check idp.authentik.api_token (a token with intent API, " +
  "not expired, whose user is active)";
export const FORBIDDEN_HINT =
  "Authentik denied the user lookup: give the token's user the permission \"Can view User\" " +
  "(authentik_core.view_user), e.g. through a role of a group it is a member of";

type Field = "username" | "email";
type ApiUser = Record<string, unknown>;

/** The 403 details Authentik gives when the token itself is the problem. */
const TOKEN_DETAILS = new Set([
  "Token invalid/expired",
  "Authentication credentials were not provided.",
  "Unsupported authentication type",
  "Malformed header",
]);
/** Users that are not mailboxes: their email never answers an address lookup. */
const SERVICE_TYPES = new Set(["service_account", "internal_service_account"]);
/** How long a check that the token can see users at all stays valid. */
const VISIBILITY_MS = 60_000;

interface Page {
  readonly results: readonly ApiUser[];
  readonly next: number;
  readonly count: number;
}

export class AuthentikSource extends RemoteSource<AuthentikEvents> {
  readonly #usersUrl: string;
  readonly #authorization: string;
  readonly #timeoutMs: number;
  readonly #pageSize: number;
  readonly #maxPages: number;
  readonly #attributes: readonly string[] | undefined;
  readonly #log: Logger;
  /** Until when the token is known to see users (epoch ms). */
  #visibleUntil = 0;

  constructor(opts: AuthentikSourceOptions) {
    const timeoutMs = opts.timeoutMs ?? 2000;
    super({ name: "authentik", logger: opts.logger, events: opts.events, breaker: opts.breaker, describe: (err) => describeFailure(err, "authentik users query", timeoutMs) });
    this.#usersUrl = `${opts.baseUrl.replace(/\/+$/, "")}/api/v3/core/users/`;
    this.#authorization = `Bearer ${opts.apiToken}`;
    this.#timeoutMs = timeoutMs;
    this.#pageSize = opts.pageSize ?? 100;
    this.#maxPages = opts.maxPages ?? 5;
    this.#attributes = opts.attributes ? [...opts.attributes] : undefined;
    this.#log = opts.logger;
  }

  protected async query(field: Field, key: string): Promise<Lookup<DirectoryUser>> {
    if (key === "") return NOT_FOUND; // an empty search would list everyone
    const matches: ApiUser[] = [];
    let seen = 0;
    for (let page = 1; ; page++) {
      if (page > this.#maxPages) {
        this.guard.once(`broad:${field}:${key}`, () => {
          this.#log.warn({ [field]: key, pages: this.#maxPages }, `Authentik search for this ${field} matched too many users; using the exact, case-sensitive filter`);
        });
        return this.#select(field, key, this.#matching(field, key, (await this.#page({ [field]: key })).results));
      }
      const p = await this.#page({ search: key, page: String(page) });
      seen += p.results.length;
      matches.push(...this.#matching(field, key, p.results));
      if (p.next === 0) break;
    }
    if (seen === 0) await this.#checkVisibility();
    return this.#select(field, key, matches);
  }

  #matching(field: Field, key: string, results: readonly ApiUser[]): ApiUser[] {
    return results.filter((u) => lower(u[field]) === key &&
      !(field === "email" && typeof u.type === "string" && SERVICE_TYPES.has(u.type)));
  }

  /**
   * One active match wins; several active matches are ambiguous (unknown,
   * as with Keycloak); only inactive ones: the user, disabled.
   */
  #select(field: Field, key: string, matches: readonly ApiUser[]): Lookup<DirectoryUser> {
    const byPk = new Map<unknown, ApiUser>();
    for (const u of matches) byPk.set(u.pk ?? byPk.size, u);
    if (byPk.size === 0) return NOT_FOUND;
    const active = [...byPk.values()].filter((u) => u.is_active === true);
    if (active.length > 1) {
      this.guard.once(`${field}:${key}`, () => {
        this.#log.warn({ [field]: key }, `several active Authentik users have this ${field}; treating it as unknown`);
      });
      return NOT_FOUND;
    }
    const u = active[0] ?? [...byPk.values()][0]!;
    return found({
      username: lower(u.username) ?? "",
      email: lower(u.email) || null,
      enabled: u.is_active === true,
      attributes: userAttributes(u.attributes, this.#attributes, authentikValues),
    });
  }

  /** A search that found nobody: make sure the token can see anybody at all. */
  async #checkVisibility(): Promise<void> {
    if (Date.now() < this.#visibleUntil) return;
    const p = await this.#page({ page_size: "1" });
    if (p.count === 0) {
      this.guard.once("invisible", () => this.#log.warn(FORBIDDEN_HINT));
      throw new Failure("authentik token can see no users (permission to view users missing)");
    }
    this.#visibleUntil = Date.now() + VISIBILITY_MS;
  }

  /** One GET of the users list; Failure on anything but a well-formed page. */
  async #page(params: Record<string, string>): Promise<Page> {
    const query = new URLSearchParams({ page_size: String(this.#pageSize), include_groups: "false", include_roles: "false", ...params });
    const done = this.guard.timer("users");
    let status: number;
    let text: string;
    try {
      const res = await fetch(`${this.#usersUrl}?${query}`, {
        headers: { authorization: this.#authorization, accept: "application/json" },
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      status = res.status;
      text = await res.text();
    } catch (err) {
      done("error");
      throw err;
    }
    if (status !== 200) {
      done("error");
      throw this.#httpFailure(status, text);
    }
    const page = parsePage(text);
    if (page === null) {
      done("error");
      throw new Failure("authentik returned a malformed user list");
    }
    done("ok");
    return page;
  }

  #httpFailure(status: number, text: string): Failure {
    const detail = errorDetail(text);
    if (status === 401 || (status === 403 && detail !== null && TOKEN_DETAILS.has(detail))) {
      this.guard.once("token", () => this.#log.warn(TOKEN_HINT));
      return new Failure(`authentik rejected the API token (${status}${detail !== null && TOKEN_DETAILS.has(detail) ? `: ${detail}` : ""})`);
    }
    if (status === 403) {
      this.guard.once("403", () => this.#log.warn(FORBIDDEN_HINT));
      return new Failure("authentik denied the user lookup (403)");
    }
    if (status === 404) {
      this.guard.once("404", () => {
        this.#log.warn({ url: this.#usersUrl }, "Authentik answered 404 for the users endpoint: check idp.authentik.base_url (the server root, without /api/v3)");
      });
      return new Failure("authentik users endpoint not found (404)");
    }
    return new Failure(`authentik users query HTTP ${status}`);
  }
}

/** {pagination: {next, count, ...}, results: [user, ...]}, or null for anything else. */
function parsePage(text: string): Page | null {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isRecord(body) || !isRecord(body.pagination) || !Array.isArray(body.results)) return null;
  const { next, count } = body.pagination;
  if (typeof next !== "number" || typeof count !== "number" || !body.results.every(isRecord)) return null;
  return { results: body.results, next, count };
}

/** The `detail` of an Authentik error body ({"detail": "..."}), if it has one. */
function errorDetail(text: string): string | null {
  try {
    const body: unknown = JSON.parse(text);
    return isRecord(body) && typeof body.detail === "string" ? body.detail : null;
  } catch {
    return null;
  }
}

/** An attribute as strings: scalars become one value, lists keep their scalar items; anything else is absent. */
function authentikValues(value: unknown): readonly string[] | null {
  const one = scalar(value);
  if (one !== null) return [one];
  if (!Array.isArray(value)) return null;
  return value.map(scalar).filter((x): x is string => x !== null);
}

function scalar(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  return null;
}
