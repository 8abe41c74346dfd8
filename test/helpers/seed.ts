// Rows written straight through an AdminStore, of either backend (no CLI, no
// Argon2: apps get the fake hashes given), for tests that need a populated
// database before the code under test reads it.

import type { AdminStore } from "../../src/store/types.js";

type Pairs = readonly (readonly [string, string])[];

export interface Seed {
  readonly domains?: readonly string[];
  /** [alias, user]; each alias's domain must be among `domains`. */
  readonly aliases?: Pairs;
  /** [app id, secret hash]. */
  readonly apps?: Pairs;
  /** [app id, address it may send as]. */
  readonly senders?: Pairs;
  /** Turned off once everything above is written. */
  readonly disabled?: {
    readonly domains?: readonly string[];
    readonly aliases?: readonly string[];
    readonly apps?: readonly string[];
  };
}

/** Write `seed` through `store`, in the order a fresh database needs (domains first). */
export async function seedStore(store: AdminStore, seed: Seed): Promise<void> {
  for (const d of seed.domains ?? []) await store.addDomain(d);
  for (const [alias, user] of seed.aliases ?? []) await store.addAlias(alias, user);
  for (const [id, hash] of seed.apps ?? []) await store.upsertApp(id, hash);
  for (const [id, addr] of seed.senders ?? []) await store.allowAppSender(id, addr);
  for (const d of seed.disabled?.domains ?? []) await store.setDomainEnabled(d, false);
  for (const a of seed.disabled?.aliases ?? []) await store.setAliasEnabled(a, false);
  for (const id of seed.disabled?.apps ?? []) await store.setAppEnabled(id, false);
}
