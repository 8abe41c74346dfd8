// Runs `mailcloak test-idp` for real (bin/mailcloak as a child process) on a
// config written for the run, and checks every run's output for secrets.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { MAILCLOAK, ROOT, tempDir, type ConfigTree } from "./daemon.js";

export interface TestIdpRun {
  code: number | null;
  stdout: string;
  stderr: string;
  lines: string[];
  ms: number;
}

const dir = tempDir("mailcloak-test-idp-");
let seq = 0;

/** Where runTestIdp's configs go (for a path that does not exist, say). */
export const TEST_IDP_DIR = dir;

/**
 * Write {idp, policy, sqlite} and run `mailcloak test-idp --config FILE`
 * (or the arguments `args` builds from the file). Asserts that neither the
 * secrets in `secrets` nor anything token-like (a JWT) was printed.
 */
export async function runTestIdp(idp: ConfigTree, policy: ConfigTree, secrets: readonly string[],
  args: (file: string) => string[] = (file) => ["--config", file]): Promise<TestIdpRun> {
  const file = join(dir, `config-${process.pid}-${++seq}.yaml`);
  writeFileSync(file, stringify({ idp, policy, sqlite: { path: join(dir, "state.db") } }));
  const started = Date.now();
  const r = await new Promise<Omit<TestIdpRun, "lines" | "ms">>((resolve) => {
    execFile(process.execPath, [MAILCLOAK, "test-idp", ...args(file)], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : null) : 0, stdout, stderr });
    });
  });
  const out = r.stdout + r.stderr;
  for (const s of secrets) assert.ok(s === "" || !out.includes(s), `a secret was printed:\n${out}`);
  assert.doesNotMatch(out, /eyJ[A-Za-z0-9_-]{10,}/, "something token-like was printed");
  return { ...r, lines: r.stdout.split("\n").filter((l) => l !== ""), ms: Date.now() - started };
}

/** The printed lines, in the test's output. */
export function show(t: { diagnostic(msg: string): void }, r: TestIdpRun): void {
  for (const l of r.lines) t.diagnostic(l);
  t.diagnostic(`(exit ${r.code}, ${r.ms} ms)`);
}

/** The one FAIL line of a run (and that there is exactly one). */
export function failLine(r: TestIdpRun): string {
  const fails = r.lines.filter((l) => l.startsWith("FAIL "));
  assert.equal(fails.length, 1, r.stdout);
  return fails[0]!;
}
