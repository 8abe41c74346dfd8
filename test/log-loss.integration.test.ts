// No decision line lost when the daemon ends mid-load (issue 12.8): the
// decision lines of a batch are held in memory until the batch ends
// (src/log.ts), and SIGTERM or a fatal error must still see them written. Real daemon, log.level info as
// shipped, 20 connections under load; then every reply the clients received
// must have its "policy decision" line in the daemon's output.

import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { Client, ctlOk, DaemonProcess, policyQuery, tempDir } from "./helpers/daemon.js";
import { ACTIONS } from "../src/handlers/policy.js";

const FATAL_HOOK = fileURLToPath(new URL("./helpers/fatal-on-sigusr2.js", import.meta.url));
const CONNECTIONS = 20;

interface Load {
  /** Recipients whose reply arrived (each is distinct: alice+<conn>.<n>@d1.test). */
  readonly answered: string[];
  readonly done: Promise<void>;
  stop(): void;
}

/** CONNECTIONS clients, one request in flight each, until told to stop or the daemon closes them. */
function load(d: DaemonProcess): Load {
  const answered: string[] = [];
  let stopped = false;
  const done = Promise.all(Array.from({ length: CONNECTIONS }, async (_, w) => {
    const c = await Client.connect(d.policySocket);
    for (let i = 0; !stopped && !c.closed; i++) {
      const recipient = `alice+${w}.${i}@d1.test`;
      let action: string;
      try {
        action = await policyQuery(c, { protocol_state: "RCPT", sender: "", recipient, policy_context: "recipient" });
      } catch {
        break; // the daemon went away with this request unanswered: no line owed
      }
      assert.equal(action, ACTIONS.dunno);
      answered.push(recipient);
    }
    c.destroy();
  })).then(() => undefined);
  return { answered, done, stop: () => (stopped = true) };
}

async function daemonUnderLoad(nodeArgs: string[]): Promise<{ d: DaemonProcess; l: Load }> {
  const d = new DaemonProcess(tempDir("mailcloak-logloss-"));
  await ctlOk(d.db, "init");
  await ctlOk(d.db, "domains", "add", "d1.test");
  d.nodeArgs = nodeArgs;
  d.writeConfig({ policy: { recipient_delimiter: "+" } }); // log.level info: the shipped default
  await d.spawn();
  const l = load(d);
  // Well into the load (a loaded machine needs a while for the first thousands).
  for (const until = Date.now() + 20_000; l.answered.length < 3000 && Date.now() < until;) await sleep(20);
  return { d, l };
}

/** The recipients of the daemon's "policy decision" lines; fails on a line that is not JSON (a torn write). */
function loggedRecipients(d: DaemonProcess): Set<string> {
  const out = new Set<string>();
  for (const line of d.output.split("\n")) {
    if (!line.includes('"policy decision"')) continue;
    const rec = JSON.parse(line) as Record<string, unknown>;
    out.add(String(rec.recipient));
  }
  return out;
}

function assertEveryReplyLogged(d: DaemonProcess, answered: readonly string[]): void {
  assert.ok(answered.length >= 1000, `only ${answered.length} replies before the daemon ended: too little load to test`);
  const logged = loggedRecipients(d);
  const missing = answered.filter((r) => !logged.has(r));
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} of ${answered.length} replies have no decision line`);
  assert.ok(logged.size >= answered.length, `${logged.size} lines for ${answered.length} replies`);
}

test("log loss: SIGTERM under load leaves a decision line for every reply, then \"stopped\"", async () => {
  const { d, l } = await daemonUnderLoad([]);
  d.signal("SIGTERM");
  const code = await d.waitExit(15_000);
  l.stop();
  await l.done;
  assert.equal(code, 0);
  assertEveryReplyLogged(d, l.answered);
  const last = d.output.trimEnd().split("\n").pop() ?? "";
  assert.equal((JSON.parse(last) as { msg: string }).msg, "stopped", "the last line is the stop line");
  await d.cleanup();
});

test("log loss: a fatal error under load leaves a decision line for every reply, then one FATAL line, exit 1", async () => {
  const { d, l } = await daemonUnderLoad(["--import", FATAL_HOOK]);
  d.signal("SIGUSR2");
  const code = await d.waitExit(15_000);
  l.stop();
  await l.done;
  assert.equal(code, 1);
  assertEveryReplyLogged(d, l.answered);
  const fatal = d.records().filter((r) => r.level === 60);
  assert.equal(fatal.length, 1, d.output.slice(-2000));
  assert.match(String(fatal[0]!.msg), /^fatal: uncaught exception; exiting$/);
  assert.match(String(fatal[0]!.err), /injected by the log-loss test/);
  await d.cleanup();
});
