// Keycloak groups for the distribution-list tests, changed the way each
// directory takes changes: the emulator's methods, or a real Keycloak's admin
// REST API. Each suite builds its lists under a parent group of its own, so a
// realm shared with other test files never sees them (their lists.parent_group
// is /lists) and a membership removed here removes nothing they rely on.

import { randomBytes } from "node:crypto";
import type { FakeKeycloak } from "../fake-keycloak.js";
import type { ConfigTree } from "./daemon.js";
import { keycloakIdpFor } from "./directory.js";
import { startFixtureFake } from "./fixture-users.js";
import { KeycloakAdmin, releaseKeycloak, sharedKeycloak } from "./keycloak-real.js";

export interface ListGroups {
  readonly name: "emulator" | "real Keycloak";
  /** This suite's own lists.parent_group. */
  readonly parentGroup: string;
  /** mailcloak's idp section for this directory. */
  idp(keycloak?: ConfigTree): ConfigTree;
  /** Create a group (path under parentGroup, e.g. "crew/core"; its ancestors must exist) with these attributes. */
  addGroup(path: string, attributes?: Record<string, string[]>): Promise<void>;
  addMember(username: string, path: string): Promise<void>;
  removeMember(username: string, path: string): Promise<void>;
  /** Remove what this suite created; stop what it started. */
  dispose(): Promise<void>;
}

/** A parent group name no other run or file uses. */
function ownParent(): string {
  return `/e2e-lists-${randomBytes(4).toString("hex")}`;
}

export class EmulatorListGroups implements ListGroups {
  readonly name = "emulator";
  readonly parentGroup = ownParent();

  private constructor(readonly fake: FakeKeycloak) {}

  static async start(): Promise<EmulatorListGroups> {
    const g = new EmulatorListGroups(await startFixtureFake());
    g.fake.addGroup(g.parentGroup);
    return g;
  }

  idp(keycloak: ConfigTree = {}): ConfigTree {
    return keycloakIdpFor(this.fake.url, keycloak).idp as ConfigTree;
  }

  async addGroup(path: string, attributes: Record<string, string[]> = {}): Promise<void> {
    this.fake.addGroup(`${this.parentGroup}/${path}`, attributes);
  }

  async addMember(username: string, path: string): Promise<void> {
    this.fake.addMember(username, `${this.parentGroup}/${path}`);
  }

  async removeMember(username: string, path: string): Promise<void> {
    this.fake.removeMember(username, `${this.parentGroup}/${path}`);
  }

  dispose(): Promise<void> {
    return this.fake.stop();
  }
}

/** The run's shared real Keycloak (test/run.ts), or one started for this file; groups made through the admin REST API. */
export class RealListGroups implements ListGroups {
  readonly name = "real Keycloak";
  readonly parentGroup = ownParent();
  readonly admin: KeycloakAdmin;

  private constructor(readonly baseUrl: string) {
    this.admin = new KeycloakAdmin(baseUrl);
  }

  /** A skip reason when no real Keycloak can run here (outside CI; sharedKeycloak() throws in CI). */
  static async start(): Promise<RealListGroups | { skip: string }> {
    const kc = await sharedKeycloak();
    if ("skip" in kc) return kc;
    const g = new RealListGroups(kc.baseUrl);
    try {
      await g.admin.ok("POST", "/groups", { name: g.parentGroup.slice(1) });
    } catch (err) {
      await releaseKeycloak();
      throw err;
    }
    return g;
  }

  idp(keycloak: ConfigTree = {}): ConfigTree {
    return keycloakIdpFor(this.baseUrl, keycloak).idp as ConfigTree;
  }

  async #groupId(fullPath: string): Promise<string> {
    const enc = fullPath.split("/").slice(1).map(encodeURIComponent).join("/");
    const g = await this.admin.ok("GET", `/group-by-path/${enc}`) as { id?: unknown };
    if (typeof g.id !== "string") throw new Error(`Keycloak group ${fullPath}: no id in ${JSON.stringify(g)}`);
    return g.id;
  }

  async addGroup(path: string, attributes: Record<string, string[]> = {}): Promise<void> {
    const full = `${this.parentGroup}/${path}`;
    const cut = full.lastIndexOf("/");
    const parentId = await this.#groupId(full.slice(0, cut));
    await this.admin.ok("POST", `/groups/${parentId}/children`, { name: full.slice(cut + 1), attributes });
    // Read back: a list without its address would make every later assertion misleading.
    const id = await this.#groupId(full);
    const got = await this.admin.ok("GET", `/groups/${id}`) as { attributes?: Record<string, string[]> };
    for (const [k, v] of Object.entries(attributes)) {
      if (JSON.stringify(got.attributes?.[k]) !== JSON.stringify(v)) throw new Error(`Keycloak group ${full}: attribute ${k} reads ${JSON.stringify(got.attributes?.[k])}, not ${JSON.stringify(v)}`);
    }
  }

  async addMember(username: string, path: string): Promise<void> {
    await this.admin.ok("PUT", `/users/${await this.admin.userId(username)}/groups/${await this.#groupId(`${this.parentGroup}/${path}`)}`);
  }

  async removeMember(username: string, path: string): Promise<void> {
    await this.admin.ok("DELETE", `/users/${await this.admin.userId(username)}/groups/${await this.#groupId(`${this.parentGroup}/${path}`)}`);
  }

  /** Delete the parent group (its subgroups and memberships go with it), then release the server. */
  async dispose(): Promise<void> {
    try {
      await this.admin.ok("DELETE", `/groups/${await this.#groupId(this.parentGroup)}`);
    } finally {
      await releaseKeycloak();
    }
  }
}
