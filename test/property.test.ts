// Property tests (fast-check) for the three wire codecs: arbitrary, truncated,
// oversized, binary and non-UTF-8 input never throws out of a codec;
// re-chunking the same bytes never changes the result; encode → decode
// round-trips. Every property sets numRuns; the totals per codec are at least
// 100,000 generated cases (see the RUNS table).

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { NetstringDecoder, encodeNetstring } from "../src/protocol/netstring.js";
import { PolicyDecoder, emptyPolicyRequest } from "../src/protocol/policy.js";
import type { PolicyRequest } from "../src/protocol/policy.js";
import { parseSocketmapRequest } from "../src/protocol/socketmap.js";
import { feedNetstring, feedPolicy, type NetstringFeed, type PolicyFeed } from "./helpers/codecs.js";

/** numRuns per property; each codec's row sums to >= 100,000. */
const RUNS = {
  netstring: { noThrow: 30_000, rechunk: 30_000, roundTrip: 25_000, binaryFrames: 20_000 },
  policy: { noThrow: 30_000, rechunk: 30_000, roundTrip: 25_000, sizeCap: 20_000 },
  socketmap: { noThrow: 50_000, roundTrip: 30_000, overNetstring: 25_000 },
} as const;

const sum = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => a + b, 0);

test("every codec gets at least 100,000 generated cases", () => {
  for (const [codec, runs] of Object.entries(RUNS)) assert.ok(sum(runs) >= 100_000, `${codec}: ${sum(runs)}`);
});

// ---------- helpers ----------

/** Cut `buf` at the given points (taken modulo its length + 1). */
function chunk(buf: Uint8Array, cuts: readonly number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...at, buf.length]) {
    out.push(Buffer.from(buf.subarray(prev, c)));
    prev = c;
  }
  return out;
}

const cutsArb = fc.array(fc.nat(), { maxLength: 12 });
const concat = (parts: readonly Uint8Array[]): Uint8Array => Buffer.concat(parts);
const ascii = (s: string): Uint8Array => Buffer.from(s, "latin1");




// ---------- netstring ----------

/** Streams that look like netstrings often enough to reach every branch. */
const netstringStreamArb: fc.Arbitrary<Uint8Array> = fc
  .array(
    fc.oneof(
      { weight: 4, arbitrary: fc.uint8Array({ maxLength: 24 }).map((p) => concat([ascii(`${p.length}:`), p, ascii(",")])) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 8 }) },
      { weight: 1, arbitrary: fc.stringMatching(/^[0-9]{0,12}:?$/).map(ascii) },
      { weight: 1, arbitrary: fc.constantFrom(":", ",", "0:,", "00:,", "1:", "999999:", "3:ab", "2:ab;").map(ascii) },
    ),
    { maxLength: 10 },
  )
  .map(concat);

const netstringMaxArb = fc.oneof(fc.integer({ min: 0, max: 40 }), fc.constant(10_000));

