// The daemon's store answers repeated questions from a memo and still reads
// live: a commit by any SQLite client (another connection here, the sqlite3
// command-line tool in another process, WAL checkpoints and restarts in
// between) is seen by the next request: within() asks whether the file
// changed once for the request (or batch of requests) it runs, and reads
// outside ask every time (src/store/sqlite/wal-index.ts states the rule).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { setImmediate as turn } from "node:timers/promises";
import { MEMO_MAX, type SqliteAdmin, type SqliteReader } from "../src/store/sqlite/index.js";
import { WalIndex } from "../src/store/sqlite/wal-index.js";
import { ctlOk, requireTool } from "./helpers/daemon.js";
import { initAdmin, openReader } from "./helpers/sqlite.js";

const root = mkdtempSync(join(tmpdir(), "mailcloak-memo-test-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

async function fresh(): Promise<{ path: string; admin: SqliteAdmin; store: SqliteReader }> {
  const path = join(root, `${++n}.db`);
  const { store: admin } = await initAdmin(path);
  await admin.addDomain("d1.test");
  await admin.addAlias("sales@d1.test", "alice");
  await admin.upsertApp("app1", "{ARGON2ID}$fake");
  await admin.allowAppSender("app1", "a@d1.test");
  return { path, admin, store: await openReader(path, 1000) };
}

describe("store memo", () => {
  test("repeated questions are answered without a query until something commits", async () => {
    const { admin, store } = await fresh();
    const ask = (): unknown[] => [
      store.domainEnabled("d1.test"),
      store.alias("sales@d1.test"),
      store.addressRows("sales+x@d1.test", "sales@d1.test", "d1.test"),
      store.appEnabled("app1"),
      store.appAllowsSender("app1", "a@d1.test"),
      store.appsForSender("a@d1.test"),
      store.domainEnabled("nosuch.test"),
    ];
    const first = ask();
    const q = store.queries;
    assert.equal(q, 7, "one query per question the first time");
    for (let i = 0; i < 100; i++) assert.deepEqual(ask(), first);
    assert.equal(store.queries, q, "no query for the 700 repeats");

    await turn();
    assert.deepEqual(ask(), first);
    assert.equal(store.queries, q, "nor in the next turn: nothing was committed");
    await admin.addAlias("other@d1.test", "bob"); // a commit that changes none of these answers
    await turn();
    assert.deepEqual(ask(), first);
    assert.equal(store.queries, q + 7, "after a commit every question is asked again once");
    await admin.close();
    store.close();
  });

  test("every commit from another connection is seen in the next turn (300 writes, checkpoints and WAL restarts between)", async () => {
    const { admin, store } = await fresh();
    for (let i = 0; i < 300; i++) {
      const target = `user${i % 7}`;
      admin.db.prepare("UPDATE aliases SET target_user = ?, enabled = ? WHERE alias_email = 'sales@d1.test'").run(target, i % 2);
      if (i % 50 === 25) admin.db.pragma("wal_checkpoint(TRUNCATE)");
      if (i % 50 === 40) admin.db.pragma("wal_checkpoint(RESTART)");
      await turn();
      assert.deepEqual(store.alias("sales@d1.test"), { targetUser: target, domain: "d1.test", active: i % 2 === 1 }, `write ${i}`);
      assert.equal(store.addressRows("sales@d1.test", null, "d1.test").exact?.targetUser, target, `write ${i}`);
      assert.equal(store.alias("sales@d1.test")?.targetUser, target, "a repeat is the same answer");
    }
    await admin.close();
    store.close();
  });

  test("an address asked with another base (recipient_delimiter changed by SIGHUP) is asked again", async () => {
    const { admin, store } = await fresh();
    await turn();
    assert.equal(store.addressRows("sales-x@d1.test", "sales@d1.test", "d1.test").base?.targetUser, "alice", "delimiter '-'");
    assert.equal(store.addressRows("sales-x@d1.test", null, "d1.test").base, undefined, "no delimiter: no base");
    assert.equal(store.addressRows("sales-x@d1.test", "sales@d1.test", "d1.test").base?.targetUser, "alice");
    await admin.close();
    store.close();
  });

  test("a rolled-back transaction changes nothing; a committed one changes the answer", async () => {
    const { admin, store } = await fresh();
    assert.equal(store.domainEnabled("d1.test"), true);
    assert.throws(() => admin.db.transaction(() => {
      admin.db.prepare("UPDATE domains SET enabled = 0").run();
      throw new Error("abort");
    })());
    await turn();
    assert.equal(store.domainEnabled("d1.test"), true);
    await admin.setDomainEnabled("d1.test", false);
    await turn();
    assert.equal(store.domainEnabled("d1.test"), false);
    assert.equal(store.alias("sales@d1.test")?.active, false, "the alias's domain is disabled now");
    await admin.close();
    store.close();
  });

  test("writes by the sqlite3 tool in another process are seen by the next turn's first read", async (t) => {
    if (!requireTool(t, "sqlite3")) return;
    const { path, admin, store } = await fresh();
    await admin.close();
    assert.equal(store.alias("new@d1.test"), undefined);
    for (let i = 0; i < 20; i++) {
      execFileSync("sqlite3", [path, `INSERT OR REPLACE INTO aliases(alias_email, target_user, alias_domain_name, enabled) VALUES ('new@d1.test', 'u${i}', 'd1.test', 1);`]);
      await turn();
      assert.equal(store.alias("new@d1.test")?.targetUser, `u${i}`, `sqlite3 run ${i}`);
      assert.equal(store.alias("new@d1.test")?.targetUser, `u${i}`);
    }
    execFileSync("sqlite3", [path, "DELETE FROM aliases WHERE alias_email = 'new@d1.test';"]);
    await turn();
    assert.equal(store.alias("new@d1.test"), undefined);
    store.close();
  });

  test("commits by mailcloakctl and by a raw-SQL writer in other processes are seen by the next batch's first read", async () => {
    const { path, admin, store } = await fresh();
    await admin.close();
    const batch = <T>(read: () => T): T => store.within(read); // as the listener runs a turn's requests (src/server/turn.ts)
    assert.equal(batch(() => store.domainEnabled("d1.test")), true);
    for (let i = 0; i < 6; i++) {
      const enabled = i % 2 === 1;
      await ctlOk(path, "domains", enabled ? "enable" : "disable", "d1.test");
      assert.equal(batch(() => [store.domainEnabled("d1.test"), store.alias("sales@d1.test")?.active]).join(), `${enabled},${enabled}`, `mailcloakctl commit ${i}`);
    }
    // A writer that is not ours (the Go daemon's admin, a script): raw SQL from another Node process.
    const writer = `const { rawDb } = await import(${JSON.stringify(new URL("./helpers/sqlite.js", import.meta.url).href)});
      const db = rawDb(process.argv[1]); db.prepare("UPDATE aliases SET target_user = ? WHERE alias_email = 'sales@d1.test'").run(process.argv[2]); db.close();`;
    for (let i = 0; i < 6; i++) {
      execFileSync(process.execPath, ["--input-type=module", "-e", writer, path, `go${i}`]);
      assert.equal(batch(() => store.alias("sales@d1.test")?.targetUser), `go${i}`, `raw-SQL commit ${i}`);
      assert.equal(batch(() => store.alias("sales@d1.test")?.targetUser), `go${i}`, "and the repeat, from the memo");
    }
    store.close();
  });

  test("while the daemon is connected no one can take the database out of WAL mode (the memo relies on it)", async (t) => {
    if (!requireTool(t, "sqlite3")) return;
    const { path, admin, store } = await fresh();
    await admin.close();
    assert.equal(store.domainEnabled("d1.test"), true);
    assert.throws(() => execFileSync("sqlite3", [path, "PRAGMA journal_mode=DELETE; UPDATE domains SET enabled = 0;"], { stdio: "pipe" }), /database is locked/);
    assert.equal(execFileSync("sqlite3", [path, "PRAGMA journal_mode;"], { encoding: "utf8" }).trim(), "wal");
    await turn();
    assert.equal(store.domainEnabled("d1.test"), true, "and the refused write changed nothing");
    store.close();
  });

  test("within(): one look per request; a commit during it is seen by the next request", async () => {
    const { admin, store } = await fresh();
    store.within(() => {
      assert.equal(store.domainEnabled("d1.test"), true);
      admin.db.prepare("UPDATE domains SET enabled = 0 WHERE domain_name = 'd1.test'").run(); // another connection commits
      assert.equal(store.domainEnabled("d1.test"), true, "the request's own view: it arrived before the commit");
    });
    assert.equal(store.within(() => store.domainEnabled("d1.test")), false, "the next request sees the commit");
    await admin.setDomainEnabled("d1.test", true);
    assert.equal(store.domainEnabled("d1.test"), true, "outside a request every read looks");
    await admin.close();
    store.close();
  });

  test("a symlinked database path: the -shm next to the real file is watched, not a stale one next to the link", async () => {
    const dir = mkdtempSync(join(root, "link-"));
    const real = join(dir, "real.db");
    const { store: admin } = await initAdmin(real);
    await admin.addDomain("d1.test");
    const link = join(dir, "link.db");
    symlinkSync(real, link);
    // A leftover -shm beside the link (from when the DB was a plain file there) with a valid header.
    writeFileSync(`${link}-shm`, readFileSync(`${real}-shm`));
    const store = await openReader(link, 1000);
    for (let i = 0; i < 5; i++) {
      await admin.setDomainEnabled("d1.test", i % 2 === 1);
      assert.equal(store.within(() => store.domainEnabled("d1.test")), i % 2 === 1, `commit ${i}`);
    }
    await admin.close();
    store.close();
  });

  test("the memo is bounded", async () => {
    const { admin, store } = await fresh();
    await turn();
    for (let i = 0; i < MEMO_MAX + 500; i++) store.domainEnabled(`x${i}.test`);
    assert.ok(store.memoSize <= MEMO_MAX, `${store.memoSize} entries`);
    assert.equal(store.domainEnabled("d1.test"), true);
    await admin.close();
    store.close();
  });
});

describe("WalIndex", () => {
  test("no -shm file: always 'changed' (every read queries)", async () => {
    const v = new WalIndex(join(root, "absent.db"));
    assert.equal(v.changed(), true);
    assert.equal(v.changed(), true);
    v.close();
  });

  test("unchanged between commits, changed after each", async () => {
    const { path, admin, store } = await fresh();
    store.domainEnabled("d1.test"); // the daemon's connection has the WAL index open
    const v = new WalIndex(path);
    assert.equal(v.changed(), true, "the first look");
    assert.equal(v.changed(), false);
    assert.equal(v.changed(), false);
    for (let i = 0; i < 20; i++) {
      await admin.setDomainEnabled("d1.test", i % 2 === 1); // starts enabled: every call changes a byte
      assert.equal(v.changed(), true, `commit ${i}`);
      assert.equal(v.changed(), false);
    }
    v.revalidate();
    assert.equal(v.changed(), false, "the same -shm file is kept");
    v.close();
    await admin.close();
    store.close();
  });
});
