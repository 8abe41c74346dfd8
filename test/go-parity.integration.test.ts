// Drop-in parity with the Go mailcloak, end to end: the real daemon runs on a
// config laid out exactly as the Go sample (test/fixtures/go-sample.yaml, its
// placeholders filled in and its paths moved to a temp dir) and on a database
// made from the Go schema (test/fixtures/go-schema.sql), against Keycloak's
// wire protocol (the fake), and answers over its real sockets with the Go
// version's reply texts. mailcloakctl then works on that Go-made database and
// leaves its schema byte for byte as the Go version wrote it. A second run
// uses the Go end-to-end suite's layout: daemon.user root, sockets 0666.

import { rawDb } from "./helpers/sqlite.js";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chownSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Client, ctl, ctlOk, DaemonProcess, netstring, netstringLength, policyQuery, ROOT, socketmapQuery, tempDir } from "./helpers/daemon.js";
import { FakeKeycloak } from "./fake-keycloak.js";
import { lookupGroup, lookupUser } from "../src/system/accounts.js";

const isRoot = process.getuid?.() === 0;
const fixture = (name: string): string => readFileSync(join(ROOT, "test", "fixtures", name), "utf8");

/** The reply texts of the Go version's policy.go and socketmap.go. */
const GO = {
  dunno: "DUNNO",
  noSuchUser: "550 5.1.1 No such user",
  notLocal: "550 5.7.1 Recipient domain not local",
  localNeedsAuth: "553 5.7.1 Sending from local domains requires authentication",
  notOwned: "553 5.7.1 Sender not owned by authenticated user",
  idpTempfail: "451 4.3.0 Temporary authentication/lookup failure",
} as const;

/** A database made by the Go schema, seeded as the Go tools would have left it (WAL, as Go's open sets it). */
function goDatabase(path: string): void {
  const db = rawDb(path);
  db.exec(fixture("go-schema.sql"));
  db.pragma("journal_mode = WAL");
  db.exec(`
    INSERT INTO domains(domain_name) VALUES ('d1.test');
    INSERT INTO aliases(alias_email, target_user, alias_domain_name) VALUES ('alias1@d1.test', 'alice', 'd1.test');
    INSERT INTO aliases(alias_email, target_user, alias_domain_name, enabled) VALUES ('old@d1.test', 'alice', 'd1.test', 0);
    INSERT INTO apps(app_id, secret_hash) VALUES ('app1', '{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g');
    INSERT INTO app_from(app_id, from_addr) VALUES ('app1', 'noreply@d1.test');`);
  db.close();
}

