// Fault injection against the running daemon: every way the fake Keycloak
// can fail, in both failure modes (answer, deadline, survival, recovery, and
// the circuit breaker keeping an outage from piling up), then SQLite faults:
// a writer holding a long transaction, the DB file removed, the DB file made
// unreadable.

import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, chownSync, existsSync, renameSync, statSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { Client, ctl, ctlOk, DaemonProcess, policyQuery, ROOT, socketmapQuery, tempDir } from "./helpers/daemon.js";
import {
  assertUp, freePort, keycloakIdp, mergeTree, metric, scrape, startStack, timed, waitUntil,
} from "./helpers/faults.js";
import { FakeKeycloak } from "./fake-keycloak.js";
import { ACTIONS } from "../src/handlers/policy.js";
import { lookupUser } from "../src/system/accounts.js";

/** idp.keycloak.timeout_ms: every Keycloak call gives up after this. */
const KC_TIMEOUT_MS = 500;
/** Answer deadline under a fault: the Keycloak timeout plus a margin for a busy machine. */
const ANSWER_LIMIT_MS = KC_TIMEOUT_MS + 1200;
/** The breaker stays open 5 s (src/directory/keycloak.ts); recovery may wait that long. */
const BREAKER_OPEN_MS = 5000;
const RECOVERY_DEADLINE_MS = BREAKER_OPEN_MS + 3000;

const RCPT = (recipient: string) => ({ protocol_state: "RCPT", sender: "ext@ext.test", recipient });
const IDP_TEMP = "TEMP identity provider lookup failed";
const DB_TEMP = "TEMP"; // bare, as the Go version answers a DB error

let seq = 0;
/** A fresh address of no Keycloak user: with negative_ttl_seconds 0 every lookup of it goes to Keycloak. */
const nx = (tag: string): string => `nx-${tag}-${++seq}@d1.test`;
const localOf = (addr: string): string => addr.slice(0, addr.indexOf("@"));

type Mode = "tempfail" | "dunno";

/** What the daemon must answer for an unknown address while Keycloak is failing. */
function failAnswers(mode: Mode, addr: string): { policy: string; mailbox: string } {
  return mode === "tempfail"
    ? { policy: ACTIONS.tempfailIdp, mailbox: IDP_TEMP }
    : { policy: ACTIONS.dunno, mailbox: `OK d1.test/${localOf(addr)}/` };
}

function kcConfig(kc: FakeKeycloak, mode: Mode, port: number) {
  return mergeTree(keycloakIdp(kc, { timeout_ms: KC_TIMEOUT_MS, cache_ttl_seconds: 1 }), {
    policy: { idp_failure_mode: mode },
    cache: { stale_seconds: 0, negative_ttl_seconds: 0 },
    metrics: { listen: `127.0.0.1:${port}` },
  });
}

/**
 * Precondition: Keycloak answers through both servers (fresh keys), so a token
 * is held. Polled, because a fresh daemon's first lookups on a busy machine may
 * miss the short timeout themselves.
 */
async function assertHealthy(p: Client, s: Client): Promise<void> {
  await waitRecovered(p, s);
}

