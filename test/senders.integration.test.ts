// Delegated senders (send-as): mailcloakctl senders allow/deny/list for real
// (bad input refused with one line and nothing written, the login checked
// against the config's identity source), and the running daemon's senders
// socketmap and policy honouring a delegation from the next lookup on,
// including on a database made without the table (as the Go version makes it).

import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { rawDb, type RawDb } from "./helpers/sqlite.js";
import { ctl, ctlOk, policyQuery, ROOT, socketmapQuery, type Client, type DaemonProcess } from "./helpers/daemon.js";
import { servedDaemon, type ServedDaemon } from "./helpers/fixtures.js";
import { AUTH } from "./helpers/tables.js";
import { ACTIONS } from "../src/handlers/policy.js";
import { SENDER_DELEGATIONS_DDL } from "../src/store/sqlite/schema.js";

let served: ServedDaemon | undefined;
let daemon: DaemonProcess;
let sm: Client;
let pol: Client;

before(async () => {
  served = await servedDaemon({ config: { policy: { domain: "cfg.test" } }, apps: [["crm", "crm-password"]] });
  ({ daemon, sm, pol } = served);
});

after(async () => {
  await served?.close();
});

const rows = (): unknown[] => {
  const d = rawDb(daemon.db, { readonly: true });
  try {
    const has = d.prepare("SELECT 1 FROM sqlite_master WHERE name = 'sender_delegations'").get() !== undefined;
    return has ? d.prepare("SELECT from_addr, login FROM sender_delegations ORDER BY 1, 2").all() : [];
  } finally {
    d.close();
  }
};

test("db-init.sql creates sender_delegations with the statement mailcloakctl runs on an older database", () => {
  assert.ok(readFileSync(join(ROOT, "db-init.sql"), "utf8").includes(SENDER_DELEGATIONS_DDL));
});

test("db-init.sql does not contradict the Go schema: Go's objects as Go makes them, user_version 1, the extra tables touch none of Go's", () => {
  const open = (sql: string): RawDb => {
    const d = rawDb(":memory:");
    d.exec(sql);
    return d;
  };
  const go = open(readFileSync(join(ROOT, "test/fixtures/go-schema.sql"), "utf8"));
  const ours = open(readFileSync(join(ROOT, "db-init.sql"), "utf8"));
  ours.exec(SENDER_DELEGATIONS_DDL); // what the first `senders allow` runs on an older database
  try {
    type Obj = { type: string; name: string; tbl_name: string; sql: string | null };
    const objects = (d: RawDb): Map<string, Obj> => new Map(
      (d.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").all() as Obj[]).map((o) => [o.name, o]),
    );
    const shape = (d: RawDb, o: Obj): unknown => o.type === "table"
      ? { columns: d.pragma(`table_xinfo(${o.name})`), keys: d.pragma(`foreign_key_list(${o.name})`) }
      : o.type === "index" ? d.pragma(`index_xinfo(${o.name})`) : (o.sql ?? "").replace(/\s+/g, " ").replace(/ ?([(),+=<>;]) ?/g, "$1").trim(); // a trigger's text, layout aside
    const g = objects(go);
    const ourObjects = objects(ours);
    assert.ok(g.size >= 12, `the Go fixture has its tables, indexes and triggers (${g.size})`);
    for (const [name, o] of g) {
      const mine = ourObjects.get(name);
      assert.ok(mine !== undefined, `db-init.sql lacks the Go ${o.type} ${name}`);
      assert.equal(`${mine.type} on ${mine.tbl_name}`, `${o.type} on ${o.tbl_name}`, name);
      assert.deepEqual(shape(ours, mine), shape(go, o), `${o.type} ${name} differs from the Go schema`);
    }
    // Nothing extra fires on, indexes or references a Go table: Go's statements behave as on a Go-made file.
    const extra = [...ourObjects.values()].filter((o) => !g.has(o.name));
    assert.ok(extra.some((o) => o.name === "sender_delegations"));
    for (const o of extra) {
      assert.ok(o.type === "table" || !g.has(o.tbl_name), `${o.type} ${o.name} is on the Go table ${o.tbl_name}`);
      if (o.type !== "table") continue;
      const refs = (ours.pragma(`foreign_key_list(${o.name})`) as { table: string }[]).map((k) => k.table);
      assert.deepEqual(refs.filter((r) => g.has(r)), [], `table ${o.name} references Go tables`);
    }
    assert.equal(ours.pragma("user_version", { simple: true }), go.pragma("user_version", { simple: true }));
  } finally {
    go.close();
    ours.close();
  }
});

describe("mailcloakctl senders", () => {
  test("bad input: one clear line, exit 1, nothing written", async () => {
    const before = JSON.stringify(rows());
    const cases: [string[], RegExp][] = [
      [["not-an-address", "alice"], /invalid sender address: "not-an-address" \(expected local@domain\)/],
      [["x@ext.test", "alice"], /domain ext\.test is not a local domain; .*mailcloakctl domains add ext\.test/],
      [["info@d1.test", "crm"], /crm is an app; let it send as info@d1\.test with: mailcloakctl apps allow crm info@d1\.test/],
      [["info@d1.test", "bad login"], /invalid login: "bad login"/],
      [["info@d1.test", "mallory", "--config", daemon.configPath], /unknown login mallory: no such user in the identity source/],
    ];
    for (const [args, want] of cases) {
      const r = await ctl(daemon.db, "senders", "allow", ...args);
      assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, want);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.equal(r.stdout, "");
    }
    const deny = await ctl(daemon.db, "senders", "deny", "info@d1.test", "alice");
    assert.equal(deny.code, 1);
    assert.match(deny.stderr, /alice has no delegation to send as info@d1\.test/);
    assert.equal(JSON.stringify(rows()), before);
    const usage = await ctl(daemon.db, "senders");
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /senders: missing command \(one of: allow, deny, list\)/);
  });

  test("allow (checked against the config's identity source, or with a warning), list, deny", async () => {
    const checked = await ctl(daemon.db, "--config", daemon.configPath, "senders", "allow", "Info@D1.test", "Alice");
    assert.equal(checked.code, 0, checked.stderr);
    assert.equal(checked.stdout, "alice may send as info@d1.test\n");
    assert.doesNotMatch(checked.stderr, /not checked/);
    const again = await ctlOk(daemon.db, "senders", "allow", "info@d1.test", "alice");
    assert.equal(again, "alice may already send as info@d1.test\n");
    // Without a config file the login cannot be checked: said on stderr, written anyway.
    const unchecked = await ctl(daemon.db, "senders", "allow", "info@d1.test", "dave");
    assert.equal(unchecked.code, 0);
    assert.match(unchecked.stderr, /warning: login dave not checked against the identity source \(no config file; pass --config\)/);
    // A policy.domain of the config is local without a domains row.
    await ctlOk(daemon.db, "--config", daemon.configPath, "senders", "allow", "desk@cfg.test", "bob");
    const list = (await ctlOk(daemon.db, "senders", "list")).trim().split("\n").map((l) => l.split("\t").slice(0, 2).join(" "));
    assert.deepEqual(list, ["desk@cfg.test bob", "info@d1.test alice", "info@d1.test dave"]);
    const json = JSON.parse(await ctlOk(daemon.db, "senders", "list", "--login", "DAVE", "--json")) as { from_addr: string; login: string; updated_at: number }[];
    assert.deepEqual(json.map((r) => [r.from_addr, r.login]), [["info@d1.test", "dave"]]);
    assert.equal(typeof json[0]!.updated_at, "number");
    assert.equal(await ctlOk(daemon.db, "senders", "deny", "info@d1.test", "dave"), "dave may no longer send as info@d1.test\n");
    assert.deepEqual(rows(), [{ from_addr: "desk@cfg.test", login: "bob" }, { from_addr: "info@d1.test", login: "alice" }]);
  });
});

