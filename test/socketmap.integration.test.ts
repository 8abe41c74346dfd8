// The socketmap server over its real Unix socket, daemon in a child process.
// The lookup table (helpers/tables.ts) runs here with the static identity
// source holding the fixture realm's people, against the Keycloak emulator and
// a real Keycloak in keycloak-daemon.integration.test.ts, and against the
// Authentik emulator in authentik-daemon.integration.test.ts.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { statSync, writeFileSync } from "node:fs";
import net from "node:net";
import { openAdmin } from "../src/store/open.js";
import { Client, ctlOk, DaemonProcess, netstring, netstringLength, socketmapQuery, tempDir } from "./helpers/daemon.js";
import { staticSource } from "./helpers/directory.js";
import { socketmapTable } from "./helpers/tables.js";

const stack = socketmapTable("static", () => staticSource.config());
/** The daemon and a client connected to its socketmap socket, once the table's before() has run. */
const daemon = (): DaemonProcess => stack().daemon;
const client = (): Client => stack().client;

test("socket is created with the configured mode", () => {
  assert.equal(statSync(daemon().socketmapSocket).mode & 0o777, 0o660);
  assert.equal(statSync(daemon().policySocket).mode & 0o777, 0o660);
});

test("many requests on one connection, and pipelined requests answered in order", async () => {
  const keys = ["sales@d1.test", "nobody@d1.test", "x@d2.test", "old@d1.test"];
  client().write(keys.map((k) => netstring(`alias ${k}`)).join(""));
  const got: string[] = [];
  for (let i = 0; i < keys.length; i++) got.push((await client().read(netstringLength)).toString());
  assert.deepEqual(got, ["16:OK alice@d1.test,", "8:NOTFOUND,", "15:OK dave@d2.test,", "8:NOTFOUND,"]);
});

test("a request split across writes is answered once complete", async () => {
  const s = netstring("alias sales@d1.test");
  for (const ch of s) client().write(ch);
  assert.equal((await client().read(netstringLength)).toString(), "16:OK alice@d1.test,");
});

test("a change made with mailcloakctl is seen at the next lookup", async () => {
  assert.equal(await socketmapQuery(client(), "alias", "new@d1.test"), "NOTFOUND");
  await ctlOk(daemon().db, "aliases", "add", "new@d1.test", "bob");
  assert.equal(await socketmapQuery(client(), "alias", "new@d1.test"), "OK bob@d1.test");
  await ctlOk(daemon().db, "aliases", "del", "new@d1.test");
  assert.equal(await socketmapQuery(client(), "alias", "new@d1.test"), "NOTFOUND");
});

