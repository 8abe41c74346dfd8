// SQLite vs PostgreSQL on the hot paths (issue 16): two daemons with the
// same config and the same rows (a domain, an app, 10,000 aliases; copied
// from the SQLite file into PostgreSQL with migrate-store's copy), one on
// sqlite.path, one on store: backend postgres (a private PostgreSQL 15 from
// test/helpers/postgres.ts). Each workload runs on both, A B B A, at C=1 and
// C=50; the target is PostgreSQL's req/s >= 0.8 of SQLite's.
//
// Both answer from memory: SQLite from its memo (checked against
// data_version once per batch), PostgreSQL from its mirror (no query per
// request at all), so neither workload touches the database after warm-up.

import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FakeKeycloak } from "../test/fake-keycloak.js";
import { tempDir } from "../test/helpers/daemon.js";
import { PostgresServer, postgresUnavailable } from "../test/helpers/postgres.js";
import { initStore } from "../src/store/open.js";
import { copySqliteToPostgres } from "../src/store/migrate-store.js";
import { STORE_DEFAULTS, type PostgresSettings } from "../src/config/store.js";
import { cpuNs, instanceId, policyRequest, round, type RequestSource, type RunResult, type RunSpec, type Target, type WireProtocol } from "./common.js";
import { BenchDaemon, benchConfig, type DaemonPaths } from "./daemon.js";

const DOMAIN = "d1.test";
const USERS = 256;
const ALIASES = 10_000;
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const user = (i: number): string => `kuser${i % USERS}`;

interface Workload {
  readonly id: string;
  readonly label: string;
  readonly protocol: WireProtocol;
  readonly requests: RequestSource;
  readonly expect: string;
}

const WORKLOADS: readonly Workload[] = [
  {
    id: "a", label: "(a) RCPT, known recipient", protocol: "policy", expect: "DUNNO",
    requests: { kind: "cycle", items: range(1024).map((i) => policyRequest({ sender: `s${i % 50}@example.net`, recipient: `${user(i)}@${DOMAIN}`, instance: instanceId(i), policyContext: "recipient" })) },
  },
  {
    id: "c-app", label: "(c) sender check, app login", protocol: "policy", expect: "DUNNO",
    requests: { kind: "cycle", items: range(1024).map((i) => policyRequest({ sender: `sales@${DOMAIN}`, recipient: `r${i}@example.org`, instance: instanceId(i), policyContext: "sender", saslUsername: "crm", saslMethod: "PLAIN" })) },
  },
  {
    id: "d", label: "(d) socketmap alias", protocol: "socketmap", expect: "OK kuser",
    requests: { kind: "cycle", items: range(ALIASES).map((i) => `alias alias${i}@${DOMAIN}`) },
  },
];

export interface StoreCell {
  readonly workload: string;
  readonly label: string;
  readonly c: number;
  readonly sqliteRps: number;
  readonly postgresRps: number;
  readonly ratio: number;
  readonly sqliteCpuUs: number;
  readonly postgresCpuUs: number;
  readonly wrong: number;
}

export interface PostgresBenchResult {
  readonly cells: readonly StoreCell[];
  readonly seconds: number;
}

/** Why the comparison cannot run here, or null. */
export function postgresBenchMissing(): string | null {
  return postgresUnavailable();
}

