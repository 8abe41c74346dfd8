// The three entry modules can be imported without running (issue 12.5): the
// bin/ shims call main(). Were main() still run on import, the daemon's would
// read this process's argv, fail to load the default config and exit, and
// this file would die before reporting.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { ROOT } from "./helpers/daemon.js";

test("importing src/main.ts, src/cli/mailcloakctl.ts and src/admin/mailcloak-admin.ts runs nothing and gives main()", async () => {
  const exitCodeBefore = process.exitCode;
  const modules = await Promise.all([
    import("../src/main.js"),
    import("../src/cli/mailcloakctl.js"),
    import("../src/admin/mailcloak-admin.js"),
  ]);
  for (const m of modules) assert.equal(typeof m.main, "function");
  assert.equal(process.exitCode, exitCodeBefore, "no exit status set by an import");
});

test("each bin/ shim imports its compiled entry and calls main()", () => {
  for (const [bin, entry] of [["mailcloak", "main.js"], ["mailcloakctl", "cli/mailcloakctl.js"], ["mailcloak-admin", "admin/mailcloak-admin.js"]] as const) {
    const text = readFileSync(`${ROOT}/bin/${bin}`, "utf8");
    assert.match(text, new RegExp(`import \\{ main \\} from "\\.\\./dist/src/${entry.replace(/[./]/g, "\\$&")}";`), bin);
    assert.match(text, /\bmain\(process\.argv\)/, bin);
  }
});
