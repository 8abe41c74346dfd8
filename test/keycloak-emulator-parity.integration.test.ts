// The emulator (test/fake-keycloak.ts) checked against the real Keycloak: the
// same requests go to both, live, and the answers must agree. The fake serves
// the realm fixture's own users and clients (test/helpers/fixture-users.ts),
// so both hold the same realm.
//
// Compared: status codes; error bodies whole; token responses whole except
// the access_token value (and scope, compared as a set); user representations
// whole except the values of id and createdTimestamp (checked for type) and
// userProfileMetadata (which the fake leaves out: mailcloak never reads it).
// Then the same lookups through mailcloak's own KeycloakSource, whose answers
// must be equal.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { KeycloakSource } from "../src/directory/keycloak.js";
import type { DirectoryUser, Lookup } from "../src/directory/lookup.js";
import type { FakeKeycloak } from "./fake-keycloak.js";
import { fixtureFakeOptions, fixtureUsers, startFixtureFake } from "./helpers/fixture-users.js";
import { FIXTURE, KeycloakAdmin, releaseKeycloak, sharedKeycloak, type RealKeycloak } from "./helpers/keycloak-real.js";

type ClientName = "view" | "query" | "norole";
const CLIENTS: Record<ClientName, { id: string; secret: string }> = {
  view: FIXTURE.client,
  query: FIXTURE.queryOnlyClient,
  norole: FIXTURE.noRoleClient,
};

interface Target {
  readonly name: "keycloak" | "emulator";
  readonly baseUrl: string;
  tokens: Record<ClientName, string>;
  /** A view-users token obtained first, for the expiry case. */
  early: { token: string; at: number };
}

let kc: RealKeycloak | { skip: string };
let fake: FakeKeycloak | null = null;
let targets: Target[] = [];

async function fetchToken(baseUrl: string, c: { id: string; secret: string }): Promise<string> {
  const r = await post(baseUrl, `/realms/${FIXTURE.realm}/protocol/openid-connect/token`, "grant_type=client_credentials", basic(c.id, c.secret));
  const body = (await r.json()) as { access_token?: unknown };
  if (r.status !== 200 || typeof body.access_token !== "string") throw new Error(`token for ${c.id} at ${baseUrl}: HTTP ${r.status}`);
  return body.access_token;
}

async function target(name: Target["name"], baseUrl: string): Promise<Target> {
  const at = Date.now();
  const early = await fetchToken(baseUrl, CLIENTS.view);
  const tokens = {
    view: await fetchToken(baseUrl, CLIENTS.view),
    query: await fetchToken(baseUrl, CLIENTS.query),
    norole: await fetchToken(baseUrl, CLIENTS.norole),
  };
  return { name, baseUrl, tokens, early: { token: early, at } };
}

before(async () => {
  kc = await sharedKeycloak();
  if ("skip" in kc) return;
  fake = await startFixtureFake();
  targets = [await target("keycloak", kc.baseUrl), await target("emulator", fake.url)];
});

after(async () => {
  await fake?.stop();
  await releaseKeycloak();
});

function basic(id: string, secret: string): Record<string, string> {
  const enc = (s: string): string => encodeURIComponent(s).replace(/%20/g, "+");
  return { authorization: `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString("base64")}` };
}

function post(baseUrl: string, path: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${baseUrl}${path}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body,
    signal: AbortSignal.timeout(20_000),
  });
}

// ---- normalising answers ----

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A user representation with the server-specific values replaced by their type. */
function user(u: Record<string, unknown>): Record<string, unknown> {
  const { id, createdTimestamp, userProfileMetadata: _ignored, ...rest } = u;
  return {
    id: typeof id === "string" && UUID.test(id) ? "<uuid>" : id,
    ...(createdTimestamp !== undefined ? { createdTimestamp: typeof createdTimestamp === "number" ? "<ms>" : createdTimestamp } : {}),
    ...rest,
  };
}