describe("netstring properties", () => {
  test("arbitrary, truncated and binary input never throws; results are well-formed", () => {
    fc.assert(
      fc.property(fc.oneof(netstringStreamArb, fc.uint8Array({ maxLength: 64 })), netstringMaxArb, cutsArb, (input, max, cuts) => {
        const r = feedNetstring(max, chunk(input, cuts), "hex");
        for (const f of r.frames) assert.ok(f.length / 2 <= max, "no frame over the cap");
        assert.ok(r.error === null || r.error === "FORMAT" || r.error === "SIZE");
      }),
      { numRuns: RUNS.netstring.noThrow },
    );
  });

  test("re-chunking the same bytes gives the same frames and the same error", () => {
    fc.assert(
      fc.property(netstringStreamArb, netstringMaxArb, cutsArb, (input, max, cuts) => {
        const whole = feedNetstring(max, [Buffer.from(input)], "hex");
        assert.deepEqual(feedNetstring(max, chunk(input, cuts), "hex"), whole);
      }),
      { numRuns: RUNS.netstring.rechunk },
    );
  });

  test("encode → decode round-trips any strings, however the stream is cut", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: "binary", maxLength: 30 }), { maxLength: 8 }), cutsArb, (payloads, cuts) => {
        const stream = Buffer.concat(payloads.map(encodeNetstring));
        const d = new NetstringDecoder(1000);
        const got: string[] = [];
        for (const c of chunk(stream, cuts)) {
          const r = d.push(c);
          assert.equal(r.error, null);
          for (const f of r.frames) got.push(f.toString("utf8"));
        }
        assert.deepEqual(got, payloads);
        assert.equal(d.pending, 0);
      }),
      { numRuns: RUNS.netstring.roundTrip },
    );
  });

  test("binary payloads decode byte for byte; the first one over the cap is SIZE", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 8 }), fc.integer({ min: 0, max: 40 }), cutsArb, (payloads, max, cuts) => {
        const stream = concat(payloads.map((p) => concat([ascii(`${p.length}:`), p, ascii(",")])));
        const firstOver = payloads.findIndex((p) => p.length > max);
        const kept = firstOver < 0 ? payloads : payloads.slice(0, firstOver);
        const want: NetstringFeed = { frames: kept.map((p) => Buffer.from(p).toString("hex")), error: firstOver < 0 ? null : "SIZE" };
        assert.deepEqual(feedNetstring(max, chunk(stream, cuts), "hex"), want);
      }),
      { numRuns: RUNS.netstring.binaryFrames },
    );
  });
});

// ---------- policy ----------

const KNOWN_NAMES = Object.keys(emptyPolicyRequest()) as Array<keyof PolicyRequest>;

const policyBytesArb: fc.Arbitrary<Uint8Array> = fc
  .array(
    fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom("\n", "\n", "\r\n", "=", "recipient=", "sender=a@d", "x", "é", "request=smtpd_access_policy\n").map((s) => Buffer.from(s, "utf8")) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 6 }) },
      { weight: 1, arbitrary: fc.constantFrom(Buffer.from([0xff]), Buffer.from([0xc3]), Buffer.from([0x00]), Buffer.from([0xed, 0xa0, 0x80])) },
    ),
    { maxLength: 24 },
  )
  .map(concat);

const policyMaxArb = fc.oneof(fc.integer({ min: 0, max: 80 }), fc.constant(65_536));

/** Attribute values as Postfix sends them: no LF; no CR (a trailing CR is taken as CRLF). */
const valueArb = fc
  .string({ unit: "binary", maxLength: 24 })
  .map((s) => s.replace(/[\r\n]/g, "_"));

const nameArb = fc.oneof(fc.constantFrom(...KNOWN_NAMES), fc.stringMatching(/^[a-z_]{1,14}$/));

const attrsArb = fc.array(fc.tuple(nameArb, valueArb), { minLength: 1, maxLength: 10 });

function encodeRequest(attrs: ReadonlyArray<readonly [string, string]>, crlf: boolean): string {
  const eol = crlf ? "\r\n" : "\n";
  return attrs.map(([n, v]) => `${n}=${v}${eol}`).join("") + eol;
}

function expectedRequest(attrs: ReadonlyArray<readonly [string, string]>): PolicyRequest {
  const r = emptyPolicyRequest();
  for (const [n, v] of attrs) if ((KNOWN_NAMES as string[]).includes(n)) r[n as keyof PolicyRequest] = v;
  return r;
}

