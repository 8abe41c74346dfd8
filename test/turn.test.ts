// The per-turn batch (src/server/turn.ts): what is deferred in one turn runs
// after it, in order, inside one call of `around`; a failing task costs the
// others nothing; work deferred by a task waits for the next batch.

import assert from "node:assert/strict";
import { test } from "node:test";
import { setImmediate as nextTurn } from "node:timers/promises";
import { Turn } from "../src/server/turn.js";

test("tasks deferred in one turn run later, in order, in one batch", async () => {
  const log: string[] = [];
  const turn = new Turn((run) => {
    log.push("(");
    run();
    log.push(")");
  });
  turn.defer(() => log.push("a"));
  turn.defer(() => log.push("b"));
  log.push("sync");
  await nextTurn();
  turn.defer(() => log.push("c"));
  await nextTurn();
  assert.deepEqual(log, ["sync", "(", "a", "b", ")", "(", "c", ")"]);
});

test("a task that throws is reported and the rest of the batch still runs", async () => {
  const errors: unknown[] = [];
  const ran: string[] = [];
  const turn = new Turn(undefined, (err) => errors.push(err));
  turn.defer(() => ran.push("a"));
  turn.defer(() => {
    throw new Error("boom");
  });
  turn.defer(() => ran.push("c"));
  await nextTurn();
  assert.deepEqual(ran, ["a", "c"]);
  assert.equal(errors.length, 1);
  assert.equal((errors[0] as Error).message, "boom");
});

test("work deferred by a task runs in a later batch, not in the running one", async () => {
  let batches = 0;
  const seen: number[] = [];
  const turn = new Turn((run) => {
    batches++;
    run();
  });
  turn.defer(() => {
    seen.push(batches);
    turn.defer(() => seen.push(batches));
  });
  await nextTurn();
  await nextTurn();
  assert.deepEqual(seen, [1, 2]);
});

test("writes held during a batch are released after `around` returns, in order; outside a batch nothing is held", async () => {
  const log: string[] = [];
  const turn = new Turn((run) => {
    run();
    log.push("around done"); // the daemon writes the batch's log lines here
  });
  const held = (name: string) => ({ release: () => log.push(`release ${name}`) });
  assert.equal(turn.mustHold, false);
  turn.defer(() => {
    assert.equal(turn.mustHold, true);
    turn.hold(held("a"));
    log.push("task a");
  });
  turn.defer(() => {
    turn.hold(held("b"));
    throw new Error("a failing task still has its writes released");
  });
  await nextTurn();
  assert.equal(turn.mustHold, false);
  assert.deepEqual(log, ["task a", "around done", "release a", "release b"]);
});

test("writes are held only while log lines are held: with none (log.level warn, socketmap lookups) a reply leaves at once", async () => {
  let held = false;
  const seen: boolean[] = [];
  const turn = new Turn(undefined, undefined, () => held);
  turn.defer(() => {
    seen.push(turn.mustHold);
    held = true; // a decision line is logged
    seen.push(turn.mustHold);
  });
  await nextTurn();
  held = true;
  seen.push(turn.mustHold); // outside a batch: never
  assert.deepEqual(seen, [false, true, false]);
});

test("wake(): lines held outside a batch (an answer after a Keycloak lookup) hold writes until the batch it schedules, which runs with no task", async () => {
  let lines = false;
  const log: string[] = [];
  const turn = new Turn((run) => {
    run();
    if (lines) log.push("lines written"); // log.ts batchLines releases them here
    lines = false;
  }, undefined, () => lines);
  lines = true; // a decision line held by writeSoon, which calls wake
  assert.equal(turn.mustHold, false, "no batch scheduled yet: nothing would release a hold");
  turn.wake();
  assert.equal(turn.mustHold, true);
  turn.hold({ release: () => log.push("reply released") });
  turn.wake(); // idempotent: one batch
  await nextTurn();
  assert.deepEqual(log, ["lines written", "reply released"]);
  assert.equal(turn.mustHold, false);
});
