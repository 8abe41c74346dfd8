// Does the directory cache fit the V8 heap this process was given? The
// service files cap the heap (NODE_OPTIONS) so V8 collects garbage instead of
// growing lazily; a cache bound far above what that heap can hold would end
// in an out-of-memory abort under load, so the mismatch is reported at start.

import { getHeapStatistics } from "node:v8";

/** Measured (heap after a full GC, Keycloak answers): ~0.26 KB per cached entry; rounded up. */
const BYTES_PER_ENTRY = 400;
/** The daemon's own heap before any lookup (modules, buffers), rounded up. */
const BASE_BYTES = 30 * 2 ** 20;
/** Leave room for garbage between collections. */
const MAX_SHARE = 0.8;

export interface HeapFit {
  readonly neededMb: number;
  readonly limitMb: number;
  readonly fits: boolean;
}

export function heapFit(maxEntries: number, limitBytes = getHeapStatistics().heap_size_limit): HeapFit {
  const needed = BASE_BYTES + maxEntries * BYTES_PER_ENTRY;
  return { neededMb: Math.ceil(needed / 2 ** 20), limitMb: Math.floor(limitBytes / 2 ** 20), fits: needed <= limitBytes * MAX_SHARE };
}