function normalise(body: unknown): unknown {
  if (Array.isArray(body)) return body.map((u) => (isRecord(u) ? user(u) : u));
  if (isRecord(body) && "access_token" in body) {
    const t = body.access_token;
    // scope is a set; Keycloak's order varies from one token to the next.
    const scope = typeof body.scope === "string" ? body.scope.split(" ").sort().join(" ") : body.scope;
    // Keycloak gives exp minus the current whole second: a token issued late in a second reads one short.
    const lifespan = FIXTURE.tokenLifespanSeconds;
    const expires = body.expires_in === lifespan - 1 ? lifespan : body.expires_in;
    return { ...body, access_token: typeof t === "string" && t.split(".").length === 3 ? "<jwt>" : t, scope, expires_in: expires };
  }
  if (isRecord(body) && "username" in body) return user(body);
  return body;
}

interface Answer {
  status: number;
  body: unknown;
}

async function answer(r: Response): Promise<Answer> {
  const text = await r.text();
  let body: unknown = text;
  try {
    body = text === "" ? "" : JSON.parse(text);
  } catch { /* compared as text */ }
  return { status: r.status, body: normalise(body) };
}

/** Runs the same request against both servers and asserts they agree; returns the real server's answer. */
async function same(request: (t: Target) => Promise<Response>): Promise<Answer> {
  const [real, emu] = await Promise.all(targets.map(async (t) => answer(await request(t))));
  assert.deepEqual(emu, real, "emulator (actual) differs from Keycloak 26.5.6 (expected)");
  return real!;
}

function skipped(t: { skip(msg: string): void }): boolean {
  if ("skip" in kc) {
    t.skip(kc.skip);
    return true;
  }
  return false;
}

// ---- token endpoint ----

const tokenPath = (realm: string = FIXTURE.realm): string => `/realms/${encodeURIComponent(realm)}/protocol/openid-connect/token`;

interface TokenCase {
  name: string;
  body: string;
  headers?: Record<string, string>;
  realm?: string;
  status: number;
}

const TOKEN_CASES: TokenCase[] = [
  ...(Object.entries(CLIENTS) as [ClientName, { id: string; secret: string }][]).flatMap(([name, c]) => [
    { name: `${name} client, good secret (Basic)`, body: "grant_type=client_credentials", headers: basic(c.id, c.secret), status: 200 },
    { name: `${name} client, wrong secret`, body: "grant_type=client_credentials", headers: basic(c.id, "wrong-secret"), status: 401 },
  ]),
  { name: "good secret in the form", body: `grant_type=client_credentials&client_id=${CLIENTS.view.id}&client_secret=${CLIENTS.view.secret}`, status: 200 },
  { name: "wrong secret in the form", body: `grant_type=client_credentials&client_id=${CLIENTS.view.id}&client_secret=nope`, status: 401 },
  { name: "empty secret", body: "grant_type=client_credentials", headers: basic(CLIENTS.view.id, ""), status: 401 },
  { name: "unknown client", body: "grant_type=client_credentials", headers: basic("no-such-client", "x"), status: 401 },
  { name: "client id in another case", body: "grant_type=client_credentials", headers: basic(CLIENTS.view.id.toUpperCase(), CLIENTS.view.secret), status: 401 },
  { name: "no client credentials", body: "grant_type=client_credentials", status: 401 },
  { name: "Basic without a colon", body: "grant_type=client_credentials", headers: { authorization: `Basic ${Buffer.from(CLIENTS.view.id).toString("base64")}` }, status: 401 },
  { name: "no grant_type", body: "scope=openid", headers: basic(CLIENTS.view.id, CLIENTS.view.secret), status: 400 },
  { name: "no grant_type, unknown client", body: "", headers: basic("no-such-client", "x"), status: 400 },
  { name: "unknown grant_type", body: "grant_type=magic", headers: basic(CLIENTS.view.id, CLIENTS.view.secret), status: 400 },
  { name: "grant_type in upper case", body: "grant_type=CLIENT_CREDENTIALS", headers: basic(CLIENTS.view.id, CLIENTS.view.secret), status: 400 },
  { name: "password grant on a client without direct access", body: "grant_type=password&username=alice&password=alice-pw", headers: basic(CLIENTS.view.id, CLIENTS.view.secret), status: 400 },
  { name: "password grant, unknown client", body: "grant_type=password&username=alice&password=alice-pw", headers: basic("no-such-client", "x"), status: 401 },
  { name: "unknown realm", body: "grant_type=client_credentials", headers: basic(CLIENTS.view.id, CLIENTS.view.secret), realm: "no-such-realm", status: 404 },
];

