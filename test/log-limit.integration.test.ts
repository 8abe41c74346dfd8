// Per-connection limit warnings are rate-limited: a flood of malformed
// requests logs one warning, then one summary line with the count when the
// 10 s window ends; every close is still counted in the metrics.

import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import { freePort, metric, RawConn, scrape, startStack, waitUntil } from "./helpers/faults.js";

test("a flood of malformed socketmap requests: one warning, then a summary line with the count", async () => {
  const port = await freePort();
  const d = await startStack({ quiet: true, config: { metrics: { listen: `127.0.0.1:${port}` } } });
  try {
    const conns = await Promise.all(Array.from({ length: 30 }, () => RawConn.connect(d.socketmapSocket)));
    for (const c of conns) c.write("not-a-netstring\n");
    await waitUntil(async () => conns.every((c) => c.closed), 5000, "the malformed connections to be closed");
    const lines = (): string[] => d.output.split("\n").filter((l) => l.includes("malformed request, closing connection"));
    assert.equal(lines().length, 1, `at once, only the first is logged:\n${lines().join("\n")}`);
    assert.equal(metric(await scrape(port), "mailcloak_limit_closes_total", { server: "socketmap", reason: "malformed" }), 30, "every close is counted");
    await sleep(10_500);
    const summary = lines().filter((l) => l.includes("more in the same window"));
    assert.equal(summary.length, 1, lines().join("\n"));
    assert.match(summary[0]!, /"count":29\b/);
    assert.equal(d.exitCode, null);
  } finally {
    await d.cleanup();
  }
});
