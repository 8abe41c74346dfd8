// The real daemon on a real PostgreSQL (store: backend postgres) under load
// while that PostgreSQL is restarted, cleanly and as after a crash: every
// answer is the one given before the fault or 451 4.3.0 / TEMP, never
// another (no "no such user" for an alias that exists), the daemon logs one
// line when it stops answering and one when it answers again, and it comes
// back by itself. Also: a change committed during the load (another
// client) is answered within 1 s.

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { PostgresAdminStore } from "../src/store/postgres-admin.js";
import { STORE_DEFAULTS, type PostgresSettings } from "../src/config/store.js";
import { Client, DaemonProcess, policyQuery, socketmapQuery, tempDir } from "./helpers/daemon.js";
import { PostgresServer, postgresUnavailable } from "./helpers/postgres.js";
import { seedStore } from "./helpers/seed.js";

const skip = postgresUnavailable();
if (skip !== null && process.env.CI === "true") throw new Error(`${skip}; CI must install it (see .ci/run)`);

let server: PostgresServer;
let daemon: DaemonProcess;
let settings: PostgresSettings;

const SOCKETMAP_KEYS: readonly (readonly [string, string])[] = [
  ["alias", "sales@d1.test"], ["alias", "sales+x@d1.test"], ["alias", "nobody@d1.test"], ["alias", "anyone@d2.test"],
  ["domain", "d1.test"], ["domain", "d3.test"], ["mailbox", "alice@d1.test"], ["mailbox", "ghost@d1.test"],
  ["senders", "sales@d1.test"], ["senders", "crm@d1.test"],
];
const POLICY: readonly Record<string, string>[] = [
  { protocol_state: "RCPT", sender: "x@remote.test", recipient: "sales@d1.test", client_address: "192.0.2.1" },
  { protocol_state: "RCPT", sender: "x@remote.test", recipient: "nobody@d1.test", client_address: "192.0.2.1" },
  { protocol_state: "RCPT", sasl_username: "crm", sender: "crm@d1.test", recipient: "x@remote.test", client_address: "192.0.2.1" },
  { protocol_state: "RCPT", sasl_username: "crm", sender: "other@d1.test", recipient: "x@remote.test", client_address: "192.0.2.1" },
  { protocol_state: "RCPT", sasl_username: "alice", sender: "sales@d1.test", recipient: "x@remote.test", client_address: "192.0.2.1" },
];
const TEMP = /^TEMP/;
const POLICY_TEMP = /^451 4\.3\.0 /;

before(async () => {
  if (skip !== null) return;
  server = await PostgresServer.start();
  settings = {
    url: server.url(), password: server.password, poolSize: 2, queryTimeoutMs: 3000, connectTimeoutMs: 2000,
    checkIntervalMs: STORE_DEFAULTS.checkIntervalMs, maxStaleMs: STORE_DEFAULTS.maxStaleMs,
  };
  const { store: admin } = await PostgresAdminStore.init(settings);
  await seedStore(admin, {
    domains: ["d1.test", "d2.test"],
    aliases: [["sales@d1.test", "alice"], ["@d2.test", "dave"]],
    apps: [["crm", "{ARGON2ID}$not-used-here"]],
    senders: [["crm", "crm@d1.test"]],
  });
  await admin.close();
  const dir = tempDir("mailcloak-pgfault-");
  const pwFile = join(dir, "pg-password");
  writeFileSync(pwFile, `${server.password}\n`, { mode: 0o600 });
  daemon = await DaemonProcess.start({
    dir, noInit: true,
    config: { store: { backend: "postgres", url: server.url(), password_file: pwFile, pool_size: 2 } },
  });
});

after(async () => {
  await daemon?.cleanup();
  await server?.dispose();
});

interface Tally {
  same: number;
  temp: number;
  wrong: string[];
}

/** Ask every key in a loop on `n` connections of each kind until `stop`; compare with `want`. */
async function load(n: number, want: { sm: string[]; policy: string[] }, stop: { done: boolean }, t: Tally): Promise<void> {
  const worker = async (kind: "sm" | "policy"): Promise<void> => {
    const c = await Client.connect(kind === "sm" ? daemon.socketmapSocket : daemon.policySocket);
    try {
      for (let i = 0; !stop.done; i++) {
        if (kind === "sm") {
          const k = i % SOCKETMAP_KEYS.length;
          const [map, key] = SOCKETMAP_KEYS[k]!;
          const got = await socketmapQuery(c, map, key);
          if (got === want.sm[k]) t.same++;
          else if (TEMP.test(got)) t.temp++;
          else t.wrong.push(`${map} ${key}: ${got} (want ${want.sm[k]})`);
        } else {
          const k = i % POLICY.length;
          const got = await policyQuery(c, POLICY[k]!);
          if (got === want.policy[k]) t.same++;
          else if (POLICY_TEMP.test(got)) t.temp++;
          else t.wrong.push(`policy ${JSON.stringify(POLICY[k])}: ${got} (want ${want.policy[k]})`);
        }
      }
    } finally {
      c.destroy();
    }
  };
  await Promise.all(Array.from({ length: n }, (_, i) => worker(i % 2 === 0 ? "sm" : "policy")));
}