describe("token endpoint", () => {
  for (const c of TOKEN_CASES) {
    test(c.name, async (t) => {
      if (skipped(t)) return;
      const got = await same((tg) => post(tg.baseUrl, tokenPath(c.realm), c.body, c.headers));
      assert.equal(got.status, c.status, JSON.stringify(got.body));
    });
  }

  test("GET is not allowed", async (t) => {
    if (skipped(t)) return;
    assert.equal((await same((tg) => fetch(`${tg.baseUrl}${tokenPath()}`))).status, 405);
  });

  test("the token lifetime is the realm's", async (t) => {
    if (skipped(t)) return;
    const got = await same((tg) => post(tg.baseUrl, tokenPath(), "grant_type=client_credentials", basic(CLIENTS.view.id, CLIENTS.view.secret)));
    assert.equal((got.body as { expires_in?: unknown }).expires_in, FIXTURE.tokenLifespanSeconds);
  });
});

// ---- admin users endpoint ----

/** The query mailcloak sends (KeycloakSource → users.find, in the library's parameter order). */
const lookup = (field: "username" | "email", key: string): string =>
  `users?${new URLSearchParams({ ...(key !== "" ? { [field]: key } : {}), exact: "true", max: "2", briefRepresentation: "false" })}`;

type Auth = ClientName | "none" | "garbage" | "basic" | "emptyBearer" | "lowercaseBearer" | "tampered";

interface AdminCase {
  name: string;
  /** Under /admin/realms/{realm}/; `{id:NAME}` is replaced by that user's id on each server. */
  path: string;
  auth?: Auth;
  realm?: string;
  status: number;
  /** Usernames expected in a 200 list, in order (checked on the real server too: the cases say what Keycloak does). */
  users?: string[];
}

const USERNAME_KEYS: [string, string[]][] = [
  ["alice", ["alice"]], ["ALICE", ["alice"]], ["bob", ["bob"]], ["carol", ["carol"]], ["dave", ["dave"]],
  ["erin.mixed", ["erin.mixed"]], ["Erin.Mixed", ["erin.mixed"]], ["ERIN.MIXED", ["erin.mixed"]],
  ["frank", ["frank"]], ["grace", ["grace"]], ["nobody", []], ["alic", []], ["a_ice", []], ["alice ", []],
  ["Erin.Mixed@D1.Test", []],
  ["service-account-mailcloak", ["service-account-mailcloak"]],
  ["SERVICE-ACCOUNT-MAILCLOAK", ["service-account-mailcloak"]],
  ["service-account-mailcloak-query", ["service-account-mailcloak-query"]],
  // An empty key is dropped by the admin client: exact=true alone lists everyone, service accounts included.
  ["", ["alice", "bob"]],
];

const EMAIL_KEYS: [string, string[]][] = [
  ["alice@d1.test", ["alice"]], ["ALICE@D1.TEST", ["alice"]], ["bob@d1.test", ["bob"]], ["carol@d1.test", ["carol"]],
  ["dave@d2.test", ["dave"]], ["dave@d1.test", []], ["grace@d1.test", ["grace"]],
  ["erin.mixed@d1.test", ["erin.mixed"]], ["Erin.Mixed@D1.Test", ["erin.mixed"]], ["ERIN.MIXED@d1.test", ["erin.mixed"]],
  ["nobody@d1.test", []], ["alice", []], ["a_ice@d1.test", []], ["frank", []], ["frank@d1.test", []],
  ["service-account-mailcloak", []],
];

// Listings as Keycloak sorts them (by username), from the realm fixture, so a
// user added to the fixture cannot break them.
const FIXTURE_USERS = fixtureUsers().map((u) => ({ ...u, username: u.username.toLowerCase() }));
const sorted = (names: string[]): string[] => [...names].sort();
const PEOPLE = sorted(FIXTURE_USERS.filter((u) => !u.serviceAccountClientId).map((u) => u.username));
const EVERYONE = sorted(FIXTURE_USERS.map((u) => u.username));
const WITHOUT_EMAIL = sorted(FIXTURE_USERS.filter((u) => !u.email).map((u) => u.username));
const DISABLED = sorted(FIXTURE_USERS.filter((u) => !u.serviceAccountClientId && u.enabled === false).map((u) => u.username));

