// The realm fixture (test/fixtures/keycloak-realm.json) as the emulator's
// input: its users, clients and declared attributes are read from the file, so
// the fake and the real Keycloak serve the same realm and cannot drift apart.

import { readFileSync } from "node:fs";
import { FakeKeycloak } from "../fake-keycloak.js";
import type { FakeClient, FakeKeycloakOptions, FakeUserInput } from "../fake-keycloak.js";
import { FIXTURE, REALM_FIXTURE } from "./keycloak-real.js";

/** A realm user carries the fields a fake user takes, under the same names. */
interface RealmUser extends FakeUserInput {
  clientRoles?: Record<string, string[]>;
  groups?: string[];
}

interface RealmGroup {
  path: string;
  attributes?: Record<string, string[]>;
  subGroups?: RealmGroup[];
}

interface RealmClient {
  clientId: string;
  secret?: string;
  serviceAccountsEnabled?: boolean;
}

interface Realm {
  realm: string;
  accessTokenLifespan?: number;
  users?: RealmUser[];
  clients?: RealmClient[];
  components?: Record<string, { providerId?: string; config?: Record<string, string[]> }[]>;
  groups?: RealmGroup[];
}

function realm(): Realm {
  return JSON.parse(readFileSync(REALM_FIXTURE, "utf8")) as Realm;
}

/** Every user of the realm fixture; service-account users carry serviceAccountClientId. */
export function fixtureUsers(): FakeUserInput[] {
  return (realm().users ?? []).map((u) => ({
    username: u.username,
    ...(u.email !== undefined ? { email: u.email } : {}),
    enabled: u.enabled ?? true,
    emailVerified: u.emailVerified ?? false,
    ...(u.firstName !== undefined ? { firstName: u.firstName } : {}),
    ...(u.lastName !== undefined ? { lastName: u.lastName } : {}),
    ...(u.attributes !== undefined ? { attributes: u.attributes } : {}),
    ...(u.serviceAccountClientId !== undefined ? { serviceAccountClientId: u.serviceAccountClientId } : {}),
  }));
}

/** The attribute names the fixture's declarative user profile declares. */
export function fixtureDeclaredAttributes(): string[] {
  const providers = realm().components?.["org.keycloak.userprofile.UserProfileProvider"] ?? [];
  const config = providers.find((p) => p.providerId === "declarative-user-profile")?.config?.["kc.user.profile.config"]?.[0];
  if (config === undefined) throw new Error("realm fixture: no declarative user profile");
  return (JSON.parse(config) as { attributes: { name: string }[] }).attributes.map((a) => a.name);
}

/**
 * FakeKeycloak options for the fixture realm: its name, token lifespan, user
 * profile and clients (roles from their service-account users). The client
 * FIXTURE.client names is the fake's main clientId/clientSecret.
 */
export function fixtureFakeOptions(): FakeKeycloakOptions {
  const r = realm();
  const roles = (clientId: string): FakeClient["roles"] => {
    const account = r.users?.find((u) => u.serviceAccountClientId === clientId);
    const granted = account?.clientRoles?.["realm-management"] ?? [];
    return (["view-users", "query-users"] as const).filter((role) => granted.includes(role));
  };
  const clients: FakeClient[] = (r.clients ?? [])
    .filter((c) => c.serviceAccountsEnabled === true && c.secret !== undefined)
    .map((c) => ({ id: c.clientId, secret: c.secret!, roles: roles(c.clientId) }));
  const main = clients.find((c) => c.id === FIXTURE.client.id);
  if (!main || !main.roles.includes("view-users")) throw new Error(`realm fixture: client ${FIXTURE.client.id} with view-users missing`);
  return {
    realm: r.realm,
    clientId: main.id,
    clientSecret: main.secret,
    ...(r.accessTokenLifespan !== undefined ? { expiresIn: r.accessTokenLifespan } : {}),
    clients: clients.filter((c) => c !== main),
    declaredAttributes: fixtureDeclaredAttributes(),
  };
}

/** Every group of the realm fixture (parents first) and the users' memberships. */
export function fixtureGroups(): { groups: { path: string; attributes: Record<string, string[]> }[]; members: [username: string, path: string][] } {
  const r = realm();
  const groups: { path: string; attributes: Record<string, string[]> }[] = [];
  const walk = (gs: RealmGroup[]): void => {
    for (const g of gs) {
      groups.push({ path: g.path, attributes: g.attributes ?? {} });
      walk(g.subGroups ?? []);
    }
  };
  walk(r.groups ?? []);
  const members = (r.users ?? []).flatMap((u) => (u.groups ?? []).map((p): [string, string] => [u.username, p]));
  return { groups, members };
}

/** A FakeKeycloak serving the fixture realm with all its users and groups. */
export async function startFixtureFake(extra: Partial<FakeKeycloakOptions> = {}): Promise<FakeKeycloak> {
  const fake = await FakeKeycloak.start({ ...fixtureFakeOptions(), ...extra });
  for (const u of fixtureUsers()) fake.addUser(u);
  const { groups, members } = fixtureGroups();
  for (const g of groups) fake.addGroup(g.path, g.attributes);
  for (const [user, path] of members) fake.addMember(user, path);
  return fake;
}
