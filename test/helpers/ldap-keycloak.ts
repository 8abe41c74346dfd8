// A realm of its own on a real Keycloak whose users come from a real slapd
// (helpers/slapd.ts) through Keycloak's LDAP user federation, set up as
// docs/ldap.md tells an admin to: read-only, no federation cache, and a
// user-attribute mapper tnMailSendAllowed -> mailSendAllowed. The realm is a
// copy of the fixture realm (clients, service accounts, user profile) under
// another name, so other suites never see LDAP users or an LDAP outage.

import { readFileSync } from "node:fs";
import { KeycloakAdmin, REALM_FIXTURE } from "./keycloak-real.js";
import { LDAP } from "./slapd.js";

/** Run every cleanup step, even after one fails; then throw what failed. */
export async function cleanUpAll(steps: readonly (() => Promise<unknown>)[]): Promise<void> {
  const errors: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length > 0) throw new Error(errors.map(String).join("; "));
}

export interface FederationOptions {
  /** LDAP URL of the directory (Slapd.url). */
  readonly url: string;
  /** Keycloak's connect and read timeouts towards LDAP (unset: Keycloak's defaults). */
  readonly connectionTimeoutMs?: number;
  readonly readTimeoutMs?: number;
  /** Extra public clients (e.g. one for the password grant). */
  readonly extraClients?: readonly Record<string, unknown>[];
}

export class LdapRealm {
  readonly admin: KeycloakAdmin;
  federationId = "";

  constructor(readonly baseUrl: string, readonly realm: string) {
    this.admin = new KeycloakAdmin(baseUrl, realm);
  }

  /** A call under /admin/realms (the master admin's token), for creating and deleting the realm. */
  async masterCall(method: string, path: string, body?: unknown): Promise<Response> {
    const init: RequestInit = { method, headers: { authorization: `Bearer ${await this.admin.token()}`, "content-type": "application/json" } };
    if (body !== undefined) init.body = JSON.stringify(body);
    return fetch(`${this.baseUrl}/admin/realms${path}`, init);
  }

  /** Create the realm (replacing one left by an interrupted run), the federation and its mapper. */
  async create(opts: FederationOptions): Promise<void> {
    await this.delete();
    const created = await this.masterCall("POST", "", this.#realmRepresentation(opts.extraClients ?? []));
    if (created.status !== 201) throw new Error(`creating realm ${this.realm}: ${created.status} ${await created.text()}`);
    const realm = await this.admin.ok("GET", "") as { id: string };
    this.federationId = await this.#createComponent(federation(realm.id, opts));
    await this.#createComponent(sendAllowedMapper(this.federationId));
  }

  async delete(): Promise<void> {
    const r = await this.masterCall("DELETE", `/${this.realm}`);
    await r.body?.cancel();
  }

  /** Change settings of the federation (as an admin would in the console), e.g. bindCredential. */
  async updateFederation(config: Record<string, string>): Promise<void> {
    const cur = await this.admin.ok("GET", `/components/${this.federationId}`) as { config: Record<string, string[]> };
    for (const [k, v] of Object.entries(config)) cur.config[k] = [v];
    await this.admin.ok("PUT", `/components/${this.federationId}`, cur);
  }

  async #createComponent(rep: Record<string, unknown>): Promise<string> {
    const r = await this.admin.call("POST", "/components", rep);
    if (r.status !== 201 || !r.location) throw new Error(`POST /components (${String(rep.providerId)}): ${r.status} ${JSON.stringify(r.body)}`);
    return r.location.slice(r.location.lastIndexOf("/") + 1);
  }

  #realmRepresentation(extraClients: readonly Record<string, unknown>[]): Record<string, unknown> {
    const rep = JSON.parse(readFileSync(REALM_FIXTURE, "utf8")) as Record<string, unknown> & { clients: unknown[]; users: { username: string }[] };
    const fromLdap = new Set(Object.keys(LDAP.users));
    return {
      ...rep,
      realm: this.realm,
      // A local user named like an LDAP one (the fixture's list member lena) would shadow the federated user.
      users: rep.users.filter((u) => !fromLdap.has(u.username.toLowerCase())),
      clients: [...rep.clients, ...extraClients],
    };
  }
}

/** The LDAP user federation as an admin would set it up (README "LDAP behind Keycloak"). */
function federation(realmId: string, opts: FederationOptions): Record<string, unknown> {
  const timeouts: Record<string, string[]> = {};
  if (opts.connectionTimeoutMs !== undefined) timeouts.connectionTimeout = [String(opts.connectionTimeoutMs)];
  if (opts.readTimeoutMs !== undefined) timeouts.readTimeout = [String(opts.readTimeoutMs)];
  return {
    name: "ldap",
    providerId: "ldap",
    providerType: "org.keycloak.storage.UserStorageProvider",
    parentId: realmId,
    config: {
      enabled: ["true"],
      priority: ["0"],
      vendor: ["other"],
      connectionUrl: [opts.url],
      authType: ["simple"],
      bindDn: [LDAP.keycloak.dn],
      bindCredential: [LDAP.keycloak.password],
      usersDn: [LDAP.usersDn],
      searchScope: ["1"],
      userObjectClasses: ["inetOrgPerson"],
      usernameLDAPAttribute: ["uid"],
      rdnLDAPAttribute: ["uid"],
      uuidLDAPAttribute: ["entryUUID"],
      // Keycloak never writes to the directory; LDAP stays the authority.
      editMode: ["READ_ONLY"],
      importEnabled: ["true"],
      syncRegistrations: ["false"],
      trustEmail: ["true"],
      // Every lookup reads the entry from LDAP again: a change is seen by the next query.
      cachePolicy: ["NO_CACHE"],
      pagination: ["false"],
      fullSyncPeriod: ["-1"],
      changedSyncPeriod: ["-1"],
      ...timeouts,
    },
  };
}

/** tnMailSendAllowed -> mailSendAllowed (declared in the realm's user profile). */
function sendAllowedMapper(parentId: string): Record<string, unknown> {
  return {
    name: "mailSendAllowed",
    providerId: "user-attribute-ldap-mapper",
    providerType: "org.keycloak.storage.ldap.mappers.LDAPStorageMapper",
    parentId,
    config: {
      "ldap.attribute": ["tnMailSendAllowed"],
      "user.model.attribute": ["mailSendAllowed"],
      "read.only": ["true"],
      "always.read.value.from.ldap": ["true"],
      "is.mandatory.in.ldap": ["false"],
      "is.binary.attribute": ["false"],
    },
  };
}
