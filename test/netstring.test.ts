// Netstring codec (socketmap framing, PROTOCOLS.md 2.2): encoder byte counts,
// incremental decoding under every split, and the typed errors.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { NetstringDecoder, encodeNetstring } from "../src/protocol/netstring.js";
import type { NetstringError } from "../src/protocol/netstring.js";
import { feedNetstring, oneByOne } from "./helpers/codecs.js";

const b = (s: string): Buffer => Buffer.from(s, "latin1");
const texts = (frames: readonly Buffer[]): string[] => frames.map((f) => f.toString("utf8"));



describe("encodeNetstring", () => {
  const cases: Array<{ payload: string; want: Buffer }> = [
    { payload: "", want: b("0:,") },
    { payload: "OK admin@example.com", want: b("20:OK admin@example.com,") },
    // The example exchange of PROTOCOLS.md 2.2 (its prefixes there, 31 and 26, are miscounted).
    { payload: "alias postmaster+x@example.com", want: b("30:alias postmaster+x@example.com,") },
    // The prefix counts UTF-8 bytes, not UTF-16 code units.
    { payload: "é", want: Buffer.concat([b("2:"), Buffer.from([0xc3, 0xa9]), b(",")]) },
    { payload: "OK jürgen@ex.com", want: Buffer.concat([b("17:"), Buffer.from("OK jürgen@ex.com", "utf8"), b(",")]) },
    { payload: "😀", want: Buffer.concat([b("4:"), Buffer.from([0xf0, 0x9f, 0x98, 0x80]), b(",")]) },
  ];
  for (const { payload, want } of cases) {
    test(`encode ${JSON.stringify(payload)}`, () => {
      const got = encodeNetstring(payload);
      assert.deepEqual(got, want, `got ${got.toString("latin1")}, want ${want.toString("latin1")}`);
    });
  }

  test("the length prefix is Buffer.byteLength, not string length", () => {
    for (const s of ["é", "ñandú", "日本語", "a😀b"]) {
      const got = encodeNetstring(s).toString("latin1");
      assert.ok(got.startsWith(`${Buffer.byteLength(s, "utf8")}:`), `${s}: got ${got}`);
      assert.notEqual(Buffer.byteLength(s, "utf8"), s.length);
    }
  });
});

describe("NetstringDecoder: whole and split input", () => {
  test("one whole frame", () => {
    const d = new NetstringDecoder(100);
    const r = d.push(b("5:hello,"));
    assert.equal(r.error, null);
    assert.deepEqual(texts(r.frames), ["hello"]);
    assert.equal(d.pending, 0);
  });

  test("empty payload 0:, is a frame with no bytes", () => {
    const r = new NetstringDecoder(100).push(b("0:,"));
    assert.equal(r.error, null);
    assert.equal(r.frames.length, 1);
    assert.equal(r.frames[0]!.length, 0);
  });

  test("many frames in one chunk, in order", () => {
    const input = b("3:abc,0:,1:x,11:alias a@b.c,5:hello,");
    const got = feedNetstring(100, [input]);
    assert.deepEqual(got, { frames: ["abc", "", "x", "alias a@b.c", "hello"], error: null });
  });

  test("an encoded UTF-8 payload decodes back", () => {
    const got = feedNetstring(100, [encodeNetstring("OK jürgen@ex.com"), encodeNetstring("é")]);
    assert.deepEqual(got, { frames: ["OK jürgen@ex.com", "é"], error: null });
  });

  const stream = Buffer.concat([
    encodeNetstring("alias postmaster+x@example.com"),
    encodeNetstring(""),
    encodeNetstring("domain é.example"),
    encodeNetstring("x"),
  ]);
  const want = ["alias postmaster+x@example.com", "", "domain é.example", "x"];

  test("split into two at every byte boundary gives the same frames", () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const got = feedNetstring(100, [stream.subarray(0, cut), stream.subarray(cut)]);
      assert.deepEqual(got, { frames: want, error: null }, `cut at ${cut}`);
    }
  });

  test("split into three at every pair of boundaries gives the same frames", () => {
    for (let i = 0; i <= stream.length; i += 3) {
      for (let j = i; j <= stream.length; j++) {
        const got = feedNetstring(100, [stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)]);
        assert.deepEqual(got, { frames: want, error: null }, `cuts at ${i}, ${j}`);
      }
    }
  });

  test("fed one byte at a time gives the same frames", () => {
    assert.deepEqual(feedNetstring(100, oneByOne(stream)), { frames: want, error: null });
  });

  test("a frame is emitted only once its comma has arrived", () => {
    const d = new NetstringDecoder(100);
    assert.deepEqual(d.push(b("5:hel")).frames, []);
    assert.deepEqual(d.push(b("lo")).frames, []);
    assert.equal(d.pending, 7);
    assert.deepEqual(texts(d.push(b(",")).frames), ["hello"]);
    assert.equal(d.pending, 0);
  });

  test("payload bytes are passed through untouched (binary, ':' and ',' inside)", () => {
    const payload = Buffer.from([0x00, 0xff, 0x2c, 0x3a, 0x0a, 0xc3]);
    const frame = Buffer.concat([b("6:"), payload, b(",")]);
    const r = new NetstringDecoder(10).push(frame);
    assert.equal(r.error, null);
    assert.deepEqual(r.frames, [payload]);
  });

  test("a payload of exactly the cap is accepted", () => {
    const got = feedNetstring(5, [b("5:abcde,")]);
    assert.deepEqual(got, { frames: ["abcde"], error: null });
  });

  test("a 10-digit prefix is still a prefix (leading zeros)", () => {
    const got = feedNetstring(100, [b("0000000003:abc,")]);
    assert.deepEqual(got, { frames: ["abc"], error: null });
  });
});