describe("policy properties", () => {
  test("arbitrary, truncated and binary input never throws", () => {
    fc.assert(
      fc.property(fc.oneof(policyBytesArb, fc.uint8Array({ maxLength: 64 })), policyMaxArb, cutsArb, (input, max, cuts) => {
        const d = new PolicyDecoder(max);
        for (const c of chunk(input, cuts)) {
          const r = d.push(c);
          for (const req of r.requests) for (const k of KNOWN_NAMES) assert.equal(typeof req[k], "string");
          if (r.error) assert.equal(d.midRequest, false);
        }
      }),
      { numRuns: RUNS.policy.noThrow },
    );
  });

  test("re-chunking the same bytes gives the same requests and the same error", () => {
    fc.assert(
      fc.property(policyBytesArb, policyMaxArb, cutsArb, (input, max, cuts) => {
        const whole = feedPolicy(max, [Buffer.from(input)]);
        assert.deepEqual(feedPolicy(max, chunk(input, cuts)), whole);
      }),
      { numRuns: RUNS.policy.rechunk },
    );
  });

  test("encode → decode round-trips random attribute maps, however the stream is cut", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(attrsArb, fc.boolean()), { minLength: 1, maxLength: 5 }), cutsArb, (reqs, cuts) => {
        const stream = Buffer.from(reqs.map(([a, crlf]) => encodeRequest(a, crlf)).join(""), "utf8");
        const d = new PolicyDecoder(65_536);
        const got: PolicyRequest[] = [];
        for (const c of chunk(stream, cuts)) {
          const r = d.push(c);
          assert.equal(r.error, null);
          got.push(...r.requests);
        }
        assert.deepEqual(got, reqs.map(([a]) => expectedRequest(a)));
        assert.equal(d.midRequest, false);
      }),
      { numRuns: RUNS.policy.roundTrip },
    );
  });

  test("a well-formed request is SIZE exactly when its bytes exceed the cap", () => {
    fc.assert(
      fc.property(attrsArb, fc.integer({ min: 1, max: 400 }), cutsArb, (attrs, max, cuts) => {
        const bytes = Buffer.from(encodeRequest(attrs, false), "utf8");
        const got = feedPolicy(max, chunk(bytes, cuts));
        const want: PolicyFeed = bytes.length > max ? { requests: [], error: "SIZE" } : { requests: [expectedRequest(attrs)], error: null };
        assert.deepEqual(got, want);
      }),
      { numRuns: RUNS.policy.sizeCap },
    );
  });
});

// ---------- socketmap ----------

describe("socketmap request properties", () => {
  test("arbitrary bytes never throw; a parsed request is name, one space, non-empty key", () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 48 }),
      fc.array(fc.constantFrom(0x20, 0x61, 0x40, 0xff, 0xc3, 0xa9, 0x00), { maxLength: 16 }).map((a) => Uint8Array.from(a)),
    );
    fc.assert(
      fc.property(bytes, (input) => {
        const r = parseSocketmapRequest(Buffer.from(input));
        if (r !== null) {
          assert.ok(r.map.length > 0 && !r.map.includes(" "), JSON.stringify(r));
          assert.ok(r.key.length > 0, JSON.stringify(r));
        }
      }),
      { numRuns: RUNS.socketmap.noThrow },
    );
  });

  test("NAME + ' ' + KEY parses back to NAME and KEY (KEY may contain spaces)", () => {
    const mapArb = fc.stringMatching(/^[a-z_]{1,12}$/);
    const keyArb = fc.string({ unit: "binary", minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(mapArb, keyArb, (map, key) => {
        assert.deepEqual(parseSocketmapRequest(Buffer.from(`${map} ${key}`, "utf8")), { map, key });
      }),
      { numRuns: RUNS.socketmap.roundTrip },
    );
  });

  test("requests framed as netstrings and cut anywhere parse back in order", () => {
    const reqArb = fc.tuple(fc.constantFrom("alias", "domain", "mailbox", "senders"), fc.string({ unit: "binary", minLength: 1, maxLength: 30 }));
    fc.assert(
      fc.property(fc.array(reqArb, { maxLength: 6 }), cutsArb, (reqs, cuts) => {
        const stream = Buffer.concat(reqs.map(([m, k]) => encodeNetstring(`${m} ${k}`)));
        const d = new NetstringDecoder(10_000);
        const got: Array<{ map: string; key: string } | null> = [];
        for (const c of chunk(stream, cuts)) {
          const r = d.push(c);
          assert.equal(r.error, null);
          for (const f of r.frames) got.push(parseSocketmapRequest(f));
        }
        assert.deepEqual(got, reqs.map(([map, key]) => ({ map, key })));
      }),
      { numRuns: RUNS.socketmap.overNetstring },
    );
  });
});
