// `mailcloak test-idp` for Authentik: the API token and its permission to
// view users, through the core users API the daemon uses. What tells the
// cases apart (see also src/directory/authentik.ts):
// - GET /api/v3/core/users/me/ needs no permission, only a valid token, so
//   it separates "bad token" from "token without permission";
// - Authentik answers a bad token with 403 and a detail ("Token
//   invalid/expired"); a 401 comes from something in front of it (or an old
//   release); a token whose user lacks "Can view User" gets 403 "You do not
//   have permission..." (older releases: 200 and an empty list);
// - unknown paths are Django's HTML 404 (a base URL with /api/v3 in it, or
//   not Authentik at all).

import type { AuthentikSettings } from "../config/types.js";
import { checkAttribute } from "./attribute.js";
import { baseUrl, isRecord, otherStatus, probe, quoted, type Reply } from "./http.js";
import { UNUSABLE, type Reached, type Report } from "./report.js";

const TIMEOUT_KEY = "idp.authentik.timeout_ms";
const SAMPLE = 100;
const TOKEN_DETAILS = new Set([
  "Token invalid/expired", "Authentication credentials were not provided.", "Unsupported authentication type", "Malformed header",
]);
const PERMISSION_HINT =
  "give the token's user the permission \"Can view User\" (authentik_core.view_user): Directory → Users → that user → Permissions → Assign, " +
  "or through a role (Directory → Roles) of a group the user is in";

interface Api {
  readonly base: string;
  readonly ak: AuthentikSettings;
}

export async function checkAuthentik(ak: AuthentikSettings, sendAttribute: string | null, report: Report): Promise<Reached> {
  const base = baseUrl(ak.baseUrl);
  const skipRest = (why: string): Reached => {
    report.skip("user query", why);
    report.skip("token sees users", why);
    if (sendAttribute) report.skip(`policy.send_allowed_attribute ${sendAttribute} visible`, why);
    return UNUSABLE;
  };
  if (base.url === null) {
    report.fail(`API token at ${base.shown}: the base URL carries a user name or password`, "remove them from idp.authentik.base_url: the API token is all Authentik needs");
    return skipRest("needs a working token");
  }
  const api: Api = { base: base.url, ak };
  const me = await whoAmI(api, report);
  if (me === null) return skipRest("needs a working token");

  const what = `user query GET /api/v3/core/users/?search=${me}`;
  const q = await get(api, `/api/v3/core/users/?search=${encodeURIComponent(me)}&page_size=${SAMPLE}&include_groups=false&include_roles=false`);
  const found = page(q);
  if (!found) {
    report.fail(...explain(q, what));
    report.skip("token sees users", "the user query failed");
    if (sendAttribute) report.skip(`policy.send_allowed_attribute ${sendAttribute} visible`, "the user query failed");
    return UNUSABLE;
  }
  report.ok(`${what} answered (HTTP 200)`);

  const all = await get(api, `/api/v3/core/users/?page_size=${SAMPLE}&include_groups=false&include_roles=false`);
  const sample = page(all);
  if (!sample) {
    report.fail(...explain(all, "token sees users: GET /api/v3/core/users/"));
    if (sendAttribute) report.skip(`policy.send_allowed_attribute ${sendAttribute} visible`, "no user is visible");
    return UNUSABLE;
  }
  const self = found.results.some((u) => u.username === me);
  if (!self && sample.count === 0) {
    report.fail(`token sees users: user lists are empty, not even its own user ${me}`,
      `lists are empty: ${PERMISSION_HINT} (older Authentik answers an empty list instead of 403)`);
    if (sendAttribute) report.skip(`policy.send_allowed_attribute ${sendAttribute} visible`, "no user is visible");
    return UNUSABLE;
  }
  report.ok(`token sees users (${self ? `found its own user ${me}; ` : ""}the directory counts ${sample.count} user${sample.count === 1 ? "" : "s"})`);

  const people = sample.results.filter((u) => u.type !== "service_account" && u.type !== "internal_service_account");
  if (sendAttribute) await attribute(sendAttribute, people, report);
  const someone = people.find((u) => u.is_active === true && typeof u.email === "string" && u.email !== "");
  return { usable: true, sample: typeof someone?.email === "string" ? someone.email : null };
}

