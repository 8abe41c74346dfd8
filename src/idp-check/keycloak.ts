// `mailcloak test-idp` for Keycloak: the requests the daemon makes, made once
// by hand, each answer turned into a line that says what is wrong and where
// in Keycloak to fix it. Behaviour checked against Keycloak 26.5.6:
// - a wrong secret and an unknown client both answer 401 (unauthorized_client
//   or invalid_client, "Invalid client or Invalid client credentials"); a
//   client without service accounts also answers 401 unauthorized_client
//   (older releases: 400), told apart by its error_description;
// - a service account with query-users but not view-users gets 200 and empty
//   lists, even for its own user, while /users/count still counts everyone;
// - without any realm-management role the admin API answers 403;
// - an unknown realm answers 404 "Realm does not exist"; a wrong path (such
//   as /auth on Keycloak 17+) answers 404 "Unable to find matching target
//   resource method";
// - attributes the user profile does not declare are left out of the admin
//   API's users (Keycloak 24+), and /users/profile, readable with
//   query-users, says which are declared and whether unmanaged ones show.

import type { KeycloakSettings } from "../config/types.js";
import { checkAttribute } from "./attribute.js";
import { baseUrl, isRecord, otherStatus, probe, quoted, type Reply } from "./http.js";
import { UNUSABLE, type Reached, type Report } from "./report.js";

const TIMEOUT_KEY = "idp.keycloak.timeout_ms";
/** Users looked at for the attribute check (one page). */
const SAMPLE = 100;

interface Session {
  readonly base: string;
  readonly realm: string;
  readonly clientId: string;
  readonly token: string;
  readonly timeoutMs: number;
  /** realm-management roles the token carries, or null when it cannot be read. */
  readonly roles: readonly string[] | null;
}

export async function checkKeycloak(kc: KeycloakSettings, sendAttribute: string | null, report: Report): Promise<Reached> {
  const base = baseUrl(kc.baseUrl);
  if (base.url === null) report.fail(`token request to ${base.shown}: the base URL carries a user name or password`, "remove them from idp.keycloak.base_url: Keycloak authenticates the client with client_id and client_secret");
  const session = base.url === null ? null : await token(kc, base.url, report);
  if (!session) {
    report.skip("user query", "needs a token");
    report.skip("service account sees users", "needs a token");
    if (sendAttribute) report.skip(`policy.send_allowed_attribute ${sendAttribute} visible`, "needs a token");
    return UNUSABLE;
  }
  const self = serviceAccountName(session.token);
  const users = await userQuery(session, self, report);
  if (!users) {
    report.skip("service account sees users", "the user query failed");
    if (sendAttribute) report.skip(`policy.send_allowed_attribute ${sendAttribute} visible`, "the user query failed");
    return UNUSABLE;
  }
  const sample = await visibility(session, self, users, report);
  if (sendAttribute) {
    if (sample === null) report.skip(`policy.send_allowed_attribute ${sendAttribute} visible`, "no user is visible");
    else await attribute(session, sendAttribute, sample, report);
  }
  if (sample === null) return UNUSABLE;
  const someone = sample.find((u) => u.enabled === true && typeof u.email === "string" && u.email !== "");
  return { usable: true, sample: typeof someone?.email === "string" ? someone.email : null };
}

// ---- token ------------------------------------------------------------------

