// Abusive clients against the running daemon: slow-loris, a connection flood
// past max_connections, 1 MiB requests and random garbage — while a
// well-behaved client keeps being served.

import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { Client, DaemonProcess, netstring, policyQuery, socketmapQuery } from "./helpers/daemon.js";
import {
  assertUp, freePort, metric, percentile, prng, RawConn, rssKiB, scrape, startStack, waitUntil,
} from "./helpers/faults.js";
import { ACTIONS } from "../src/handlers/policy.js";

const READ_TIMEOUT_S = 2;
const MiB = 1 << 20;
const RCPT = (recipient: string) => ({ protocol_state: "RCPT", sender: "", recipient });
const POLICY_REQUEST = "request=smtpd_access_policy\nprotocol_state=RCPT\nsender=\nrecipient=alice@d1.test\n\n";
const SOCKETMAP_REQUEST = netstring("mailbox alice@d1.test");

/** A client that behaves: one policy and one socketmap connection, answers checked, latencies kept. */
class GoodClient {
  readonly latencies: number[] = [];
  wrong: string[] = [];
  private constructor(private readonly p: Client, private readonly s: Client) {}

  static async connect(d: DaemonProcess): Promise<GoodClient> {
    return new GoodClient(await Client.connect(d.policySocket), await Client.connect(d.socketmapSocket));
  }

  /** One policy and one socketmap request, each timed. */
  async round(): Promise<void> {
    let t0 = performance.now();
    const a = await policyQuery(this.p, RCPT("alice@d1.test"));
    this.latencies.push(performance.now() - t0);
    if (a !== ACTIONS.dunno) this.wrong.push(`policy: ${a}`);
    t0 = performance.now();
    const b = await socketmapQuery(this.s, "mailbox", "alice@d1.test");
    this.latencies.push(performance.now() - t0);
    if (b !== "OK d1.test/alice/") this.wrong.push(`socketmap: ${b}`);
  }

  /** Rounds with a 2 ms pause until `done()` (or n rounds); returns the latencies of this run. */
  async run(until: { rounds?: number; done?: () => boolean }): Promise<number[]> {
    const from = this.latencies.length;
    for (let i = 0; until.rounds === undefined || i < until.rounds; i++) {
      if (until.done?.()) break;
      await this.round();
      await sleep(2);
    }
    return this.latencies.slice(from);
  }

  destroy(): void {
    this.p.destroy();
    this.s.destroy();
  }
}

