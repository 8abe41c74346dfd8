// Users listed in the config (idp.static.users): for development, demos and
// tests that need no Keycloak. Answers never fail.

import type { StaticUser } from "../config/types.js";
import { found, NOT_FOUND, type DirectoryUser, type IdentitySource, type Lookup } from "./lookup.js";

export class StaticSource implements IdentitySource {
  readonly name = "static";
  readonly #byUsername = new Map<string, DirectoryUser>();
  readonly #byEmail = new Map<string, DirectoryUser>();

  constructor(users: readonly StaticUser[]) {
    for (const u of users) {
      this.#byUsername.set(u.username, u);
      if (u.email) this.#byEmail.set(u.email, u);
    }
  }

  async userByUsername(username: string): Promise<Lookup<DirectoryUser>> {
    const u = this.#byUsername.get(username);
    return u ? found(u) : NOT_FOUND;
  }

  async userByEmail(email: string): Promise<Lookup<DirectoryUser>> {
    const u = this.#byEmail.get(email);
    return u ? found(u) : NOT_FOUND;
  }

  async close(): Promise<void> {}
}
