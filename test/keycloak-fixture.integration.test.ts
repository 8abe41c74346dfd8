// The realm fixture (test/fixtures/keycloak-realm.json) does on the live
// server what the suites rely on: the user profile declares mailSendAllowed so
// the API returns it, an undeclared attribute is hidden, the three clients
// have the roles their names say, tokens live the fixture's lifespan, and
// every fixture user is there. A mistake in the fixture fails here, loudly,
// instead of as a puzzling row elsewhere.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { fixtureUsers } from "./helpers/fixture-users.js";
import { FIXTURE, KeycloakAdmin, releaseKeycloak, sharedKeycloak, type RealKeycloak } from "./helpers/keycloak-real.js";

let kc: RealKeycloak | { skip: string };
let admin: KeycloakAdmin;

before(async () => {
  kc = await sharedKeycloak();
  if (!("skip" in kc)) admin = new KeycloakAdmin(kc.baseUrl);
});

after(async () => {
  await releaseKeycloak();
});

type User = { username: string; email?: string; enabled: boolean; attributes?: Record<string, string[]> };

async function clientToken(base: string, client: { id: string; secret: string }): Promise<{ token: string; expiresIn: number }> {
  const r = await fetch(`${base}/realms/${FIXTURE.realm}/protocol/openid-connect/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials", client_id: client.id, client_secret: client.secret }),
  });
  assert.equal(r.status, 200, `token for ${client.id}: ${await r.clone().text()}`);
  const j = await r.json() as { access_token: string; expires_in: number };
  return { token: j.access_token, expiresIn: j.expires_in };
}

/** The users query mailcloak makes, with a client's own token. */
async function findAs(base: string, token: string, username: string): Promise<{ status: number; users: User[] }> {
  const q = new URLSearchParams({ username, exact: "true", briefRepresentation: "false" });
  const r = await fetch(`${base}/admin/realms/${FIXTURE.realm}/users?${q}`, { headers: { authorization: `Bearer ${token}` } });
  const body: unknown = r.status === 200 ? await r.json() : await r.text();
  return { status: r.status, users: Array.isArray(body) ? body as User[] : [] };
}

test("the user profile declares mailSendAllowed, so mailcloak's client reads bob's value", async (t) => {
  if ("skip" in kc) return t.skip(kc.skip);
  const profile = await admin.ok("GET", "/users/profile") as { attributes: { name: string; permissions?: { view?: string[] } }[] };
  const declared = profile.attributes.find((a) => a.name === "mailSendAllowed");
  assert.ok(declared, `mailSendAllowed is not in the user profile: ${profile.attributes.map((a) => a.name).join(", ")}`);
  assert.ok(declared.permissions?.view?.includes("admin"), "admins (the service account) may view it");
  const { token } = await clientToken(kc.baseUrl, FIXTURE.client);
  const bob = await findAs(kc.baseUrl, token, "bob");
  assert.equal(bob.status, 200);
  assert.deepEqual(bob.users.map((u) => u.attributes?.mailSendAllowed), [["false"]]);
});

test("grace's undeclared attribute is hidden by the user profile", async (t) => {
  if ("skip" in kc) return t.skip(kc.skip);
  const fixtureGrace = fixtureUsers().find((u) => u.username === "grace");
  assert.deepEqual(fixtureGrace?.attributes, { legacySendFlag: ["false"] }, "the fixture gives grace the attribute");
  const { token } = await clientToken(kc.baseUrl, FIXTURE.client);
  const grace = await findAs(kc.baseUrl, token, "grace");
  assert.equal(grace.users.length, 1);
  assert.equal(grace.users[0]!.attributes?.legacySendFlag, undefined, JSON.stringify(grace.users[0]));
  const byAdmin = await admin.ok("GET", `/users/${await admin.userId("grace")}`) as User;
  assert.equal(byAdmin.attributes?.legacySendFlag, undefined, "not even the realm admin sees it");
});

test("the three clients: view-users finds users, query-users finds none, no role is refused", async (t) => {
  if ("skip" in kc) return t.skip(kc.skip);
  const view = await findAs(kc.baseUrl, (await clientToken(kc.baseUrl, FIXTURE.client)).token, "alice");
  assert.equal(view.status, 200);
  assert.deepEqual(view.users.map((u) => u.username), ["alice"]);
  const query = await findAs(kc.baseUrl, (await clientToken(kc.baseUrl, FIXTURE.queryOnlyClient)).token, "alice");
  assert.equal(query.status, 200, "query-users may search");
  assert.deepEqual(query.users, [], "but sees no user");
  const none = await findAs(kc.baseUrl, (await clientToken(kc.baseUrl, FIXTURE.noRoleClient)).token, "alice");
  assert.equal(none.status, 403);
  // And the roles are the ones the fixture grants.
  const rm = (await admin.ok("GET", "/clients?clientId=realm-management") as { id: string }[])[0]!;
  for (const [client, want] of [[FIXTURE.client.id, ["view-users"]], [FIXTURE.queryOnlyClient.id, ["query-users"]], [FIXTURE.noRoleClient.id, []]] as const) {
    const id = await admin.userId(`service-account-${client}`);
    const roles = await admin.ok("GET", `/users/${id}/role-mappings/clients/${rm.id}`) as { name: string }[];
    assert.deepEqual(roles.map((r) => r.name).sort(), [...want], `${client}'s realm-management roles`);
  }
});

test("tokens live the fixture's lifespan", async (t) => {
  if ("skip" in kc) return t.skip(kc.skip);
  // expires_in is counted from Keycloak's clock at issue, so a second may already be gone.
  const { expiresIn } = await clientToken(kc.baseUrl, FIXTURE.client);
  assert.ok(expiresIn <= FIXTURE.tokenLifespanSeconds && expiresIn >= FIXTURE.tokenLifespanSeconds - 2, `expires_in ${expiresIn}`);
});

test("every fixture user is there: usernames and emails in lower case, enabled as given", async (t) => {
  if ("skip" in kc) return t.skip(kc.skip);
  for (const f of fixtureUsers()) {
    const list = await admin.ok("GET", `/users?exact=true&briefRepresentation=false&username=${encodeURIComponent(f.username)}`) as User[];
    assert.equal(list.length, 1, `${f.username}: ${JSON.stringify(list)}`);
    const u = list[0]!;
    assert.equal(u.username, f.username.toLowerCase());
    assert.equal(u.email, f.email?.toLowerCase(), `${f.username}'s email`);
    assert.equal(u.enabled, f.enabled ?? true, `${f.username} enabled`);
  }
});
