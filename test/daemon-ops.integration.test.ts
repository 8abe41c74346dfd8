// Running as a system daemon: socket owner/group/mode, privilege drop,
// SIGTERM under load, limits, metrics and health — real processes, real files.

import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, readFileSync, statSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { Client, ctl, ctlOk, DaemonProcess, freePort, policyQuery, tempDir, type ConfigTree } from "./helpers/daemon.js";
import { FakeKeycloak } from "./fake-keycloak.js";
import { ACTIONS } from "../src/handlers/policy.js";
import { lookupGroup, lookupUser } from "../src/system/accounts.js";

const isRoot = process.getuid?.() === 0;
const rootOnly = { skip: isRoot ? false : "needs root (CI runs as root)" };
const RCPT = (recipient: string) => ({ protocol_state: "RCPT", sender: "", recipient });

async function startWith(config: ConfigTree, prepare?: (d: DaemonProcess) => Promise<void>): Promise<DaemonProcess> {
  const d = new DaemonProcess(tempDir());
  await ctlOk(d.db, "init");
  await ctlOk(d.db, "domains", "add", "d1.test");
  await prepare?.(d);
  d.writeConfig(config);
  await d.spawn();
  return d;
}

describe("sockets and privileges", () => {
  test("sockets get the configured owner, group and mode", rootOnly, async () => {
    const nobody = lookupUser("nobody")!;
    const nogroup = lookupGroup("nogroup") ?? lookupGroup("nobody")!;
    const d = await startWith({ sockets: { socket_owner_user: "nobody", socket_owner_group: String(nogroup), socket_mode: "0640" } });
    for (const p of [d.policySocket, d.socketmapSocket]) {
      const st = statSync(p);
      assert.equal(st.mode & 0o777, 0o640, p);
      assert.equal(st.uid, nobody.uid, p);
      assert.equal(st.gid, nogroup, p);
    }
    await d.cleanup();
  });

  test("a missing socket owner is a clear start-up error", async () => {
    const d = new DaemonProcess(tempDir());
    await ctlOk(d.db, "init");
    d.writeConfig({ sockets: { socket_owner_user: "no-such-user-xyz" } });
    await assert.rejects(d.spawn(), /socket_owner_user: no such user "no-such-user-xyz"/);
    assert.equal(existsSync(d.policySocket), false);
    await d.cleanup();
  });

  test("as root: binds, opens the DB, then runs as daemon.user with that user's groups (as the Go release sets them)", rootOnly, async () => {
    const nobody = lookupUser("nobody")!;
    const d = await startWith({ daemon: { user: "nobody", allow_root: false } }, async (x) => {
      chownSync(x.dir, nobody.uid, nobody.gid);
      await ctlOk(x.db, "init", "--owner", "nobody");
    });
    const status = readFileSync(`/proc/${d.child!.pid}/status`, "utf8");
    const field = (name: string) => (new RegExp(`^${name}:[ \\t]*(.*)$`, "m").exec(status)?.[1] ?? "").trim().split(/\s+/);
    assert.deepEqual(field("Uid"), Array(4).fill(String(nobody.uid)));
    assert.deepEqual(field("Gid"), Array(4).fill(String(nobody.gid)));
    const groups = execFileSync("id", ["-G", "nobody"], { encoding: "utf8" }).trim().split(/\s+/).sort();
    assert.deepEqual(field("Groups").filter(Boolean).sort(), groups);
    assert.match(d.output, /dropped privileges/);
    // Still serving, and able to read the DB as that user.
    const c = await Client.connect(d.policySocket);
    assert.equal(await policyQuery(c, RCPT("alice@d1.test")), ACTIONS.dunno);
    c.destroy();
    await ctlOk(d.db, "aliases", "add", "x@d1.test", "alice");
    assert.equal(await policyQuery(await Client.connect(d.policySocket), RCPT("x@d1.test")), ACTIONS.dunno);
    d.signal("SIGTERM");
    assert.equal(await d.waitExit(), 0);
    assert.equal(existsSync(d.policySocket), false, "socket removed after the drop too");
    await d.cleanup();
  });

  const noMailcloakUser = { skip: !isRoot ? "needs root (CI runs as root)" : lookupUser("mailcloak") ? "this machine has a user mailcloak" : false };
  test("as root without daemon.user: looks for the Go default user mailcloak, and refuses to run when there is none", noMailcloakUser, async () => {
    const d = new DaemonProcess(tempDir());
    await ctlOk(d.db, "init");
    d.writeConfig({ daemon: { allow_root: false } });
    await assert.rejects(d.spawn(), /daemon\.user: not set, and there is no user "mailcloak" \(the Go mailcloak's default\)/);
    assert.equal(d.exitCode, 2);
    assert.equal(existsSync(d.policySocket), false, "nothing bound");
    await d.cleanup();
  });

  test("daemon.user: root runs as root (as the Go release), with exactly one WARN line", rootOnly, async () => {
    const d = await startWith({ daemon: { user: "root", allow_root: false } });
    const status = readFileSync(`/proc/${d.child!.pid}/status`, "utf8");
    assert.match(status, /^Uid:\s+0\s+0\s+0\s+0$/m);
    const warns = d.records().filter((r) => r.level === 40);
    assert.equal(warns.length, 1, JSON.stringify(warns));
    assert.match(String(warns[0]!.msg), /running as root \(daemon\.user is "root"\)/);
    const c = await Client.connect(d.policySocket);
    assert.equal(await policyQuery(c, RCPT("nobody@d1.test")), ACTIONS.noSuchUser);
    c.destroy();
    await d.cleanup();
  });

  test("socket_mode 0666 in a 0700 directory (as Postfix's private/): accepted, no warning", async () => {
    const d = await startWith({ sockets: { socket_mode: "0666" } });
    for (const p of [d.policySocket, d.socketmapSocket]) assert.equal(statSync(p).mode & 0o777, 0o666, p);
    assert.equal(statSync(d.dir).mode & 0o777, 0o700);
    assert.deepEqual(d.records().filter((r) => r.level === 40 && String(r.msg).includes("socket_mode")), []);
    await d.cleanup();
  });

  test("socket_mode 0666 in a directory other users can enter: one WARN line naming both sockets", async () => {
    const d = new DaemonProcess(tempDir());
    await ctlOk(d.db, "init");
    chmodSync(d.dir, 0o711);
    d.writeConfig({ sockets: { socket_mode: "0666" } });
    await d.spawn();
    const warns = d.records().filter((r) => r.level === 40 && String(r.msg).includes("socket_mode"));
    assert.equal(warns.length, 1, JSON.stringify(warns));
    assert.deepEqual(warns[0]!.sockets, [d.policySocket, d.socketmapSocket]);
    assert.match(String(warns[0]!.msg), /sockets\.socket_mode 0666 lets any local user connect/);
    await d.cleanup();
  });
});

describe("SIGTERM", () => {
  let kc: FakeKeycloak;
  before(async () => {
    kc = await FakeKeycloak.start();
    for (let i = 0; i < 50; i++) kc.addUser({ username: `u${i}`, email: `u${i}@d1.test` });
  });
  after(() => kc.stop());

  test("under load: no request left unanswered, sockets removed, exit 0", async () => {
    const d = await startWith({
      idp: { provider: "keycloak", static: null, keycloak: { base_url: kc.url, realm: "test", client_id: "mailcloak", client_secret: "s3cret", cache_ttl_seconds: 1 } },
      cache: { negative_ttl_seconds: 0 },
      daemon: { shutdown_grace_ms: 5000 },
    });
    kc.latencyMs = 150; // requests in flight when the signal arrives
    let sent = 0;
    let answered = 0;
    let stopped = false;
    const workers = Array.from({ length: 20 }, async (_, w) => {
      const c = await Client.connect(d.policySocket);
      for (let i = 0; !stopped; i++) {
        if (c.closed) break;
        sent++;
        try {
          const a = await policyQuery(c, RCPT(`nobody${w}-${i}@d1.test`));
          assert.equal(a, ACTIONS.noSuchUser);
          answered++;
        } catch {
          sent--; // written after the server closed: never received, never owed a reply
          break;
        }
      }
    });
    // Load first (on a busy machine a round of 20 takes longer than 150 ms), then the signal.
    for (const until = Date.now() + 20_000; answered <= 40 && Date.now() < until;) await sleep(50);
    d.signal("SIGTERM");
    const code = await d.waitExit();
    stopped = true;
    await Promise.all(workers);
    kc.latencyMs = 0;
    assert.equal(code, 0);
    assert.ok(answered > 20, `answered ${answered}`);
    assert.equal(answered, sent);
    assert.equal(existsSync(d.policySocket), false);
    assert.equal(existsSync(d.socketmapSocket), false);
    await d.cleanup();
  });
});

describe("limits", () => {
  test("max_connections: connections past the cap are closed and counted", async () => {
    const port = await freePort();
    const d = await startWith({ limits: { max_connections: 5 }, metrics: { listen: `127.0.0.1:${port}` } });
    const ok = await Promise.all(Array.from({ length: 5 }, () => Client.connect(d.policySocket)));
    for (const c of ok) assert.equal(await policyQuery(c, RCPT("alice@d1.test")), ACTIONS.dunno);
    const extra = await Client.connect(d.policySocket);
    await extra.waitClosed();
    ok[0]!.destroy();
    await sleep(100);
    const again = await Client.connect(d.policySocket);
    assert.equal(await policyQuery(again, RCPT("alice@d1.test")), ACTIONS.dunno);
    const m = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(m, /mailcloak_connections_refused_total\{server="policy",reason="max_connections"\} 1/);
    [...ok, again].forEach((c) => c.destroy());
    await d.cleanup();
  });

  test("idle timeout closes an idle connection; read timeout closes a slow-loris; oversize closes", async () => {
    const d = await startWith({ limits: { idle_timeout_seconds: 1, read_timeout_seconds: 1, max_request_bytes: 1024 } });
    const idle = await Client.connect(d.policySocket);
    assert.equal(await policyQuery(idle, RCPT("alice@d1.test")), ACTIONS.dunno);
    const t0 = Date.now();
    await idle.waitClosed(3000);
    assert.ok(Date.now() - t0 >= 900, "not before the idle timeout");

    const loris = await Client.connect(d.policySocket);
    const req = "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=alice@d1.test\n\n";
    const t1 = Date.now();
    for (let i = 0; i < req.length && !loris.closed; i++) {
      loris.write(req[i]!);
      await sleep(100);
    }
    assert.equal(loris.closed, true, "closed before the request completed");
    assert.ok(Date.now() - t1 < 2500);

    const big = await Client.connect(d.policySocket);
    big.write(`request=smtpd_access_policy\nx=${"a".repeat(4096)}\n\n`);
    await big.waitClosed(2000);

    const good = await Client.connect(d.policySocket);
    assert.equal(await policyQuery(good, RCPT("alice@d1.test")), ACTIONS.dunno);
    good.destroy();
    await d.cleanup();
  });
});

describe("metrics and health", () => {
  test("/metrics, /health and /ready over HTTP", async () => {
    const kc = await FakeKeycloak.start();
    kc.addUser({ username: "alice", email: "alice@d1.test" });
    const port = await freePort();
    const d = await startWith({
      idp: { provider: "keycloak", static: null, keycloak: { base_url: kc.url, realm: "test", client_id: "mailcloak", client_secret: "s3cret", timeout_ms: 300 } },
      cache: { stale_seconds: 0, negative_ttl_seconds: 0 },
      metrics: { listen: `127.0.0.1:${port}` },
    });
    const base = `http://127.0.0.1:${port}`;
    const p = await Client.connect(d.policySocket);
    assert.equal(await policyQuery(p, RCPT("alice@d1.test")), ACTIONS.dunno);
    assert.equal(await policyQuery(p, RCPT("alice@d1.test")), ACTIONS.dunno);
    assert.equal(await policyQuery(p, RCPT("sales@elsewhere.test")), ACTIONS.notLocal);
    const m = await (await fetch(`${base}/metrics`)).text();
    assert.match(m, /mailcloak_requests_total\{server="policy",map="",action="DUNNO"\} 2/);
    assert.match(m, /mailcloak_requests_total\{server="policy",map="",action="550"\} 1/);
    assert.match(m, /mailcloak_request_duration_seconds_count\{server="policy"\} 3/);
    assert.match(m, /mailcloak_cache_lookups_total\{outcome="miss"\} 1/);
    assert.match(m, /mailcloak_cache_lookups_total\{outcome="hit"\} 1/);
    assert.match(m, /mailcloak_keycloak_requests_total\{op="users",outcome="ok"\} 1/);
    assert.match(m, /mailcloak_keycloak_token_renewals_total 1/);
    assert.match(m, /mailcloak_open_connections\{server="policy"\} 1/);
    assert.equal((await fetch(`${base}/health`)).status, 200);
    assert.equal((await fetch(`${base}/ready`)).status, 200);
    // Keycloak down long enough to open the breaker: not ready, breaker counted.
    await kc.down();
    for (let i = 0; i < 6; i++) await policyQuery(p, RCPT(`n${i}@d1.test`));
    const r = await fetch(`${base}/ready`);
    assert.equal(r.status, 503);
    assert.match(await r.text(), /keycloak/);
    const m2 = await (await fetch(`${base}/metrics`)).text();
    assert.match(m2, /mailcloak_keycloak_circuit_open_total 1/);
    assert.match(m2, /mailcloak_keycloak_circuit_rejected_total [1-9]/);
    assert.equal((await fetch(`${base}/health`)).status, 200);
    p.destroy();
    await d.cleanup();
    await kc.stop();
  });
});

describe("mailcloakctl cache flush", () => {
  test("signals the running daemon through its pid file", async () => {
    const kc = await FakeKeycloak.start();
    kc.addUser({ username: "temp", email: "temp@d1.test" });
    const d = new DaemonProcess(tempDir());
    await ctlOk(d.db, "init");
    await ctlOk(d.db, "domains", "add", "d1.test");
    d.writeConfig({
      idp: { provider: "keycloak", static: null, keycloak: { base_url: kc.url, realm: "test", client_id: "mailcloak", client_secret: "s3cret" } },
      daemon: { pid_file: `${d.dir}/mailcloak.pid` },
    });
    await d.spawn();
    const p = await Client.connect(d.policySocket);
    assert.equal(await policyQuery(p, RCPT("temp@d1.test")), ACTIONS.dunno);
    kc.removeUser("temp");
    assert.equal(await policyQuery(p, RCPT("temp@d1.test")), ACTIONS.dunno, "cached");
    const r = await ctl(d.db, "--config", d.configPath, "cache", "flush");
    assert.equal(r.code, 0, r.stderr);
    await sleep(200);
    assert.equal(await policyQuery(p, RCPT("temp@d1.test")), ACTIONS.noSuchUser);
    p.destroy();
    await d.cleanup();
    assert.equal(existsSync(`${d.dir}/mailcloak.pid`), false);
    await kc.stop();
  });
});
