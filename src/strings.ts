// String helpers with memory in mind.

/**
 * A copy of `s` that keeps nothing else alive. Values parsed from a request
 * are slices of the whole request text; a key or value kept in a cache must
 * not retain that text (V8 sliced strings hold their parent).
 */
export function detach(s: string): string {
  // A JSON round trip is exact for every string (lone surrogates included)
  // and yields a flat string; concatenating and slicing yields another slice.
  return JSON.parse(JSON.stringify(s)) as string;
}
