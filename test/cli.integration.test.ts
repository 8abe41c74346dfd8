// mailcloakctl as the admin runs it: `node bin/mailcloakctl ...` in a child
// process, on real database files in a temp dir. Exit statuses, stdout and
// the one stderr line are checked, and "nothing written" is checked on the
// file's bytes.

import { initAdmin, oldLayoutDb, openSqliteAdmin, rawDb } from "./helpers/sqlite.js";
import { seedStore } from "./helpers/seed.js";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { EXIT_CODES } from "../src/cli/exit.js";
import { verifyAppPassword } from "../src/store/password.js";
import { lookupUser } from "../src/system/accounts.js";

/** The repository root: this file runs from dist/test/. */
const REPO = fileURLToPath(new URL("../../", import.meta.url));
const BIN = join(REPO, "bin", "mailcloakctl");
const HASH_PREFIX = "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$";
const isRoot = process.getuid?.() === 0;

const root = mkdtempSync(join(tmpdir(), "mailcloakctl-test-"));
after(() => rmSync(root, { recursive: true, force: true }));
let seq = 0;
/** A fresh, empty directory of its own. */
function freshDir(name: string): string {
  seq += 1;
  const dir = join(root, `${seq}-${name}`);
  mkdirSync(dir);
  return dir;
}

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run mailcloakctl; stdin is a pipe carrying `input` (empty by default), never a terminal. */
function run(args: readonly string[], input = ""): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [BIN, ...args], { cwd: REPO, timeout: 120_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== "number") {
        reject(err);
        return;
      }
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
    child.stdin?.on("error", () => {}); // the CLI may exit before reading its stdin
    child.stdin?.end(input);
  });
}

/** Exit 0, nothing on stderr; returns stdout's lines. */
function ok(r: Result): string[] {
  assert.equal(r.stderr, "", `stderr: ${r.stderr}`);
  assert.equal(r.code, 0, `exit status (stdout: ${r.stdout})`);
  return r.stdout === "" ? [] : r.stdout.replace(/\n$/, "").split("\n");
}

/** Exit `code`, nothing on stdout, and exactly one stderr line, "mailcloakctl: ..." matching `re`. */
function fails(r: Result, code: number, re: RegExp): void {
  assert.equal(r.code, code, `exit status (stderr: ${r.stderr})`);
  assert.equal(r.stdout, "", "stdout");
  assert.match(r.stderr, /^mailcloakctl: [^\n]+\n$/, "one error line");
  assert.doesNotMatch(r.stderr, /\bat .+:\d+:\d+/, "no stack trace");
  assert.match(r.stderr, re);
}

/** An initialised DB with rows written in-process (no Argon2 cost: apps get fake hashes). */
async function seededDb(name: string): Promise<string> {
  const path = join(freshDir(name), "state.db");
  const { store } = await initAdmin(path);
  await seedStore(store, {
    domains: ["d1.test", "d2.test"],
    aliases: [["sales@d1.test", "alice"], ["info@d2.test", "bob"]],
    apps: [["app1", "{ARGON2ID}$fake-hash-1"], ["app2", "{ARGON2ID}$fake-hash-2"]],
    senders: [["app1", "a@d1.test"], ["app1", "b@d1.test"]],
  });
  store.db.prepare("UPDATE app_from SET enabled = 0 WHERE app_id = 'app1' AND from_addr = 'b@d1.test'").run();
  await store.close();
  return path;
}