const ADMIN_CASES: AdminCase[] = [
  ...USERNAME_KEYS.map(([k, users]): AdminCase => ({ name: `username lookup ${JSON.stringify(k)}`, path: lookup("username", k), status: 200, users })),
  ...EMAIL_KEYS.map(([k, users]): AdminCase => ({ name: `email lookup ${JSON.stringify(k)}`, path: lookup("email", k), status: 200, users })),
  { name: "brief representation", path: "users?username=bob&exact=true&briefRepresentation=true", status: 200, users: ["bob"] },
  { name: "brief representation of a service account", path: "users?username=service-account-mailcloak&exact=true&briefRepresentation=true", status: 200, users: ["service-account-mailcloak"] },
  { name: "non-exact username (LIKE, `_` unescaped)", path: "users?username=a_i", status: 200, users: ["alice"] },
  { name: "non-exact username matches service accounts", path: "users?username=service&exact=false", status: 200, users: ["service-account-mailcloak", "service-account-mailcloak-norole", "service-account-mailcloak-query"] },
  { name: "plain listing leaves service accounts out", path: "users", status: 200, users: PEOPLE },
  { name: "listing with max only", path: "users?max=100&briefRepresentation=false", status: 200, users: PEOPLE },
  { name: "empty filters are no filters", path: "users?username=&email=&enabled=&exact=", status: 200, users: PEOPLE },
  { name: "exact=true alone includes service accounts", path: "users?exact=true&briefRepresentation=true", status: 200, users: EVERYONE },
  { name: "enabled=false", path: "users?enabled=false", status: 200, users: DISABLED },
  { name: "emailVerified=false", path: "users?emailVerified=false&briefRepresentation=true", status: 200, users: WITHOUT_EMAIL },
  { name: "first and max", path: "users?first=2&max=3", status: 200, users: PEOPLE.slice(2, 5) },
  { name: "max=0", path: "users?max=0", status: 200, users: [] },
  { name: "max=-1", path: "users?max=-1&briefRepresentation=true", status: 200, users: PEOPLE },
  { name: "first=-1", path: "users?first=-1&briefRepresentation=true", status: 200, users: PEOPLE },
  { name: "max that is not an int", path: "users?max=abc", status: 404 },
  { name: "max beyond an int", path: "users?max=99999999999", status: 404 },
  { name: "search excludes service accounts", path: "users?search=service", status: 200, users: [] },
  { name: "search by prefix", path: "users?search=bo&briefRepresentation=true", status: 200, users: ["bob"] },
  { name: "user by id", path: "users/{id:alice}", status: 200 },
  { name: "user with an attribute, by id", path: "users/{id:bob}", status: 200 },
  { name: "service account by id", path: "users/{id:service-account-mailcloak}", status: 200 },
  { name: "unknown user id", path: "users/00000000-0000-0000-0000-000000000000", status: 404 },
  { name: "query-users only: username lookup", path: lookup("username", "alice"), auth: "query", status: 200, users: [] },
  { name: "query-users only: email lookup", path: lookup("email", "alice@d1.test"), auth: "query", status: 200, users: [] },
  { name: "query-users only: listing", path: "users", auth: "query", status: 200, users: [] },
  { name: "query-users only: user by id", path: "users/{id:alice}", auth: "query", status: 403 },
  { name: "no role: username lookup", path: lookup("username", "alice"), auth: "norole", status: 403 },
  { name: "no role: email lookup", path: lookup("email", "alice@d1.test"), auth: "norole", status: 403 },
  { name: "no role: user by id", path: "users/{id:alice}", auth: "norole", status: 403 },
  { name: "no bearer token", path: lookup("username", "alice"), auth: "none", status: 401 },
  { name: "garbage bearer token", path: lookup("username", "alice"), auth: "garbage", status: 401 },
  { name: "tampered bearer token", path: lookup("username", "alice"), auth: "tampered", status: 401 },
  { name: "empty bearer token", path: lookup("username", "alice"), auth: "emptyBearer", status: 401 },
  { name: "client credentials instead of a token", path: lookup("username", "alice"), auth: "basic", status: 401 },
  { name: "lower-case bearer scheme", path: lookup("username", "alice"), auth: "lowercaseBearer", status: 200, users: ["alice"] },
  { name: "unknown realm", path: lookup("username", "alice"), realm: "no-such-realm", status: 404 },
  { name: "unknown realm without a token", path: lookup("username", "alice"), realm: "no-such-realm", auth: "none", status: 401 },
  { name: "another existing realm (master)", path: lookup("username", "alice"), realm: "master", status: 403 },
  { name: "no role on an unknown realm", path: lookup("username", "alice"), realm: "no-such-realm", auth: "norole", status: 404 },
  { name: "unknown admin resource", path: "no-such-resource", status: 404 },
];

