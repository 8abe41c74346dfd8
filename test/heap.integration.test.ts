// The start-up check that the cache bound fits the V8 heap the daemon was given.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { heapFit } from "../src/system/heap.js";
import { getHeapStatistics } from "node:v8";
import { execFileSync } from "node:child_process";
import { ctlOk, DaemonProcess, shippedNodeArgs, tempDir } from "./helpers/daemon.js";

const MB = 2 ** 20;

describe("heapFit", () => {
  test("the default bound fits the heap the shipped service files give; ten times it does not", () => {
    // The heap limit a node started with the service files' NODE_OPTIONS gets.
    const limit = Number(execFileSync(process.execPath, [...shippedNodeArgs(), "-p", "require('v8').getHeapStatistics().heap_size_limit"], { encoding: "utf8" }).trim());
    assert.ok(limit < getHeapStatistics().heap_size_limit, "the service files do cap the heap");
    assert.equal(heapFit(50_000, limit).fits, true, `default max_entries within ${limit / MB} MB`);
    const big = heapFit(500_000, limit);
    assert.equal(big.fits, false);
    assert.equal(big.limitMb, Math.floor(limit / MB));
    assert.ok(big.neededMb > big.limitMb && big.neededMb < 400, `${big.neededMb} MB`);
    assert.equal(heapFit(500_000, 1024 * MB).fits, true, "with a bigger heap it fits");
  });
});

describe("daemon start", () => {
  test("a cache bound the heap cannot hold is reported once at start, with the fix; the daemon still serves", async () => {
    const d = new DaemonProcess(tempDir());
    d.nodeArgs = ["--max-old-space-size=64"];
    d.writeConfig({ cache: { max_entries: 1_000_000 } });
    await ctlOk(d.db, "init");
    await d.spawn();
    try {
      assert.match(d.output, /cache\.max_entries 1000000 needs about \d+ MB of heap when full but the V8 heap limit is \d+ MB: raise --max-old-space-size in NODE_OPTIONS/);
      assert.equal(d.output.match(/needs about/g)?.length, 1);
      assert.equal(d.exitCode, null);
    } finally {
      await d.cleanup();
    }
    const ok = new DaemonProcess(tempDir());
    ok.nodeArgs = ["--max-old-space-size=64"];
    ok.writeConfig({ cache: { max_entries: 10_000 } });
    await ctlOk(ok.db, "init");
    await ok.spawn();
    try {
      assert.doesNotMatch(ok.output, /needs about/);
    } finally {
      await ok.cleanup();
    }
  });
});
