// The SQLite store against real temp-dir database files: the schema (as the
// Go mailcloak defines it), cascades, triggers, in-place migration of the
// older layout, the daemon's read methods and live reads.

import { initAdmin, oldLayoutDb, openReader, openSqliteAdmin, rawDb, type RawDb } from "./helpers/sqlite.js";
import { seedStore } from "./helpers/seed.js";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { setImmediate as setImmediateP } from "node:timers/promises";
import { isStoreError, StoreError } from "../src/store/errors.js";
import type { SqliteAdmin } from "../src/store/sqlite/index.js";
import { migrate, schemaProblem, schemaSql } from "../src/store/sqlite/schema.js";

const root = mkdtempSync(join(tmpdir(), "mailcloak-store-test-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
/** A fresh path in the suite's temp dir (no file yet). */
function dbPath(name: string): string {
  n += 1;
  return join(root, `${n}-${name}.db`);
}

/** A current DB with some rows, through the admin API. */
async function seeded(): Promise<{ path: string; admin: SqliteAdmin }> {
  const path = dbPath("seeded");
  const { store: admin } = await initAdmin(path);
  await seedStore(admin, {
    domains: ["d1.test", "d2.test"],
    aliases: [["sales@d1.test", "alice"], ["off@d1.test", "alice"], ["x@d2.test", "bob"], ["@d1.test", "carol"]],
    apps: [["app1", "{ARGON2ID}$fake1"], ["app2", "{ARGON2ID}$fake2"]],
    senders: [["app1", "a@d1.test"], ["app1", "b@d1.test"], ["app2", "a@d1.test"]],
    disabled: { domains: ["d2.test"], aliases: ["off@d1.test"], apps: ["app2"] },
  });
  admin.db.prepare("UPDATE app_from SET enabled = 0 WHERE app_id = 'app1' AND from_addr = 'b@d1.test'").run();
  return { path, admin };
}

interface Column {
  name: string;
  type: string;
  notnull: number;
  dflt_value: string | null;
  pk: number;
}
const NOW = "strftime('%s','now')";
const col = (name: string, type: string, notnull: number, dflt: string | null, pk: number): Column => ({ name, type, notnull, dflt_value: dflt, pk });

/** The Go mailcloak's tables, column for column. */
const EXPECTED_COLUMNS: Record<string, Column[]> = {
  domains: [col("domain_name", "TEXT", 0, null, 1), col("enabled", "INTEGER", 1, "1", 0), col("updated_at", "INTEGER", 1, NOW, 0)],
  aliases: [
    col("alias_email", "TEXT", 0, null, 1),
    col("target_user", "TEXT", 1, null, 0),
    col("alias_domain_name", "TEXT", 1, null, 0),
    col("enabled", "INTEGER", 1, "1", 0),
    col("updated_at", "INTEGER", 1, NOW, 0),
  ],
  apps: [
    col("app_id", "TEXT", 0, null, 1),
    col("secret_hash", "TEXT", 1, null, 0),
    col("enabled", "INTEGER", 1, "1", 0),
    col("updated_at", "INTEGER", 1, NOW, 0),
  ],
  app_from: [
    col("app_id", "TEXT", 1, null, 1),
    col("from_addr", "TEXT", 1, null, 2),
    col("enabled", "INTEGER", 1, "1", 0),
    col("updated_at", "INTEGER", 1, NOW, 0),
  ],
};
const EXPECTED_FKS: Record<string, { table: string; from: string; to: string; on_delete: string }[]> = {
  domains: [],
  aliases: [{ table: "domains", from: "alias_domain_name", to: "domain_name", on_delete: "CASCADE" }],
  apps: [],
  app_from: [{ table: "apps", from: "app_id", to: "app_id", on_delete: "CASCADE" }],
};
const EXPECTED_OBJECTS = [
  "index:idx_aliases_alias_domain",
  "index:idx_aliases_target_user",
  "index:idx_app_from_from_addr",
  "trigger:trg_aliases_domain_check_ins",
  "trigger:trg_aliases_domain_check_upd",
  "trigger:trg_aliases_set_updated_at",
  "trigger:trg_app_from_set_updated_at",
  "trigger:trg_apps_set_updated_at",
  "trigger:trg_domains_set_updated_at",
];

function tableInfo(db: RawDb, table: string): Column[] {
  return (db.pragma(`table_info(${table})`) as (Column & { cid: number })[]).map(({ name, type, notnull, dflt_value, pk }) => ({ name, type, notnull, dflt_value, pk }));
}
function foreignKeys(db: RawDb, table: string): { table: string; from: string; to: string; on_delete: string }[] {
  return (db.pragma(`foreign_key_list(${table})`) as { table: string; from: string; to: string; on_delete: string }[])
    .map(({ table, from, to, on_delete }) => ({ table, from, to, on_delete }));
}
function namedObjects(db: RawDb): string[] {
  return (db.prepare("SELECT type, name FROM sqlite_master WHERE type IN ('index', 'trigger') AND name NOT LIKE 'sqlite_%' ORDER BY type, name").all() as { type: string; name: string }[])
    .map((r) => `${r.type}:${r.name}`);
}
function schemaDump(db: RawDb): { type: string; name: string; sql: string | null }[] {
  return db.prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").all() as { type: string; name: string; sql: string | null }[];
}

/** The original tool's older layout, with rows of each kind (a disabled alias, app and sender among them). */
function createOldDb(path: string, extraSql = ""): void {
  oldLayoutDb(path, `
    INSERT INTO aliases VALUES ('sales@d1.test', 'alice', 1, 1000);
    INSERT INTO aliases VALUES ('info@d1.test', 'bob', 0, 1001);
    INSERT INTO aliases VALUES ('@d2.test', 'carol', 1, 1002);
    INSERT INTO aliases VALUES ('x@d2.test', 'dave', 1, 1003);
    INSERT INTO apps VALUES ('app1', '{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA', 1, 2000);
    INSERT INTO apps VALUES ('app2', '{ARGON2ID}$other', 0, 2001);
    INSERT INTO app_from VALUES ('app1', 'a@d1.test', 1);
    INSERT INTO app_from VALUES ('app1', 'b@d1.test', 0);
    INSERT INTO app_from VALUES ('app2', 'c@d2.test', 1);
  `, extraSql);
}

describe("schema", () => {
  test("applies twice without changing anything (idempotent)", async () => {
    const db = rawDb(dbPath("twice"));
    db.exec(schemaSql());
    const first = schemaDump(db);
    db.exec(schemaSql());
    assert.deepEqual(schemaDump(db), first);
    assert.equal(db.pragma("user_version", { simple: true }), 1);
    assert.equal(schemaProblem(db), null);
    db.close();
  });

  test("initStore twice: created, then nothing to migrate; WAL mode", async () => {
    const path = dbPath("init-twice");
    const a = await initAdmin(path);
    assert.equal(a.created, true);
    assert.deepEqual(a.report, { migrated: false, steps: [] });
    await a.store.close();
    const b = await initAdmin(path);
    assert.equal(b.created, false);
    assert.deepEqual(b.report, { migrated: false, steps: [] });
    assert.equal(b.store.db.pragma("journal_mode", { simple: true }), "wal");
    await b.store.close();
  });

  test("tables, columns, keys, indexes and triggers match the Go mailcloak's", async () => {
    const { store } = await initAdmin(dbPath("go-compat"));
    for (const table of Object.keys(EXPECTED_COLUMNS)) {
      assert.deepEqual(tableInfo(store.db, table), EXPECTED_COLUMNS[table], `columns of ${table}`);
      assert.deepEqual(foreignKeys(store.db, table), EXPECTED_FKS[table], `foreign keys of ${table}`);
    }
    assert.deepEqual(namedObjects(store.db), EXPECTED_OBJECTS);
    await store.close();
  });

  test("enabled must be 0 or 1 (CHECK)", async () => {
    const { store } = await initAdmin(dbPath("check"));
    assert.throws(() => store.db.prepare("INSERT INTO domains(domain_name, enabled) VALUES ('d.test', 2)").run(), /CHECK constraint failed/);
    await store.close();
  });
});

describe("cascades", () => {
  test("deleting a domain deletes its aliases, and says how many", async () => {
    const { admin } = await seeded();
    const r = await admin.deleteDomain("D1.TEST");
    assert.deepEqual(r, { domain: "d1.test", aliases: 3 });
    assert.deepEqual((await admin.listAliases()).map((a) => a.alias_email), ["x@d2.test"]);
    const left = admin.db.prepare("SELECT count(*) AS n FROM aliases WHERE alias_domain_name = 'd1.test'").get() as { n: number };
    assert.equal(left.n, 0);
    await admin.close();
  });

  test("deleting an app deletes its app_from rows (also by raw SQL)", async () => {
    const { admin } = await seeded();
    await admin.deleteApp("app1");
    const rows = admin.db.prepare("SELECT app_id, from_addr FROM app_from ORDER BY app_id").all();
    assert.deepEqual(rows, [{ app_id: "app2", from_addr: "a@d1.test" }]);
    admin.db.prepare("DELETE FROM apps WHERE app_id = 'app2'").run();
    assert.deepEqual(admin.db.prepare("SELECT * FROM app_from").all(), []);
    await admin.close();
  });

  test("an alias row needs its domain row (foreign key)", async () => {
    const { admin } = await seeded();
    assert.throws(
      () => admin.db.prepare("INSERT INTO aliases(alias_email, target_user, alias_domain_name) VALUES ('a@d9.test', 'u', 'd9.test')").run(),
      /FOREIGN KEY constraint failed/,
    );
    await admin.close();
  });
});

describe("triggers", () => {
  test("an alias whose alias_domain_name is not its address's domain is rejected (raw SQL insert and update)", async () => {
    const { admin } = await seeded();
    const db = admin.db;
    assert.throws(
      () => db.prepare("INSERT INTO aliases(alias_email, target_user, alias_domain_name) VALUES ('a@d1.test', 'u', 'd2.test')").run(),
      /alias_domain_name mismatch/,
    );
    assert.throws(
      () => db.prepare("INSERT INTO aliases(alias_email, target_user, alias_domain_name) VALUES ('nodomain', 'u', 'd1.test')").run(),
      /must contain @/,
    );
    assert.throws(
      () => db.prepare("UPDATE aliases SET alias_domain_name = 'd2.test' WHERE alias_email = 'sales@d1.test'").run(),
      /alias_domain_name mismatch/,
    );
    assert.equal(db.prepare("SELECT count(*) AS n FROM aliases WHERE alias_email IN ('a@d1.test', 'nodomain')").pluck().get(), 0);
    assert.equal(db.prepare("SELECT alias_domain_name FROM aliases WHERE alias_email = 'sales@d1.test'").pluck().get(), "d1.test");
    await admin.close();
  });

  test("an update that leaves updated_at alone sets it to now", async () => {
    const { admin } = await seeded();
    admin.db.prepare("UPDATE domains SET updated_at = 5 WHERE domain_name = 'd1.test'").run();
    admin.db.prepare("UPDATE domains SET enabled = 0 WHERE domain_name = 'd1.test'").run();
    const t = admin.db.prepare("SELECT updated_at FROM domains WHERE domain_name = 'd1.test'").pluck().get() as number;
    assert.ok(Math.abs(t - Date.now() / 1000) < 60, `updated_at ${t} is now`);
    await admin.close();
  });
});

describe("migration of the older layout", () => {
  test("keeps every row with the same values, creates the domains, then reports already current", async () => {
    const path = dbPath("old");
    createOldDb(path);
    const { store: admin, report, created } = await initAdmin(path);
    assert.equal(created, false);
    assert.equal(report.migrated, true);
    assert.ok(report.steps.some((s) => /username column renamed to target_user/.test(s)), report.steps.join("; "));
    assert.ok(report.steps.some((s) => /domains: 2 created/.test(s)), report.steps.join("; "));
    assert.ok(report.steps.some((s) => /apps: created_at carried over/.test(s)), report.steps.join("; "));

    const db = admin.db;
    assert.deepEqual(db.prepare("SELECT alias_email, target_user, alias_domain_name, enabled, updated_at FROM aliases ORDER BY alias_email").all(), [
      { alias_email: "@d2.test", target_user: "carol", alias_domain_name: "d2.test", enabled: 1, updated_at: 1002 },
      { alias_email: "info@d1.test", target_user: "bob", alias_domain_name: "d1.test", enabled: 0, updated_at: 1001 },
      { alias_email: "sales@d1.test", target_user: "alice", alias_domain_name: "d1.test", enabled: 1, updated_at: 1000 },
      { alias_email: "x@d2.test", target_user: "dave", alias_domain_name: "d2.test", enabled: 1, updated_at: 1003 },
    ]);
    assert.deepEqual(db.prepare("SELECT domain_name, enabled FROM domains ORDER BY domain_name").all(), [
      { domain_name: "d1.test", enabled: 1 },
      { domain_name: "d2.test", enabled: 1 },
    ]);
    assert.deepEqual(db.prepare("SELECT app_id, secret_hash, enabled, updated_at FROM apps ORDER BY app_id").all(), [
      { app_id: "app1", secret_hash: "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA", enabled: 1, updated_at: 2000 },
      { app_id: "app2", secret_hash: "{ARGON2ID}$other", enabled: 0, updated_at: 2001 },
    ]);
    assert.deepEqual(db.prepare("SELECT app_id, from_addr, enabled FROM app_from ORDER BY app_id, from_addr").all(), [
      { app_id: "app1", from_addr: "a@d1.test", enabled: 1 },
      { app_id: "app1", from_addr: "b@d1.test", enabled: 0 },
      { app_id: "app2", from_addr: "c@d2.test", enabled: 1 },
    ]);
    // The result is the current schema, keys and all.
    for (const table of Object.keys(EXPECTED_COLUMNS)) {
      assert.deepEqual(tableInfo(db, table), EXPECTED_COLUMNS[table], `columns of ${table}`);
      assert.deepEqual(foreignKeys(db, table), EXPECTED_FKS[table], `foreign keys of ${table}`);
    }
    assert.deepEqual(namedObjects(db), EXPECTED_OBJECTS); // idx_aliases_username is gone
    assert.equal(db.prepare("SELECT count(*) FROM sqlite_master WHERE name LIKE '%pre_migration%'").pluck().get(), 0);
    assert.equal(db.pragma("user_version", { simple: true }), 1);
    await admin.deleteApp("app1"); // the cascade works on the rebuilt tables
    assert.equal(db.prepare("SELECT count(*) FROM app_from WHERE app_id = 'app1'").pluck().get(), 0);
    await admin.close();

    const again = await initAdmin(path);
    assert.equal(again.created, false);
    assert.deepEqual(again.report, { migrated: false, steps: [] });
    await again.store.close();
  });

  test("a migration that cannot proceed (alias without @) leaves the file byte-for-byte unchanged", async () => {
    const path = dbPath("old-bad");
    createOldDb(path, "INSERT INTO aliases VALUES ('nodomain', 'eve', 1, 1004);");
    const before = readFileSync(path);
    await assert.rejects(initAdmin(path), (err: unknown) => err instanceof StoreError && /aliases without a domain: nodomain/.test(err.message));
    assert.ok(readFileSync(path).equals(before), "file unchanged");
    assert.equal(existsSync(`${path}-wal`), false);
    assert.equal(existsSync(`${path}-journal`), false);
    // And it still is the older layout, so the daemon refuses it with the way out.
    await assert.rejects(openReader(path, 100), /table domains is missing; run: mailcloakctl --db \S+ init/);
  });

  test("apps in the older layout beside an already current app_from: app_from keeps referencing apps", async () => {
    const path = dbPath("mixed");
    const raw = rawDb(path);
    raw.exec(`
      CREATE TABLE apps(app_id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, enabled INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL);
      CREATE TABLE app_from(app_id TEXT NOT NULL, from_addr TEXT NOT NULL, enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0,1)),
        updated_at INTEGER NOT NULL DEFAULT (strftime('%s','now')), PRIMARY KEY (app_id, from_addr),
        FOREIGN KEY (app_id) REFERENCES apps(app_id) ON DELETE CASCADE);
      INSERT INTO apps VALUES ('app1', 'h', 1, 7);
      INSERT INTO app_from VALUES ('app1', 'a@d1.test', 1, 9);
    `);
    raw.close();
    const { store: admin, report } = await initAdmin(path);
    assert.deepEqual(report.steps, ["apps: created_at carried over to updated_at"]);
    assert.deepEqual(foreignKeys(admin.db, "app_from"), EXPECTED_FKS.app_from);
    assert.deepEqual(admin.db.prepare("SELECT app_id, from_addr, updated_at FROM app_from").all(), [{ app_id: "app1", from_addr: "a@d1.test", updated_at: 9 }]);
    await admin.deleteApp("app1");
    assert.equal(admin.db.prepare("SELECT count(*) FROM app_from").pluck().get(), 0);
    await admin.close();
  });

  test("migrate() on a current DB is a no-op", async () => {
    const { admin } = await seeded();
    const before = schemaDump(admin.db);
    assert.deepEqual(migrate(admin.db), { migrated: false, steps: [] });
    assert.deepEqual(schemaDump(admin.db), before);
    assert.equal((await admin.listAliases()).length, 4);
    await admin.close();
  });
});

describe("admin writes validate before writing", () => {
  test("bad values, unknown rows and duplicates are refused with StoreError", async () => {
    const { admin } = await seeded();
    const count = (): number => admin.db.prepare("SELECT (SELECT count(*) FROM domains) + (SELECT count(*) FROM aliases) + (SELECT count(*) FROM apps) + (SELECT count(*) FROM app_from)").pluck().get() as number;
    const before = count();
    await assert.rejects(admin.addDomain("bad domain"), StoreError);
    await assert.rejects(admin.addDomain(" D1.Test "), /domain already exists: d1.test/);
    await assert.rejects(admin.addAlias("not-an-address", "alice"), /invalid alias address/);
    await assert.rejects(admin.addAlias("a@d9.test", "alice"), /d9.test is not a mailcloak domain/);
    await assert.rejects(admin.addAlias("SALES@d1.test", "zed"), /alias already exists: sales@d1.test/);
    await assert.rejects(admin.addAlias("new@d1.test", "two words"), /invalid username/);
    await assert.rejects(admin.allowAppSender("nosuch", "a@d1.test"), /no such app: nosuch/);
    await assert.rejects(admin.allowAppSender("app1", "bad"), /invalid sender address: "bad" \(expected local@domain\)/);
    await assert.rejects(admin.upsertApp("bad id", "h"), /invalid app id/);
    await assert.rejects(admin.deleteDomain("d9.test"), /no such domain/);
    await assert.rejects(admin.setAliasEnabled("none@d1.test", true), /no such alias/);
    await assert.rejects(admin.disallowAppSender("app1", "zz@d1.test"), /not allowed to send as/);
    assert.equal(count(), before);
    await admin.close();
  });

  test("addresses are trimmed and lower-cased; upsertApp replaces and re-enables", async () => {
    const { admin } = await seeded();
    assert.equal((await admin.addAlias("  New@D1.TEST ", " Alice ")).alias_email, "new@d1.test");
    assert.deepEqual((await admin.listAliases("ALICE")).map((a) => a.alias_email), ["new@d1.test", "off@d1.test", "sales@d1.test"]);
    assert.deepEqual(await admin.upsertApp("app2", "{ARGON2ID}$new"), { appId: "app2", created: false });
    const row = admin.db.prepare("SELECT secret_hash, enabled FROM apps WHERE app_id = 'app2'").get();
    assert.deepEqual(row, { secret_hash: "{ARGON2ID}$new", enabled: 1 });
    assert.deepEqual(await admin.upsertApp("app3", "{ARGON2ID}$3"), { appId: "app3", created: true });
    await admin.close();
  });
});

describe("Store (the daemon's reads)", () => {
  test("domainEnabled, alias, aliasOwnedBy, appEnabled, appAllowsSender, appsForSender", async () => {
    const { path, admin } = await seeded();
    await admin.close();
    const store = await openReader(path, 1000);
    assert.equal(store.domainEnabled("d1.test"), true);
    assert.equal(store.domainEnabled("d2.test"), false);
    assert.equal(store.domainEnabled("d9.test"), undefined);

    assert.deepEqual(store.alias("sales@d1.test"), { targetUser: "alice", domain: "d1.test", active: true });
    assert.deepEqual(store.alias("off@d1.test"), { targetUser: "alice", domain: "d1.test", active: false });
    assert.deepEqual(store.alias("x@d2.test"), { targetUser: "bob", domain: "d2.test", active: false }, "domain disabled");
    assert.deepEqual(store.alias("@d1.test"), { targetUser: "carol", domain: "d1.test", active: true });
    assert.equal(store.alias("nobody@d1.test"), undefined);

    assert.equal(store.aliasOwnedBy("sales@d1.test", "alice"), true);
    assert.equal(store.aliasOwnedBy("sales@d1.test", "bob"), false);
    assert.equal(store.aliasOwnedBy("off@d1.test", "alice"), false, "alias disabled");
    assert.equal(store.aliasOwnedBy("x@d2.test", "bob"), false, "domain disabled");
    assert.equal(store.aliasOwnedBy("nobody@d1.test", "alice"), false);

    assert.equal(store.appEnabled("app1"), true);
    assert.equal(store.appEnabled("app2"), false);
    assert.equal(store.appEnabled("nosuch"), undefined);

    assert.equal(store.appAllowsSender("app1", "a@d1.test"), true);
    assert.equal(store.appAllowsSender("app1", "b@d1.test"), false, "sender row disabled");
    assert.equal(store.appAllowsSender("app1", "c@d1.test"), false);
    assert.equal(store.appAllowsSender("nosuch", "a@d1.test"), false);

    assert.deepEqual(store.appsForSender("a@d1.test"), ["app1"], "app2 is disabled");
    assert.deepEqual(store.appsForSender("b@d1.test"), []);
    assert.deepEqual(store.appsForSender("zz@d1.test"), []);
    await store.close();
  });

  test("a write through a second connection is seen by an open Store's reads in the next event-loop turn", async () => {
    const { path, admin: first } = await seeded();
    await first.close();
    const store = await openReader(path, 1000);
    assert.equal(store.domainEnabled("d3.test"), undefined);
    assert.deepEqual(store.appsForSender("a@d1.test"), ["app1"]);

    const admin = await openSqliteAdmin(path);
    await admin.addDomain("d3.test");
    await admin.addAlias("new@d3.test", "dave");
    await admin.setAppEnabled("app2", true);
    await admin.setDomainEnabled("d1.test", false);
    await setImmediateP(); // a request sent after the commit is read in a later turn

    assert.equal(store.domainEnabled("d3.test"), true);
    assert.deepEqual(store.alias("new@d3.test"), { targetUser: "dave", domain: "d3.test", active: true });
    assert.deepEqual(store.appsForSender("a@d1.test"), ["app1", "app2"]);
    assert.equal(store.aliasOwnedBy("sales@d1.test", "alice"), false, "its domain is now disabled");
    await admin.deleteDomain("d3.test");
    await setImmediateP();
    assert.equal(store.alias("new@d3.test"), undefined);
    await admin.close();
    await store.close();
  });

  test("open refuses a missing DB and an older layout, naming mailcloakctl init", async () => {
    const missing = dbPath("missing");
    await assert.rejects(openReader(missing, 100), (err: unknown) => isStoreError(err, "missing") && /mailcloakctl --db \S+ init/.test(err.message));
    assert.equal(existsSync(missing), false, "not created");
    await assert.rejects(openSqliteAdmin(missing), (err: unknown) => isStoreError(err, "missing"));
    const old = dbPath("old-open");
    createOldDb(old);
    const before = readFileSync(old);
    await assert.rejects(openReader(old, 100), /table domains is missing/);
    assert.ok(readFileSync(old).equals(before), "a refused open leaves the file unchanged (not switched to WAL)");
    await assert.rejects(openSqliteAdmin(old), (err: unknown) => err instanceof StoreError && /table domains is missing; run: mailcloakctl --db \S+ init/.test(err.message));
  });
});