describe("NetstringDecoder: errors", () => {
  const cases: Array<{ name: string; max: number; input: string; want: { frames: string[]; error: NetstringError | null } }> = [
    { name: "missing comma", max: 100, input: "3:abcX", want: { frames: [], error: "FORMAT" } },
    { name: "newline in place of the comma", max: 100, input: "3:abc\n", want: { frames: [], error: "FORMAT" } },
    { name: "non-digit in the prefix", max: 100, input: "1x:a,", want: { frames: [], error: "FORMAT" } },
    { name: "letter first", max: 100, input: "abc", want: { frames: [], error: "FORMAT" } },
    { name: "sign in the prefix", max: 100, input: "-1:a,", want: { frames: [], error: "FORMAT" } },
    { name: "space before the prefix", max: 100, input: " 1:a,", want: { frames: [], error: "FORMAT" } },
    { name: "':' without digits", max: 100, input: ":abc,", want: { frames: [], error: "FORMAT" } },
    { name: "length over the cap", max: 10, input: "11:", want: { frames: [], error: "SIZE" } },
    { name: "huge length, still within 10 digits", max: 10_000, input: "9999999999:", want: { frames: [], error: "SIZE" } },
    { name: "11-digit prefix", max: 100, input: "00000000001:a,", want: { frames: [], error: "FORMAT" } },
    { name: "11 digits, no ':' yet", max: 100, input: "12345678901", want: { frames: [], error: "FORMAT" } },
    { name: "frames before the error are kept", max: 100, input: "1:a,2:bc,3:xyzQ", want: { frames: ["a", "bc"], error: "FORMAT" } },
    { name: "frames before a SIZE error are kept", max: 5, input: "1:a,6:", want: { frames: ["a"], error: "SIZE" } },
  ];
  for (const { name, max, input, want } of cases) {
    test(`${name}: ${JSON.stringify(input)} -> ${want.error}`, () => {
      assert.deepEqual(feedNetstring(max, [b(input)]), want);
    });
    test(`${name}: same result fed byte by byte`, () => {
      assert.deepEqual(feedNetstring(max, oneByOne(b(input))), want);
    });
  }

  test("SIZE is reported as soon as the prefix is known, before any payload byte", () => {
    const d = new NetstringDecoder(1000);
    assert.deepEqual(d.push(b("100")), { frames: [], error: null }); // prefix not complete yet
    assert.deepEqual(d.push(b("000")), { frames: [], error: null });
    const r = d.push(b(":"));
    assert.equal(r.error, "SIZE");
  });

  test("up to 10 digits without ':' is waiting, not an error", () => {
    const d = new NetstringDecoder(100);
    assert.deepEqual(d.push(b("0000000001")), { frames: [], error: null });
    assert.deepEqual(texts(d.push(b(":a,")).frames), ["a"]);
  });

  test("the decoder stays dead after an error, even for valid input", () => {
    const d = new NetstringDecoder(100);
    assert.equal(d.push(b("x")).error, "FORMAT");
    for (const next of ["1:a,", "0:,", ""]) {
      assert.deepEqual(d.push(b(next)), { frames: [], error: "FORMAT" }, `after error, pushed ${JSON.stringify(next)}`);
    }
    const s = new NetstringDecoder(3);
    assert.equal(s.push(b("4:")).error, "SIZE");
    assert.deepEqual(s.push(b("1:a,")), { frames: [], error: "SIZE" });
  });

  test("an error drops the buffered bytes", () => {
    const d = new NetstringDecoder(100);
    d.push(b("5:ab"));
    assert.equal(d.pending, 4);
    assert.equal(d.push(b("cdeX")).error, "FORMAT");
    assert.equal(d.pending, 0);
  });
});