function authHeaders(t: Target, auth: Auth): Record<string, string> {
  switch (auth) {
    case "none": return {};
    case "garbage": return { authorization: "Bearer not-a-token" };
    case "tampered": return { authorization: `Bearer ${t.tokens.view.slice(0, -4)}AAAA` };
    case "emptyBearer": return { authorization: "Bearer " };
    case "basic": return basic(CLIENTS.view.id, CLIENTS.view.secret);
    case "lowercaseBearer": return { authorization: `bearer ${t.tokens.view}` };
    default: return { authorization: `Bearer ${t.tokens[auth]}` };
  }
}

const ids = new Map<string, string>(); // `${target}:${username}` -> id

async function userId(t: Target, username: string): Promise<string> {
  const key = `${t.name}:${username}`;
  let id = ids.get(key);
  if (id === undefined) {
    const r = await fetch(`${t.baseUrl}/admin/realms/${FIXTURE.realm}/users?exact=true&username=${encodeURIComponent(username)}`, {
      headers: authHeaders(t, "view"),
    });
    const list = (await r.json()) as { id: string }[];
    id = list[0]?.id;
    if (id === undefined) throw new Error(`${t.name}: no user ${username}`);
    ids.set(key, id);
  }
  return id;
}

async function adminRequest(t: Target, c: AdminCase): Promise<Response> {
  let path = c.path;
  for (const m of [...path.matchAll(/\{id:([^}]+)\}/g)]) path = path.replace(m[0], await userId(t, m[1]!));
  return fetch(`${t.baseUrl}/admin/realms/${encodeURIComponent(c.realm ?? FIXTURE.realm)}/${path}`, {
    headers: authHeaders(t, c.auth ?? "view"),
    signal: AbortSignal.timeout(20_000),
  });
}

describe("admin users endpoint", () => {
  for (const c of ADMIN_CASES) {
    test(c.name, async (t) => {
      if (skipped(t)) return;
      const got = await same((tg) => adminRequest(tg, c));
      assert.equal(got.status, c.status, JSON.stringify(got.body));
      if (c.users) assert.deepEqual((got.body as { username: string }[]).map((u) => u.username), c.users);
    });
  }

  test("what the fixture users look like (fields mailcloak reads)", async (t) => {
    if (skipped(t)) return;
    const byName = async (name: string): Promise<Record<string, unknown>> =>
      ((await same((tg) => adminRequest(tg, { name, path: lookup("username", name), status: 200 }))).body as Record<string, unknown>[])[0]!;
    assert.deepEqual((await byName("bob")).attributes, { mailSendAllowed: ["false"] }, "declared attribute shown");
    assert.equal((await byName("grace")).attributes, undefined, "undeclared attribute hidden");
    assert.equal((await byName("frank")).email, undefined, "no email: no field");
    assert.equal((await byName("carol")).enabled, false);
    const erin = await byName("Erin.Mixed");
    assert.deepEqual([erin.username, erin.email], ["erin.mixed", "erin.mixed@d1.test"], "stored lower-cased");
    const svc = await byName("service-account-mailcloak");
    assert.equal(svc.serviceAccountClientId, undefined, "the service-account link is not in the representation");
  });

});

test("a service account an admin gave an email is found by it, unmarked", async (t) => {
  if (skipped(t)) return;
  // Changes the shared server's realm for a moment: an address nobody else looks up, on the no-role client's account.
  const name = `service-account-${CLIENTS.norole.id}`;
  const email = "svc-parity@d1.test";
  const admin = new KeycloakAdmin(targets[0]!.baseUrl);
  await admin.updateUser(name, { email });
  fake!.updateUser(name, { email });
  try {
    const got = await same((tg) => adminRequest(tg, { name, path: lookup("email", email), status: 200 }));
    assert.deepEqual((got.body as Record<string, unknown>[]).map((u) => [u.username, u.serviceAccountClientId]), [[name, undefined]]);
    const found = await bothSources(CLIENTS.view, async (s) => [await s.userByEmail(email)]);
    assert.equal(found[0]?.kind, "found");
  } finally {
    await admin.updateUser(name, { email: "" });
    fake!.updateUser(name, { email: "" });
  }
  const gone = await same((tg) => adminRequest(tg, { name, path: lookup("email", email), status: 200 }));
  assert.deepEqual(gone.body, []);
});

