// What a request costs the daemon's JavaScript, without sockets: the real
// decoders, handlers, fact layer, SQLite store, directory cache (filled from
// the Keycloak emulator), metrics and decision lines, wired as src/start.ts
// wires them and driven in turns of 50 requests as the listener drives them
// (one batchLines + store.within per turn). Each row is the median ns per
// request over its repetitions. Beside the benchmark's ceiling (its CPU per
// request, printed by npm run bench), this says how much of the 0.7 target's
// budget the code itself takes, with no socket to read or write.
//
// Usage: node dist/bench/inproc.js [--reps=N]
// The measuring runs in a child whose stdout (the decision lines) goes to a
// file, as the daemon's does, with the node flags the daemon ships with
// (configs/mailcloak.service); the table comes on this process's stdout.

import { spawn } from "node:child_process";
import { mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { FakeKeycloak } from "../test/fake-keycloak.js";
import { parseConfig } from "../src/config/load.js";
import { initStore, openStore } from "../src/store/open.js";
import { createSource } from "../src/start.js";
import { DirectoryCache } from "../src/directory/cache.js";
import { Facts, ruleSettings } from "../src/facts.js";
import { PolicyHandler, policyProtocol } from "../src/handlers/policy.js";
import { SocketmapHandler, socketmapProtocol } from "../src/handlers/socketmap.js";
import { batchLines, createLogger } from "../src/log.js";
import { Metrics } from "../src/metrics.js";
import { PolicyDecoder } from "../src/protocol/policy.js";
import { encodeNetstring, NetstringDecoder } from "../src/protocol/netstring.js";
import type { Protocol } from "../src/server/listener.js";
import type { StoreReader } from "../src/store/types.js";
import { median, policyRequest } from "./common.js";
import { shippedNodeArgs } from "../test/helpers/daemon.js";
import { benchConfig, type DaemonPaths } from "./daemon.js";
import { stringify } from "yaml";

const DOMAIN = "d1.test";
/** Distinct requests per row (a power of two), users and aliases. */
const N = 256;
/** Requests per turn: the benchmark's C = 50, one request in flight each. */
const TURN = 50;
const TURNS = 2000;

const known = (i: number): string => `kuser${i}`;

interface Row {
  readonly label: string;
  readonly requests: readonly Buffer[];
  /** A connection's state, made once per row; then called for connection c's next request in each turn. */
  readonly make: () => (c: number, req: Buffer) => void;
}

/** A decoder per connection, its requests decoded and dropped. */
function decodeOnly(newDecoder: () => { push(b: Buffer): unknown }): () => (c: number, req: Buffer) => void {
  return () => {
    const ds = Array.from({ length: TURN }, newDecoder);
    return (c, req) => void ds[c]!.push(req);
  };
}

/** A framing per connection, each item handled (synchronously: every answer is a hit). */
function handled<T>(proto: Protocol<T>): () => (c: number, req: Buffer) => void {
  return () => {
    const fs = Array.from({ length: TURN }, (_, id) => ({ framing: proto.newFraming(65536), conn: { id } }));
    return (c, req) => {
      const f = fs[c]!;
      for (const item of f.framing.push(req).items) {
        const r = proto.handle(item, f.conn);
        if (r instanceof Promise) throw new Error("a lookup was not answered from memory: the cache is not warm");
      }
    };
  };
}

async function warm<T>(proto: Protocol<T>, requests: readonly Buffer[]): Promise<void> {
  const f = proto.newFraming(65536);
  for (const r of requests) for (const item of f.push(r).items) await proto.handle(item, { id: 0 });
}

function measure(row: Row, store: StoreReader, reps: number): number {
  const step = row.make();
  const per: number[] = [];
  let k = 0;
  for (let rep = 0; rep < reps + 1; rep++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < TURNS; i++) {
      batchLines(() => store.within(() => {
        for (let c = 0; c < TURN; c++) step(c, row.requests[k++ & (N - 1)]!);
      }));
    }
    // The first repetition warms the JIT.
    if (rep > 0) per.push(Number(process.hrtime.bigint() - t) / (TURNS * TURN));
  }
  return median(per);
}

