// mailcloakctl in process: main(argv, io) with stdout and stderr captured and
// the exit status as a value, on real database files in a temp dir. Covers
// what a newcomer hit (issue 12, point 10): ISO 8601 times in list output,
// a URL given as the database refused before anything is written, and
// `apps add --generate` / the short-password warning. The spawned-binary
// suite is cli.integration.test.ts.

import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { rawDb } from "./helpers/sqlite.js";
import { main, type Io } from "../src/cli/mailcloakctl.js";
import { MIN_APP_PASSWORD_LENGTH } from "../src/cli/password-input.js";
import { verifyAppPassword } from "../src/store/password.js";
import { tempDir } from "./helpers/daemon.js";

const root = tempDir("mailcloakctl-inproc-");
after(() => rmSync(root, { recursive: true, force: true }));
let seq = 0;

interface Run {
  readonly code: number;
  readonly stdout: string[];
  readonly stderr: string[];
}

/** One command line through main(); every output line is captured, nothing reaches the terminal. */
async function ctl(...args: string[]): Promise<Run> {
  let out = "";
  let err = "";
  const io: Io = {
    out: (line) => void (out += `${line}\n`),
    err: (line) => void (err += `mailcloakctl: ${line}\n`),
    writeOut: (text) => void (out += text),
    writeErr: (text) => void (err += text),
  };
  const code = await main(["node", "mailcloakctl", ...args], io);
  const lines = (s: string): string[] => (s === "" ? [] : s.replace(/\n$/, "").split("\n"));
  return { code, stdout: lines(out), stderr: lines(err) };
}

/** A fresh initialised database with d1.test in it. */
async function freshDb(): Promise<string> {
  seq += 1;
  const dir = join(root, String(seq));
  mkdirSync(dir);
  const db = join(dir, "state.db");
  for (const args of [["init"], ["domains", "add", "d1.test"]]) {
    const r = await ctl("--db", db, ...args);
    assert.equal(r.code, 0, r.stderr.join("\n"));
  }
  return db;
}

function rows<T>(db: string, sql: string): T[] {
  const d = rawDb(db, { readonly: true });
  try {
    return d.prepare(sql).all() as T[];
  } finally {
    d.close();
  }
}

const ISO_SECONDS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