async function token(kc: KeycloakSettings, base: string, report: Report): Promise<Session | null> {
  const where = `${base} (realm ${kc.realm}, client ${kc.clientId})`;
  const r = await probe({
    url: `${base}/realms/${encodeURIComponent(kc.realm)}/protocol/openid-connect/token`,
    method: "POST",
    headers: {
      authorization: `Basic ${Buffer.from(`${formEncode(kc.clientId)}:${formEncode(kc.clientSecret)}`).toString("base64")}`,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: "grant_type=client_credentials",
    timeoutMs: kc.timeoutMs,
    timeoutKey: TIMEOUT_KEY,
  });
  const what = `token request to ${where}`;
  if (r.kind === "network") {
    report.fail(`${what}: ${r.reason}`, r.hint);
    return null;
  }
  const access = isRecord(r.json) ? r.json.access_token : undefined;
  if (r.status === 200 && typeof access === "string" && access !== "") {
    report.ok(`token obtained from ${where}`);
    return { base, realm: kc.realm, clientId: kc.clientId, token: access, timeoutMs: kc.timeoutMs, roles: tokenRoles(access) };
  }
  if (r.status === 200) {
    report.fail(`${what}: HTTP 200 but no access token in the answer`, "the base URL reaches something that is not Keycloak (a proxy's login page?): check idp.keycloak.base_url");
    return null;
  }
  const error = isRecord(r.json) ? r.json.error : undefined;
  const description = isRecord(r.json) ? r.json.error_description : undefined;
  const said = [quoted(error), quoted(description)].filter((x) => x !== null).join(" ");
  const answer = `HTTP ${r.status}${said ? ` ${said}` : ""}`;
  if (r.status === 404) {
    report.fail(`${what}: ${answer}`, await whereIsTheRealm(base, kc.realm, kc.timeoutMs, error === "Realm does not exist"));
    return null;
  }
  if (r.status === 400 || r.status === 401) {
    const text = typeof description === "string" ? description : "";
    let hint: string;
    if (/not enabled to retrieve service account/i.test(text) || (r.status === 400 && error === "unauthorized_client")) {
      hint = `enable Service accounts (client credentials) on the client: Clients → ${kc.clientId} → Settings → Capability config → Service accounts roles`;
    } else if (/public client/i.test(text)) {
      hint = `${kc.clientId} is a public client: turn Client authentication on (Clients → ${kc.clientId} → Settings → Capability config) and enable Service accounts roles`;
    } else if (error === "invalid_client" || error === "unauthorized_client") {
      hint = `wrong client secret or client id: compare idp.keycloak.client_secret with Clients → ${kc.clientId} → Credentials, and client_id with the client's Client ID (a disabled client answers the same)`;
    } else {
      hint = "Keycloak refused the client_credentials grant: check the client's settings";
    }
    report.fail(`${what}: ${answer}`, hint);
    return null;
  }
  const other = otherStatus(r, "Keycloak");
  report.fail(`${what}: ${other.what}${said ? ` ${said}` : ""}`, other.hint);
  return null;
}

/** Why the token endpoint is not where it was looked for: wrong realm, or a base URL with or without /auth. */
async function whereIsTheRealm(base: string, realm: string, timeoutMs: number, realmMissing: boolean): Promise<string> {
  const hasAuth = /\/auth$/i.test(base);
  const other = hasAuth ? base.replace(/\/auth$/i, "") : `${base}/auth`;
  const answers = async (root: string, name: string): Promise<boolean> => {
    const r = await probe({ url: `${root}/realms/${encodeURIComponent(name)}`, timeoutMs, timeoutKey: TIMEOUT_KEY });
    return r.kind === "http" && r.status === 200 && isRecord(r.json) && r.json.realm === name;
  };
  if (!realmMissing && await answers(other, realm)) {
    return hasAuth
      ? `remove /auth from idp.keycloak.base_url (${other}): Keycloak 17 and later serve without it`
      : `add /auth to idp.keycloak.base_url (${other}): this server serves under /auth, as Keycloak 16 and older did`;
  }
  if (await answers(base, "master")) {
    return `wrong realm: this Keycloak has no realm ${quoted(realm)}; check idp.keycloak.realm (realm names are case-sensitive)`;
  }
  if (await answers(other, "master")) {
    return `wrong realm, and the base URL should be ${other}: no realm ${quoted(realm)} there either; check idp.keycloak.realm`;
  }
  return "wrong realm or base URL: no Keycloak realm answers under idp.keycloak.base_url (Keycloak 16 and older served under /auth, 17 and later do not)";
}

// ---- users ------------------------------------------------------------------

/** GET under /admin/realms/{realm} with the token. */
function admin(s: Session, path: string): Promise<Reply> {
  return probe({
    url: `${s.base}/admin/realms/${encodeURIComponent(s.realm)}${path}`,
    headers: { authorization: `Bearer ${s.token}` },
    timeoutMs: s.timeoutMs,
    timeoutKey: TIMEOUT_KEY,
  });
}

/** The daemon's query (exact username), for the service account's own user. Returns the list, or null after a FAIL. */
async function userQuery(s: Session, self: string | null, report: Report): Promise<Record<string, unknown>[] | null> {
  const name = self ?? "mailcloak-test-idp";
  const path = `/users?exact=true&username=${encodeURIComponent(name)}&max=2&briefRepresentation=false`;
  const what = `user query GET /admin/realms/${s.realm}/users?exact=true&username=${name}`;
  const r = await admin(s, path);
  const list = userList(r);
  if (list) {
    report.ok(`${what} answered (HTTP 200)`);
    return list;
  }
  report.fail(...explainUsersFailure(r, what, s));
  return null;
}

function explainUsersFailure(r: Reply, what: string, s: Session): [string, string] {
  if (r.kind === "network") return [`${what}: ${r.reason}`, r.hint];
  if (r.status === 200) return [`${what}: HTTP 200 but not a list of users`, "the base URL reaches something that is not Keycloak's admin API: check idp.keycloak.base_url"];
  if (r.status === 401) {
    return [`${what}: HTTP 401 for a token Keycloak just issued`,
      "Keycloak does not accept its own token at this URL: behind a proxy, set Keycloak's hostname (KC_HOSTNAME) to the URL used here; check the clocks of both machines"];
  }
  if (r.status === 403) {
    return [`${what}: HTTP 403 Forbidden (realm-management roles in the token: ${roleList(s.roles)})`,
      `role missing (give the service account realm-management view-users: Clients → ${s.clientId} → Service accounts roles → Assign role) ` +
      `or not in the token's scope (Clients → ${s.clientId} → Client scopes → ${s.clientId}-dedicated → Scope: Full scope allowed, or add view-users)`];
  }
  if (r.status === 404) {
    return [`${what}: HTTP 404`,
      "wrong realm or base URL: the token endpoint answered but the admin REST API did not; a reverse proxy may not forward /admin/ to Keycloak (Keycloak 16 and older served it under /auth)"];
  }
  const other = otherStatus(r, "Keycloak");
  return [`${what}: ${other.what}`, other.hint];
}

function userList(r: Reply): Record<string, unknown>[] | null {
  if (r.kind !== "http" || r.status !== 200 || !Array.isArray(r.json)) return null;
  return r.json.filter(isRecord);
}

/**
 * Can the service account see users, not only search? Its own user must come
 * back from the exact query; a page of all users and the count back it up.
 * Returns the page of users for the attribute check, or null after a FAIL.
 */
async function visibility(s: Session, self: string | null, own: Record<string, unknown>[], report: Report): Promise<Record<string, unknown>[] | null> {
  const what = "service account sees users";
  const page = await admin(s, `/users?first=0&max=${SAMPLE}&briefRepresentation=false`);
  const sample = userList(page);
  if (!sample) {
    report.fail(...explainUsersFailure(page, `${what}: GET /admin/realms/${s.realm}/users`, s));
    return null;
  }
  const foundSelf = self !== null && own.some((u) => u.username === self);
  const count = await userCount(s);
  const counted = count === null ? "" : `; the realm counts ${count} user${count === 1 ? "" : "s"}`;
  if (foundSelf || sample.length > 0) {
    const how = foundSelf ? `found its own user ${self}` : `${sample.length} user${sample.length === 1 ? "" : "s"} listed`;
    report.ok(`${what} (${how}${counted})`);
    return sample;
  }
  const lacking = self !== null ? `not even its own user ${self}` : "no user at all";
  report.fail(`${what}: user lists are empty, ${lacking}${counted} (realm-management roles in the token: ${roleList(s.roles)})`,
    "lists are empty: grant view-users (realm-management) to the service account; query-users lets it search but returns no one");
  return null;
}

async function userCount(s: Session): Promise<number | null> {
  const r = await admin(s, "/users/count");
  return r.kind === "http" && r.status === 200 && typeof r.json === "number" ? r.json : null;
}

// ---- the send-allowed attribute -----------------------------------------------

async function attribute(s: Session, name: string, sample: Record<string, unknown>[], report: Report): Promise<void> {
  await checkAttribute(name, sample, report, async (what, of) => {
    const profile = await userProfile(s);
    if (profile === "none") {
      report.ok(`${what} is set on none of ${of} (this Keycloak has no user profile, so nothing is hidden; absent means sending is allowed)`);
      return;
    }
    if (profile !== "unknown" && (profile.declared.includes(name) || profile.unmanagedVisible)) {
      const why = profile.declared.includes(name) ? "declared in the realm's user profile" : "unmanaged attributes are visible to admins";
      report.ok(`${what} is ${why}; set on none of ${of} (absent means sending is allowed)`);
      return;
    }
    const known = profile === "unknown" ? "" : " and the realm's user profile does not declare it";
    report.fail(`${what} is not visible on any of ${of}${known}`,
      `Keycloak 24+'s user profile hides undeclared attributes: declare ${name} in Realm settings → User profile (Create attribute, admin can view), ` +
      "or enable unmanaged attributes (Realm settings → General → Unmanaged attributes: Admin can view)");
  });
}

type Profile = { declared: string[]; unmanagedVisible: boolean } | "none" | "unknown";

/** The realm's user profile: which attributes are declared and whether unmanaged ones are shown to admins. */
async function userProfile(s: Session): Promise<Profile> {
  const r = await admin(s, "/users/profile");
  if (r.kind === "http" && r.status === 404 && !(isRecord(r.json) && /realm/i.test(String(r.json.error)))) return "none";
  if (r.kind !== "http" || r.status !== 200 || !isRecord(r.json) || !Array.isArray(r.json.attributes)) return "unknown";
  const declared = r.json.attributes.filter(isRecord).map((a) => a.name).filter((n): n is string => typeof n === "string");
  const policy = r.json.unmanagedAttributePolicy;
  return { declared, unmanagedVisible: policy === "ENABLED" || policy === "ADMIN_VIEW" || policy === "ADMIN_EDIT" };
}

// ---- the token's claims (read, never printed) -----------------------------------

function claims(jwt: string): Record<string, unknown> | null {
  const part = jwt.split(".")[1];
  if (part === undefined) return null;
  try {
    const v: unknown = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    return isRecord(v) ? v : null;
  } catch {
    return null;
  }
}

function tokenRoles(jwt: string): readonly string[] | null {
  const c = claims(jwt);
  if (!c) return null;
  const rm = isRecord(c.resource_access) ? c.resource_access["realm-management"] : undefined;
  const roles = isRecord(rm) && Array.isArray(rm.roles) ? rm.roles : [];
  return roles.filter((x): x is string => typeof x === "string");
}

function serviceAccountName(jwt: string): string | null {
  const name = claims(jwt)?.preferred_username;
  return typeof name === "string" && name !== "" ? name : null;
}

function roleList(roles: readonly string[] | null): string {
  if (roles === null) return "unreadable";
  return roles.length > 0 ? [...roles].sort().join(", ") : "none";
}

/** RFC 6749 2.3.1: client id and secret are form-urlencoded before Basic encoding. */
function formEncode(s: string): string {
  return encodeURIComponent(s).replace(/%20/g, "+");
}
