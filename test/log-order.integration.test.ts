// A decision's log line is written before its reply leaves (src/log.ts,
// src/server/turn.ts): lines are held while a batch of requests is decided
// and written in one write before the batch's replies are sent. Real daemon,
// log.level info as shipped, stdout a file (as journald or a log file would
// take it), 50 connections sending 8 requests at a time while the daemon is
// stopped: whenever a reply arrives, the file
// already holds that request's line, and never a torn one.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Client, ctlOk, DaemonProcess, MAILCLOAK, ROOT, tempDir } from "./helpers/daemon.js";
import { ACTIONS } from "../src/handlers/policy.js";
import { FakeKeycloak } from "./fake-keycloak.js";
import { keycloakIdp } from "./helpers/faults.js";

const CONNECTIONS = 50;
const ROUNDS = 30;
/** Requests a client sends at once: big batches, so a reply sent before its batch's lines would be seen. */
const PIPELINE = 8;

/** Reads the log file as it grows; `has` answers from every complete line so far. */
class LogFile {
  readonly #fd: number;
  #offset = 0;
  #partial = "";
  readonly senders = new Set<string>();
  started = false;

  constructor(path: string) {
    this.#fd = openSync(path, "r");
  }

  catchUp(): void {
    const buf = Buffer.alloc(1 << 16);
    for (;;) {
      const n = readSync(this.#fd, buf, 0, buf.length, this.#offset);
      if (n === 0) break;
      this.#offset += n;
      const text = this.#partial + buf.toString("utf8", 0, n);
      const parts = text.split("\n");
      this.#partial = parts.pop() ?? "";
      for (const line of parts) {
        const rec = JSON.parse(line) as Record<string, unknown>; // a torn line fails here
        if (rec.msg === "mailcloak started") this.started = true;
        if (rec.msg === "policy decision") this.senders.add(String(rec.sender));
      }
    }
  }

  text(): string {
    return this.#partial;
  }

  close(): void {
    closeSync(this.#fd);
  }
}

/** The real daemon with stdout to a file, and that file's reader once the daemon has started. */
async function loggedDaemon(d: DaemonProcess): Promise<{ child: ChildProcess; log: LogFile }> {
  const logPath = join(d.dir, "daemon.log");
  const out = openSync(logPath, "a");
  const child = spawn(process.execPath, [MAILCLOAK, "--config", d.configPath], { cwd: ROOT, stdio: ["ignore", out, out] });
  closeSync(out);
  const log = new LogFile(logPath);
  for (const until = Date.now() + 20_000; !log.started; log.catchUp()) {
    assert.ok(Date.now() < until, "the daemon did not start");
    await sleep(50);
  }
  return { child, log };
}

async function stop(child: ChildProcess, log: LogFile, d: DaemonProcess): Promise<void> {
  log.close();
  child.kill("SIGCONT");
  child.kill("SIGTERM");
  await new Promise((resolve) => child.once("exit", resolve));
  await d.cleanup();
}

/** Reads one reply per sender of `sent[w]` on each client; checks each reply and that its line is already logged. */
async function readAndCheck(clients: readonly Client[], sent: readonly string[][], log: LogFile, late: string[]): Promise<number> {
  let checked = 0;
  await Promise.all(clients.map(async (c, w) => {
    for (const sender of sent[w]!) {
      const reply = (await c.read((b) => {
        const i = b.indexOf("\n\n");
        return i < 0 ? 0 : i + 2;
      })).toString("utf8");
      assert.equal(reply, `action=${ACTIONS.dunno}\n\n`);
      log.catchUp();
      if (!log.senders.has(sender)) late.push(sender);
      checked++;
    }
  }));
  return checked;
}

test("log order: under load, every reply's decision line is already in the log when the reply arrives", async () => {
  const d = new DaemonProcess(tempDir("mailcloak-logorder-"));
  await ctlOk(d.db, "init");
  await ctlOk(d.db, "domains", "add", "d1.test");
  d.writeConfig({ policy: { recipient_delimiter: "+" } }); // log.level info: the shipped default
  const { child, log } = await loggedDaemon(d);
  try {
    let checked = 0;
    const late: string[] = [];
    const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => Client.connect(d.policySocket)));
    for (let round = 0; round < ROUNDS; round++) {
      // The daemon is stopped while every client sends, so it wakes to all
      // of them at once: one batch of CONNECTIONS x PIPELINE decisions, long
      // enough that a reply sent before the batch's lines would be seen here.
      child.kill("SIGSTOP");
      const sent = clients.map((c, w) => {
        // One recipient, answered from the cache after the first request (the
        // synchronous path that batches); a distinct sender names each line.
        const senders = Array.from({ length: PIPELINE }, (_, k) => `s${w}.${round}.${k}@example.net`);
        c.write(senders.map((s) => policyRequest(s, "alice@d1.test")).join(""));
        return senders;
      });
      await sleep(20);
      child.kill("SIGCONT");
      checked += await readAndCheck(clients, sent, log, late);
    }
    for (const c of clients) c.destroy();
    assert.equal(checked, CONNECTIONS * ROUNDS * PIPELINE);
    assert.deepEqual(late.slice(0, 5), [], `${late.length} of ${checked} replies arrived before their line was in the log`);
    assert.equal(log.text(), "", "the log ends with a complete line");
  } finally {
    await stop(child, log, d);
  }
});