/** The token's own user (GET users/me/, which needs no permission), or null after a FAIL. */
async function whoAmI(api: Api, report: Report): Promise<string | null> {
  const what = `API token at ${api.base}`;
  const r = await get(api, "/api/v3/core/users/me/");
  const user = r.kind === "http" && r.status === 200 && isRecord(r.json) && isRecord(r.json.user) ? r.json.user : null;
  if (user && typeof user.username === "string") {
    const kind = user.type === "service_account" || user.type === "internal_service_account" ? "a service account" : "a user";
    const inactive = user.is_active === false ? ", inactive" : "";
    report.ok(`${what} accepted (it belongs to ${user.username}, ${kind}${inactive})`);
    return user.username;
  }
  if (r.kind === "http" && r.status === 404 && r.json === undefined && /\/api\/v3$/i.test(api.base)) {
    report.fail(`${what}: HTTP 404`, `idp.authentik.base_url is the server root: remove /api/v3 (${api.base.replace(/\/api\/v3$/i, "")})`);
    return null;
  }
  report.fail(...explain(r, what));
  return null;
}

function get(api: Api, path: string): Promise<Reply> {
  return probe({ url: `${api.base}${path}`, headers: { authorization: `Bearer ${api.ak.apiToken}` }, timeoutMs: api.ak.timeoutMs, timeoutKey: TIMEOUT_KEY });
}

interface Page {
  readonly results: Record<string, unknown>[];
  readonly count: number;
}

function page(r: Reply): Page | null {
  if (r.kind !== "http" || r.status !== 200 || !isRecord(r.json) || !Array.isArray(r.json.results)) return null;
  const count = isRecord(r.json.pagination) && typeof r.json.pagination.count === "number" ? r.json.pagination.count : r.json.results.length;
  return { results: r.json.results.filter(isRecord), count };
}

function explain(r: Reply, what: string): [string, string] {
  if (r.kind === "network") return [`${what}: ${r.reason}`, r.hint];
  const detail = isRecord(r.json) ? r.json.detail : undefined;
  const said = quoted(detail);
  const answer = `HTTP ${r.status}${said ? ` ${said}` : ""}`;
  if (r.status === 200) return [`${what}: HTTP 200 but not Authentik's answer`, "idp.authentik.base_url reaches something that is not Authentik: it is the server root, e.g. https://auth.example.com"];
  if (r.status === 403 && typeof detail === "string" && TOKEN_DETAILS.has(detail)) {
    return [`${what}: ${answer}`, "bad token: check idp.authentik.api_token (a token with intent API, not expired, whose user is active: Directory → Tokens and App passwords)"];
  }
  if (r.status === 403) return [`${what}: ${answer}`, PERMISSION_HINT];
  if (r.status === 401) {
    return [`${what}: ${answer}`, "bad token (check idp.authentik.api_token), or a proxy in front of Authentik that wants its own credentials"];
  }
  if (r.status === 404) {
    return [`${what}: ${answer}`, "wrong base URL: idp.authentik.base_url is the server root (e.g. https://auth.example.com, without /api/v3)"];
  }
  const other = otherStatus(r, "Authentik");
  return [`${what}: ${other.what}`, other.hint];
}

async function attribute(name: string, users: Record<string, unknown>[], report: Report): Promise<void> {
  const unreadable = users.find((u) => {
    const v = isRecord(u.attributes) ? u.attributes[name] : undefined;
    return typeof v === "object" && v !== null && !Array.isArray(v);
  });
  if (unreadable) {
    report.fail(`policy.send_allowed_attribute ${name} is a mapping on ${String(unreadable.username)}`,
      "mailcloak reads a string, a boolean or a list of them: set it to false to disable sending");
    return;
  }
  await checkAttribute(name, users, report, (what, of) => {
    report.ok(`${what} is set on none of ${of} (Authentik hides no attributes; absent means sending is allowed)`);
  });
}