describe("mailcloakctl main() lists", () => {
  test("aliases list shows updated_at as ISO 8601 UTC; --json keeps the Go fields with epoch seconds", async () => {
    const db = await freshDb();
    assert.equal((await ctl("--db", db, "aliases", "add", "sales@d1.test", "alice")).code, 0);
    const [row] = rows<{ updated_at: number }>(db, "SELECT updated_at FROM aliases");
    const plain = await ctl("--db", db, "aliases", "list");
    assert.deepEqual([plain.code, plain.stderr], [0, []]);
    assert.equal(plain.stdout.length, 1);
    const [alias, user, state, when] = plain.stdout[0]!.split("\t");
    assert.deepEqual([alias, user, state], ["sales@d1.test", "alice", "enabled"]);
    assert.match(when!, ISO_SECONDS);
    assert.equal(Date.parse(when!) / 1000, row!.updated_at, "the same instant as the stored epoch seconds");

    const json = await ctl("--db", db, "aliases", "list", "--json");
    assert.equal(json.code, 0);
    const parsed = JSON.parse(json.stdout.join("\n")) as Record<string, unknown>[];
    assert.deepEqual(parsed, [{ alias_email: "sales@d1.test", target_user: "alice", alias_domain_name: "d1.test", enabled: true, updated_at: row!.updated_at }]);
  });

  test("domains and apps lists show ISO 8601 times too", async () => {
    const db = await freshDb();
    assert.equal((await ctl("--db", db, "apps", "add", "crm", "a-long-enough-secret")).code, 0);
    const domains = await ctl("--db", db, "domains", "list");
    assert.match(domains.stdout[0]!, /^d1\.test\tenabled\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const apps = await ctl("--db", db, "apps", "list");
    assert.match(apps.stdout[0]!, /^crm\tenabled\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });
});

describe("mailcloakctl main() --db given a URL", () => {
  test("mysql://user:pw@host/db is refused with one line (exit 2) that does not repeat the password, and nothing is created", async (t) => {
    const cwd = join(root, "cwd-url");
    mkdirSync(cwd);
    const was = process.cwd();
    process.chdir(cwd); // SQLite would have created ./mysql:/ here
    t.after(() => process.chdir(was));
    for (const args of [["domains", "list"], ["init"], ["aliases", "add", "a@d1.test", "alice"]]) {
      const r = await ctl("--db", "mysql://mc:s3cret-pw@db.example/mail", ...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr.join("\n")}`);
      assert.deepEqual(r.stdout, []);
      assert.equal(r.stderr.length, 1, "one line");
      assert.match(r.stderr[0]!, /^mailcloakctl: --db: a mysql:\/\/ URL, but only SQLite files and postgres:\/\/ URLs are supported: give the database file's path/);
      assert.doesNotMatch(r.stderr[0]!, /s3cret-pw/);
    }
    assert.deepEqual(readdirSync(cwd), [], "nothing written");
  });

  test("postgres:// and postgresql:// name the PostgreSQL store: not refused; a server that is not there is exit 3, the password never shown", async () => {
    for (const scheme of ["postgres", "postgresql", "POSTGRES"]) {
      // Port 1 on loopback: nothing listens, the connection is refused at once.
      const r = await ctl("--db", `${scheme}://mc:s3cret-pw@127.0.0.1:1/mail`, "domains", "list");
      assert.equal(r.code, 3, `${scheme}: ${r.stderr.join("\n")}`);
      assert.doesNotMatch(r.stderr.join("\n"), /are supported/);
      assert.doesNotMatch(r.stderr.join("\n") + r.stdout.join("\n"), /s3cret-pw/);
    }
  });

  test("any other scheme:// is refused, from --db or from the config file's sqlite.path; plain paths are not", async () => {
    const dir = join(root, "cfg-url");
    mkdirSync(dir);
    const r = await ctl("--db", "sqlite:///var/lib/mailcloak/state.db", "domains", "list");
    assert.equal(r.code, 2);
    assert.match(r.stderr.join("\n"), /--db: a sqlite:\/\/ URL/);
    const config = join(dir, "config.yaml");
    writeFileSync(config, "idp: {provider: static, static: {users: []}}\nsqlite: {path: \"mysql://root@localhost/mail\"}\n");
    const fromConfig = await ctl("--config", config, "domains", "list");
    assert.equal(fromConfig.code, 2);
    assert.deepEqual(fromConfig.stderr, [`mailcloakctl: ${config}: sqlite.path: a mysql:// URL, but only SQLite files and postgres:// URLs are supported: give the database file's path (e.g. /var/lib/mailcloak/state.db) or postgres://USER@HOST:PORT/DATABASE`]);
    assert.deepEqual(readdirSync(dir), ["config.yaml"], "nothing written");
    // A path with a colon but no "//" is a file name, as before.
    const odd = join(dir, "odd:name.db");
    assert.equal((await ctl("--db", odd, "init")).code, 0);
    assert.ok(existsSync(odd));
  });
});

describe("mailcloakctl main() apps add passwords", () => {
  test("--generate prints a random password once on stdout and stores only its hash", async () => {
    const db = await freshDb();
    const r = await ctl("--db", db, "apps", "add", "crm", "--generate");
    assert.deepEqual([r.code, r.stderr], [0, []]);
    assert.equal(r.stdout.length, 2);
    assert.equal(r.stdout[0], "app crm added");
    const password = r.stdout[1]!;
    assert.match(password, /^[A-Za-z0-9_-]{32}$/);
    const [stored] = rows<{ secret_hash: string }>(db, "SELECT secret_hash FROM apps WHERE app_id = 'crm'");
    assert.ok(!stored!.secret_hash.includes(password), "not stored in clear");
    assert.equal(await verifyAppPassword(password, stored!.secret_hash), true, "the printed password is the one stored");
    const list = await ctl("--db", db, "apps", "list", "--json");
    assert.ok(!list.stdout.join("\n").includes(password), "never shown again");

    const again = await ctl("--db", db, "apps", "add", "crm", "--generate");
    assert.deepEqual(again.stdout.slice(0, 1), ["app crm: password replaced"]);
    assert.notEqual(again.stdout[1], password, "a new one each time");
  });

  test("--generate with a password argument or --password-stdin is a usage error; nothing written", async () => {
    const db = await freshDb();
    const before = readFileSync(db);
    for (const extra of [["given-password-here"], ["--password-stdin"]]) {
      const r = await ctl("--db", db, "apps", "add", "crm", "--generate", ...extra);
      assert.equal(r.code, 2);
      assert.deepEqual(r.stdout, []);
      assert.equal(r.stderr.length, 1);
      assert.match(r.stderr[0]!, /--generate makes the password/);
    }
    assert.ok(readFileSync(db).equals(before), "file unchanged");
  });

  test(`a given password shorter than ${MIN_APP_PASSWORD_LENGTH} characters is stored with one warning on stderr; a long enough one gets none`, async () => {
    const db = await freshDb();
    const short = await ctl("--db", db, "apps", "add", "app2", "short");
    assert.equal(short.code, 0, "accepted, as the Go version does");
    assert.deepEqual(short.stdout, ["app app2 added"]);
    assert.deepEqual(short.stderr, [`mailcloakctl: warning: the password is 5 characters; ${MIN_APP_PASSWORD_LENGTH} or more are advised (apps add APP_ID --generate makes a random one)`]);
    const [stored] = rows<{ secret_hash: string }>(db, "SELECT secret_hash FROM apps WHERE app_id = 'app2'");
    assert.equal(await verifyAppPassword("short", stored!.secret_hash), true);

    const exact = await ctl("--db", db, "apps", "add", "app3", "x".repeat(MIN_APP_PASSWORD_LENGTH));
    assert.deepEqual([exact.code, exact.stdout, exact.stderr], [0, ["app app3 added"], []]);
  });
});

describe("mailcloakctl main() help and usage", () => {
  test("help texts name --generate, the password minimum, ISO times and the URL refusal", async () => {
    // Help is wrapped to the terminal width: compare with white space folded.
    const text = (r: Run): string => r.stdout.join(" ").replace(/\s+/g, " ");
    const add = await ctl("apps", "add", "--help");
    assert.equal(add.code, 0);
    assert.match(text(add), /--generate make a random password and print it once on stdout/);
    assert.match(text(add), new RegExp(`shorter than ${MIN_APP_PASSWORD_LENGTH} characters is accepted with a warning on stderr`));
    const list = text(await ctl("aliases", "list", "--help"));
    assert.match(list, /updated_at \(UTC, ISO 8601\)/);
    assert.match(list, /--json a JSON array, fields as the Go version prints them \(updated_at in epoch seconds\)/);
    const top = await ctl("--help");
    assert.equal(top.code, 0);
    assert.match(text(top), /other URLs \(scheme:\/\/\.\.\.\) are refused/);
  });

  test("an unknown command is exit 2 with one line on stderr, as a value (no process exit)", async () => {
    const r = await ctl("nosuch");
    assert.deepEqual([r.code, r.stdout], [2, []]);
    assert.deepEqual(r.stderr, ["mailcloakctl: unknown command 'nosuch'; see: mailcloakctl --help"]);
    const bad = await ctl("aliases", "list", "--bogus");
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr.length, 1);
    assert.match(bad.stderr[0]!, /^mailcloakctl: unknown option '--bogus'/);
  });
});
