// A decision's log line is written before its reply leaves (src/log.ts,
// src/server/turn.ts): lines are held while a batch of requests is decided
// and written in one write before the batch's replies are sent. Real daemon,
// log.level info as shipped, stdout a file (as journald or a log file would
// take it), 50 connections sending 8 requests at a time while the daemon is
// stopped: whenever a reply arrives, the file
// already holds that request's line, and never a torn one.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { closeSync, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Client, ctlOk, DaemonProcess, MAILCLOAK, ROOT, tempDir } from "./helpers/daemon.js";
import { ACTIONS } from "../src/handlers/policy.js";

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

test("log order: under load, every reply's decision line is already in the log when the reply arrives", async () => {
  const d = new DaemonProcess(tempDir("mailcloak-logorder-"));
  await ctlOk(d.db, "init");
  await ctlOk(d.db, "domains", "add", "d1.test");
  d.writeConfig({ policy: { recipient_delimiter: "+" } }); // log.level info: the shipped default
  const logPath = join(d.dir, "daemon.log");
  const out = openSync(logPath, "a");
  const child = spawn(process.execPath, [MAILCLOAK, "--config", d.configPath], { cwd: ROOT, stdio: ["ignore", out, out] });
  closeSync(out);
  const log = new LogFile(logPath);
  try {
    for (const until = Date.now() + 20_000; !log.started; log.catchUp()) {
      assert.ok(Date.now() < until, "the daemon did not start");
      await sleep(50);
    }
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
        c.write(senders.map((s) => policyRequest(s)).join(""));
        return senders;
      });
      await sleep(20);
      child.kill("SIGCONT");
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
    }
    for (const c of clients) c.destroy();
    assert.equal(checked, CONNECTIONS * ROUNDS * PIPELINE);
    assert.deepEqual(late.slice(0, 5), [], `${late.length} of ${checked} replies arrived before their line was in the log`);
    assert.equal(log.text(), "", "the log ends with a complete line");
  } finally {
    log.close();
    child.kill("SIGCONT");
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
    await d.cleanup();
  }
});

function policyRequest(sender: string): string {
  return `request=smtpd_access_policy\nprotocol_state=RCPT\nsender=${sender}\nrecipient=alice@d1.test\npolicy_context=recipient\n\n`;
}
