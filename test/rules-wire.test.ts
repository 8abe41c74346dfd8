// Wire smoke tests, one per server, in process: the real listener, handler,
// fact layer and decision wrapper over a real Unix socket, a real SQLite
// store and the static identity source. The rules themselves are tested as
// tables (rules-policy, rules-socketmap); this checks what only the wire and
// the wrapper show: the reply bytes, the one decision line with its fields,
// the request metrics. The spawned daemon: policy/socketmap.integration.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { rmSync } from "node:fs";
import { Writable } from "node:stream";
import pino from "pino";
import { initStore, openStore } from "../src/store/open.js";
import { DirectoryCache } from "../src/directory/cache.js";
import { StaticSource } from "../src/directory/static.js";
import { Facts } from "../src/facts.js";
import { PolicyHandler, policyProtocol, ACTIONS } from "../src/handlers/policy.js";
import { SocketmapHandler, socketmapProtocol } from "../src/handlers/socketmap.js";
import { Listener } from "../src/server/listener.js";
import { Metrics } from "../src/metrics.js";
import { Client, policyQuery, socketmapQuery, tempDir } from "./helpers/daemon.js";

const dir = tempDir("mailcloak-wire-");
const db = join(dir, "state.db");
const admin = (await initStore(db, { busyTimeoutMs: 1000 })).store;
await admin.addDomain("d1.test");
await admin.addAlias("sales@d1.test", "alice");
await admin.close();

const lines: Record<string, unknown>[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const l of chunk.toString("utf8").split("\n")) if (l !== "") lines.push(JSON.parse(l) as Record<string, unknown>);
    done();
  },
});
const log = pino({ level: "debug" }, sink);
const store = await openStore(db, { busyTimeoutMs: 1000 });
const cache = new DirectoryCache(new StaticSource([{ username: "alice", email: "alice@d1.test", enabled: true, attributes: {} }]),
  { ttlSeconds: 60, negativeTtlSeconds: 30, maxEntries: 100, staleSeconds: 0 });
const facts = new Facts(store, cache, { failureMode: "tempfail", delimiter: "+", sendAllowedAttribute: null, configDomains: new Set() });
const metrics = new Metrics();
const limits = () => ({ maxConnections: 10, idleTimeoutSeconds: 60, readTimeoutSeconds: 10, maxRequestBytes: 65536 });
const policy = await Listener.open({ address: { kind: "unix", path: join(dir, "policy") }, protocol: policyProtocol(new PolicyHandler(facts, log.child({ server: "policy" }), metrics.policyEvents)), limits, logger: log });
const socketmap = await Listener.open({ address: { kind: "unix", path: join(dir, "socketmap") }, protocol: socketmapProtocol(new SocketmapHandler(facts, log.child({ server: "socketmap" }), metrics.socketmapEvents)), limits, logger: log });

after(async () => {
  await Promise.all([policy.close(0), socketmap.close(0)]);
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

test("policy server over the wire: replies, one decision line with its fields, counted", async () => {
  const c = await Client.connect(join(dir, "policy"));
  assert.equal(await policyQuery(c, { protocol_state: "RCPT", sasl_username: "alice", sender: "Alice+x@d1.test", recipient: "sales@d1.test" }), ACTIONS.dunno);
  assert.equal(await policyQuery(c, { protocol_state: "RCPT", sender: "", recipient: "nobody@d1.test" }), ACTIONS.noSuchUser);
  c.destroy();
  const decisions = lines.filter((l) => l.msg === "policy decision");
  assert.equal(decisions.length, 2);
  const first = decisions[0]!;
  assert.deepEqual(Object.keys(first).filter((k) => !["level", "time", "pid", "hostname", "ms"].includes(k)).sort(),
    ["action", "cache", "login", "msg", "reason", "recipient", "sender", "server", "state"]);
  assert.deepEqual([first.state, first.login, first.sender, first.recipient, first.action, first.reason, first.cache],
    ["RCPT", "alice", "Alice+x@d1.test", "sales@d1.test", "DUNNO", "recipient-alias", "miss"]);
  assert.equal(typeof first.ms, "number");
  assert.deepEqual([decisions[1]!.reason, decisions[1]!.cache], ["no-such-user", "miss"]);
  const text = await metrics.text();
  assert.match(text, /mailcloak_requests_total\{server="policy",map="",action="DUNNO"\} 1/);
  assert.match(text, /mailcloak_requests_total\{server="policy",map="",action="550"\} 1/);
  assert.match(text, /mailcloak_request_duration_seconds_count\{server="policy"\} 2/);
});

test("socketmap server over the wire: replies, one debug line each, counted", async () => {
  const c = await Client.connect(join(dir, "socketmap"));
  assert.equal(await socketmapQuery(c, "alias", "SALES+news@d1.test"), "OK alice+news@d1.test");
  assert.equal(await socketmapQuery(c, "mailbox", "alice@d1.test"), "OK d1.test/alice/");
  assert.equal(await socketmapQuery(c, "domain", "elsewhere.test"), "NOTFOUND");
  c.destroy();
  const lookups = lines.filter((l) => l.msg === "socketmap lookup");
  assert.deepEqual(lookups.map((l) => [l.map, l.key, l.status]), [["alias", "SALES+news@d1.test", "OK"], ["mailbox", "alice@d1.test", "OK"], ["domain", "elsewhere.test", "NOTFOUND"]]);
  const text = await metrics.text();
  assert.match(text, /mailcloak_requests_total\{server="socketmap",map="alias",action="OK"\} 1/);
  assert.match(text, /mailcloak_requests_total\{server="socketmap",map="domain",action="NOTFOUND"\} 1/);
});
