// The per-request metrics kept outside prom-client (src/request-stats.ts)
// must read as prom-client wrote them: the same text for the same requests,
// so dashboards and alerts see no change.

import assert from "node:assert/strict";
import { test } from "node:test";
import { Counter, Histogram, Registry } from "prom-client";
import { RequestStats } from "../src/request-stats.js";
import { Metrics } from "../src/metrics.js";

const BUCKETS = [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

test("RequestStats writes what prom-client writes for the same requests, escapes and bucket edges included", async () => {
  const registry = new Registry();
  const counter = new Counter({ name: "mailcloak_requests_total", help: "Requests answered, by server, map (socketmap) and action/status", labelNames: ["server", "map", "action"], registers: [registry] });
  const histogram = new Histogram({ name: "mailcloak_request_duration_seconds", help: "Time to answer one request", labelNames: ["server"], buckets: BUCKETS, registers: [registry] });
  const stats = new RequestStats(BUCKETS);
  const requests: [string, string, string, number][] = [
    ["policy", "", "DUNNO", 0.0003],
    ["policy", "", "DUNNO", 0.0002], // on a bound: counted in that bucket (le)
    ["policy", "", "550", 0.004],
    ["socketmap", "alias", "OK", 0.00001],
    ["socketmap", 'a"b\\c\nd', "NOTFOUND", 3], // past the last bound: +Inf only
    ["socketmap", "alias", "TEMP", 0.5],
  ];
  for (const [server, map, action, s] of requests) {
    counter.inc({ server, map, action });
    histogram.observe({ server }, s);
    stats.count(server, map, action);
    stats.observe(server, s);
  }
  assert.equal(stats.text(), await registry.metrics());
});

test("Metrics.text serves the request metrics with the rest, once each", async () => {
  const m = new Metrics();
  m.policyEvents.onDecision?.("RCPT", "DUNNO", "local recipient", 0.001);
  m.socketmapEvents.onRequest?.("x".repeat(17), "NOTFOUND", 0.001);
  const text = await m.text();
  assert.match(text, /^mailcloak_requests_total\{server="policy",map="",action="DUNNO"\} 1$/m);
  assert.match(text, /^mailcloak_requests_total\{server="socketmap",map="other",action="NOTFOUND"\} 1$/m);
  assert.match(text, /^mailcloak_request_duration_seconds_count\{server="policy"\} 1$/m);
  assert.equal(text.match(/^# TYPE mailcloak_requests_total /gm)?.length, 1);
  assert.equal(text.match(/^# TYPE mailcloak_request_duration_seconds /gm)?.length, 1);
  assert.match(text, /^# TYPE mailcloak_cache_lookups_total counter$/m);
});
