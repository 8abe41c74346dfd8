// detach(): an exact copy that does not keep the string it was cut from.

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { detach } from "../src/strings.js";

test("detach returns an equal string for any input (lone surrogates, NUL, long text)", () => {
  fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 200 }), (s) => {
    assert.equal(detach(s), s);
  }), { numRuns: 5_000 });
  const parent = `${"x".repeat(600)}=bulkuser12345@d1.test\n`;
  assert.equal(detach(parent.slice(601, -1)), "bulkuser12345@d1.test");
  assert.equal(detach(""), "");
});