async function child(reps: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "mailcloak-inproc-"));
  const db = join(dir, "state.db");
  const init = await initStore(db, { busyTimeoutMs: 5000 });
  await init.store.addDomain(DOMAIN);
  for (let i = 0; i < N; i++) await init.store.addAlias(`alias${i}@${DOMAIN}`, known(i));
  await init.store.close();
  const fake = await FakeKeycloak.start({ realm: "test", clientId: "mailcloak", clientSecret: "s3cret", expiresIn: 3600 });
  for (let i = 0; i < N; i++) {
    fake.addUser({ username: known(i), email: `${known(i)}@${DOMAIN}`, enabled: true, attributes: { mailSendAllowed: ["true"] } });
  }
  const paths: DaemonPaths = { dir, db, policySocket: join(dir, "policy.sock"), socketmapSocket: join(dir, "socketmap.sock") };
  // The benchmark daemon's own config (log level info, as shipped), with the cache bound of bench/run.ts.
  const tree = benchConfig(paths, fake.url, { maxEntries: 50_000, metricsPort: null, socketGroup: null, quotas: false });
  const cfg = parseConfig(stringify(tree), join(dir, "config.yaml"));
  const log = createLogger("info");
  const metrics = new Metrics();
  const store = await openStore(db, { busyTimeoutMs: 5000 });
  const source = createSource(cfg, log, metrics);
  const cache = new DirectoryCache(source, cfg.cache, metrics.cacheEvents);
  const facts = new Facts(store, cache, ruleSettings(cfg));
  // No QuotaCheck: the daemon's is only reached at the end of a message, never at RCPT or MAIL.
  const policy = policyProtocol(new PolicyHandler(facts, log.child({ server: "policy" }), metrics.policyEvents));
  const socketmap = socketmapProtocol(new SocketmapHandler(facts, log.child({ server: "socketmap" }), metrics.socketmapEvents));

  const range = Array.from({ length: N }, (_, i) => i);
  const rcpt = range.map((i) => Buffer.from(policyRequest({
    sender: `sender${i % 50}@example.net`, recipient: `${known(i)}@${DOMAIN}`, instance: `${i}.in`, policyContext: "recipient",
  })));
  const senderCheck = range.map((i) => Buffer.from(policyRequest({
    sender: `${known(i)}@${DOMAIN}`, recipient: `rcpt${i}@example.org`, instance: `${i}.in`, policyContext: "sender", saslUsername: known(i), saslMethod: "PLAIN",
  })));
  const alias = range.map((i) => encodeNetstring(`alias alias${i}@${DOMAIN}`));
  const mailbox = range.map((i) => encodeNetstring(`mailbox ${known(i)}@${DOMAIN}`));
  await warm(policy, rcpt);
  await warm(policy, senderCheck);
  await warm(socketmap, mailbox);

  const rows: Row[] = [
    { label: "policy: decoder only (src/protocol/policy.ts)", requests: rcpt, make: decodeOnly(() => new PolicyDecoder(65536)) },
    { label: "(a) RCPT, known recipient (cache hit)", requests: rcpt, make: handled(policy) },
    { label: "(c) user login, sender check (cache hit)", requests: senderCheck, make: handled(policy) },
    { label: "socketmap: decoder only (src/protocol/netstring.ts)", requests: alias, make: decodeOnly(() => new NetstringDecoder(65536)) },
    { label: "(d) socketmap alias (SQLite)", requests: alias, make: handled(socketmap) },
    { label: "(e) socketmap mailbox (cache hit)", requests: mailbox, make: handled(socketmap) },
  ];
  const out = rows.map((r) => ({ label: r.label, ns: Math.round(measure(r, store, reps)) }));
  process.stderr.write(`INPROC_JSON ${JSON.stringify(out)}\n`);
  store.close();
  await source.close();
  await fake.stop();
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

async function main(): Promise<void> {
  const repsArg = process.argv.find((a) => a.startsWith("--reps="));
  const reps = repsArg === undefined ? 7 : Number(repsArg.slice("--reps=".length));
  if (!Number.isInteger(reps) || reps < 1) {
    process.stderr.write("usage: inproc.js [--reps=N] (N a whole number from 1)\n");
    process.exit(2);
  }
  if (process.argv.includes("--child")) return child(reps);
  const dir = mkdtempSync(join(tmpdir(), "mailcloak-inproc-log-"));
  const logFd = openSync(join(dir, "decisions.log"), "a");
  const proc = spawn(process.execPath, [...shippedNodeArgs(), fileURLToPath(import.meta.url), "--child", `--reps=${reps}`], { stdio: ["ignore", logFd, "pipe"] });
  let err = "";
  proc.stderr!.on("data", (b: Buffer) => (err += b.toString()));
  const code = await new Promise<number | null>((resolve) => proc.on("exit", resolve));
  rmSync(dir, { recursive: true, force: true });
  const line = err.split("\n").find((l) => l.startsWith("INPROC_JSON "));
  if (code !== 0 || line === undefined) {
    process.stderr.write(`inproc: the measuring child failed (exit ${String(code)}):\n${err}`);
    process.exit(1);
  }
  const rows = JSON.parse(line.slice("INPROC_JSON ".length)) as { label: string; ns: number }[];
  process.stdout.write(`in process, ${TURN} requests a turn, median of ${reps} repetitions of ${TURNS * TURN} requests:\n`);
  for (const r of rows) process.stdout.write(`  ${r.label.padEnd(52)} ${(r.ns / 1000).toFixed(2).padStart(6)} µs a request\n`);
  process.stdout.write(`${line}\n`);
}

await main();