describe("slow clients, big requests and garbage", () => {
  let d: DaemonProcess;
  let port: number;
  let pid: number;
  let good: GoodClient;

  before(async () => {
    port = await freePort();
    d = await startStack({
      aliases: [["sales@d1.test", "alice"]],
      quiet: true,
      config: { limits: { read_timeout_seconds: READ_TIMEOUT_S }, metrics: { listen: `127.0.0.1:${port}` } },
    });
    pid = d.child!.pid!;
    good = await GoodClient.connect(d);
  });

  after(async () => {
    good?.destroy();
    await d?.cleanup();
  });

  const open = async (server: "policy" | "socketmap") => metric(await scrape(port), "mailcloak_open_connections", { server });

  test("slow-loris: 200 connections sending a byte a second are closed by the read timeout; a well-behaved client stays fast", async (t) => {
    await good.run({ rounds: 50 }); // warm up
    const baseline = percentile(await good.run({ rounds: 250 }), 99);
    const bound = Math.max(5 * baseline, 20);
    const m0 = await scrape(port);

    const loris = await Promise.all(Array.from({ length: 200 }, (_, i) => RawConn.connect(i % 2 === 0 ? d.policySocket : d.socketmapSocket)));
    const payload = (i: number) => (i % 2 === 0 ? POLICY_REQUEST : SOCKETMAP_REQUEST);
    const firstByteAt = performance.now();
    let tick = 0;
    const ticker = setInterval(() => {
      tick++;
      loris.forEach((c, i) => {
        if (!c.ended && tick < payload(i).length) c.write(payload(i)[tick]!);
      });
    }, 1000);
    loris.forEach((c, i) => c.write(payload(i)[0]!));
    let during: number[];
    let closedAfter: number[];
    try {
      during = await good.run({ done: () => loris.every((c) => c.closed) || performance.now() - firstByteAt > READ_TIMEOUT_S * 1000 + 6000 });
      closedAfter = loris.map((c) => (c.closeAt === null ? Infinity : c.closeAt - firstByteAt));
    } finally {
      clearInterval(ticker);
      loris.forEach((c) => c.destroy());
    }

    assert.ok(closedAfter.every((ms) => ms !== Infinity), `${closedAfter.filter((ms) => ms === Infinity).length} slow connections still open`);
    assert.ok(Math.min(...closedAfter) >= READ_TIMEOUT_S * 1000 - 200, `closed after ${Math.round(Math.min(...closedAfter))} ms: not before the read timeout`);
    assert.ok(Math.max(...closedAfter) <= READ_TIMEOUT_S * 1000 + 4000, `last closed after ${Math.round(Math.max(...closedAfter))} ms`);
    assert.ok(loris.every((c) => c.received === 0), "a half-sent request is never answered");
    // 200 closes, but the log is not flooded: one warning per server, the rest counted for a summary line.
    const warned = d.output.split("\n").filter((l) => l.includes("request not completed within the read timeout, closing connection") && !l.includes("more in the same window"));
    assert.ok(warned.length >= 1 && warned.length <= 2, `${warned.length} read-timeout warnings logged`);
    const m1 = await scrape(port);
    for (const server of ["policy", "socketmap"]) {
      const closes = metric(m1, "mailcloak_limit_closes_total", { server, reason: "read_timeout" }) - metric(m0, "mailcloak_limit_closes_total", { server, reason: "read_timeout" });
      assert.equal(closes, 100, `${server}: read_timeout closes`);
    }
    // Released on the server's side too, not just half-closed.
    await waitUntil(async () => (await open("policy")) === 1 && (await open("socketmap")) === 1, 3000, "the server to release the slow connections");

    const p99 = percentile(during, 99);
    t.diagnostic(`well-behaved client: baseline p99 ${baseline.toFixed(2)} ms, p99 during slow-loris ${p99.toFixed(2)} ms over ${during.length} requests (bound ${bound.toFixed(1)} ms)`);
    assert.deepEqual(good.wrong, []);
    assert.ok(during.length >= 100, `well-behaved requests during the attack: ${during.length}`);
    assert.ok(p99 < bound, `p99 ${p99.toFixed(2)} ms during the attack vs baseline ${baseline.toFixed(2)} ms`);
    assertUp(d);
  });

  test("1 MiB requests (policy attribute line, socketmap netstring): connection closed, memory bounded, others served", async () => {
    await good.run({ rounds: 20 });
    await sleep(200);
    const rss0 = rssKiB(pid);
    let peak = rss0;
    const sampler = setInterval(() => {
      try {
        peak = Math.max(peak, rssKiB(pid));
      } catch {
        /* checked by assertUp below */
      }
    }, 50);
    const m0 = await scrape(port);
    const big = await Promise.all(Array.from({ length: 20 }, (_, i) => RawConn.connect(i % 2 === 0 ? d.policySocket : d.socketmapSocket)));
    try {
      const attr = `request=smtpd_access_policy\nprotocol_state=RCPT\nx=${"a".repeat(MiB)}\n\n`;
      big.forEach((c, i) => {
        if (i % 2 === 0) c.write(attr);
        else {
          c.write(`${MiB}:`); // announce 1 MiB...
          c.write(Buffer.alloc(MiB, 0x61)); // ...and send it
          c.write(",");
        }
      });
      // Others are served meanwhile.
      const t0 = performance.now();
      await good.run({ done: () => big.every((c) => c.closed) || performance.now() - t0 > 5000 });
      assert.ok(big.every((c) => c.closed), `${big.filter((c) => !c.closed).length} of 20 oversize connections not closed by the server`);
      assert.ok(big.every((c) => c.received === 0), "no reply to an oversize request");
      await sleep(1000);
      const rss1 = rssKiB(pid);
      const m1 = await scrape(port);
      for (const server of ["policy", "socketmap"]) {
        const closes = metric(m1, "mailcloak_limit_closes_total", { server, reason: "max_request_bytes" }) - metric(m0, "mailcloak_limit_closes_total", { server, reason: "max_request_bytes" });
        assert.equal(closes, 10, `${server}: max_request_bytes closes`);
      }
      assert.ok((peak - rss0) / 1024 < 50, `RSS grew by ${((peak - rss0) / 1024).toFixed(1)} MiB at peak`);
      assert.ok((rss1 - rss0) / 1024 < 50, `RSS grew by ${((rss1 - rss0) / 1024).toFixed(1)} MiB`);
      await good.run({ rounds: 20 });
      assert.deepEqual(good.wrong, []);
      assertUp(d);
    } finally {
      clearInterval(sampler);
      big.forEach((c) => c.destroy());
    }
  });

  // Regression: these sockets used to stay open server-side forever (paused, their EOF never read).
  test("connections closed for a limit are released by the server, whatever the client sends afterwards", async () => {
    const level = async () => (await open("policy")) + (await open("socketmap"));
    const before = await level();
    const fdsBefore = readdirSync(`/proc/${pid}/fd`).length;
    // 1. A client still writing its 1 MiB request when the server gives up on it.
    const writer = await RawConn.connect(d.policySocket);
    writer.write(`request=smtpd_access_policy\nx=${"a".repeat(MiB)}\n\n`);
    // 2. A malformed request, then a few more bytes.
    const garbler = await RawConn.connect(d.socketmapSocket);
    garbler.write("x:");
    // 3. A slow client that sends one more byte after the read timeout, as a slow-loris would.
    const slow = await RawConn.connect(d.socketmapSocket, { allowHalfOpen: true });
    slow.write("2");
    try {
      await waitUntil(() => writer.ended && garbler.ended, 3000, "EOF for the oversize and malformed requests");
      garbler.write("more");
      await waitUntil(() => slow.ended, READ_TIMEOUT_S * 1000 + 3000, "EOF for the slow client");
      slow.write("2");
      // The clients are all still there: the server must let go by itself.
      try {
        await waitUntil(async () => (await level()) === before, 5000, "the server to release the three connections");
      } catch (err) {
        throw new Error(`${(err as Error).message}: mailcloak_open_connections ${before} before, ${await level()} now; daemon fds ${fdsBefore} before, ${readdirSync(`/proc/${pid}/fd`).length} now`);
      }
      await waitUntil(() => writer.closed, 3000, "the writing client to see its connection closed");
    } finally {
      writer.destroy();
      garbler.destroy();
      slow.destroy();
    }
  });

  test("random garbage on both sockets never crashes the daemon; well-formed requests are answered afterwards", async (t) => {
    const seed = Number(process.env.MAILCLOAK_GARBAGE_SEED ?? Date.now() % 2 ** 31);
    t.diagnostic(`garbage seed ${seed} (replay with MAILCLOAK_GARBAGE_SEED=${seed})`);
    const rnd = prng(seed);
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)));
    // Random binary, plus crafted near-misses of both framings.
    const crafted: Buffer[] = [
      Buffer.from("99999999999:x,"), Buffer.from(":,"), Buffer.from("5:abc,"), Buffer.from("3:a b;"), Buffer.from("0:,0:,0:,"),
      Buffer.from("-1:,"), Buffer.from("12:mailbox \xff\xfe\x00x,", "latin1"), Buffer.from(`${netstring("nosuchmap x")}${netstring("mailbox")}`),
      Buffer.from("\n\n\n\n"), Buffer.from("=\n\n"), Buffer.from("request\n\n"), Buffer.from("\r\n\r\n"),
      Buffer.from("request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=\xff\xfe@d1.test\n\n", "latin1"),
      Buffer.from("request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a\x00b@d1.test\nsasl_username=\x00\n\n", "latin1"),
      Buffer.concat([Buffer.from("request=smtpd_access_policy\nprotocol_state=RCPT\nsender="), bytes(300), Buffer.from("\n\n")]),
    ];
    const m0 = await scrape(port);
    let sent = 0;
    for (let batch = 0; batch < 6; batch++) {
      const conns = await Promise.all(Array.from({ length: 50 }, (_, i) => RawConn.connect(i % 2 === 0 ? d.policySocket : d.socketmapSocket)));
      conns.forEach((c, i) => {
        const n = batch * 50 + i;
        const chunks = n % 5 === 0 ? [crafted[(n / 5) % crafted.length]!, bytes(1 + Math.floor(rnd() * 64))] : Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => bytes(1 + Math.floor(rnd() * 2048)));
        for (const ch of chunks) {
          c.write(ch);
          sent += ch.length;
        }
      });
      await sleep(150);
      conns.forEach((c) => c.destroy());
      assertUp(d);
    }
    assert.ok(sent > 50_000, `${sent} bytes of garbage`);
    // Still serving, correctly, on new connections.
    const p = await Client.connect(d.policySocket);
    const s = await Client.connect(d.socketmapSocket);
    assert.equal(await policyQuery(p, RCPT("alice@d1.test")), ACTIONS.dunno);
    assert.equal(await policyQuery(p, RCPT("sales@d1.test")), ACTIONS.dunno);
    assert.equal(await policyQuery(p, RCPT("nobody@d1.test")), ACTIONS.noSuchUser);
    assert.equal(await socketmapQuery(s, "mailbox", "alice@d1.test"), "OK d1.test/alice/");
    assert.equal(await socketmapQuery(s, "alias", "sales@d1.test"), "OK alice@d1.test");
    p.destroy();
    s.destroy();
    await good.run({ rounds: 10 });
    assert.deepEqual(good.wrong, []);
    // Garbage is handled by the framing (closed as malformed/oversize), never by a handler crash.
    assert.doesNotMatch(d.output, /internal error/);
    // Every garbage connection is gone from the server's side as well.
    await waitUntil(async () => (await open("policy")) === 1 && (await open("socketmap")) === 1, 5000, "the server to release the garbage connections");
    const m1 = await scrape(port);
    const limitCloses = (m: string) => metric(m, "mailcloak_limit_closes_total", { reason: "malformed" }) + metric(m, "mailcloak_limit_closes_total", { reason: "max_request_bytes" });
    assert.ok(limitCloses(m1) - limitCloses(m0) >= 100, "most garbage connections were closed as malformed");
    assertUp(d);
  });
});

