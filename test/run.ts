// The test command (npm test): starts the services every test file shares
// (today a real Keycloak), runs all test files with Node's test runner, then
// stops them. Arguments, if any, replace the default file list.
//
// Outside CI a machine without Java/Maven skips the real-Keycloak tests with
// one line; with CI=true that is an error and the run fails.

import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { exportShared, KeycloakServer, realKeycloakUnavailable } from "./helpers/keycloak-real.js";
import { ROOT } from "./helpers/daemon.js";

const CI = process.env.CI === "true";

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const dir = join(ROOT, "dist/test");
  const files = args.length > 0 ? args : readdirSync(dir).filter((f) => f.endsWith(".test.js")).sort().map((f) => join(dir, f));

  let kc: KeycloakServer | null = null;
  let shared: KeycloakServer | { skip: string };
  const why = realKeycloakUnavailable();
  if (why) {
    if (CI) {
      process.stderr.write(`test run: ${why}; .ci/run must install them\n`);
      return 1;
    }
    process.stdout.write(`# real Keycloak tests skipped: ${why}\n`);
    shared = { skip: why };
  } else {
    kc = await KeycloakServer.start();
    process.stdout.write(`# ${kc.summary()}\n`);
    shared = kc;
  }

  const child = spawn(process.execPath, ["--test", "--test-concurrency=2", ...files], {
    stdio: "inherit",
    env: { ...process.env, MAILCLOAK_TEST_KEYCLOAK: exportShared(shared) },
  });
  const stopChild = (sig: NodeJS.Signals): void => void child.kill(sig);
  process.on("SIGINT", stopChild);
  process.on("SIGTERM", stopChild);
  const code = await new Promise<number>((resolve) => child.once("exit", (c, s) => resolve(c ?? (s ? 1 : 0))));
  if (kc) await kc.dispose();
  return code;
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`test run failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
