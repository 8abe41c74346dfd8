// The lists part of the benchmark (issue 14): one list of 2,000 members in
// the Keycloak emulator, a daemon with the shipped cache settings plus
// lists.parent_group. Measured: the first expansion (socketmap alias, cold),
// the Keycloak requests it took (paged group and member reads), then many
// more lookups of the list within the TTL (throughput, latency, and the
// Keycloak requests they caused: none, one expansion per TTL).
//
// It has its own emulator and daemon: the hot-path daemon runs without
// lists, as shipped, and its emulator's request counters stay its own.

import { rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { FakeKeycloak } from "../test/fake-keycloak.js";
import { Client, ctlOk, socketmapQuery, tempDir } from "../test/helpers/daemon.js";
import { DEFAULTS } from "../src/config/types.js";
import { LISTS_OFF } from "../src/config/lists.js";
import { cpuNs, round, type RunResult, type RunSpec, type Target } from "./common.js";
import { BenchDaemon, benchConfig, type DaemonPaths } from "./daemon.js";

export const LIST_MEMBERS = 2000;
const LIST = "team@d1.test";
const DOMAIN = "d1.test";

export interface ListsLookups {
  readonly c: number;
  readonly lookups: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly cpuUsPerReq: number;
  readonly wrong: number;
  readonly errors: readonly string[];
}

export interface ListsResult {
  readonly members: number;
  readonly pageSize: number;
  readonly ttlSeconds: number;
  /** The socketmap reply's payload ("OK " and the members). */
  readonly replyBytes: number;
  readonly firstMs: number;
  /** Keycloak requests of the first expansion. */
  readonly first: { readonly groupReads: number; readonly userQueries: number; readonly tokenRequests: number };
  readonly lookups: readonly ListsLookups[];
  /** Keycloak requests (groups + users + tokens) during all the lookups after the first. */
  readonly extraRequests: number;
  readonly seconds: number;
}

/** `run` is the benchmark's load generator (worker thread); `lookups` per C. */
export async function benchLists(o: {
  run: (spec: Omit<RunSpec, "type">) => Promise<RunResult>;
  nodeArgs: readonly string[];
  lookups: number;
  cs: readonly number[];
}): Promise<ListsResult> {
  const t0 = performance.now();
  const dir = tempDir("mailcloak-bench-lists-");
  const paths: DaemonPaths = { dir, db: join(dir, "state.db"), policySocket: join(dir, "policy.sock"), socketmapSocket: join(dir, "socketmap.sock") };
  await ctlOk(paths.db, "init");
  await ctlOk(paths.db, "domains", "add", DOMAIN);
  const fake = await FakeKeycloak.start({ realm: "test", clientId: "mailcloak", clientSecret: "s3cret" });
  fake.addGroup("/lists/team", { mail: [LIST], mailPosting: ["anyone"] });
  for (let i = 0; i < LIST_MEMBERS; i++) {
    const name = `m${String(i).padStart(4, "0")}`;
    fake.addUser({ username: name, email: `${name}@${DOMAIN}`, enabled: true });
    fake.addMember(name, "/lists/team");
  }
  // The bench's daemon config with the shipped cache settings (TTL, negative
  // TTL, stale window) instead of its hour-long TTL, plus lists.
  const cfg = benchConfig(paths, fake.url, { maxEntries: 50_000, socketGroup: null, quotas: false });
  delete (cfg.idp as { keycloak: Record<string, unknown> }).keycloak.cache_ttl_seconds;
  delete cfg.cache;
  cfg.lists = { parent_group: "/lists" };
  const daemon = new BenchDaemon(paths, cfg);
  let client: Client | null = null;
  try {
    await daemon.start({ nodeArgs: o.nodeArgs });
    client = await Client.connect(paths.socketmapSocket);
    fake.resetCounters();
    const started = performance.now();
    const reply = await socketmapQuery(client, "alias", LIST);
    const firstMs = performance.now() - started;
    const first = { groupReads: fake.groupQueries, userQueries: fake.userQueries, tokenRequests: fake.tokenRequests };
    const members = reply.startsWith("OK ") ? reply.slice(3).split(",") : [];
    if (members.length !== LIST_MEMBERS || new Set(members).size !== LIST_MEMBERS || members[0] !== `m0000@${DOMAIN}`) {
      throw new Error(`the list's first expansion is wrong: ${members.length} members, reply ${JSON.stringify(reply.slice(0, 120))}`);
    }
    fake.resetCounters();
    const lookups: ListsLookups[] = [];
    for (const c of o.cs) {
      const cpu0 = cpuNs(daemon.pid);
      // The whole reply is the expected answer: every lookup must return all 2,000 members.
      const r = await o.run({ socket: paths.socketmapSocket, protocol: "socketmap", connections: c, warmupMs: 0, measureMs: 60_000, limit: o.lookups, requests: { kind: "cycle", items: [`alias ${LIST}`] }, expect: reply });
      lookups.push({
        c, lookups: r.completed, rps: round(r.rps, 0), p50Ms: round(r.p50, 3), p99Ms: round(r.p99, 3),
        cpuUsPerReq: round((cpuNs(daemon.pid) - cpu0) / 1000 / Math.max(1, r.completed), 1), wrong: r.wrong, errors: r.errors,
      });
    }
    await sleep(100);
    const extraRequests = fake.groupQueries + fake.userQueries + fake.tokenRequests;
    return {
      members: LIST_MEMBERS, pageSize: LISTS_OFF.pageSize, ttlSeconds: DEFAULTS.cacheTtlSeconds, replyBytes: Buffer.byteLength(reply),
      firstMs: round(firstMs, 1), first, lookups, extraRequests, seconds: round((performance.now() - t0) / 1000, 1),
    };
  } finally {
    client?.destroy();
    await daemon.stop().catch(() => undefined);
    await fake.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatLists(r: ListsResult): string[] {
  const f = r.first;
  const out = [
    `lists: one list of ${r.members} members in the Keycloak emulator; daemon with lists.parent_group /lists, page_size ${r.pageSize}, cache TTL ${r.ttlSeconds} s (shipped defaults)`,
    `  first expansion (socketmap alias, cold): ${r.firstMs.toFixed(1)} ms; Keycloak requests: ${f.groupReads} group reads (paged) + ${f.userQueries} users quer${f.userQueries === 1 ? "y" : "ies"} + ${f.tokenRequests} token = ${f.groupReads + f.userQueries + f.tokenRequests}; reply ${r.replyBytes} bytes`,
  ];
  for (const l of r.lookups) {
    out.push(`  ${l.lookups} more lookups within the TTL, C=${l.c}: ${l.rps} req/s, p50 ${l.p50Ms.toFixed(3)} ms, p99 ${l.p99Ms.toFixed(3)} ms, daemon CPU ${l.cpuUsPerReq} µs/req; unexpected replies ${l.wrong}${l.errors.length > 0 ? `; errors ${JSON.stringify(l.errors)}` : ""}`);
  }
  out.push(`  Keycloak requests during those ${r.lookups.reduce((n, l) => n + l.lookups, 0)} lookups: ${r.extraRequests}`);
  return out;
}

/** Issue 14's targets: paged reads, and one expansion per TTL, not one per recipient. */
export function listsTargets(r: ListsResult): Target[] {
  const f = r.first;
  // The parent by path, its children, then the members in pages: at least one read per page.
  const minReads = 2 + Math.ceil(r.members / r.pageSize);
  const n = r.lookups.reduce((k, l) => k + l.lookups, 0);
  const wrong = r.lookups.reduce((k, l) => k + l.wrong + l.errors.length, 0);
  return [
    { name: `lists: first expansion of ${r.members} members`, value: `${r.firstMs.toFixed(1)} ms`, target: "< 1000 ms", pass: r.firstMs < 1000 },
    {
      name: "lists: Keycloak requests of the first expansion",
      value: `${f.groupReads} group reads, ${f.userQueries} users quer${f.userQueries === 1 ? "y" : "ies"}, ${f.tokenRequests} token`,
      target: `paged: ${minReads}-20 group reads, <= 1 users query (the list address), no per-member reads`,
      pass: f.groupReads >= minReads && f.groupReads <= 20 && f.userQueries <= 1,
    },
    {
      name: `lists: Keycloak requests of ${n} more lookups within the TTL`,
      value: `${r.extraRequests}${wrong > 0 ? ` (${wrong} unexpected replies or errors)` : ""}`,
      target: "exactly 0 (one expansion per TTL, not one per recipient), every reply the whole list",
      pass: r.extraRequests === 0 && wrong === 0,
    },
  ];
}