/** The schema as SQLite keeps it: what a Go mailcloak going back would open. */
function schemaOf(path: string): { sql: unknown[]; userVersion: unknown } {
  const db = rawDb(path, { readonly: true });
  try {
    return { sql: db.prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").all(), userVersion: db.pragma("user_version", { simple: true }) };
  } finally {
    db.close();
  }
}

/** Accounts that exist here for the sample's postfix/postfix owners and its daemon.user. */
function accounts(): { owner: string; group: string; daemonUser: string } {
  if (!isRoot) {
    return { owner: userInfo().username, group: execFileSync("id", ["-gn"], { encoding: "utf8" }).trim(), daemonUser: "mailcloak" };
  }
  const owner = lookupUser("postfix") ? "postfix" : "nobody";
  const group = lookupGroup("postfix") !== null ? "postfix" : lookupGroup("nogroup") !== null ? "nogroup" : "nobody";
  return { owner, group, daemonUser: lookupUser("mailcloak") ? "mailcloak" : "nobody" };
}

function fill(text: string, d: DaemonProcess, values: Record<string, string>): string {
  let out = text
    .replaceAll("/var/lib/mailcloak/state.db", d.db)
    .replaceAll("/var/spool/postfix/private/mailcloak-policy", d.policySocket)
    .replaceAll("/var/spool/postfix/private/mailcloak-socketmap", d.socketmapSocket);
  for (const [from, to] of Object.entries(values)) out = out.replaceAll(from, to);
  return out;
}

const RCPT = (attrs: Record<string, string>) => ({ protocol_state: "RCPT", protocol_name: "ESMTP", client_address: "127.0.0.1", sasl_method: "", sasl_username: "", ...attrs });

let kc: FakeKeycloak;
before(async () => {
  kc = await FakeKeycloak.start();
  kc.addUser({ username: "alice", email: "alice@d1.test" });
  kc.addUser({ username: "bob", email: "bob@d1.test" });
});
after(() => kc.stop());

describe("the Go sample's config and the Go schema's database", () => {
  let d: DaemonProcess;
  let goSchema: ReturnType<typeof schemaOf>;
  const who = accounts();

  before(async () => {
    d = new DaemonProcess(tempDir("mailcloak-go-parity-"));
    goDatabase(d.db);
    goSchema = schemaOf(d.db);
    const text = fill(fixture("go-sample.yaml"), d, {
      "<Keycloak URL>": kc.url,
      "<Keycloak Realm>": kc.realm,
      "<Client ID>": kc.clientId,
      "<Client Secret>": kc.clientSecret,
      "<EMail domain-name>": "d1.test",
      'socket_owner_user: "postfix"': `socket_owner_user: "${who.owner}"`,
      'socket_owner_group: "postfix"': `socket_owner_group: "${who.group}"`,
      'user: "mailcloak"': `user: "${who.daemonUser}"`,
    });
    // Only values were substituted: the sample's lines, keys and order are all there.
    assert.equal(text.split("\n").length, fixture("go-sample.yaml").split("\n").length);
    writeFileSync(d.configPath, text);
    if (isRoot) {
      // The daemon switches to daemon.user; the DB and its directory are that user's, as `mailcloakctl init` leaves them.
      const u = lookupUser(who.daemonUser)!;
      for (const p of [d.dir, d.db, `${d.db}-wal`, `${d.db}-shm`]) {
        try {
          chownSync(p, u.uid, u.gid);
        } catch {
          /* -wal/-shm may be gone after the seeding connection closed */
        }
      }
    }
    await d.spawn();
  });
  after(() => d.cleanup());

  test("starts with no warning, sockets as configured", () => {
    assert.deepEqual(d.records().filter((r) => r.level === 40), []);
    for (const p of [d.policySocket, d.socketmapSocket]) {
      const st = statSync(p);
      assert.equal(st.mode & 0o777, 0o660, p);
      assert.equal(st.uid, lookupUser(who.owner)!.uid, p);
    }
    if (isRoot) assert.match(d.output, new RegExp(`"user":"${who.daemonUser}".*dropped privileges`));
  });

  const policyCases: Array<{ name: string; attrs: Record<string, string>; want: string }> = [
    { name: "RCPT for a Keycloak user", attrs: { sender: "sender@example.net", recipient: "alice@d1.test" }, want: GO.dunno },
    { name: "RCPT for an alias", attrs: { sender: "sender@example.net", recipient: "alias1@d1.test" }, want: GO.dunno },
    { name: "RCPT for a missing address", attrs: { sender: "sender@example.net", recipient: "missing@d1.test" }, want: GO.noSuchUser },
    { name: "RCPT for a disabled alias", attrs: { sender: "sender@example.net", recipient: "old@d1.test" }, want: GO.noSuchUser },
    { name: "unauthenticated sender from a local domain", attrs: { sender: "alice@d1.test", recipient: "alias1@d1.test" }, want: GO.localNeedsAuth },
    { name: "unauthenticated relay", attrs: { sender: "sender@example.net", recipient: "recipient@example.com" }, want: GO.notLocal },
    { name: "OAuth user sending as their primary email", attrs: { sasl_method: "XOAUTH2", sasl_username: "alice", sender: "alice@d1.test", recipient: "recipient@example.com" }, want: GO.dunno },
    { name: "OAuth user sending as their alias", attrs: { sasl_method: "OAUTHBEARER", sasl_username: "alice", sender: "alias1@d1.test", recipient: "recipient@example.com" }, want: GO.dunno },
    { name: "OAuth user sending as someone else", attrs: { sasl_method: "XOAUTH2", sasl_username: "alice", sender: "bob@d1.test", recipient: "recipient@example.com" }, want: GO.notOwned },
    { name: "app sending as its allowed address", attrs: { sasl_method: "PLAIN", sasl_username: "app1", sender: "noreply@d1.test", recipient: "recipient@example.com" }, want: GO.dunno },
    { name: "app sending as another address", attrs: { sasl_method: "LOGIN", sasl_username: "app1", sender: "alice@d1.test", recipient: "recipient@example.com" }, want: GO.notOwned },
  ];
  for (const { name, attrs, want } of policyCases) {
    test(`policy: ${name} -> ${want}`, async () => {
      const c = await Client.connect(d.policySocket);
      try {
        assert.equal(await policyQuery(c, RCPT(attrs)), want);
      } finally {
        c.destroy();
      }
    });
  }

  test("socketmap: the Go alias map's answers, byte for byte", async () => {
    const c = await Client.connect(d.socketmapSocket);
    try {
      const raw = async (payload: string): Promise<string> => {
        c.write(netstring(payload));
        return (await c.read(netstringLength)).toString("utf8");
      };
      assert.equal(await raw("alias alias1@d1.test"), "16:OK alice@d1.test,");
      assert.equal(await raw("alias missing@d1.test"), "8:NOTFOUND,");
      assert.equal(await raw("alias old@d1.test"), "8:NOTFOUND,");
      assert.equal(await raw("alias other@other.test"), "8:NOTFOUND,");
      assert.equal(await raw("virtual alias1@d1.test"), "8:NOTFOUND,");
      assert.equal(await raw(""), "8:NOTFOUND,");
      assert.equal(await raw("alias"), "4:TEMP,");
      assert.equal(await raw("alias ALIAS1@D1.TEST"), "16:OK alice@d1.test,");
    } finally {
      c.destroy();
    }
  });

  test("Keycloak failing: keycloak_failure_mode tempfail gives the Go 451 text", async () => {
    kc.mode = "users500";
    try {
      const c = await Client.connect(d.policySocket);
      assert.equal(await policyQuery(c, RCPT({ sender: "sender@example.net", recipient: "never-asked@d1.test" })), GO.idpTempfail);
      c.destroy();
    } finally {
      kc.mode = "ok";
    }
  });

  test("mailcloakctl lists and adds aliases in the Go-made DB; the daemon sees the change at once", async () => {
    const list = await ctlOk(d.db, "aliases", "list", "--json");
    const rows = JSON.parse(list) as Array<{ alias_email: string; target_user: string; enabled: boolean }>;
    assert.deepEqual(rows.map((r) => [r.alias_email, r.target_user, r.enabled]), [["alias1@d1.test", "alice", true], ["old@d1.test", "alice", false]]);
    await ctlOk(d.db, "aliases", "add", "sales@d1.test", "bob");
    const c = await Client.connect(d.socketmapSocket);
    assert.equal(await socketmapQuery(c, "alias", "sales@d1.test"), "OK bob@d1.test");
    c.destroy();
    const refused = await ctl(d.db, "aliases", "add", "x@nodomain.test", "bob");
    assert.notEqual(refused.code, 0, "an alias outside the domains table is refused, as by the Go schema's checks");
  });

  test("mailcloakctl lists and adds apps in the Go-made DB; the new app may send as its address", async () => {
    const before = JSON.parse(await ctlOk(d.db, "apps", "list", "--json")) as Array<{ app_id: string; senders: Array<{ from_addr: string }> }>;
    assert.deepEqual(before.map((a) => [a.app_id, a.senders.map((s) => s.from_addr)]), [["app1", ["noreply@d1.test"]]]);
    await ctlOk(d.db, "apps", "add", "app2", "app2-Secret-pw");
    await ctlOk(d.db, "apps", "allow", "app2", "reports@d1.test");
    const db = rawDb(d.db, { readonly: true });
    const hash = (db.prepare("SELECT secret_hash FROM apps WHERE app_id = 'app2'").get() as { secret_hash: string }).secret_hash;
    db.close();
    assert.match(hash, /^\{ARGON2ID\}\$argon2id\$v=19\$/, "a hash Dovecot (and the Go tools) verify");
    const c = await Client.connect(d.policySocket);
    assert.equal(await policyQuery(c, RCPT({ sasl_method: "PLAIN", sasl_username: "app2", sender: "reports@d1.test", recipient: "x@example.com" })), GO.dunno);
    assert.equal(await policyQuery(c, RCPT({ sasl_method: "PLAIN", sasl_username: "app2", sender: "noreply@d1.test", recipient: "x@example.com" })), GO.notOwned);
    c.destroy();
  });

  test("after the daemon and mailcloakctl, the schema is still the Go version's, byte for byte", async () => {
    await d.stop();
    assert.deepEqual(schemaOf(d.db), goSchema);
    assert.equal(goSchema.userVersion, 1);
  });
});

describe("the Go end-to-end suite's config: daemon.user root, sockets 0666 owned by root", { skip: isRoot ? false : "needs root (CI runs as root)" }, () => {
  test("runs as root with exactly one WARN line; the 0666 sockets in a 0700 directory are not warned about", async () => {
    const d = new DaemonProcess(tempDir("mailcloak-go-e2e-"));
    try {
      goDatabase(d.db);
      writeFileSync(d.configPath, fill(fixture("go-e2e.yaml"), d, { "http://keycloak:8080": kc.url }));
      await d.spawn();
      assert.match(readFileSync(`/proc/${d.child!.pid}/status`, "utf8"), /^Uid:\s+0\s+0\s+0\s+0$/m);
      for (const p of [d.policySocket, d.socketmapSocket]) assert.equal(statSync(p).mode & 0o777, 0o666, p);
      const warns = d.records().filter((r) => r.level === 40);
      assert.equal(warns.length, 1, JSON.stringify(warns));
      assert.match(String(warns[0]!.msg), /^running as root \(daemon\.user is "root"\)/);
      const c = await Client.connect(d.policySocket);
      assert.equal(await policyQuery(c, RCPT({ sender: "sender@example.net", recipient: "alias1@d1.test" })), GO.dunno);
      assert.equal(await policyQuery(c, RCPT({ sender: "sender@example.net", recipient: "missing@d1.test" })), GO.noSuchUser);
      c.destroy();
    } finally {
      await d.cleanup();
    }
  });
});