async function baseline(): Promise<{ sm: string[]; policy: string[] }> {
  const sm = await Client.connect(daemon.socketmapSocket);
  const po = await Client.connect(daemon.policySocket);
  try {
    const out = { sm: [] as string[], policy: [] as string[] };
    for (const [map, key] of SOCKETMAP_KEYS) out.sm.push(await socketmapQuery(sm, map, key));
    for (const p of POLICY) out.policy.push(await policyQuery(po, p));
    return out;
  } finally {
    sm.destroy();
    po.destroy();
  }
}

function lines(msg: string): number {
  return daemon.records().filter((r) => r.msg === msg).length;
}

test("PostgreSQL restarted under load: only the answers from before, or 451 / TEMP; one line per outage; automatic recovery", { skip: skip ?? false }, async () => {
  const want = await baseline();
  assert.equal(want.sm[0], "OK alice@d1.test");
  assert.equal(want.sm[2], "NOTFOUND");
  for (const w of [...want.sm, ...want.policy]) assert.ok(!TEMP.test(w) && !POLICY_TEMP.test(w), `baseline ${w} is a real answer`);

  const t: Tally = { same: 0, temp: 0, wrong: [] };
  const stop = { done: false };
  const running = load(8, want, stop, t);
  const tempsBefore: number[] = [];
  try {
    await sleep(1000);
    for (const mode of ["fast", "immediate"] as const) {
      const before = t.temp;
      // Down for longer than max_stale_ms (1 s): the daemon must stop answering from its copy.
      await server.stop(mode);
      await sleep(2500);
      await server.resume();
      const t0 = Date.now();
      while (daemon.records().filter((r) => r.msg === "database available again").length < tempsBefore.length + 1) {
        if (Date.now() - t0 > 15_000) throw new Error(`no recovery after the ${mode} restart:\n${daemon.output.slice(-3000)}`);
        await sleep(50);
      }
      tempsBefore.push(t.temp - before);
      await sleep(1000); // answering again, under load
    }
  } finally {
    stop.done = true;
    await running;
  }
  console.log(`answers: ${t.same} as before, ${t.temp} TEMP/451, ${t.wrong.length} wrong; TEMP per restart: ${tempsBefore.join(", ")}`);
  assert.deepEqual(t.wrong.slice(0, 10), [], "no wrong answer");
  assert.ok(tempsBefore.every((n) => n > 0), "each outage was answered TEMP / 451 (the copy was not vouched for)");
  assert.ok(t.same > 1000, `real load: ${t.same} answers`);
  assert.equal(lines("database unavailable: answering 451 4.3.0 / TEMP until it is back"), 2, "one line per outage");
  assert.equal(lines("database available again"), 2, "one line per recovery");
  const errors = daemon.records().filter((r) => r.level === 50 || r.level === "error");
  assert.equal(errors.length, 2, `no other error line than the two outages: ${JSON.stringify(errors.slice(0, 3))}`);
  assert.ok(!daemon.output.includes(server.password), "the password is never logged");
  // Answering from the store again, exactly as before.
  assert.deepEqual(await baseline(), want);
});

test("a change committed by another client during load is answered within 1 s", { skip: skip ?? false }, async () => {
  const { store: admin } = await PostgresAdminStore.init(settings);
  const c = await Client.connect(daemon.socketmapSocket);
  try {
    const t0 = performance.now();
    await admin.addAlias("new@d1.test", "bob");
    let got = "";
    while ((got = await socketmapQuery(c, "alias", "new@d1.test")) !== "OK bob@d1.test") {
      if (performance.now() - t0 > 1000) break;
      await sleep(5);
    }
    const ms = performance.now() - t0;
    console.log(`alias added on another client answered after ${ms.toFixed(1)} ms`);
    assert.equal(got, "OK bob@d1.test");
    assert.ok(ms < 1000, `within 1 s (${ms.toFixed(0)} ms)`);
  } finally {
    c.destroy();
    await admin.close();
  }
});