function query<T>(path: string, sql: string, ...params: unknown[]): T[] {
  const db = rawDb(path, { readonly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

function secretHash(path: string, appId: string): string {
  const rows = query<{ secret_hash: string }>(path, "SELECT secret_hash FROM apps WHERE app_id = ?", appId);
  assert.equal(rows.length, 1, `app ${appId} exists`);
  return rows[0]!.secret_hash;
}

/** The older layout of the original tool. */
function createOldDb(path: string, extraSql = ""): void {
  oldLayoutDb(path, `
    INSERT INTO aliases VALUES ('sales@d1.test', 'alice', 1, 1000);
    INSERT INTO aliases VALUES ('info@d2.test', 'bob', 0, 1001);
    INSERT INTO apps VALUES ('app1', '{ARGON2ID}$old', 1, 2000);
    INSERT INTO app_from VALUES ('app1', 'a@d1.test', 1);
  `, extraSql);
}

function writeConfig(dir: string, body: string): string {
  const file = join(dir, "config.yaml");
  writeFileSync(file, `idp: {provider: static, static: {users: []}}\n${body}`);
  return file;
}

const mode = (p: string): number => statSync(p).mode & 0o777;

describe("mailcloakctl", { concurrency: true }, () => {
  test("exit codes are exported", () => {
    assert.deepEqual(EXIT_CODES, { ok: 0, refused: 1, usage: 2, unavailable: 3 });
  });

  describe("init", { concurrency: true }, () => {
    test("creates the DB (directory 0750, file 0640, WAL), then reports it already current", async () => {
      const dir = join(freshDir("init"), "var", "mailcloak");
      const db = join(dir, "state.db");
      const first = ok(await run(["--db", db, "init"]));
      assert.ok(first.includes(`created database ${db}`), first.join("\n"));
      assert.equal(mode(dir), 0o750);
      assert.equal(mode(db), 0o640);
      assert.deepEqual(query(db, "PRAGMA journal_mode"), [{ journal_mode: "wal" }]);
      assert.deepEqual(query(db, "PRAGMA user_version"), [{ user_version: 1 }]);
      assert.deepEqual(ok(await run(["--db", db, "init"])), [`database ${db} is already current`]);
    });

    test("migrates an older DB in place, keeping every row; a second init says already current", async () => {
      const db = join(freshDir("migrate"), "state.db");
      createOldDb(db);
      const out = ok(await run(["--db", db, "init"])).join("\n");
      assert.match(out, /^migrated database .* in place:/);
      assert.match(out, /username column renamed to target_user/);
      assert.match(out, /domains: 2 created/);
      assert.match(out, /apps: created_at carried over to updated_at/);
      const aliases = JSON.parse(ok(await run(["--db", db, "aliases", "list", "--json"])).join("\n")) as unknown;
      assert.deepEqual(aliases, [
        { alias_email: "sales@d1.test", target_user: "alice", alias_domain_name: "d1.test", enabled: true, updated_at: 1000 },
        { alias_email: "info@d2.test", target_user: "bob", alias_domain_name: "d2.test", enabled: false, updated_at: 1001 },
      ]);
      assert.deepEqual(query(db, "SELECT domain_name, enabled FROM domains ORDER BY domain_name"), [
        { domain_name: "d1.test", enabled: 1 },
        { domain_name: "d2.test", enabled: 1 },
      ]);
      assert.deepEqual(query(db, "SELECT app_id, secret_hash, enabled, updated_at FROM apps"), [{ app_id: "app1", secret_hash: "{ARGON2ID}$old", enabled: 1, updated_at: 2000 }]);
      assert.deepEqual(query(db, "SELECT app_id, from_addr, enabled FROM app_from"), [{ app_id: "app1", from_addr: "a@d1.test", enabled: 1 }]);
      assert.deepEqual(ok(await run(["--db", db, "init"])), [`database ${db} is already current`]);
    });

    test("a migration that cannot proceed: exit 1, the file byte-for-byte unchanged", async () => {
      const db = join(freshDir("migrate-bad"), "state.db");
      createOldDb(db, "INSERT INTO aliases VALUES ('nodomain', 'eve', 1, 1002);");
      const before = readFileSync(db);
      fails(await run(["--db", db, "init"]), 1, /cannot migrate: aliases without a domain: nodomain/);
      assert.ok(readFileSync(db).equals(before), "file unchanged");
    });

    test("--owner with an unknown user: exit 1, nothing created", async () => {
      const dir = join(freshDir("owner-unknown"), "sub");
      const db = join(dir, "state.db");
      fails(await run(["--db", db, "init", "--owner", "nosuchuser"]), 1, /no such user: nosuchuser/);
      assert.equal(existsSync(dir), false, "directory not created");
      assert.equal(existsSync(db), false, "database not created");
    });

    test("--owner nobody: as root, the directory and the DB are given to nobody", async () => {
      const nobody = lookupUser("nobody");
      assert.ok(nobody, "the nobody user exists");
      const dir = join(freshDir("owner"), "mailcloak");
      const db = join(dir, "state.db");
      const out = ok(await run(["--db", db, "init", "--owner", "nobody"])).join("\n");
      if (isRoot) {
        for (const p of [dir, db]) {
          assert.equal(statSync(p).uid, nobody.uid, `uid of ${p}`);
          assert.equal(statSync(p).gid, nobody.gid, `gid of ${p}`);
        }
        assert.match(out, /owner set to nobody/);
        // The daemon's user can now open it for writing.
        const r = await run(["--db", db, "domains", "list"]);
        assert.equal(r.code, 0);
      } else {
        assert.equal(statSync(db).uid, process.getuid?.());
        assert.match(out, /only root can give the database to nobody/);
      }
    });

    test("the owner defaults to the config's daemon.user; a shared directory keeps its owner", async () => {
      const dir = freshDir("owner-config");
      writeFileSync(join(dir, "other-file"), "x");
      const db = join(dir, "state.db");
      const config = writeConfig(dir, `sqlite: {path: ${db}}\ndaemon: {user: nobody}\n`);
      const out = ok(await run(["--config", config, "init"])).join("\n");
      assert.match(out, new RegExp(`created database ${db}`));
      if (isRoot) {
        assert.equal(statSync(db).uid, lookupUser("nobody")?.uid);
        assert.equal(statSync(dir).uid, 0, "directory with other files not chowned");
        assert.match(out, /holds other files/);
      } else {
        assert.equal(statSync(db).uid, process.getuid?.());
      }
    });
  });

  describe("domains", { concurrency: true }, () => {
    test("add, list (plain and --json), disable, enable, del with its aliases", async () => {
      const db = join(freshDir("domains"), "state.db");
      await (await initAdmin(db)).store.close();
      assert.deepEqual(ok(await run(["--db", db, "domains", "add", " Example.TEST "])), ["domain example.test added"]);
      ok(await run(["--db", db, "domains", "add", "other.test"]));
      const plain = ok(await run(["--db", db, "domains", "list"]));
      assert.equal(plain.length, 2);
      assert.match(plain[0]!, /^example\.test\tenabled\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.match(plain[1]!, /^other\.test\tenabled\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

      assert.deepEqual(ok(await run(["--db", db, "domains", "disable", "example.test"])), ["domain example.test disabled"]);
      const json = JSON.parse(ok(await run(["--db", db, "domains", "list", "--json"])).join("\n")) as { domain_name: string; enabled: boolean; updated_at: number }[];
      assert.deepEqual(json.map((d) => [d.domain_name, d.enabled]), [["example.test", false], ["other.test", true]]);
      assert.equal(typeof json[0]!.updated_at, "number");
      assert.deepEqual(ok(await run(["--db", db, "domains", "enable", "EXAMPLE.test"])), ["domain example.test enabled"]);
      assert.deepEqual(query(db, "SELECT enabled FROM domains WHERE domain_name = 'example.test'"), [{ enabled: 1 }]);

      const admin = await openSqliteAdmin(db);
      await admin.addAlias("a@example.test", "alice");
      await admin.addAlias("@example.test", "bob");
      await admin.addAlias("c@other.test", "carol");
      await admin.close();
      assert.deepEqual(ok(await run(["--db", db, "domains", "del", "example.test"])), ["domain example.test deleted, with 2 aliases"]);
      assert.deepEqual(query(db, "SELECT alias_email FROM aliases"), [{ alias_email: "c@other.test" }]);
      assert.deepEqual(query(db, "SELECT domain_name FROM domains"), [{ domain_name: "other.test" }]);
    });

    test("refused: duplicate, malformed, unknown (exit 1, nothing written)", async () => {
      const db = await seededDb("domains-refused");
      const before = readFileSync(db);
      fails(await run(["--db", db, "domains", "add", "D1.test"]), 1, /domain already exists: d1\.test/);
      fails(await run(["--db", db, "domains", "add", "not a domain"]), 1, /invalid domain name/);
      fails(await run(["--db", db, "domains", "del", "nosuch.test"]), 1, /no such domain: nosuch\.test/);
      fails(await run(["--db", db, "domains", "enable", "nosuch.test"]), 1, /no such domain: nosuch\.test/);
      assert.ok(readFileSync(db).equals(before), "file unchanged");
    });
  });

  describe("aliases", { concurrency: true }, () => {
    test("add (incl. catch-all), list (plain, --user, --json), disable, enable, del", async () => {
      const db = await seededDb("aliases");
      assert.deepEqual(ok(await run(["--db", db, "aliases", "add", " Support@D1.Test ", "Alice"])), ["alias support@d1.test -> alice added"]);
      assert.deepEqual(ok(await run(["--db", db, "aliases", "add", "@d2.test", "carol"])), ["alias @d2.test (catch-all) -> carol added"]);
      const plain = ok(await run(["--db", db, "aliases", "list"]));
      assert.deepEqual(plain.map((l) => l.split("\t").slice(0, 3).join(" ")), [
        "sales@d1.test alice enabled",
        "support@d1.test alice enabled",
        "info@d2.test bob enabled",
        "@d2.test carol enabled",
      ]);
      for (const line of plain) assert.match(line, /^\S+\t\S+\t(enabled|disabled)\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

      assert.deepEqual(ok(await run(["--db", db, "aliases", "disable", "SALES@d1.test"])), ["alias sales@d1.test disabled"]);
      const mine = ok(await run(["--db", db, "aliases", "list", "--user", "alice"]));
      assert.deepEqual(mine.map((l) => l.split("\t").slice(0, 3).join(" ")), ["sales@d1.test alice disabled", "support@d1.test alice enabled"]);
      const json = JSON.parse(ok(await run(["--db", db, "aliases", "list", "--user", "ALICE", "--json"])).join("\n")) as Record<string, unknown>[];
      assert.equal(json.length, 2);
      assert.deepEqual(Object.keys(json[0]!).sort(), ["alias_domain_name", "alias_email", "enabled", "target_user", "updated_at"]);
      assert.deepEqual(json.map((a) => [a.alias_email, a.alias_domain_name, a.enabled]), [["sales@d1.test", "d1.test", false], ["support@d1.test", "d1.test", true]]);

      assert.deepEqual(ok(await run(["--db", db, "aliases", "enable", "sales@d1.test"])), ["alias sales@d1.test enabled"]);
      assert.deepEqual(ok(await run(["--db", db, "aliases", "del", "support@d1.test"])), ["alias support@d1.test deleted"]);
      assert.deepEqual(query(db, "SELECT alias_email, enabled FROM aliases WHERE target_user = 'alice'"), [{ alias_email: "sales@d1.test", enabled: 1 }]);
    });

    test("refused: malformed address, unknown domain, duplicate, unknown alias (exit 1, nothing written)", async () => {
      const db = await seededDb("aliases-refused");
      const before = readFileSync(db);
      fails(await run(["--db", db, "aliases", "add", "not-an-address", "alice"]), 1, /invalid alias address: "not-an-address"/);
      fails(await run(["--db", db, "aliases", "add", "new@unknown.test", "alice"]), 1, /domain unknown\.test is not a mailcloak domain; add it first with: mailcloakctl domains add unknown\.test/);
      fails(await run(["--db", db, "aliases", "add", "Sales@d1.test", "zed"]), 1, /alias already exists: sales@d1\.test/);
      fails(await run(["--db", db, "aliases", "add", "new@d1.test", "two words"]), 1, /invalid username/);
      fails(await run(["--db", db, "aliases", "del", "none@d1.test"]), 1, /no such alias: none@d1\.test/);
      assert.ok(readFileSync(db).equals(before), "file unchanged");
    });
  });

  describe("apps", { concurrency: true }, () => {
    test("add with the argument, then replace with --password-stdin: Dovecot Argon2id hashes that verify", async () => {
      const db = await seededDb("apps-add");
      assert.deepEqual(ok(await run(["--db", db, "apps", "add", "mailer", "first-secret"])), ["app mailer added"]);
      const first = secretHash(db, "mailer");
      assert.ok(first.startsWith(HASH_PREFIX), first);
      assert.equal(await verifyAppPassword("first-secret", first), true);

      const admin = await openSqliteAdmin(db);
      await admin.setAppEnabled("mailer", false);
      await admin.close();
      const replaced = await run(["--db", db, "apps", "add", "mailer", "--password-stdin"], "second secret\nnot this line\n");
      assert.deepEqual(ok(replaced), ["app mailer: password replaced"]);
      const second = secretHash(db, "mailer");
      assert.ok(second.startsWith(HASH_PREFIX), second);
      assert.notEqual(second, first);
      assert.equal(await verifyAppPassword("second secret", second), true);
      assert.equal(await verifyAppPassword("first-secret", second), false);
      assert.deepEqual(query(db, "SELECT enabled FROM apps WHERE app_id = 'mailer'"), [{ enabled: 1 }], "replacing the password enables the app");
    });

    test("no usable password: empty (exit 1), none on a non-terminal (exit 2), both ways (exit 2); nothing written", async () => {
      const db = await seededDb("apps-nopass");
      const before = readFileSync(db);
      fails(await run(["--db", db, "apps", "add", "mailer", "--password-stdin"], ""), 1, /password is empty/);
      fails(await run(["--db", db, "apps", "add", "mailer", ""]), 1, /password is empty/);
      const none = await run(["--db", db, "apps", "add", "mailer"]);
      fails(none, 2, /stdin is not a terminal/);
      assert.match(none.stderr, /argument/);
      assert.match(none.stderr, /--password-stdin/);
      assert.match(none.stderr, /terminal to be prompted/);
      fails(await run(["--db", db, "apps", "add", "mailer", "pw", "--password-stdin"], "pw\n"), 2, /not both/);
      assert.ok(readFileSync(db).equals(before), "file unchanged");
      assert.equal(query(db, "SELECT 1 FROM apps WHERE app_id = 'mailer'").length, 0);
    });

    test("allow, disallow, list (plain and --json, never a hash), disable, enable, del with its senders", async () => {
      const db = await seededDb("apps");
      const plain = ok(await run(["--db", db, "apps", "list"]));
      assert.equal(plain.length, 4);
      assert.match(plain[0]!, /^app1\tenabled\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal(plain[1], "\t\ta@d1.test, b@d1.test (disabled)");
      assert.match(plain[2]!, /^app2\tenabled\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal(plain[3], "\t\t-");

      assert.deepEqual(ok(await run(["--db", db, "apps", "allow", "app2", " Info@D2.test "])), ["app app2 may send as info@d2.test"]);
      assert.deepEqual(ok(await run(["--db", db, "apps", "disallow", "app1", "a@d1.test"])), ["app app1 may no longer send as a@d1.test"]);
      assert.deepEqual(ok(await run(["--db", db, "apps", "disable", "app1"])), ["app app1 disabled"]);
      const json = ok(await run(["--db", db, "apps", "list", "--json"])).join("\n");
      assert.doesNotMatch(json, /ARGON2ID|fake-hash|secret/i, "no secret in the output");
      assert.deepEqual(JSON.parse(json).map((a: { app_id: string; enabled: boolean; senders: { from_addr: string; enabled: boolean }[] }) => ({
        app_id: a.app_id,
        enabled: a.enabled,
        senders: a.senders.map((s) => [s.from_addr, s.enabled]),
      })), [
        { app_id: "app1", enabled: false, senders: [["b@d1.test", false]] },
        { app_id: "app2", enabled: true, senders: [["info@d2.test", true]] },
      ]);
      assert.doesNotMatch(ok(await run(["--db", db, "apps", "list"])).join("\n"), /ARGON2ID|fake-hash/);
      assert.deepEqual(ok(await run(["--db", db, "apps", "enable", "app1"])), ["app app1 enabled"]);
      assert.deepEqual(query(db, "SELECT enabled FROM apps WHERE app_id = 'app1'"), [{ enabled: 1 }]);

      assert.deepEqual(ok(await run(["--db", db, "apps", "del", "app1"])), ["app app1 deleted"]);
      assert.deepEqual(query(db, "SELECT app_id, from_addr FROM app_from ORDER BY app_id"), [{ app_id: "app2", from_addr: "info@d2.test" }]);
      assert.deepEqual(query(db, "SELECT app_id FROM apps"), [{ app_id: "app2" }]);
    });

    test("refused: unknown app, bad sender, sender not allowed (exit 1, nothing written)", async () => {
      const db = await seededDb("apps-refused");
      const before = readFileSync(db);
      fails(await run(["--db", db, "apps", "allow", "nosuch", "a@d1.test"]), 1, /no such app: nosuch/);
      fails(await run(["--db", db, "apps", "allow", "app1", "not-an-address"]), 1, /invalid sender address/);
      fails(await run(["--db", db, "apps", "disallow", "app1", "zz@d1.test"]), 1, /app app1 is not allowed to send as zz@d1\.test/);
      fails(await run(["--db", db, "apps", "del", "nosuch"]), 1, /no such app: nosuch/);
      assert.ok(readFileSync(db).equals(before), "file unchanged");
    });

    test("on a terminal, the password is prompted for twice without echo", { skip: !existsSync("/usr/bin/script") && "needs script(1) for a pseudo-terminal" }, async () => {
      const db = await seededDb("apps-tty");
      const cmd = `'${process.execPath}' '${BIN}' --db '${db}' apps add ttyapp`;
      const child = spawn("/usr/bin/script", ["-qec", cmd, "/dev/null"], { cwd: REPO, stdio: ["pipe", "pipe", "pipe"] });
      let output = "";
      let answered = 0;
      const timer = setTimeout(() => child.kill(), 20_000);
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (chunk: string) => {
        output += chunk;
        const prompts = (output.match(/Password: |Repeat password: /g) ?? []).length;
        while (answered < prompts) {
          answered += 1;
          child.stdin.write("tty secret\r");
        }
      });
      const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
      clearTimeout(timer);
      child.stdin.destroy();
      assert.equal(code, 0, output);
      assert.equal(answered, 2, output);
      assert.match(output, /app ttyapp added/);
      assert.doesNotMatch(output, /tty secret/, "the password is not echoed");
      assert.equal(await verifyAppPassword("tty secret", secretHash(db, "ttyapp")), true);
    });
  });

  describe("usage errors: exit 2, one line", { concurrency: true }, () => {
    test("unknown command, unknown subcommand, missing command, unknown option, missing or extra argument", async () => {
      const db = await seededDb("usage");
      const before = readFileSync(db);
      fails(await run(["--db", db, "frobnicate"]), 2, /unknown command 'frobnicate'/);
      fails(await run(["--db", db, "domains", "frobnicate"]), 2, /domains: unknown command 'frobnicate'/);
      fails(await run(["--db", db, "domains"]), 2, /domains: missing command \(one of: add, del, enable, disable, list\)/);
      fails(await run(["--db", db]), 2, /missing command/);
      fails(await run(["--db", db, "--bogus", "domains", "list"]), 2, /unknown option '--bogus'/);
      fails(await run(["--db", db, "aliases", "list", "--bogus"]), 2, /unknown option '--bogus'/);
      fails(await run(["--db", db, "aliases", "add", "a@d1.test"]), 2, /missing required argument 'username'/);
      fails(await run(["--db", db, "domains", "add", "a.test", "b.test"]), 2, /too many arguments/);
      fails(await run(["--db"]), 2, /argument missing/);
      assert.ok(readFileSync(db).equals(before), "file unchanged");
    });

    test("--help documents the exit codes and exits 0; global options work after the command", async () => {
      const help = ok(await run(["--help"])).join("\n");
      assert.match(help, /Usage: mailcloakctl/);
      for (const cmd of ["init", "domains", "aliases", "apps"]) assert.match(help, new RegExp(`\\n  ${cmd} `));
      assert.match(help, /Exit status:\n {2}0 {2}success\n {2}1 {2}refused.*\n {2}2 {2}usage error.*\n {2}3 {2}database unavailable/);
      assert.match(ok(await run(["help", "apps"])).join("\n"), /allow <app_id> <from_addr>/);
      const db = await seededDb("global-after");
      assert.equal(ok(await run(["domains", "list", "--db", db])).length, 2);
    });
  });

  describe("database unavailable: exit 3", { concurrency: true }, () => {
    test("missing DB: says to run mailcloakctl init, creates nothing", async () => {
      const dir = freshDir("missing");
      const db = join(dir, "state.db");
      fails(await run(["--db", db, "domains", "list"]), 3, /does not exist; create it with: mailcloakctl --db \S+ init/);
      fails(await run(["--db", db, "apps", "add", "x", "pw"]), 3, /mailcloakctl --db \S+ init/);
      assert.equal(existsSync(db), false);
    });

    test("older schema needs migration; a file that is not a database; a directory", async () => {
      const dir = freshDir("unusable");
      const old = join(dir, "old.db");
      createOldDb(old);
      const before = readFileSync(old);
      fails(await run(["--db", old, "domains", "add", "d9.test"]), 3, /table domains is missing; run: mailcloakctl --db \S+ init/);
      assert.ok(readFileSync(old).equals(before), "older DB untouched");
      const text = join(dir, "text.db");
      writeFileSync(text, "this is not a database, just text long enough to have a header............\n");
      fails(await run(["--db", text, "aliases", "list"]), 3, /file is not a database/);
      fails(await run(["--db", dir, "aliases", "list"]), 3, /unable to open database file/);
    });

    test("locked past the busy timeout (sqlite.busy_timeout_ms from the config)", async () => {
      const dir = freshDir("locked");
      const db = await seededDb("locked-db");
      const config = writeConfig(dir, `sqlite: {path: ${db}, busy_timeout_ms: 50}\n`);
      const holder = rawDb(db);
      holder.exec("BEGIN IMMEDIATE");
      holder.prepare("INSERT INTO domains(domain_name) VALUES ('held.test')").run();
      try {
        fails(await run(["--config", config, "domains", "add", "d9.test"]), 3, /is locked by another process/);
      } finally {
        holder.exec("ROLLBACK");
        holder.close();
      }
      assert.deepEqual(ok(await run(["--config", config, "domains", "list"])).map((l) => l.split("\t")[0]), ["d1.test", "d2.test"]);
    });
  });

  describe("--config", { concurrency: true }, () => {
    test("its sqlite.path is the DB when --db is absent; --db wins", async () => {
      const dir = freshDir("config");
      const db = join(dir, "from-config.db");
      const config = writeConfig(dir, `sqlite: {path: ${db}}\n`);
      ok(await run(["--config", config, "init"]));
      assert.ok(existsSync(db));
      ok(await run(["--config", config, "domains", "add", "c.test"]));
      assert.deepEqual(query(db, "SELECT domain_name FROM domains"), [{ domain_name: "c.test" }]);
      const other = await seededDb("config-other");
      assert.deepEqual(ok(await run(["--config", config, "--db", other, "domains", "list"])).map((l) => l.split("\t")[0]), ["d1.test", "d2.test"]);
    });

    test("a key nobody reads: one warning line, and the command runs (as the Go release ignores such keys)", async () => {
      const dir = freshDir("config-unknown");
      const db = join(dir, "x.db");
      const config = writeConfig(dir, `sqlite: {path: ${db}, pathh: typo}\n`);
      const r = await run(["--config", config, "init"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^mailcloakctl: warning: [^\n]*sqlite\.pathh: unknown key[^\n]*\n$/);
      assert.ok(existsSync(db));
    });

    test("an invalid or missing config file: exit 2 with one line naming the problem", async () => {
      const dir = freshDir("config-bad");
      const config = writeConfig(dir, `sqlite: {path: ${join(dir, "x.db")}, busy_timeout_ms: soon}\n`);
      fails(await run(["--config", config, "domains", "list"]), 2, /sqlite\.busy_timeout_ms: must be a whole number/);
      fails(await run(["--config", config, "init"]), 2, /sqlite\.busy_timeout_ms/);
      assert.equal(existsSync(join(dir, "x.db")), false);
      fails(await run(["--config", join(dir, "absent.yaml"), "domains", "list"]), 2, /cannot read config file/);
      const yaml = join(dir, "broken.yaml");
      writeFileSync(yaml, "sqlite: [unclosed\n");
      fails(await run(["--config", yaml, "domains", "list"]), 2, /invalid YAML/);
    });
  });
});
