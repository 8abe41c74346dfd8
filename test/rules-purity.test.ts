// src/rules/ stays pure: its files, and every file they import, import
// nothing but each other and the codecs (no node: modules, no packages, no
// store, directory, server, handlers, log, metrics, config or quota code).
// So a rule cannot do I/O, log, read the clock or count a metric.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { ROOT } from "./helpers/daemon.js";

const SRC = join(ROOT, "src");
/** Folders whose files a rule may import (pure codecs and the rules themselves). */
const ALLOWED = ["rules", "protocol"];

function imports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']|^\s*import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm)]
    .map((m) => (m[1] ?? m[2] ?? m[3])!);
}

test("src/rules imports only rules and codecs, all the way down", () => {
  const start = readdirSync(join(SRC, "rules")).filter((f) => f.endsWith(".ts")).map((f) => join(SRC, "rules", f));
  assert.ok(start.length >= 3, "policy, maps, facts, address");
  const seen = new Set<string>();
  const todo = [...start];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of imports(file)) {
      assert.ok(spec.startsWith("."), `${relative(ROOT, file)} imports ${spec}: rules import no packages or node: modules`);
      const target = resolve(dirname(file), spec).replace(/\.js$/, ".ts");
      const folder = relative(SRC, target).split("/")[0]!;
      assert.ok(ALLOWED.includes(folder), `${relative(ROOT, file)} imports ${spec}: rules may import only src/${ALLOWED.join(", src/")}`);
      todo.push(target);
    }
  }
  assert.ok(seen.size >= start.length);
});

test("the import scanner sees every form of import (it can fail)", () => {
  const self = imports(new URL(import.meta.url).pathname.replace("/dist/test/", "/test/").replace(/\.js$/, ".ts"));
  assert.deepEqual(self.sort(), ["./helpers/daemon.js", "node:assert/strict", "node:fs", "node:path", "node:test"]);
});
