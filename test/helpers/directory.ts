// The identity sources the specification runs against: the static source,
// the Keycloak emulator (test/fake-keycloak.ts), a real Keycloak and the
// Authentik emulator (test/fake-authentik.ts), all holding the people of
// test/fixtures/keycloak-realm.json, so the same rows can be asked of each
// (helpers/tables.ts).
//
// The decision tables take a TableSource (just the idp section to give the
// daemon); the SMTP suite takes a DirectoryController, which also changes
// users, takes the server down and up, and counts token requests.

import { FakeAuthentik } from "../fake-authentik.js";
import type { FakeKeycloak } from "../fake-keycloak.js";
import { mergeTree, type ConfigTree } from "./daemon.js";
import { metric, scrape } from "./faults.js";
import { fixtureUsers, startFixtureFake } from "./fixture-users.js";
import { FIXTURE, KeycloakAdmin, KeycloakServer, releaseKeycloak, sharedKeycloak } from "./keycloak-real.js";

// ---- the fixture's people ----

/** A person of the fixture (no service account), as mailcloak's static source and the Authentik emulator take one. */
export interface FixturePerson {
  username: string;
  email?: string;
  enabled: boolean;
  attributes?: Record<string, string[]>;
}

/** The fixture's people: its users without the clients' service accounts (the Keycloak emulator takes all: helpers/fixture-users.ts). */
export function fixturePeople(): FixturePerson[] {
  return fixtureUsers().filter((u) => u.serviceAccountClientId === undefined).map((u) => ({
    username: u.username,
    ...(u.email !== undefined ? { email: u.email } : {}),
    enabled: u.enabled ?? true,
    ...(u.attributes !== undefined ? { attributes: structuredClone(u.attributes) } : {}),
  }));
}

/**
 * A running Authentik emulator with the fixture's people, stored as typed
 * (Authentik keeps case) with their attributes as string lists.
 */
export async function startAuthentikEmulator(): Promise<FakeAuthentik> {
  const fake = await FakeAuthentik.start();
  for (const p of fixturePeople()) {
    fake.addUser({ username: p.username, isActive: p.enabled, ...(p.email !== undefined ? { email: p.email } : {}), ...(p.attributes !== undefined ? { attributes: p.attributes } : {}) });
  }
  return fake;
}

/** mailcloak's idp section for the Authentik emulator. */
export function authentikIdpFor(fake: FakeAuthentik, authentik: ConfigTree = {}): ConfigTree {
  return { idp: { provider: "authentik", static: null, authentik: { base_url: fake.url, api_token: fake.token, ...authentik } } };
}

/** mailcloak's idp section for a Keycloak (emulated or real) serving the fixture realm. */
export function keycloakIdpFor(baseUrl: string, keycloak: ConfigTree = {}): ConfigTree {
  return {
    idp: {
      provider: "keycloak",
      static: null,
      keycloak: { base_url: baseUrl, realm: FIXTURE.realm, client_id: FIXTURE.client.id, client_secret: FIXTURE.client.secret, ...keycloak },
    },
  };
}

// ---- sources for the decision tables ----

export interface TableSource {
  readonly name: string;
  /** Why these rows cannot run here (outside CI), or null. */
  readonly skip: string | null;
  /** Config merged over the daemon's base config: the idp section. */
  config(extra?: ConfigTree): ConfigTree;
  /** Changing the directory's users while the daemon runs (null: the static source cannot). */
  readonly users: DirectoryUsers | null;
}

export interface UserPatch {
  attributes?: Record<string, string[]>;
  enabled?: boolean;
}

/** User changes, made the way the directory takes them (the emulator's methods, or the admin REST API). */
export interface DirectoryUsers {
  add(username: string, email: string): Promise<void>;
  update(username: string, patch: UserPatch): Promise<void>;
  remove(username: string): Promise<void>;
}

export function emulatorUsersAdmin(fake: FakeKeycloak): DirectoryUsers {
  return {
    add: async (username, email) => void fake.addUser({ username, email }),
    update: async (username, patch) => void fake.updateUser(username, patch),
    remove: async (username) => void fake.removeUser(username),
  };
}