/** `run` is the benchmark's load generator (worker thread). */
export async function benchPostgres(o: {
  run: (spec: Omit<RunSpec, "type">) => Promise<RunResult>;
  nodeArgs: readonly string[];
  cs: readonly number[];
  measureMs: number;
  reps: number;
}): Promise<PostgresBenchResult> {
  const t0 = performance.now();
  const dir = tempDir("mailcloak-bench-pg-");
  const pg = await PostgresServer.start();
  const fake = await FakeKeycloak.start({ realm: "test", clientId: "mailcloak", clientSecret: "s3cret" });
  const daemons: BenchDaemon[] = [];
  try {
    for (let i = 0; i < USERS; i++) fake.addUser({ username: user(i), email: `${user(i)}@${DOMAIN}`, enabled: true, attributes: { mailSendAllowed: ["true"] } });
    const db = join(dir, "state.db");
    const { store } = await initStore(db, { busyTimeoutMs: 5000 });
    await store.addDomain(DOMAIN);
    await store.upsertApp("crm", "{ARGON2ID}$not-used-by-the-bench");
    await store.allowAppSender("crm", `sales@${DOMAIN}`);
    await store.addAlias(`sales@${DOMAIN}`, user(0));
    for (let i = 0; i < ALIASES; i++) await store.addAlias(`alias${i}@${DOMAIN}`, user(i));
    await store.close();
    const settings: PostgresSettings = {
      url: pg.url(), password: pg.password, poolSize: 2, queryTimeoutMs: 5000, connectTimeoutMs: 3000,
      checkIntervalMs: STORE_DEFAULTS.checkIntervalMs, maxStaleMs: STORE_DEFAULTS.maxStaleMs,
    };
    await copySqliteToPostgres(db, settings);
    const pwFile = join(dir, "pg-password");
    writeFileSync(pwFile, `${pg.password}\n`, { mode: 0o600 });

    const make = (name: string, store: Record<string, unknown> | null): BenchDaemon => {
      const sub = join(dir, name);
      const paths: DaemonPaths = { dir: sub, db, policySocket: join(sub, "policy.sock"), socketmapSocket: join(sub, "socketmap.sock") };
      mkdirSync(sub, { recursive: true, mode: 0o755 });
      const cfg = benchConfig(paths, fake.url, { maxEntries: 50_000, socketGroup: null, quotas: false });
      if (store) cfg.store = store;
      return new BenchDaemon(paths, cfg);
    };
    const sqliteD = make("sqlite", null);
    const pgD = make("postgres", { backend: "postgres", url: settings.url, password_file: pwFile });
    daemons.push(sqliteD, pgD);
    for (const d of daemons) await d.start({ nodeArgs: o.nodeArgs });

    const cell = async (d: BenchDaemon, w: Workload, c: number, measureMs: number): Promise<{ rps: number; cpuUs: number; wrong: number }> => {
      const cpu0 = cpuNs(d.pid);
      const r = await o.run({
        socket: w.protocol === "policy" ? d.paths.policySocket : d.paths.socketmapSocket, protocol: w.protocol,
        connections: c, warmupMs: 250, measureMs, requests: w.requests, expect: w.expect,
      });
      return { rps: r.rps, cpuUs: (cpuNs(d.pid) - cpu0) / 1000 / Math.max(1, r.completed), wrong: r.wrong + r.errors.length };
    };
    // Warm both caches (Keycloak users, memo, mirror) before anything is measured.
    for (const w of WORKLOADS) for (const d of daemons) await cell(d, w, 10, 500);
    const cells: StoreCell[] = [];
    for (const w of WORKLOADS) {
      for (const c of o.cs) {
        const sq: { rps: number; cpuUs: number; wrong: number }[] = [];
        const pq: { rps: number; cpuUs: number; wrong: number }[] = [];
        for (let rep = 0; rep < o.reps; rep++) {
          // A B B A: a drift of the machine's load hits both alike.
          sq.push(await cell(sqliteD, w, c, o.measureMs));
          pq.push(await cell(pgD, w, c, o.measureMs));
          pq.push(await cell(pgD, w, c, o.measureMs));
          sq.push(await cell(sqliteD, w, c, o.measureMs));
        }
        const med = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
        const sRps = med(sq.map((x) => x.rps));
        const pRps = med(pq.map((x) => x.rps));
        cells.push({
          workload: w.id, label: w.label, c, sqliteRps: round(sRps, 0), postgresRps: round(pRps, 0), ratio: round(pRps / sRps, 2),
          sqliteCpuUs: round(med(sq.map((x) => x.cpuUs)), 1), postgresCpuUs: round(med(pq.map((x) => x.cpuUs)), 1),
          wrong: [...sq, ...pq].reduce((n, x) => n + x.wrong, 0),
        });
      }
    }
    return { cells, seconds: round((performance.now() - t0) / 1000, 1) };
  } finally {
    for (const d of daemons) await d.stop().catch(() => undefined);
    await fake.stop().catch(() => undefined);
    await pg.dispose().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatPostgres(r: PostgresBenchResult): string[] {
  const out = [`store backends: the same rows and config, SQLite (sqlite.path) vs PostgreSQL 15 (store: backend postgres, in-memory mirror), median req/s of A B B A runs`];
  out.push("  workload                          C   SQLite req/s  PostgreSQL req/s  ratio  CPU µs/req SQLite/PostgreSQL  wrong");
  for (const c of r.cells) {
    out.push(`  ${c.label.padEnd(32)} ${String(c.c).padStart(3)}  ${String(c.sqliteRps).padStart(12)}  ${String(c.postgresRps).padStart(16)}  ${c.ratio.toFixed(2).padStart(5)}  ${`${c.sqliteCpuUs} / ${c.postgresCpuUs}`.padStart(24)}  ${c.wrong}`);
  }
  return out;
}

/** Issue 16's target: PostgreSQL at least 0.8 of SQLite on every hot path. */
export function postgresTargets(r: PostgresBenchResult): Target[] {
  return r.cells.map((c) => ({
    name: `store: ${c.label} on PostgreSQL vs SQLite, C=${c.c}`,
    value: `${c.ratio.toFixed(2)} (${c.postgresRps} vs ${c.sqliteRps} req/s${c.wrong > 0 ? `, ${c.wrong} unexpected replies` : ""})`,
    target: ">= 0.80, every reply as expected",
    pass: c.ratio >= 0.8 && c.wrong === 0,
  }));
}
