// Address helpers: canonical form, splitting, validation, and Postfix-style
// address extensions (recipient_delimiter).

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  domainOf, isCatchAll, isValidAddress, isValidDomain, normalize, split, stripExtension, withExtension,
} from "../src/rules/address.js";
import type { Extension, SplitAddress } from "../src/rules/address.js";

describe("normalize", () => {
  const cases: Array<[string, string]> = [
    ["Alice@Example.COM", "alice@example.com"],
    ["  bob@d1.test\t\n", "bob@d1.test"],
    ["already@canonical.test", "already@canonical.test"],
    ["", ""],
    ["   ", ""],
    ["JÜRGEN@EXÄMPLE.TEST", "jürgen@exämple.test"],
    ["Postmaster", "postmaster"],
  ];
  for (const [input, want] of cases) {
    test(`${JSON.stringify(input)} -> ${JSON.stringify(want)}`, () => assert.equal(normalize(input), want));
  }
});

describe("split / domainOf", () => {
  const cases: Array<{ input: string; split: SplitAddress | null; domain: string | null }> = [
    { input: "alice@example.com", split: { local: "alice", domain: "example.com" }, domain: "example.com" },
    // At the LAST "@": a quoted local part may contain "@".
    { input: '"a@b"@example.com', split: { local: '"a@b"', domain: "example.com" }, domain: "example.com" },
    { input: "a@b@c", split: { local: "a@b", domain: "c" }, domain: "c" },
    { input: "user+tag@d", split: { local: "user+tag", domain: "d" }, domain: "d" },
    { input: "@example.com", split: null, domain: "example.com" }, // catch-all key: no local part
    { input: "alice@", split: null, domain: null },
    { input: "alice", split: null, domain: null },
    { input: "", split: null, domain: null },
    { input: "@", split: null, domain: null },
  ];
  for (const c of cases) {
    test(`split(${JSON.stringify(c.input)})`, () => {
      assert.deepEqual(split(c.input), c.split);
      assert.equal(domainOf(c.input), c.domain);
    });
  }
});

describe("isValidDomain", () => {
  const label63 = "a".repeat(63);
  const cases: Array<[string, boolean]> = [
    ["example.com", true],
    ["d1.test", true],
    ["localhost", true],
    ["a", true],
    ["xn--bcher-kva.example", true],
    ["mail-1.ex-ample.org", true],
    ["_dmarc.example.com", true],
    ["123.example", true],
    [`${label63}.com`, true],
    [`${"a".repeat(64)}.com`, false], // label over 63
    [[label63, label63, label63, "a".repeat(61)].join("."), true], // 253 characters
    [[label63, label63, label63, "a".repeat(62)].join("."), false], // 254 characters
    ["", false],
    ["Example.com", false], // canonical form is lower-case
    ["example.com.", false], // no trailing dot
    [".example.com", false],
    ["exa..mple.com", false],
    ["-example.com", false],
    ["example-.com", false],
    ["exa mple.com", false],
    ["exämple.com", false], // IDNs in xn-- form only
    ["example.com/x", false],
    ["a@b", false],
  ];
  for (const [input, want] of cases) {
    test(`${JSON.stringify(input.length > 40 ? `${input.slice(0, 20)}…(${input.length})` : input)} -> ${want}`, () => {
      assert.equal(isValidDomain(input), want);
    });
  }
});

describe("isValidAddress", () => {
  const cases: Array<[string, boolean]> = [
    ["alice@example.com", true],
    ["a@b", true],
    ["first.last@example.com", true],
    ["user+tag@example.com", true],
    ["o'brien@example.ie", true],
    ["x_y-z@d1.test", true],
    ["!#$%&'*+/=?^_`{|}~-@example.com", true],
    [`${"a".repeat(64)}@example.com`, true],
    [`${"a".repeat(65)}@example.com`, false], // local part over 64
    ["Alice@example.com", false], // not canonical
    ["alice@Example.com", false],
    [".alice@example.com", false],
    ["alice.@example.com", false],
    ["al..ice@example.com", false],
    ['"john doe"@example.com', false], // quoted forms are not stored
    ["a b@example.com", false],
    ["alice@", false],
    ["@example.com", false],
    ["alice", false],
    ["", false],
    ["alice@exa_mple..com", false],
    ["jürgen@example.com", false],
    ["a@b@example.com", false],
  ];
  for (const [input, want] of cases) {
    test(`${JSON.stringify(input)} -> ${want}`, () => assert.equal(isValidAddress(input), want));
  }
});

describe("isCatchAll", () => {
  const cases: Array<[string, boolean]> = [
    ["@example.com", true],
    ["@d1.test", true],
    ["@", false],
    ["@@example.com", false],
    ["alice@example.com", false],
    ["example.com", false],
    ["@Example.com", false],
    ["@example.com.", false],
    ["", false],
  ];
  for (const [input, want] of cases) {
    test(`${JSON.stringify(input)} -> ${want}`, () => assert.equal(isCatchAll(input), want));
  }
});

