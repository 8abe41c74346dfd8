// The store: section (src/config/store.ts): SQLite stays the default, a
// postgres backend needs a URL, the password comes from the file, the
// environment or the key and never stays in the URL, and bad values are one
// line naming the key.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { stringify } from "yaml";
import { ConfigError, parseConfig } from "../src/config/load.js";
import { describeStore, STORE_DEFAULTS } from "../src/config/store.js";

const dir = mkdtempSync(join(tmpdir(), "mailcloak-cfgstore-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const pwFile = join(dir, "pw");
writeFileSync(pwFile, "from-file-pw\n");

function parse(store: unknown, env: NodeJS.ProcessEnv = {}): ReturnType<typeof parseConfig> {
  const text = stringify({ idp: { provider: "static", static: { users: [] } }, ...(store === undefined ? {} : { store }) });
  return parseConfig(text, "/etc/mailcloak/config.yaml", env);
}

describe("store: config section", () => {
  test("absent or backend sqlite: no store key, sqlite.path is used", () => {
    assert.equal(parse(undefined).store, undefined);
    assert.equal(parse({ backend: "sqlite" }).store, undefined);
  });

  test("backend postgres: the URL without a password, the defaults, the password from password_file", () => {
    const c = parse({ backend: "postgres", url: "postgres://mailcloak@db.test:5432/mailcloak", password_file: pwFile, pool_size: 8 });
    assert.deepEqual(c.store, {
      backend: "postgres",
      postgres: {
        url: "postgres://mailcloak@db.test:5432/mailcloak", password: "from-file-pw", poolSize: 8,
        queryTimeoutMs: STORE_DEFAULTS.queryTimeoutMs, connectTimeoutMs: STORE_DEFAULTS.connectTimeoutMs,
        checkIntervalMs: STORE_DEFAULTS.checkIntervalMs, maxStaleMs: STORE_DEFAULTS.maxStaleMs,
      },
    });
    assert.deepEqual(c.warnings, []);
  });

  test("the environment wins; a password in the URL is taken out, with a warning", () => {
    const env = parse({ backend: "postgres", url: "postgres://m@db.test/x", password: "inline" }, { MAILCLOAK_STORE_PASSWORD: "env-pw" });
    assert.equal(env.store?.backend === "postgres" ? env.store.postgres.password : null, "env-pw");
    const inUrl = parse({ backend: "postgres", url: "postgres://m:s%40cret@db.test/x" });
    assert.ok(inUrl.store?.backend === "postgres");
    assert.equal(inUrl.store.postgres.url, "postgres://m@db.test/x");
    assert.equal(inUrl.store.postgres.password, "s@cret");
    assert.match(inUrl.warnings.join("\n"), /store\.url: holds a password: move it to store\.password_file/);
    assert.ok(!inUrl.warnings.join("\n").includes("s@cret") && !inUrl.warnings.join("\n").includes("s%40cret"));
    assert.equal(describeStore(inUrl.store, "/x.db"), "postgres://m@db.test/x");
  });

  const bad: readonly { name: string; store: unknown; want: RegExp }[] = [
    { name: "unknown backend", store: { backend: "mysql" }, want: /store\.backend: must be one of sqlite, postgres/ },
    { name: "no URL", store: { backend: "postgres" }, want: /store\.url: is required with backend: postgres/ },
    { name: "not a postgres URL", store: { backend: "postgres", url: "mysql://db/x" }, want: /store\.url: must start with postgres:\/\// },
    { name: "no database", store: { backend: "postgres", url: "postgres://m@db.test" }, want: /store\.url: names no database/ },
    { name: "both passwords", store: { backend: "postgres", url: "postgres://m@db/x", password: "a", password_file: pwFile }, want: /set password or password_file, not both/ },
    { name: "unreadable password file", store: { backend: "postgres", url: "postgres://m@db/x", password_file: join(dir, "none") }, want: /store\.password_file: cannot read .* \(ENOENT\)/ },
    { name: "pool too large", store: { backend: "postgres", url: "postgres://m@db/x", pool_size: 1000 }, want: /store\.pool_size: must be between 1 and 100/ },
    { name: "stale bound below two checks", store: { backend: "postgres", url: "postgres://m@db/x", check_interval_ms: 400, max_stale_ms: 700 }, want: /store\.max_stale_ms: must be at least twice check_interval_ms/ },
  ];
  for (const row of bad) {
    test(`refuses ${row.name} with one line naming the key`, () => {
      assert.throws(() => parse(row.store), (err: unknown) => err instanceof ConfigError && row.want.test(err.message) && !err.message.includes("\n"));
    });
  }
});