describe("the daemon honours delegations", () => {
  test("senders socketmap and policy see an allow and a deny from the next lookup on", async () => {
    await ctlOk(daemon.db, "senders", "allow", "team@d1.test", "alice");
    assert.equal(await socketmapQuery(sm, "senders", "team@d1.test"), "OK alice");
    assert.equal(await socketmapQuery(sm, "senders", "TEAM+x@d1.test"), "OK alice");
    assert.equal(await policyQuery(pol, AUTH("alice", "team@d1.test")), ACTIONS.dunno);
    assert.equal(await policyQuery(pol, AUTH("dave", "team@d1.test")), ACTIONS.notOwned);
    // A user's own address delegated to another login: both may use it.
    await ctlOk(daemon.db, "senders", "allow", "alice@d1.test", "dave");
    assert.equal(await socketmapQuery(sm, "senders", "alice@d1.test"), "OK alice,dave");
    assert.equal(await policyQuery(pol, AUTH("dave", "alice@d1.test")), ACTIONS.dunno);
    await ctlOk(daemon.db, "senders", "deny", "alice@d1.test", "dave");
    await ctlOk(daemon.db, "senders", "deny", "team@d1.test", "alice");
    assert.equal(await socketmapQuery(sm, "senders", "team@d1.test"), "NOTFOUND");
    assert.equal(await policyQuery(pol, AUTH("dave", "alice@d1.test")), ACTIONS.notOwned);
    assert.equal(await policyQuery(pol, AUTH("alice", "team@d1.test")), ACTIONS.notOwned);
  });

  test("a delegation whose domain was removed is not honoured", async () => {
    await ctlOk(daemon.db, "domains", "add", "gone.test");
    await ctlOk(daemon.db, "senders", "allow", "x@gone.test", "alice");
    assert.equal(await socketmapQuery(sm, "senders", "x@gone.test"), "OK alice");
    await ctlOk(daemon.db, "domains", "del", "gone.test");
    assert.equal(await socketmapQuery(sm, "senders", "x@gone.test"), "NOTFOUND");
    assert.equal(await policyQuery(pol, AUTH("alice", "x@gone.test")), ACTIONS.notOwned);
  });

  test("a database without the table (as the Go version makes it) answers, and the first allow creates it", async () => {
    const d = rawDb(daemon.db);
    d.exec("DROP TABLE sender_delegations");
    d.close();
    assert.equal(await socketmapQuery(sm, "senders", "info@d1.test"), "NOTFOUND");
    assert.equal(await policyQuery(pol, AUTH("alice", "info@d1.test")), ACTIONS.notOwned);
    assert.equal(await policyQuery(pol, AUTH("alice", "alice@d1.test")), ACTIONS.dunno);
    await ctlOk(daemon.db, "senders", "allow", "info@d1.test", "alice");
    assert.equal(await socketmapQuery(sm, "senders", "info@d1.test"), "OK alice");
    assert.ok(!daemon.output.includes("database error"), daemon.output);
  });
});