describe("connection flood", () => {
  test("past max_connections (50): extra connections are closed at once and counted; connected clients keep being served", async () => {
    const port = await freePort();
    const d = await startStack({ quiet: true, config: { limits: { max_connections: 50 }, metrics: { listen: `127.0.0.1:${port}` } } });
    const good = await GoodClient.connect(d); // one connection on each server
    const holders: RawConn[] = [];
    const extra: RawConn[] = [];
    try {
      for (const path of [d.policySocket, d.socketmapSocket]) {
        holders.push(...(await Promise.all(Array.from({ length: 49 }, () => RawConn.connect(path)))));
      }
      await good.run({ rounds: 5 });
      const m0 = await scrape(port);
      // 100 extra connections on each server, all at once, while the good client keeps asking.
      let flooding = true;
      const serving = good.run({ done: () => !flooding });
      for (const path of [d.policySocket, d.socketmapSocket]) {
        extra.push(...(await Promise.all(Array.from({ length: 100 }, () => RawConn.connect(path)))));
      }
      await waitUntil(() => extra.every((c) => c.closed), 5000, "the extra connections to be closed");
      flooding = false;
      const latencies = await serving;
      const slowestClose = Math.max(...extra.map((c) => c.closeAt! - c.openedAt));
      assert.ok(slowestClose < 2000, `extra connections closed within ${Math.round(slowestClose)} ms of connecting`);
      assert.ok(extra.every((c) => c.received === 0));
      assert.ok(holders.every((c) => !c.ended), "connections within the limit are kept");
      assert.ok(latencies.length >= 2, "the good client was served during the flood");
      const m1 = await scrape(port);
      for (const server of ["policy", "socketmap"]) {
        const refused = metric(m1, "mailcloak_connections_refused_total", { server, reason: "max_connections" }) - metric(m0, "mailcloak_connections_refused_total", { server, reason: "max_connections" });
        assert.equal(refused, 100, `${server}: refused connections`);
        assert.equal(metric(m1, "mailcloak_open_connections", { server }), 50);
      }
      await good.run({ rounds: 20 });
      assert.deepEqual(good.wrong, []);
      // A freed slot is usable again.
      holders.shift()!.destroy();
      await waitUntil(async () => metric(await scrape(port), "mailcloak_open_connections", { server: "policy" }) === 49, 3000, "the slot to be freed");
      const again = await Client.connect(d.policySocket);
      assert.equal(await policyQuery(again, RCPT("alice@d1.test")), ACTIONS.dunno);
      again.destroy();
      assertUp(d);
    } finally {
      good.destroy();
      [...holders, ...extra].forEach((c) => c.destroy());
      await d.cleanup();
    }
  });
});
