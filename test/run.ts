// The test command (npm test, and npm run test:unit / test:integration /
// test:e2e): picks the test files of a tier, starts the services those files
// share (a real Keycloak, for the integration and e2e tiers only), runs them
// with Node's test runner, then stops the services.
//
//   node dist/test/run.js                     every tier (CI)
//   node dist/test/run.js --tier unit         one tier: unit, integration, e2e or all
//   node dist/test/run.js FILE...             these files (Keycloak only if one is not unit)
//
// A file's tier is its name: e2e-*.test.ts drive real Postfix/Dovecot or a
// browser end to end; *.integration.test.ts spawn our programs (daemon, CLI,
// admin server) or need a real Keycloak; every other *.test.ts runs in
// process and is a unit test.
//
// Outside CI a machine without Java/Maven skips the real-Keycloak tests with
// one line; with CI=true that is an error and the run fails.

import { spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { basename, join } from "node:path";
import { exportShared, KeycloakServer, realKeycloakUnavailable } from "./helpers/keycloak-real.js";
import { ROOT } from "./helpers/daemon.js";

const CI = process.env.CI === "true";

const TIERS = ["unit", "integration", "e2e"] as const;
type Tier = (typeof TIERS)[number];

/** The tier a test file belongs to, from its name (.ts or compiled .js). */
function tierOf(file: string): Tier {
  const name = basename(file);
  if (name.startsWith("e2e-")) return "e2e";
  if (/\.integration\.test\.[jt]s$/.test(name)) return "integration";
  return "unit";
}

/** Tiers whose files may use the shared real Keycloak. */
const NEEDS_KEYCLOAK: ReadonlySet<Tier> = new Set<Tier>(["integration", "e2e"]);

interface Selection {
  readonly files: string[];
  readonly label: string;
}

function usage(message: string): never {
  process.stderr.write(`test run: ${message}; usage: node dist/test/run.js [--tier ${[...TIERS, "all"].join("|")}] [FILE...]\n`);
  process.exit(2);
}

function select(args: readonly string[]): Selection {
  const dir = join(ROOT, "dist/test");
  let tier: Tier | "all" = "all";
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--tier" || a.startsWith("--tier=")) {
      const v = a === "--tier" ? args[++i] : a.slice("--tier=".length);
      if (v !== "all" && !TIERS.includes(v as Tier)) usage(`--tier: ${JSON.stringify(v ?? "")} is not a tier`);
      tier = v as Tier | "all";
    } else if (a.startsWith("--")) {
      usage(`unknown option ${a}`);
    } else {
      files.push(a);
    }
  }
  if (files.length > 0) {
    if (tier !== "all") usage("give either --tier or files, not both");
    return { files, label: "the files given" };
  }
  // Only outputs whose source still exists: tsc leaves the .js of a renamed test behind.
  const all = readdirSync(dir)
    .filter((f) => f.endsWith(".test.js") && existsSync(join(ROOT, "test", f.replace(/\.js$/, ".ts"))))
    .sort().map((f) => join(dir, f));
  return { files: tier === "all" ? all : all.filter((f) => tierOf(f) === tier), label: `tier ${tier}` };
}

async function main(): Promise<number> {
  const { files, label } = select(process.argv.slice(2));
  if (files.length === 0) usage(`no test files in ${label}`);

  let kc: KeycloakServer | null = null;
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (files.some((f) => NEEDS_KEYCLOAK.has(tierOf(f)))) {
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
    env.MAILCLOAK_TEST_KEYCLOAK = exportShared(shared);
  }

  const child = spawn(process.execPath, ["--test", "--test-concurrency=2", ...files], { stdio: "inherit", env });
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