// ---- mailcloak's own lookups ----

function source(t: Target, client: { id: string; secret: string }, realm: string = FIXTURE.realm): KeycloakSource {
  return new KeycloakSource({
    baseUrl: t.baseUrl,
    realm,
    clientId: client.id,
    clientSecret: client.secret,
    timeoutMs: 20_000,
    logger: pino({ level: "silent" }),
    breaker: { failureThreshold: 1000 },
  });
}

async function bothSources(
  client: { id: string; secret: string },
  run: (s: KeycloakSource) => Promise<Lookup<DirectoryUser>[]>,
  realm?: string,
): Promise<Lookup<DirectoryUser>[]> {
  const [real, emu] = await Promise.all(targets.map(async (tg) => {
    const s = source(tg, client, realm);
    try {
      return await run(s);
    } finally {
      await s.close();
    }
  }));
  assert.deepEqual(emu, real, "KeycloakSource answers differ: emulator (actual) vs Keycloak 26.5.6 (expected)");
  return real!;
}

const USERNAMES = ["alice", "bob", "carol", "dave", "erin.mixed", "frank", "grace", "nobody", "service-account-mailcloak", ""];
const EMAILS = ["alice@d1.test", "bob@d1.test", "carol@d1.test", "dave@d2.test", "erin.mixed@d1.test", "grace@d1.test", "nobody@d1.test", "frank", ""];

describe("KeycloakSource gives the same answers", () => {
  test("view-users client: every fixture user by username and email", async (t) => {
    if (skipped(t)) return;
    const got = await bothSources(CLIENTS.view, async (s) => [
      ...await Promise.all(USERNAMES.map((u) => s.userByUsername(u))),
      ...await Promise.all(EMAILS.map((e) => s.userByEmail(e))),
    ]);
    const kinds = got.map((r) => r.kind);
    assert.deepEqual(kinds.slice(0, USERNAMES.length), ["found", "found", "found", "found", "found", "found", "found", "notfound", "found", "notfound"]);
    assert.deepEqual(kinds.slice(USERNAMES.length), ["found", "found", "found", "found", "found", "found", "notfound", "notfound", "notfound"]);
  });

  test("query-users client finds no one", async (t) => {
    if (skipped(t)) return;
    const got = await bothSources(CLIENTS.query, async (s) => [await s.userByUsername("alice"), await s.userByEmail("alice@d1.test")]);
    assert.deepEqual(got, [{ kind: "notfound" }, { kind: "notfound" }]);
  });

  test("no-role client is unavailable (403)", async (t) => {
    if (skipped(t)) return;
    const got = await bothSources(CLIENTS.norole, async (s) => [await s.userByUsername("alice")]);
    assert.deepEqual(got, [{ kind: "unavailable", reason: "keycloak denied the user lookup (403)" }]);
  });

  test("token failures give the same reasons", async (t) => {
    if (skipped(t)) return;
    const wrong = await bothSources({ id: CLIENTS.view.id, secret: "wrong" }, async (s) => [await s.userByUsername("alice")]);
    assert.deepEqual(wrong, [{ kind: "unavailable", reason: "keycloak token request HTTP 401 (unauthorized_client)" }]);
    const unknown = await bothSources({ id: "no-such-client", secret: "x" }, async (s) => [await s.userByUsername("alice")]);
    assert.deepEqual(unknown, [{ kind: "unavailable", reason: "keycloak token request HTTP 401 (invalid_client)" }]);
    const realm = await bothSources(CLIENTS.view, async (s) => [await s.userByUsername("alice")], "no-such-realm");
    assert.equal(realm[0]?.kind, "unavailable");
  });
});