test("log order: answers after a Keycloak lookup, completing together, also reach the log before their replies", async () => {
  // Lines of answers completed outside a batch are held until a batch of the
  // same turn writes them (log.ts deferLines), and their replies with them.
  // The daemon is stopped while Keycloak answers all its queries, so on
  // SIGCONT it reads every answer in one poll phase, ahead of that batch.
  const MISS_ROUNDS = 10;
  const kc = await FakeKeycloak.start();
  const d = new DaemonProcess(tempDir("mailcloak-logorder-miss-"));
  await ctlOk(d.db, "init");
  await ctlOk(d.db, "domains", "add", "d1.test");
  for (let round = 0; round < MISS_ROUNDS; round++) {
    for (let w = 0; w < CONNECTIONS; w++) kc.addUser({ username: `m${w}x${round}`, email: `m${w}x${round}@d1.test` });
  }
  d.writeConfig(keycloakIdp(kc, { timeout_ms: 5000 }));
  const { child, log } = await loggedDaemon(d);
  try {
    let checked = 0;
    const late: string[] = [];
    const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => Client.connect(d.policySocket)));
    kc.latencyMs = 100;
    for (let round = 0; round < MISS_ROUNDS; round++) {
      const before = kc.userQueries;
      const sent = clients.map((c, w) => {
        const sender = `k${w}.${round}@example.net`;
        c.write(policyRequest(sender, `m${w}x${round}@d1.test`)); // a user not cached yet: a Keycloak query
        return [sender];
      });
      for (const until = Date.now() + 10_000; kc.userQueries - before < CONNECTIONS;) {
        assert.ok(Date.now() < until, `only ${kc.userQueries - before} of ${CONNECTIONS} users queries reached Keycloak`);
        await sleep(5);
      }
      child.kill("SIGSTOP");
      await sleep(kc.latencyMs + 100); // every answer is sent and waits in the daemon's sockets
      child.kill("SIGCONT");
      checked += await readAndCheck(clients, sent, log, late);
    }
    for (const c of clients) c.destroy();
    assert.equal(checked, CONNECTIONS * MISS_ROUNDS);
    assert.equal(kc.userQueries >= CONNECTIONS * MISS_ROUNDS, true, "every request was a miss");
    assert.deepEqual(late.slice(0, 5), [], `${late.length} of ${checked} replies arrived before their line was in the log`);
    assert.equal(log.text(), "", "the log ends with a complete line");
  } finally {
    await stop(child, log, d);
    await kc.stop();
  }
});

function policyRequest(sender: string, recipient: string): string {
  return `request=smtpd_access_policy\nprotocol_state=RCPT\nsender=${sender}\nrecipient=${recipient}\npolicy_context=recipient\n\n`;
}