/** Poll with fresh keys until both servers give correct Keycloak answers again; returns the ms taken. */
async function waitRecovered(p: Client, s: Client): Promise<number> {
  let last = "";
  try {
    return await waitUntil(async () => {
      const a = await policyQuery(p, RCPT(nx("rec")));
      const b = await socketmapQuery(s, "mailbox", nx("rec"));
      last = `${a} / ${b}`;
      return a === ACTIONS.noSuchUser && b === "NOTFOUND";
    }, RECOVERY_DEADLINE_MS, "recovery", 150);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last answers: ${last}`);
  }
}

/**
 * Under a fault: two policy and two socketmap lookups of unknown addresses
 * (four failures: below the breaker's threshold of five, so every one of them
 * really reaches the faulty Keycloak). Each must be the failure mode's answer,
 * within the deadline.
 */
async function assertFailureAnswers(mode: Mode, p: Client, s: Client, tag: string): Promise<void> {
  for (let i = 0; i < 2; i++) {
    const a1 = nx(tag);
    const r1 = await timed(() => policyQuery(p, RCPT(a1)));
    assert.equal(r1.value, failAnswers(mode, a1).policy, `policy ${a1}`);
    assert.ok(r1.ms < ANSWER_LIMIT_MS, `policy answered in ${Math.round(r1.ms)} ms (limit ${ANSWER_LIMIT_MS})`);
    const a2 = nx(tag);
    const r2 = await timed(() => socketmapQuery(s, "mailbox", a2));
    assert.equal(r2.value, failAnswers(mode, a2).mailbox, `mailbox ${a2}`);
    assert.ok(r2.ms < ANSWER_LIMIT_MS, `socketmap answered in ${Math.round(r2.ms)} ms (limit ${ANSWER_LIMIT_MS})`);
  }
}

interface Fault {
  readonly name: string;
  inject(kc: FakeKeycloak): Promise<void> | void;
  restore(kc: FakeKeycloak): Promise<void> | void;
}

const FAULTS: readonly Fault[] = [
  { name: "down (connection refused)", inject: (kc) => kc.down(), restore: (kc) => kc.up() },
  { name: "slower than the timeout", inject: (kc) => void (kc.latencyMs = KC_TIMEOUT_MS * 4), restore: (kc) => void (kc.latencyMs = 0) },
  { name: "hanging", inject: (kc) => void (kc.mode = "hang"), restore: (kc) => void (kc.mode = "ok") },
  { name: "401 forever", inject: (kc) => void (kc.mode = "unauthorizedForever"), restore: (kc) => void (kc.mode = "ok") },
  { name: "403", inject: (kc) => void (kc.mode = "users403"), restore: (kc) => void (kc.mode = "ok") },
  { name: "500", inject: (kc) => void (kc.mode = "users500"), restore: (kc) => void (kc.mode = "ok") },
  { name: "malformed JSON", inject: (kc) => void (kc.mode = "usersMalformed"), restore: (kc) => void (kc.mode = "ok") },
];

let kc: FakeKeycloak;

before(async () => {
  kc = await FakeKeycloak.start();
  kc.addUser({ username: "alice", email: "alice@d1.test" });
  for (let i = 0; i < 50; i++) kc.addUser({ username: `u${i}`, email: `u${i}@d1.test` });
});

after(async () => {
  kc.mode = "ok";
  kc.latencyMs = 0;
  await kc.stop();
});

for (const mode of ["tempfail", "dunno"] as const) {
  describe(`Keycloak faults, idp_failure_mode: ${mode}`, () => {
    let d: DaemonProcess;
    let port: number;
    let p: Client;
    let s: Client;

    before(async () => {
      port = await freePort();
      d = await startStack({ config: kcConfig(kc, mode, port), quiet: true });
      p = await Client.connect(d.policySocket);
      s = await Client.connect(d.socketmapSocket);
    });

    after(async () => {
      kc.mode = "ok";
      kc.latencyMs = 0;
      await kc.up();
      p?.destroy();
      s?.destroy();
      await d?.cleanup();
    });

    for (const fault of FAULTS) {
      test(`Keycloak ${fault.name}: ${mode} answers in time, the daemon stays up and recovers by itself`, async () => {
        await assertHealthy(p, s); // also makes sure a token is held
        await fault.inject(kc);
        try {
          await assertFailureAnswers(mode, p, s, fault.name.split(" ")[0]!);
          // Aliases need no Keycloak: unaffected by any Keycloak fault.
          assert.equal(await socketmapQuery(s, "domain", "d1.test"), "OK d1.test");
          assertUp(d);
        } finally {
          await fault.restore(kc);
        }
        const ms = await waitRecovered(p, s);
        assert.ok(ms <= RECOVERY_DEADLINE_MS);
        assertUp(d);
      });
    }

    test("token endpoint failing while a token is held: lookups keep succeeding", async () => {
      await assertHealthy(p, s);
      kc.resetCounters();
      kc.mode = "tokenFails";
      try {
        for (let i = 0; i < 5; i++) {
          assert.equal(await policyQuery(p, RCPT(nx("tok"))), ACTIONS.noSuchUser);
          assert.equal(await socketmapQuery(s, "mailbox", `u${i}@d1.test`), `OK d1.test/u${i}/`);
        }
        assert.equal(kc.userQueries, 10, "every lookup went to Keycloak with the held token");
        assert.equal(kc.tokenRequests, 0, "no renewal needed");
      } finally {
        kc.mode = "ok";
      }
      assertUp(d);
    });

    test("token endpoint failing before any token was issued: failure mode, then recovery", async () => {
      kc.mode = "tokenFails";
      const fresh = await startStack({ config: kcConfig(kc, mode, await freePort()) });
      const fp = await Client.connect(fresh.policySocket);
      const fsm = await Client.connect(fresh.socketmapSocket);
      try {
        kc.resetCounters();
        await assertFailureAnswers(mode, fp, fsm, "notoken");
        assert.ok(kc.tokenRequests >= 1, "a token was asked for");
        assert.equal(kc.userQueries, 0, "no user query without a token");
        assertUp(fresh);
        kc.mode = "ok";
        await waitRecovered(fp, fsm);
        assertUp(fresh);
      } finally {
        kc.mode = "ok";
        fp.destroy();
        fsm.destroy();
        await fresh.cleanup();
      }
    });

    test("a 3-second outage under 20 busy connections does not pile up on Keycloak (breaker)", async (t) => {
      await assertHealthy(p, s);
      const m0 = await scrape(port);
      const open0 = metric(m0, "mailcloak_keycloak_circuit_open_total");
      const rejected0 = metric(m0, "mailcloak_keycloak_circuit_rejected_total");
      // tempfail: fast 500s; dunno: hanging requests (each held until the timeout).
      const fault: Fault = mode === "tempfail" ? FAULTS.find((f) => f.name === "500")! : FAULTS.find((f) => f.name === "hanging")!;
      const clients = await Promise.all(Array.from({ length: 20 }, (_, i) => Client.connect(i % 2 === 0 ? d.policySocket : d.socketmapSocket)));
      kc.resetCounters();
      let sent = 0;
      let slowest = 0;
      const wrong: string[] = [];
      await fault.inject(kc);
      const stopAt = performance.now() + 3000;
      let queriesDuringOutage: number;
      try {
        await Promise.all(clients.map(async (c, i) => {
          while (performance.now() < stopAt) {
            const addr = nx(`flood${i}`);
            const want = failAnswers(mode, addr);
            sent++;
            const r = await timed(() => (i % 2 === 0 ? policyQuery(c, RCPT(addr)) : socketmapQuery(c, "mailbox", addr)));
            slowest = Math.max(slowest, r.ms);
            const expected = i % 2 === 0 ? want.policy : want.mailbox;
            if (r.value !== expected && wrong.length < 5) wrong.push(`${addr}: ${r.value}`);
          }
        }));
        queriesDuringOutage = kc.userQueries;
      } finally {
        await fault.restore(kc);
        clients.forEach((c) => c.destroy());
      }
      assert.deepEqual(wrong, [], "every answer during the outage is the failure mode's");
      assert.ok(slowest < ANSWER_LIMIT_MS, `slowest answer ${Math.round(slowest)} ms`);
      assert.ok(sent >= 200, `the clients kept sending (${sent} requests)`);
      assert.ok(queriesDuringOutage <= 60, `Keycloak saw ${queriesDuringOutage} user queries for ${sent} requests`);
      const m1 = await scrape(port);
      const opened = metric(m1, "mailcloak_keycloak_circuit_open_total") - open0;
      const rejected = metric(m1, "mailcloak_keycloak_circuit_rejected_total") - rejected0;
      t.diagnostic(`${sent} requests during the outage; Keycloak saw ${queriesDuringOutage} user queries; breaker opened ${opened}x, rejected ${rejected}`);
      assert.ok(opened >= 1, `breaker opened ${opened} times`);
      assert.ok(rejected >= sent - 60, `breaker rejected ${rejected} of ${sent} lookups`);
      assertUp(d);
      await waitRecovered(p, s);
    });
  });
}

// ---------------------------------------------------------------------------
// SQLite

/** A second SQLite writer that takes the write lock, inserts a row and commits when told to. */
const WRITER = `
import(process.env.WRITER_HELPER).then(({ rawDb }) => {
const db = rawDb(process.env.WRITER_DB);
db.pragma("busy_timeout = 5000");
db.exec("BEGIN IMMEDIATE");
db.prepare("INSERT INTO aliases(alias_email, target_user, alias_domain_name, enabled, updated_at) VALUES(?, ?, ?, 1, strftime('%s','now'))")
  .run("held@d1.test", "bob", "d1.test");
process.stdout.write("locked\\n");
process.stdin.once("data", () => {
  db.exec("COMMIT");
  db.close();
  process.stdout.write("committed\\n");
  process.exit(0);
});
});
`;

interface Observation {
  readonly send: number;
  readonly recv: number;
  readonly found: boolean;
}

/** Check observations of a key created at some moment in [changeStart, changeEnd]. */
function checkAppearance(obs: readonly Observation[], changeStart: number, changeEnd: number, what: string): void {
  for (const o of obs) {
    if (o.found) assert.ok(o.recv >= changeStart, `${what}: seen before it was committed`);
    else assert.ok(o.send <= changeEnd, `${what}: not seen in a request sent ${Math.round(o.send - changeEnd)} ms after the commit`);
  }
  assert.ok(obs.some((o) => !o.found && o.recv < changeStart), `${what}: was observed absent before the change`);
  assert.ok(obs.some((o) => o.found && o.send > changeEnd), `${what}: was observed present after the change`);
}


interface Writer {
  locked(): Promise<void>;
  /** Tell it to commit; resolves with the time the commit was reported done. */
  commit(): Promise<number>;
  kill(): void;
}

function startWriter(db: string): Writer {
  const child = spawn(process.execPath, ["-e", WRITER], { cwd: ROOT, env: { ...process.env, WRITER_DB: db, WRITER_HELPER: new URL("./helpers/sqlite.js", import.meta.url).href }, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr.on("data", (b: Buffer) => (out += b.toString()));
  return {
    async locked() {
      await waitUntil(() => out.includes("locked"), 10_000, `the writer to lock (${out})`, 10);
    },
    async commit() {
      child.stdin.write("commit\n");
      await waitUntil(() => out.includes("committed"), 10_000, `the writer to commit (${out})`, 5);
      return performance.now();
    },
    kill() {
      if (child.exitCode === null) child.kill("SIGKILL");
    },
  };
}

type Ask = (c: Client, key: string) => Promise<boolean>;

const viaPolicy = (note: (e: string) => void): Ask => async (c, key) => {
  const a = await policyQuery(c, RCPT(key));
  if (a !== ACTIONS.dunno && a !== ACTIONS.noSuchUser) note(`observer policy ${key}: ${a}`);
  return a === ACTIONS.dunno;
};

const viaAlias = (note: (e: string) => void): Ask => async (c, key) => {
  const a = await socketmapQuery(c, "alias", key);
  if (a !== "NOTFOUND" && a !== "OK bob@d1.test") note(`observer alias ${key}: ${a}`);
  return a === "OK bob@d1.test";
};

/** Ask about `key` every 20 ms until stopped, recording when each answer was asked and received. */
async function observe(path: string, ask: Ask, key: string, into: Observation[], stopped: () => boolean): Promise<void> {
  const c = await Client.connect(path);
  try {
    while (!stopped()) {
      const send = performance.now();
      const found = await ask(c, key);
      into.push({ send, recv: performance.now(), found });
      await sleep(20);
    }
  } finally {
    c.destroy();
  }
}

describe("SQLite faults", () => {
  test("a writer holding a long transaction during load: no error replies, no reader delayed, the row visible after commit; mailcloakctl writes during load too", async () => {
    const d = await startStack({ aliases: [["sales@d1.test", "alice"]], quiet: true });
    let stop = false;
    const errors: string[] = [];
    let answered = 0;
    let slowest = 0;
    const heldObs: Observation[] = [];
    const ctlObs: Observation[] = [];
    const note = (e: string) => {
      if (errors.length < 10) errors.push(e);
    };
    // Load: 8 policy + 8 socketmap connections asking about data that never changes.
    const load = Array.from({ length: 16 }, async (_, i) => {
      const c = await Client.connect(i % 2 === 0 ? d.policySocket : d.socketmapSocket);
      try {
        while (!stop) {
          const t0 = performance.now();
          if (i % 2 === 0) {
            const a = await policyQuery(c, RCPT(i % 4 === 0 ? "sales@d1.test" : "alice@d1.test"));
            if (a !== ACTIONS.dunno) note(`policy: ${a}`);
          } else {
            const a = i % 4 === 1 ? await socketmapQuery(c, "alias", "sales@d1.test") : await socketmapQuery(c, "mailbox", "alice@d1.test");
            if (a !== (i % 4 === 1 ? "OK alice@d1.test" : "OK d1.test/alice/")) note(`socketmap: ${a}`);
          }
          slowest = Math.max(slowest, performance.now() - t0);
          answered++;
        }
      } finally {
        c.destroy();
      }
    });
    const observers = [
      observe(d.policySocket, viaPolicy(note), "held@d1.test", heldObs, () => stop),
      observe(d.socketmapSocket, viaAlias(note), "held@d1.test", heldObs, () => stop),
      observe(d.policySocket, viaPolicy(note), "ctl@d1.test", ctlObs, () => stop),
      observe(d.socketmapSocket, viaAlias(note), "ctl@d1.test", ctlObs, () => stop),
    ];
    const writer = startWriter(d.db);
    try {
      await sleep(300);
      await writer.locked();
      await sleep(2000); // the writer holds its transaction, the load goes on
      const commitStart = performance.now();
      const committed = await writer.commit();
      // A mailcloakctl write while the load goes on.
      const ctlStart = performance.now();
      const c = await ctl(d.db, "aliases", "add", "ctl@d1.test", "bob");
      const ctlEnd = performance.now();
      assert.equal(c.code, 0, c.stderr);
      await sleep(500);
      stop = true;
      await Promise.all([...load, ...observers]);
      assert.deepEqual(errors, []);
      assert.ok(answered > 200, `load: ${answered} answers`);
      assert.ok(slowest < 1500, `no reader waited on the writer (busy timeout 5 s): slowest answer ${Math.round(slowest)} ms`);
      checkAppearance(heldObs, commitStart, committed, "held@d1.test");
      checkAppearance(ctlObs, ctlStart, ctlEnd, "ctl@d1.test");
      assertUp(d);
    } finally {
      stop = true;
      writer.kill();
      await Promise.allSettled([...load, ...observers]);
      await d.cleanup();
    }
  });

  test("mailcloakctl aliases add while another writer holds the lock waits (busy timeout) and succeeds", async () => {
    // A long busy timeout (read by mailcloakctl from --config), so that however
    // slowly it starts on a busy machine, it reaches the DB while the lock is held.
    const d = await startStack({ aliases: [["sales@d1.test", "alice"]], config: { sqlite: { busy_timeout_ms: 30_000 } } });
    const writer = startWriter(d.db);
    const p = await Client.connect(d.policySocket);
    try {
      await writer.locked();
      let exited = false;
      const ctlRun = ctl(d.db, "--config", d.configPath, "aliases", "add", "ctl@d1.test", "bob").then((r) => {
        exited = true;
        return { ...r, end: performance.now() };
      });
      // Hold the lock until mailcloakctl gives up, or 8 s (well within its busy timeout).
      await waitUntil(() => exited, 8000, "", 20).catch(() => undefined);
      const commitStart = performance.now();
      await writer.commit();
      const c = await ctlRun;
      // Readers were never disturbed meanwhile.
      assert.equal(await policyQuery(p, RCPT("sales@d1.test")), ACTIONS.dunno);
      assert.equal(c.code, 0, `mailcloakctl exit ${c.code}: ${c.stderr.trim()}`);
      assert.ok(c.end >= commitStart, "it waited for the writer's lock");
      assert.equal(await policyQuery(p, RCPT("ctl@d1.test")), ACTIONS.dunno);
    } finally {
      writer.kill();
      p.destroy();
      await d.cleanup();
    }
  });

  test("DB file removed while running: 451/TEMP within ~2 s, a log line, no crash; correct again within ~2 s of its return", async () => {
    const d = await startStack({ aliases: [["sales@d1.test", "alice"]] });
    const p = await Client.connect(d.policySocket);
    const s = await Client.connect(d.socketmapSocket);
    const files = [d.db, `${d.db}-wal`, `${d.db}-shm`];
    const moved: string[] = [];
    try {
      assert.equal(await policyQuery(p, RCPT("sales@d1.test")), ACTIONS.dunno);
      assert.equal(await socketmapQuery(s, "alias", "sales@d1.test"), "OK alice@d1.test");
      for (const f of files) {
        if (existsSync(f)) {
          renameSync(f, `${f}.away`);
          moved.push(f);
        }
      }
      assert.ok(moved.includes(d.db));
      // Until the store notices, the answer may still be right; then it must be 451 / TEMP, never wrong.
      const goneMs = await waitUntil(async () => {
        const a = await policyQuery(p, RCPT("sales@d1.test"));
        const b = await socketmapQuery(s, "alias", "sales@d1.test");
        assert.ok(a === ACTIONS.dunno || a === ACTIONS.tempfailInternal, `policy: ${a}`);
        assert.ok(b === "OK alice@d1.test" || b === DB_TEMP, `socketmap: ${b}`);
        return a === ACTIONS.tempfailInternal && b === DB_TEMP;
      }, 4000, "451 / TEMP after the DB file vanished");
      assert.ok(goneMs < 2500, `noticed after ${Math.round(goneMs)} ms`);
      await waitUntil(() => d.output.includes("database unavailable"), 2000, "the log line");
      await sleep(1000);
      assert.equal(await policyQuery(p, RCPT("alice@d1.test")), ACTIONS.tempfailInternal);
      assert.equal(await socketmapQuery(s, "mailbox", "alice@d1.test"), DB_TEMP);
      assertUp(d);
      for (const f of moved.splice(0)) renameSync(`${f}.away`, f);
      const backMs = await waitUntil(async () => {
        const a = await policyQuery(p, RCPT("sales@d1.test"));
        const b = await socketmapQuery(s, "alias", "sales@d1.test");
        assert.ok(a === ACTIONS.dunno || a === ACTIONS.tempfailInternal, `policy: ${a}`);
        assert.ok(b === "OK alice@d1.test" || b === DB_TEMP, `socketmap: ${b}`);
        return a === ACTIONS.dunno && b === "OK alice@d1.test";
      }, 4000, "correct answers after the DB file returned");
      assert.ok(backMs < 2500, `recovered after ${Math.round(backMs)} ms`);
      assert.equal(await policyQuery(p, RCPT("nobody@d1.test")), ACTIONS.noSuchUser);
      // The DB is writable again too: a new alias is served.
      await ctlOk(d.db, "aliases", "add", "after@d1.test", "alice");
      assert.equal(await socketmapQuery(s, "alias", "after@d1.test"), "OK alice@d1.test");
      assert.match(d.output, /database available again/);
      assertUp(d);
    } finally {
      for (const f of moved) renameSync(`${f}.away`, f);
      p.destroy();
      s.destroy();
      await d.cleanup();
    }
  });

  test("DB file made unreadable (daemon running as nobody): 451/TEMP, then recovers when readable again", async () => {
    assert.equal(process.getuid?.(), 0, "this suite runs as root (root ignores file modes, so the daemon drops to nobody)");
    const nobody = lookupUser("nobody");
    assert.ok(nobody, "user nobody exists");
    const dir = tempDir();
    const d = new DaemonProcess(dir);
    chownSync(dir, nobody.uid, nobody.gid);
    await ctlOk(d.db, "init", "--owner", "nobody");
    await ctlOk(d.db, "domains", "add", "d1.test");
    await ctlOk(d.db, "aliases", "add", "sales@d1.test", "alice");
    d.writeConfig({ daemon: { user: "nobody", allow_root: false } });
    await d.spawn();
    const mode = statSync(d.db).mode & 0o777;
    const p = await Client.connect(d.policySocket);
    const s = await Client.connect(d.socketmapSocket);
    try {
      assert.equal(await policyQuery(p, RCPT("sales@d1.test")), ACTIONS.dunno);
      chmodSync(d.db, 0o000);
      const ms = await waitUntil(async () => {
        const a = await policyQuery(p, RCPT("sales@d1.test"));
        assert.ok(a === ACTIONS.dunno || a === ACTIONS.tempfailInternal, `policy: ${a}`);
        return a === ACTIONS.tempfailInternal;
      }, 4000, "451 after chmod 000");
      assert.ok(ms < 2500, `noticed after ${Math.round(ms)} ms`);
      assert.equal(await socketmapQuery(s, "alias", "sales@d1.test"), DB_TEMP);
      await waitUntil(() => d.output.includes("database unavailable") && d.output.includes("not readable"), 2000, "the log line");
      assertUp(d);
      chmodSync(d.db, mode);
      const back = await waitUntil(async () => (await socketmapQuery(s, "alias", "sales@d1.test")) === "OK alice@d1.test", 4000, "recovery after chmod back");
      assert.ok(back < 2500, `recovered after ${Math.round(back)} ms`);
      assert.equal(await policyQuery(p, RCPT("sales@d1.test")), ACTIONS.dunno);
      assertUp(d);
      d.signal("SIGTERM");
      assert.equal(await d.waitExit(), 0);
    } finally {
      if (existsSync(d.db)) chmodSync(d.db, mode);
      p.destroy();
      s.destroy();
      await d.cleanup();
    }
  });
});