describe("fixture loader", () => {
  test("loads every realm user, service accounts with their client", () => {
    const users = fixtureUsers();
    assert.ok(users.some((u) => u.username === "Erin.Mixed" && u.email === "Erin.Mixed@D1.Test"));
    assert.deepEqual(users.filter((u) => u.serviceAccountClientId !== undefined).map((u) => u.serviceAccountClientId),
      [FIXTURE.client.id, FIXTURE.queryOnlyClient.id, FIXTURE.noRoleClient.id]);
    const opts = fixtureFakeOptions();
    assert.equal(opts.realm, FIXTURE.realm);
    assert.equal(opts.expiresIn, FIXTURE.tokenLifespanSeconds);
    assert.deepEqual(opts.clients?.map((c) => [c.id, c.roles]), [[FIXTURE.queryOnlyClient.id, ["query-users"]], [FIXTURE.noRoleClient.id, []]]);
    assert.ok(opts.declaredAttributes?.includes("mailSendAllowed") && !opts.declaredAttributes.includes("legacySendFlag"));
  });
});

test("an expired token is refused by both", async (t) => {
  if (skipped(t)) return;
  // Keycloak's exp has one-second resolution; wait out the lifespan plus a margin.
  const wait = Math.max(0, ...targets.map((tg) => tg.early.at + FIXTURE.tokenLifespanSeconds * 1000 + 2000 - Date.now()));
  await sleep(wait);
  const got = await same((tg) => fetch(`${tg.baseUrl}/admin/realms/${FIXTURE.realm}/${lookup("username", "alice")}`, {
    headers: { authorization: `Bearer ${tg.early.token}` },
  }));
  assert.equal(got.status, 401);
});

// ---- group reads (distribution lists, directory/lists.ts) ----

/** ids and timestamps differ between servers: compared by type only. */
function normalizeIds(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalizeIds);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) =>
      [k, (k === "id" || k === "parentId") && typeof x === "string" ? "<id>" : k === "createdTimestamp" && typeof x === "number" ? "<ts>" : normalizeIds(x)]));
  }
  return v;
}

describe("group reads agree", () => {
  test("group-by-path, paged children and members (brief and full), 404 and 403 as the real server answers them", async (t) => {
    if ("skip" in kc) return t.skip(kc.skip);
    const walk = async (tg: Target): Promise<unknown[]> => {
      // Tokens live 60 s: the suite's may have expired by now.
      const tokens = { view: await fetchToken(tg.baseUrl, CLIENTS.view), query: await fetchToken(tg.baseUrl, CLIENTS.query), norole: await fetchToken(tg.baseUrl, CLIENTS.norole) };
      const get = async (path: string, who: ClientName = "view"): Promise<{ status: number; body: unknown }> => {
        const r = await fetch(`${tg.baseUrl}/admin/realms/${FIXTURE.realm}${path}`, { headers: { authorization: `Bearer ${tokens[who]}` } });
        const text = await r.text();
        return { status: r.status, body: text === "" ? null : JSON.parse(text) };
      };
      const out: unknown[] = [];
      const parent = await get("/group-by-path/lists");
      out.push(parent, await get("/group-by-path/nope"), await get("/group-by-path/lists/team"));
      const pid = (parent.body as { id: string }).id;
      out.push(await get(`/groups/${pid}/children?first=0&max=2&briefRepresentation=false`), await get(`/groups/${pid}/children?first=2&max=2&briefRepresentation=false`));
      const all = (await get(`/groups/${pid}/children?first=0&max=10`));
      out.push(all);
      const team = (all.body as { id: string; name: string }[]).find((g) => g.name === "team")!.id;
      out.push(await get(`/groups/${team}/members?first=0&max=2&briefRepresentation=true`), await get(`/groups/${team}/members?first=2&max=10&briefRepresentation=true`));
      const core = await get(`/groups/${team}/children?first=0&max=10&briefRepresentation=false`);
      out.push(core);
      out.push(await get(`/groups/${(core.body as { id: string }[])[0]!.id}/members?first=0&max=10`));
      out.push(await get("/group-by-path/lists", "query"), await get(`/groups/${team}/members`, "query"), await get("/group-by-path/lists", "norole"));
      return out.map(normalizeIds);
    };
    const [real, emu] = [await walk(targets[0]!), await walk(targets[1]!)];
    assert.deepEqual(emu, real);
  });
});
