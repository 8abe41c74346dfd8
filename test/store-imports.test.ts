// The store's boundary (issue 12.3): the SQLite driver is imported only
// under src/store/ (and by the one test helper that plays "another SQLite
// client"), and code outside src/store/ reaches the SQLite backend only
// through src/store/open.ts, so a second backend is one more folder beside
// src/store/sqlite/. The quota counters are a SQLite file of their own
// (quotas.backend: sqlite), opened by src/quota/open.ts.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const rel = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(rel));
    else if (e.name.endsWith(".ts")) out.push(rel.split(sep).join("/"));
  }
  return out;
}

/** Every module specifier a file imports (static, dynamic, re-export, require in a child script). */
function imports(file: string): string[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const found: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)["']([^"']+)["']/g)) found.push(m[1]!);
  return found;
}

const FILES = [...sources("src"), ...sources("test"), ...sources("bench")];

test("the import scan sees the store's own driver imports (it can fail)", () => {
  assert.ok(FILES.length > 100, `${FILES.length} files`);
  assert.ok(imports("src/store/sqlite/connection.ts").includes("better-sqlite3"));
  assert.ok(imports("test/helpers/sqlite.ts").includes("better-sqlite3"));
});

test("nothing outside src/store/ imports better-sqlite3 (tests only through test/helpers/sqlite.ts)", () => {
  const offenders = FILES.filter((f) => !f.startsWith("src/store/") && f !== "test/helpers/sqlite.ts")
    .filter((f) => imports(f).includes("better-sqlite3"));
  assert.deepEqual(offenders, []);
});

test("src/ outside src/store/ reaches the SQLite backend only through src/store/open.ts (counters excepted)", () => {
  const COUNTERS = new Set(["src/quota/open.ts", "src/start.ts"]);
  const offenders: string[] = [];
  for (const f of FILES.filter((x) => x.startsWith("src/") && !x.startsWith("src/store/"))) {
    for (const spec of imports(f)) {
      if (!spec.startsWith(".")) continue;
      const target = relative(ROOT, join(ROOT, f, "..", spec)).split(sep).join("/");
      if (!target.startsWith("src/store/sqlite/")) continue;
      if (target === "src/store/sqlite/counters.js" && COUNTERS.has(f)) continue;
      offenders.push(`${f} imports ${spec}`);
    }
  }
  assert.deepEqual(offenders, []);
});
