// Socketmap payload codec (PROTOCOLS.md 2.3, 2.4): "NAME KEY" requests and
// the OK / NOTFOUND / TEMP / PERM reply forms.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { NOTFOUND, formatSocketmapReply, isBlankRequest, ok, parseSocketmapRequest, perm, temp } from "../src/protocol/socketmap.js";
import type { SocketmapReply, SocketmapRequest } from "../src/protocol/socketmap.js";

const b = (s: string): Buffer => Buffer.from(s, "utf8");

describe("parseSocketmapRequest", () => {
  const cases: Array<{ input: string; want: SocketmapRequest | null }> = [
    { input: "alias postmaster+x@example.com", want: { map: "alias", key: "postmaster+x@example.com" } },
    { input: "domain example.com", want: { map: "domain", key: "example.com" } },
    // Split at the FIRST space: a quoted local part may contain spaces.
    { input: 'alias "john doe"@example.com', want: { map: "alias", key: '"john doe"@example.com' } },
    { input: "mailbox a b c", want: { map: "mailbox", key: "a b c" } },
    { input: "alias  x", want: { map: "alias", key: " x" } },
    { input: "alias x ", want: { map: "alias", key: "x " } },
    { input: "senders jürgen@exämple.test", want: { map: "senders", key: "jürgen@exämple.test" } },
    { input: "a b", want: { map: "a", key: "b" } },
    // Not requests.
    { input: "", want: null },
    { input: "alias", want: null }, // no space
    { input: "alias ", want: null }, // empty key
    { input: " alias x", want: { map: "alias", key: "x" } }, // leading whitespace trimmed, as the Go version
    { input: " \talias x", want: { map: "alias", key: "x" } },
    { input: "alias\tx", want: null }, // split at a space only
    { input: " ", want: null },
  ];
  for (const { input, want } of cases) {
    test(`${JSON.stringify(input)} -> ${JSON.stringify(want)}`, () => {
      assert.deepEqual(parseSocketmapRequest(b(input)), want);
    });
  }

  test("invalid UTF-8 does not throw; the bad bytes become U+FFFD", () => {
    const payload = Buffer.concat([b("alias "), Buffer.from([0xff, 0xc3, 0x28]), b("@d")]);
    assert.deepEqual(parseSocketmapRequest(payload), { map: "alias", key: "\uFFFD\uFFFD(@d" });
  });

  test("binary garbage does not throw", () => {
    const inputs = [
      Buffer.from([0x00]),
      Buffer.from([0xff, 0xff, 0xff]),
      Buffer.from([0x80, 0x20, 0x80]),
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from([0xed, 0xa0, 0x80, 0x20, 0x41]), // encoded surrogate
    ];
    for (const input of inputs) {
      const r = parseSocketmapRequest(input);
      assert.ok(r === null || (r.map.length > 0 && r.key.length > 0 && !r.map.includes(" ")), `${input.toString("hex")}: ${JSON.stringify(r)}`);
    }
  });
});

describe("isBlankRequest (answered NOTFOUND, as the Go version; other non-requests get TEMP)", () => {
  const cases: Array<[string, boolean]> = [["", true], [" ", true], [" \t\r\n", true], ["alias", false], ["alias ", false], [" x", false]];
  for (const [input, want] of cases) {
    test(`${JSON.stringify(input)} -> ${want}`, () => assert.equal(isBlankRequest(b(input)), want));
  }
});

describe("formatSocketmapReply", () => {
  const cases: Array<{ name: string; reply: SocketmapReply; want: string }> = [
    { name: "OK with data", reply: ok("admin@example.com"), want: "OK admin@example.com" },
    { name: "OK with spaces in the data", reply: ok("a@d, b@d"), want: "OK a@d, b@d" },
    { name: "OK with empty data is NOTFOUND, never 'OK '", reply: ok(""), want: "NOTFOUND" },
    { name: "NOTFOUND is bare, byte for byte the Go version's", reply: NOTFOUND, want: "NOTFOUND" },
    { name: "NOTFOUND as a plain object", reply: { status: "NOTFOUND" }, want: "NOTFOUND" },
    { name: "TEMP with a reason", reply: temp("keycloak unavailable"), want: "TEMP keycloak unavailable" },
    { name: "PERM with a reason", reply: perm("unknown map foo"), want: "PERM unknown map foo" },
    { name: "control characters become '?'", reply: temp("a\nb\rc\td\x00e\x7f"), want: "TEMP a?b?c?d?e?" },
    { name: "surrounding whitespace is trimmed", reply: temp("  busy  "), want: "TEMP busy" },
    { name: "an empty reason is a bare TEMP (the Go version's DB-error reply)", reply: temp(""), want: "TEMP" },
    { name: "an empty PERM reason is a bare PERM", reply: perm(""), want: "PERM" },
    { name: "a blank reason becomes 'error'", reply: perm("   "), want: "PERM error" },
    { name: "a reason of only a newline is one '?'", reply: temp("\n"), want: "TEMP ?" },
    { name: "reasons are cut to 200 characters", reply: temp("x".repeat(500)), want: `TEMP ${"x".repeat(200)}` },
    { name: "the cut applies after cleaning", reply: perm(`${"\n".repeat(150)}${"y".repeat(150)}`), want: `PERM ${"?".repeat(150)}${"y".repeat(50)}` },
  ];
  for (const { name, reply, want } of cases) {
    test(`${name}: ${JSON.stringify(want.length > 40 ? want.slice(0, 40) + "…" : want)}`, () => {
      assert.equal(formatSocketmapReply(reply), want);
    });
  }

  test("no reply ever starts with 'OK ' and nothing after it", () => {
    for (const data of ["", "x", " ", "a@d"]) {
      const got = formatSocketmapReply(ok(data));
      assert.notEqual(got, "OK ");
      assert.notEqual(got, "OK");
    }
  });

  test("a TEMP/PERM reply with a reason is one line of at most 'PERM ' + 200 characters", () => {
    for (const reason of [" ", "\n".repeat(1000), "é".repeat(300), "a\r\nb".repeat(100)]) {
      for (const make of [temp, perm]) {
        const got = formatSocketmapReply(make(reason));
        assert.match(got, /^(TEMP|PERM) /);
        assert.ok(got.length <= 5 + 200, `${got.length} chars`);
        assert.doesNotMatch(got, /[\x00-\x1f\x7f]/);
        assert.ok(got.length > 5, "the reason is never empty");
      }
    }
  });
});
