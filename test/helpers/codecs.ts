// Feeding the incremental decoders in the codec and property tests: every
// chunk in order, everything collected, the first error kept; once dead, a
// decoder must return nothing more.

import assert from "node:assert/strict";
import { NetstringDecoder, type NetstringError } from "../../src/protocol/netstring.js";
import { PolicyDecoder, type PolicyDecodeError, type PolicyRequest } from "../../src/protocol/policy.js";

export interface NetstringFeed {
  /** Frames decoded as `encoding` ("hex" compares binary frames by content). */
  frames: string[];
  error: NetstringError | null;
}

export function feedNetstring(max: number, chunks: readonly Buffer[], encoding: "utf8" | "hex" = "utf8"): NetstringFeed {
  const d = new NetstringDecoder(max);
  const frames: string[] = [];
  let error: NetstringError | null = null;
  for (const c of chunks) {
    const r = d.push(c);
    for (const f of r.frames) frames.push(f.toString(encoding));
    if (r.error) {
      if (error === null) error = r.error;
      else assert.equal(r.frames.length, 0, "a dead decoder returns no frames");
    }
  }
  return { frames, error };
}

export interface PolicyFeed {
  requests: PolicyRequest[];
  error: PolicyDecodeError | null;
}

export function feedPolicy(max: number, chunks: readonly Buffer[]): PolicyFeed {
  const d = new PolicyDecoder(max);
  const requests: PolicyRequest[] = [];
  let error: PolicyDecodeError | null = null;
  for (const c of chunks) {
    const r = d.push(c);
    requests.push(...r.requests);
    if (r.error) {
      if (error === null) error = r.error;
      else assert.equal(r.requests.length, 0, "a dead decoder returns no requests");
    }
  }
  return { requests, error };
}

/** `buf` as one-byte chunks. */
export function oneByOne(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i++) out.push(buf.subarray(i, i + 1));
  return out;
}
