// The cache: section. The positive TTL comes from the IdP section (Go's
// place for it); the negative TTL defaults to at most that.

import { int } from "./fields.js";
import type { Section } from "./reader.js";
import { CACHE } from "./schema.js";
import type { Config } from "./types.js";

const C = CACHE.settings;

export function buildCache(s: Section, ttlSeconds: number): Config["cache"] {
  const maxEntries = int(s, C.max_entries);
  const negativeTtlSeconds = int(s, C.negative_ttl_seconds, Math.min(C.negative_ttl_seconds.default, ttlSeconds));
  const staleSeconds = int(s, C.stale_seconds);
  s.finish();
  return { ttlSeconds, negativeTtlSeconds, maxEntries, staleSeconds };
}