export function realUsersAdmin(admin: KeycloakAdmin): DirectoryUsers {
  return {
    add: async (username, email) => void await admin.ok("POST", "/users", { username, email, enabled: true, emailVerified: true }),
    update: (username, patch) => admin.updateUser(username, { ...patch }),
    remove: async (username) => void await admin.ok("DELETE", `/users/${await admin.userId(username)}`),
  };
}

/** The static source with the fixture's people (no Keycloak at all). */
export const staticSource: TableSource = {
  name: "static",
  skip: null,
  config: (extra = {}) => mergeTree({
    idp: {
      provider: "static",
      static: {
        users: fixturePeople(),
      },
    },
  }, extra),
  users: null,
};

/**
 * The emulator and the run's shared real Keycloak. Call release() from
 * after(): it stops the emulator and, when this file started its own real
 * server, that one.
 */
export async function tableSources(): Promise<{ sources: TableSource[]; emulator: FakeKeycloak; release(): Promise<void> }> {
  const emulator = await startFixtureFake();
  const real = await sharedKeycloak();
  const sources: TableSource[] = [
    { name: "emulator", skip: null, config: (extra = {}) => mergeTree(keycloakIdpFor(emulator.url), extra), users: emulatorUsersAdmin(emulator) },
    {
      name: "real Keycloak",
      skip: "skip" in real ? real.skip : null,
      // A generous deadline: the machine is shared and the first calls warm the server up.
      config: (extra = {}) => mergeTree("skip" in real ? {} : keycloakIdpFor(real.baseUrl, { timeout_ms: 10_000 }), extra),
      users: "skip" in real ? null : realUsersAdmin(new KeycloakAdmin(real.baseUrl)),
    },
  ];
  return {
    sources,
    emulator,
    release: async () => {
      await emulator.stop();
      await releaseKeycloak();
    },
  };
}

// ---- the SMTP suite's controller ----

export interface DirectoryCounts {
  /** Token requests (client_credentials grants asked for, answered or not). */
  readonly tokens: number;
  /** User queries (GETs of the users endpoints). */
  readonly userQueries: number;
}

/** What the SMTP suite does to the directory behind mailcloak. */
export interface DirectoryController {
  readonly name: "emulator" | "real Keycloak";
  readonly baseUrl: string;
  /** The lifetime tokens get when nobody shortened it. */
  readonly defaultTokenLifespan: number;
  /** mailcloak's idp section for this directory. */
  idp(keycloak?: ConfigTree): ConfigTree;
  updateUser(username: string, patch: UserPatch): Promise<void>;
  /** Take the directory away (connections refused) until up(). */
  down(): Promise<void>;
  /** Bring it back on the same address and wait until it answers. */
  up(): Promise<void>;
  /** Lifetime (seconds) of the tokens issued from now on. */
  setTokenLifespan(seconds: number): Promise<void>;
  /** Invalidate every token issued so far. */
  revokeTokens(): Promise<void>;
  /** Counts so far: the emulator's own, or mailcloak's /metrics on `metricsPort` for the real server. */
  counts(metricsPort: number): Promise<DirectoryCounts>;
  dispose(): Promise<void>;
}

export class EmulatorDirectory implements DirectoryController {
  readonly name = "emulator";
  /** The fixture realm's, as the emulator was given it. */
  readonly defaultTokenLifespan: number;

  private constructor(readonly fake: FakeKeycloak) {
    this.defaultTokenLifespan = fake.expiresIn;
  }

  static async start(): Promise<EmulatorDirectory> {
    return new EmulatorDirectory(await startFixtureFake());
  }

  get baseUrl(): string {
    return this.fake.url;
  }

  idp(keycloak: ConfigTree = {}): ConfigTree {
    return keycloakIdpFor(this.fake.url, keycloak).idp as ConfigTree;
  }

  async updateUser(username: string, patch: UserPatch): Promise<void> {
    this.fake.updateUser(username, patch);
  }