test("requests handled together see every commit made before they were sent (30 connections, 400 commits)", async () => {
  // Requests read in one event-loop turn are answered in one batch with one
  // look at the database (server/turn.ts). Commits and sends happen on this
  // one thread, so each request's state at sending is known exactly.
  await ctlOk(daemon().db, "domains", "add", "flip.test");
  const admin = await openAdmin(daemon().db, { busyTimeoutMs: 5000 });
  const clients = await Promise.all(Array.from({ length: 30 }, () => Client.connect(daemon().socketmapSocket)));
  let enabled = true;
  let commits = 0;
  let checked = 0;
  const wrong: string[] = [];
  let running = true;
  const loops = clients.map(async (cl, i) => {
    // A third of the clients pipeline three requests per write.
    const depth = i % 3 === 0 ? 3 : 1;
    while (running) {
      const want = enabled ? "OK flip.test" : "NOTFOUND";
      const commitsAtSend = commits;
      cl.write(netstring("domain flip.test").repeat(depth));
      const got: string[] = [];
      for (let k = 0; k < depth; k++) {
        const r = (await cl.read(netstringLength)).toString("utf8");
        got.push(r.slice(r.indexOf(":") + 1, -1));
      }
      if (commits !== commitsAtSend) continue; // a commit raced the replies: either answer is right
      for (const g of got) {
        checked++;
        if (g !== want) wrong.push(`client ${i}: ${JSON.stringify(g)} after commit ${commitsAtSend}, want ${JSON.stringify(want)}`);
      }
    }
  });
  try {
    for (let k = 0; k < 400; k++) {
      enabled = !enabled;
      const write = admin.setDomainEnabled("flip.test", enabled); // committed before it returns (SQLite)
      commits++;
      await write;
      await new Promise((r) => setTimeout(r, k % 4)); // let a few requests through, sometimes none
    }
  } finally {
    running = false;
    await Promise.all(loops);
    for (const cl of clients) cl.destroy();
    await admin.close();
  }
  assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} stale answers of ${checked}`);
  assert.ok(checked >= 1000, `only ${checked} answers were checked`);
});

test("a client that half-closes after its requests gets every reply, then the close", async () => {
  // 1 request, and 1,024 pipelined 64-byte requests: 65,536 bytes, so the
  // last read fills libuv's 64 KiB buffer and end-of-stream comes in the
  // same turn as the data.
  const key = `${"x".repeat(46)}@d1.test`;
  const one = netstring(`alias ${key}`);
  assert.equal(one.length, 64);
  for (const n of [1, 1024]) {
    const replies = await new Promise<string>((resolve, reject) => {
      const s = net.connect({ path: daemon().socketmapSocket, allowHalfOpen: true });
      let got = "";
      s.on("data", (b: Buffer) => (got += b.toString("latin1")));
      s.on("close", () => resolve(got));
      s.on("error", reject);
      s.end(one.repeat(n));
    });
    assert.equal(replies, netstring("NOTFOUND").repeat(n), `${n} request(s)`);
  }
});

test("a request without a key gets a bare TEMP and a blank one NOTFOUND (as the Go version); the connection stays usable", async () => {
  const x = await Client.connect(daemon().socketmapSocket);
  x.write(netstring("alias"));
  assert.equal((await x.read(netstringLength)).toString(), "4:TEMP,");
  x.write(netstring("alias "));
  assert.equal((await x.read(netstringLength)).toString(), "4:TEMP,");
  x.write(netstring(""));
  assert.equal((await x.read(netstringLength)).toString(), "8:NOTFOUND,");
  x.write(netstring("  "));
  assert.equal((await x.read(netstringLength)).toString(), "8:NOTFOUND,");
  assert.equal(await socketmapQuery(x, " alias", " Sales@D1.test "), "OK alice@d1.test", "the payload and the key are trimmed");
  assert.equal(await socketmapQuery(x, "alias", "sales@d1.test"), "OK alice@d1.test");
  x.destroy();
});

test("a malformed frame closes the connection without a reply; the daemon keeps serving", async () => {
  const x = await Client.connect(daemon().socketmapSocket);
  x.write("abc:def,");
  await x.waitClosed();
  const y = await Client.connect(daemon().socketmapSocket);
  assert.equal(await socketmapQuery(y, "alias", "sales@d1.test"), "OK alice@d1.test");
  y.destroy();
});

test("an oversized frame is refused as soon as its length is known", async () => {
  const x = await Client.connect(daemon().socketmapSocket);
  x.write("999999999:alias ");
  await x.waitClosed();
  assert.equal(await socketmapQuery(client(), "alias", "sales@d1.test"), "OK alice@d1.test");
});

test("a live daemon's socket is never replaced; a stale one is", async () => {
  // Second daemon on the same sockets: must refuse to start.
  const second = new DaemonProcess(daemon().dir);
  await assert.rejects(second.spawn(), /already listening/);
  // A stale socket file (no listener) is replaced at start.
  const dir = tempDir();
  const stale = new DaemonProcess(dir);
  await ctlOk(stale.db, "init");
  // A process that bound the path and died, as a crash leaves it.
  execFileSync("python3", ["-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", stale.socketmapSocket]);
  assert.equal(statSync(stale.socketmapSocket).isSocket(), true);
  stale.writeConfig({});
  await stale.spawn();
  const y = await Client.connect(stale.socketmapSocket);
  assert.equal(await socketmapQuery(y, "domain", "d1.test"), "NOTFOUND");
  y.destroy();
  await stale.cleanup();
});

test("a regular file at the socket path is not removed", async () => {
  const dir = tempDir();
  const p = new DaemonProcess(dir);
  await ctlOk(p.db, "init");
  writeFileSync(p.socketmapSocket, "keep me");
  p.writeConfig({});
  await assert.rejects(p.spawn(), /exists and is not a socket/);
  assert.equal(statSync(p.socketmapSocket).isFile(), true);
  await p.cleanup();
});

test("a missing DB at start is a clear error that says to run mailcloakctl init", async () => {
  const p = new DaemonProcess(tempDir());
  p.writeConfig({});
  await assert.rejects(p.spawn(), /mailcloakctl --db .* init/);
  assert.equal(p.exitCode, 1);
  await p.cleanup();
});
