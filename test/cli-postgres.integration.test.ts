// The real mailcloakctl against a real PostgreSQL: the same commands print
// the same lines as on SQLite, init is repeatable, migrate-store copies every
// row exactly and refuses a non-empty target, and no password is ever printed.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { stringify } from "yaml";
import { initStore } from "../src/store/open.js";
import { defaultQuotaPath } from "../src/config/quotas.js";
import { DEFAULTS } from "../src/config/schema.js";
import { MAILCLOAKCTL, ROOT, tempDir, type CtlResult } from "./helpers/daemon.js";
import { PostgresServer, postgresUnavailable } from "./helpers/postgres.js";
import { AdminProcess } from "./helpers/admin.js";

const skip = postgresUnavailable();
if (skip !== null && process.env.CI === "true") throw new Error(`${skip}; CI must install it (see .ci/run)`);

let server: PostgresServer;
const dir = tempDir("mailcloak-pgcli-");
let n = 0;

function ctl(db: string, args: readonly string[], env: Record<string, string> = {}): Promise<CtlResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAILCLOAKCTL, "--db", db, ...args], { cwd: ROOT, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** A fresh database; the password goes in the environment, as an admin would set it. */
async function freshUrl(): Promise<string> {
  return server.url(await server.createDatabase(`c${++n}`));
}

before(async () => {
  if (skip === null) server = await PostgresServer.start();
});
after(async () => {
  await server?.dispose();
});

const SCRIPT: readonly (readonly string[])[] = [
  ["init"],
  ["domains", "add", "D1.test"],
  ["domains", "add", "d2.test"],
  ["domains", "add", "d1.test"],
  ["aliases", "add", "sales@d1.test", "Alice"],
  ["aliases", "add", "@d2.test", "dave"],
  ["aliases", "add", "x@nowhere.test", "dave"],
  ["aliases", "disable", "sales@d1.test"],
  ["apps", "add", "crm", "a-long-app-secret"],
  ["apps", "allow", "crm", "sales@d1.test"],
  ["apps", "allow", "nope", "sales@d1.test"],
  ["quota", "set", "alice", "--per-hour", "10"],
  ["senders", "allow", "team@d1.test", "bob"],
  ["domains", "list", "--json"],
  ["aliases", "list"],
  ["apps", "list"],
  ["quota", "list"],
  ["quota", "show", "alice"],
  ["quota", "show", "alice", "--json"],
  ["quota", "show", "nobody"],
  ["quota", "reset", "alice"],
  ["quota", "del", "alice"],
  ["quota", "show", "alice", "--json"],
  ["senders", "list"],
  ["domains", "del", "d2.test"],
  ["aliases", "list", "--json"],
];

/** Where mailcloakctl keeps the quota counters of a PostgreSQL store without a config file (src/cli/quota.ts). */
const PG_COUNTERS = defaultQuotaPath(DEFAULTS.sqlitePath);

/** Dates and times differ between two runs a moment apart. */
function noTimes(text: string): string {
  return text.replace(/"updated_at":\s*\d+/g, '"updated_at":0').replace(/\t\d{9,11}(?=\n|\t|$)/g, "\tTIME").replace(/\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(Z|[+-]\d\d:?\d\d)?/g, "TIME");
}

describe("mailcloakctl on PostgreSQL", { skip: skip ?? false }, () => {
  test("the same commands print the same lines and exit statuses as on SQLite", async () => {
    const url = await freshUrl();
    const env = { MAILCLOAK_STORE_PASSWORD: server.password };
    const file = join(dir, "same.db");
    const fileCounters = join(dir, "quota.db"); // beside the file
    for (const args of SCRIPT) {
      const [p, s] = [await ctl(url, args, env), await ctl(file, args)];
      assert.equal(p.code, s.code, `${args.join(" ")}: exit ${p.code} vs ${s.code}: ${p.stderr} / ${s.stderr}`);
      if (args[0] === "init") {
        assert.match(p.stdout, /^created the tables in postgres:\/\/mailcloak@127\.0\.0\.1:\d+\/c\d+\n$/);
        continue;
      }
      // The one difference by design: with no directory of its own, a PostgreSQL store keeps the
      // counters where the daemon does, beside the default sqlite.path; a file's are beside it.
      if (args.includes("--json") && args[1] === "show") {
        assert.equal((JSON.parse(p.stdout) as { counters: string }).counters, PG_COUNTERS);
        assert.equal((JSON.parse(s.stdout) as { counters: string }).counters, fileCounters);
      }
      assert.equal(noTimes(p.stdout).replaceAll(PG_COUNTERS, "COUNTERS"), noTimes(s.stdout).replaceAll(fileCounters, "COUNTERS"), args.join(" "));
      assert.equal(p.stderr.replaceAll(url, "DB"), s.stderr.replaceAll(file, "DB"), `${args.join(" ")} (stderr)`);
      assert.ok(!p.stdout.includes(server.password) && !p.stderr.includes(server.password));
    }
    const again = await ctl(url, ["init"], env);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /is already current/);
  });

  test("a wrong or missing password is exit 3 with one line that does not show it; a password in --db is taken out and warned about", async () => {
    const url = await freshUrl();
    const wrong = await ctl(url, ["domains", "list"], { MAILCLOAK_STORE_PASSWORD: "wrong-secret-pw" });
    assert.equal(wrong.code, 3);
    assert.match(wrong.stderr, /password authentication failed/);
    assert.equal(wrong.stderr.trim().split("\n").length, 1);
    assert.ok(!wrong.stderr.includes("wrong-secret-pw"));
    const uninit = await ctl(url, ["domains", "list"], { MAILCLOAK_STORE_PASSWORD: server.password });
    assert.equal(uninit.code, 3);
    assert.match(uninit.stderr, /is missing; run: mailcloakctl --db postgres:\/\/mailcloak@127\.0\.0\.1:\d+\/c\d+ init/);
    const inUrl = url.replace("mailcloak@", `mailcloak:${server.password}@`);
    const r = await ctl(inUrl, ["init"], { MAILCLOAK_STORE_PASSWORD: "" });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: --db holds a password/);
    assert.ok(!r.stdout.includes(server.password) && !r.stderr.includes(server.password), "the password is not printed");
  });

  test("the config file's store: section is used without --db (password_file)", async () => {
    const url = await freshUrl();
    const pw = join(dir, "pw");
    writeFileSync(pw, `${server.password}\n`, { mode: 0o600 });
    const cfg = join(dir, "config.yaml");
    writeFileSync(cfg, stringify({ idp: { provider: "static", static: { users: [] } }, store: { backend: "postgres", url, password_file: pw, pool_size: 2 } }));
    const run = (args: string[]): Promise<CtlResult> => new Promise((resolve) => {
      execFile(process.execPath, [MAILCLOAKCTL, "--config", cfg, ...args], { cwd: ROOT }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
      });
    });
    assert.equal((await run(["init"])).code, 0);
    assert.equal((await run(["domains", "add", "cfg.test"])).code, 0);
    assert.match((await run(["domains", "list"])).stdout, /^cfg\.test\tenabled\t/);
    // The web admin works on the same PostgreSQL through the same admin layer.
    const admin = await AdminProcess.start(["--config", cfg, "--listen", "127.0.0.1:0"], { MAILCLOAK_ADMIN_TOKEN: "pg-admin-token" });
    try {
      admin.token = "pg-admin-token";
      const add = await admin.request("POST", "/api/domains", { json: { domain_name: "web.test" } });
      assert.equal(add.status, 204, add.text);
      const list = await admin.request("GET", "/api/domains");
      assert.equal(list.status, 200);
      assert.match(list.text, /cfg\.test[\s\S]*web\.test/);
      assert.match((await run(["domains", "list"])).stdout, /web\.test\tenabled/, "mailcloakctl sees what the web admin wrote");
      assert.ok(!admin.output.includes(server.password));
    } finally {
      await admin.stop();
    }
  });

  test("migrate-store copies every row exactly, and refuses a non-empty target without writing", async () => {
    const file = join(dir, "source.db");
    for (const args of SCRIPT.slice(0, 13)) await ctl(file, args);
    // More rows, through the store module itself (30 mailcloakctl runs would take a minute here).
    const { store } = await initStore(file, { busyTimeoutMs: 5000 });
    for (let i = 0; i < 30; i++) await store.addAlias(`a${i}@d1.test`, `user${i % 7}`);
    await store.close();
    const url = await freshUrl();
    const env = { MAILCLOAK_STORE_PASSWORD: server.password };
    const r = await ctl(file, ["migrate-store", "--from", `sqlite:${file}`, "--to", url], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /aliases: 32 rows/);
    assert.match(r.stdout, /app_from: 1 row\n/);
    for (const list of [["domains", "list", "--json"], ["aliases", "list", "--json"], ["apps", "list", "--json"], ["quota", "list", "--json"], ["senders", "list", "--json"]]) {
      const [p, s] = [await ctl(url, list, env), await ctl(file, list)];
      assert.equal(p.code, 0, p.stderr);
      assert.equal(p.stdout, s.stdout, `${list.join(" ")}: identical, updated_at included`);
    }
    const hashes = await server.sql("SELECT app_id, secret_hash FROM apps", new URL(url).pathname.slice(1));
    assert.match(String(hashes.rows[0]?.secret_hash), /^\{ARGON2ID\}\$argon2id\$/, "the hash is copied as is");

    const before = await ctl(url, ["aliases", "list", "--json"], env);
    const again = await ctl(file, ["migrate-store", "--from", `sqlite:${file}`, "--to", url], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /is not empty \(domains \(2\), aliases \(32\).*nothing was written/);
    assert.equal((await ctl(url, ["aliases", "list", "--json"], env)).stdout, before.stdout);

    const bad = await ctl(file, ["migrate-store", "--from", "sqlite:", "--to", url], env);
    assert.equal(bad.code, 2);
  });
});