  down(): Promise<void> {
    return this.fake.down();
  }

  up(): Promise<void> {
    return this.fake.up();
  }

  async setTokenLifespan(seconds: number): Promise<void> {
    this.fake.expiresIn = seconds;
  }

  async revokeTokens(): Promise<void> {
    this.fake.expireAllTokens();
  }

  async counts(): Promise<DirectoryCounts> {
    return { tokens: this.fake.tokenRequests, userQueries: this.fake.userQueries };
  }

  dispose(): Promise<void> {
    return this.fake.stop();
  }
}

/** A real Keycloak this suite owns (never the run's shared one: down() stops it). */
export class RealDirectory implements DirectoryController {
  readonly name = "real Keycloak";
  readonly defaultTokenLifespan = FIXTURE.tokenLifespanSeconds;
  admin: KeycloakAdmin;

  private constructor(readonly server: KeycloakServer) {
    this.admin = new KeycloakAdmin(server.baseUrl);
  }

  static async start(): Promise<RealDirectory> {
    const d = new RealDirectory(await KeycloakServer.start());
    try {
      await d.#warmUp();
    } catch (err) {
      await d.dispose();
      throw err;
    }
    return d;
  }

  /**
   * A fresh server answers its first token and users requests slowly (seconds
   * on a busy machine: classes load, caches fill); ask a few of each before
   * mailcloak does, so the first lookups are not timed out.
   */
  async #warmUp(): Promise<void> {
    const base = this.server.baseUrl;
    for (let i = 0; i < 3; i++) {
      const t = await fetch(`${base}/realms/${FIXTURE.realm}/protocol/openid-connect/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "client_credentials", client_id: FIXTURE.client.id, client_secret: FIXTURE.client.secret }),
      });
      if (!t.ok) throw new Error(`warm-up token: ${t.status} ${await t.text()}`);
      const { access_token: token } = await t.json() as { access_token: string };
      for (const q of ["username=alice", "email=dave%40d2.test"]) {
        const r = await fetch(`${base}/admin/realms/${FIXTURE.realm}/users?${q}&exact=true&max=2&briefRepresentation=false`, { headers: { authorization: `Bearer ${token}` } });
        if (!r.ok) throw new Error(`warm-up users query: ${r.status} ${await r.text()}`);
        await r.arrayBuffer();
      }
    }
  }

  get baseUrl(): string {
    return this.server.baseUrl;
  }

  idp(keycloak: ConfigTree = {}): ConfigTree {
    return keycloakIdpFor(this.server.baseUrl, keycloak).idp as ConfigTree;
  }

  updateUser(username: string, patch: UserPatch): Promise<void> {
    return this.admin.updateUser(username, { ...patch });
  }

  down(): Promise<void> {
    return this.server.stop();
  }

  /** Start again (the realm is imported afresh: changes made before down() are gone). */
  async up(): Promise<void> {
    await this.server.resume(300_000); // a busy machine has been seen to need 150 s
    this.admin = new KeycloakAdmin(this.server.baseUrl); // the old admin token died with the old master realm
    await this.#warmUp();
  }

  async setTokenLifespan(seconds: number): Promise<void> {
    await this.#patchRealm({ accessTokenLifespan: seconds });
  }

  /** The realm's not-before time ("Revocation: set to now" in the admin console). */
  async revokeTokens(): Promise<void> {
    await this.#patchRealm({ notBefore: Math.floor(Date.now() / 1000) });
  }

  async #patchRealm(patch: Record<string, unknown>): Promise<void> {
    const cur = await this.admin.ok("GET", "") as Record<string, unknown>;
    await this.admin.ok("PUT", "", { ...cur, ...patch });
  }

  async counts(metricsPort: number): Promise<DirectoryCounts> {
    const text = await scrape(metricsPort);
    return {
      tokens: metric(text, "mailcloak_keycloak_requests_total", { op: "token" }),
      userQueries: metric(text, "mailcloak_keycloak_requests_total", { op: "users" }),
    };
  }

  dispose(): Promise<void> {
    return this.server.dispose();
  }
}
