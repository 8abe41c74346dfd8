// The socketmap maps (src/rules/maps.ts) as tables, in process: the README's
// map table, the alias lookup order, lists and failure handling, with the
// reply and the reason each must give (rows: helpers/rule-rows.ts). The same
// maps over the real socket: socketmap.integration.test.ts.

import { test } from "node:test";
import assert from "node:assert/strict";
import { answerMap, mapView, type MapFacts } from "../src/rules/maps.js";
import { formatSocketmapReply } from "../src/protocol/socketmap.js";
import { MAP_ROWS, SETTINGS } from "./helpers/rule-rows.js";

test("socketmap maps: the lookup table", async (t) => {
  for (const row of MAP_ROWS) {
    await t.test(`${row.map} ${row.key}: ${row.name}`, () => {
      const facts: MapFacts = { settings: SETTINGS, listsOn: false, ...row.facts };
      const got = answerMap(mapView(row.map, row.key, facts.settings), facts);
      assert.ok(typeof got === "object", `the map asked for the fact ${JSON.stringify(got)}, which the row does not give`);
      assert.deepEqual([formatSocketmapReply(got.reply), got.reason], [...row.want]);
      assert.equal(got.warning?.key, row.warns, "the warning the answer carries");
    });
  }
});

test("socketmap maps: a list too large is TEMP, never part of the list", () => {
  const row = MAP_ROWS.find((r) => r.want[1] === "list-too-large")!;
  const facts: MapFacts = { settings: SETTINGS, listsOn: false, ...row.facts };
  const got = answerMap(mapView(row.map, row.key, SETTINGS), facts);
  assert.ok(typeof got === "object");
  assert.equal(got.reply.status, "TEMP");
  assert.equal(got.warning?.level, "error");
});
