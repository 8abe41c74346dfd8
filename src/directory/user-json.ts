// Reading users out of an IdP's JSON: type guards, the lower-cased detached
// strings the cache keeps, and attribute sets shared between cached users.

import { detach } from "../strings.js";

export type Attributes = Readonly<Record<string, readonly string[]>>;

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Lower-cased and detached: the user is cached, the response text it was parsed from is not. */
export function lower(v: unknown): string | null {
  return typeof v === "string" ? detach(v.toLowerCase()) : null;
}

const NO_ATTRIBUTES: Attributes = Object.freeze({});
/** Distinct attribute sets seen (most users share one, e.g. {mailSendAllowed: ["true"]}); bounded. */
const ATTRIBUTE_SETS = new Map<string, Attributes>();
const MAX_ATTRIBUTE_SETS = 1024;

/**
 * The attributes of `v` named in `wanted` (all when undefined), each value
 * turned into a list of strings by `values` (null drops the attribute).
 */
export function userAttributes(
  v: unknown,
  wanted: readonly string[] | undefined,
  values: (value: unknown) => readonly string[] | null,
): Attributes {
  if (!isRecord(v) || wanted?.length === 0) return NO_ATTRIBUTES;
  const out: Record<string, readonly string[]> = {};
  let n = 0;
  for (const [name, value] of Object.entries(v)) {
    if (wanted !== undefined && !wanted.includes(name)) continue;
    const list = values(value);
    if (list === null) continue;
    out[name] = list;
    n++;
  }
  if (n === 0) return NO_ATTRIBUTES;
  // Cached users share equal attribute sets instead of holding a copy each.
  const key = JSON.stringify(out);
  const shared = ATTRIBUTE_SETS.get(key);
  if (shared) return shared;
  const frozen: Attributes = Object.freeze(Object.fromEntries(Object.entries(out).map(([k, vs]) => [k, Object.freeze([...vs])])));
  if (ATTRIBUTE_SETS.size < MAX_ATTRIBUTE_SETS) ATTRIBUTE_SETS.set(key, frozen);
  return frozen;
}