describe("stripExtension", () => {
  const cases: Array<{ addr: string; delims: string; want: Extension | null }> = [
    // Delimiter "+".
    { addr: "user+tag@d", delims: "+", want: { base: "user@d", ext: "+tag" } },
    { addr: "user+a+b@d", delims: "+", want: { base: "user@d", ext: "+a+b" } }, // first occurrence
    { addr: "user+@d", delims: "+", want: { base: "user@d", ext: "+" } }, // empty extension
    { addr: "user@d", delims: "+", want: null }, // no delimiter
    { addr: "user-tag@d", delims: "+", want: null }, // "-" is not in the set
    { addr: "+foo@d", delims: "+", want: null }, // would leave an empty local part
    // Only the exact local parts postmaster and mailer-daemon are reserved (as in
    // Postfix): with a tag they are ordinary local parts and are split.
    { addr: "postmaster+x@d", delims: "+", want: { base: "postmaster@d", ext: "+x" } },
    { addr: "mailer-daemon+x@d", delims: "+", want: { base: "mailer-daemon@d", ext: "+x" } },
    { addr: "a+b@c@d", delims: "+", want: { base: "a@d", ext: "+b@c" } }, // the local part runs to the last "@"
    { addr: "user+tag", delims: "+", want: null }, // not an address
    { addr: "user@d+x.test", delims: "+", want: null }, // a delimiter in the domain only
    { addr: "user@d+x.test", delims: "-+", want: null },
    // A set of delimiters: the first occurrence of ANY of them.
    { addr: "user+tag@d", delims: "+-", want: { base: "user@d", ext: "+tag" } },
    { addr: "user-tag@d", delims: "+-", want: { base: "user@d", ext: "-tag" } },
    { addr: "user-x+y@d", delims: "+-", want: { base: "user@d", ext: "-x+y" } },
    { addr: "user+x-y@d", delims: "+-", want: { base: "user@d", ext: "+x-y" } },
    { addr: "user+x-y@d", delims: "-+", want: { base: "user@d", ext: "+x-y" } }, // order of the set is irrelevant
    { addr: "first.last-tag@d", delims: "+-", want: { base: "first.last@d", ext: "-tag" } },
    { addr: "-foo@d", delims: "+-", want: null },
    { addr: "mailer-daemon@d", delims: "+-", want: null }, // never split, even though it contains "-"
    { addr: "mailer-daemon@d", delims: "-", want: null },
    { addr: "mailer-daemon+x@d", delims: "+-", want: { base: "mailer@d", ext: "-daemon+x" } }, // not the exact reserved name
    { addr: "postmaster@d", delims: "+-", want: null },
    { addr: "postmaster-x@d", delims: "+-", want: { base: "postmaster@d", ext: "-x" } }, // only the exact local part is reserved
    { addr: "plain@d", delims: "+-", want: null },
    // Empty delimiter set: extensions disabled.
    { addr: "user+tag@d", delims: "", want: null },
    { addr: "user-tag@d", delims: "", want: null },
  ];
  for (const { addr, delims, want } of cases) {
    test(`stripExtension(${JSON.stringify(addr)}, ${JSON.stringify(delims)}) -> ${JSON.stringify(want)}`, () => {
      assert.deepEqual(stripExtension(addr, delims), want);
    });
  }

  test("base + ext re-assembles the address", () => {
    for (const { addr, delims, want } of cases) {
      if (want) assert.equal(withExtension(want.base, want.ext), addr, `${addr} with ${delims}`);
    }
  });

  test("reserved local parts with '-' in the set are not split, as Postfix's split_addr()",
    () => {
      const cases: Array<[string, string]> = [
        ["double-bounce@d", "-"],
        ["owner-list@d", "-"],
        ["list-request@d", "-"],
        ["owner-list@d", "+-"],
      ];
      for (const [addr, delims] of cases) {
        assert.equal(stripExtension(addr, delims), null, `stripExtension(${addr}, ${delims})`);
      }
    });
});

describe("withExtension", () => {
  const cases: Array<{ addr: string; ext: string; want: string }> = [
    { addr: "user@d", ext: "+tag", want: "user+tag@d" },
    { addr: "user@d", ext: "-x+y", want: "user-x+y@d" },
    { addr: "user@d", ext: "", want: "user@d" },
    { addr: "a@b@d", ext: "+t", want: "a@b+t@d" }, // at the last "@"
    { addr: "user", ext: "+tag", want: "user" }, // not an address: unchanged
    { addr: "@d", ext: "+tag", want: "@d" },
  ];
  for (const { addr, ext, want } of cases) {
    test(`withExtension(${JSON.stringify(addr)}, ${JSON.stringify(ext)}) -> ${JSON.stringify(want)}`, () => {
      assert.equal(withExtension(addr, ext), want);
    });
  }
});
