// Linux perf as a cross-check of the V8 profile: perf samples only while the
// daemon is on a CPU (cpu-clock), so time the process spends preempted
// (e.g. right after a socket write wakes the load generator) is not charged
// to whatever JS frame was on the stack, as it can be with --cpu-prof on a
// busy machine. The daemon runs with --perf-basic-prof so JIT frames have
// names ("JS:*push file:///.../dist/src/protocol/policy.js:31:9"), which are
// mapped back to src/*.ts.

import { spawn, type ChildProcess } from "node:child_process";
import { mapToSource } from "./profile.js";
import { timed } from "./postfix.js";

export interface PerfSummary {
  readonly samples: number;
  /** Inclusive (self + callees) share of a few telling frames. */
  readonly inclusive: readonly { readonly what: string; readonly pct: number }[];
  readonly byObject: readonly { readonly object: string; readonly pct: number }[];
  readonly top: readonly { readonly symbol: string; readonly object: string; readonly pct: number }[];
  readonly ours: readonly { readonly symbol: string; readonly where: string; readonly pct: number }[];
}

export function startPerf(pid: number, file: string): ChildProcess {
  return spawn("perf", ["record", "-e", "cpu-clock", "-F", "999", "-g", "-p", String(pid), "-o", file], { stdio: "ignore" });
}

export async function stopPerf(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => p.once("exit", () => resolve()));
  p.kill("SIGINT");
  await exited;
}

function objectClass(dso: string): string {
  if (dso.startsWith("[JIT]")) return "JIT-compiled JS";
  if (dso === "[kernel.kallsyms]") return "kernel";
  if (dso === "node") return "node binary (V8 runtime, builtins, Node C++)";
  if (dso.startsWith("libc.so")) return "libc (mostly syscall wrappers)";
  if (dso === "better_sqlite3.node") return "better-sqlite3 + SQLite";
  return dso;
}

export async function analyzePerf(file: string, topN = 20): Promise<PerfSummary> {
  const r = await timed("perf", ["report", "-i", file, "--stdio", "--no-children", "--sort", "dso,sym", "-g", "none", "-t", "|", "--percent-limit", "0.01"], "", 120_000);
  if (r.code !== 0) throw new Error(`perf report: ${r.stderr.slice(0, 400)}`);
  const sm = /Samples: ([\d.]+)([KM]?)/.exec(r.stdout);
  const samples = sm ? Math.round(Number(sm[1]) * (sm[2] === "K" ? 1e3 : sm[2] === "M" ? 1e6 : 1)) : 0;
  const rows: { pct: number; dso: string; sym: string }[] = [];
  for (const line of r.stdout.split("\n")) {
    if (line.startsWith("#") || !line.includes("|")) continue;
    const [pctText, dso, sym] = line.split("|");
    const pct = Number.parseFloat((pctText ?? "").trim());
    if (!Number.isFinite(pct) || dso === undefined || sym === undefined) continue;
    rows.push({ pct, dso: dso.trim(), sym: sym.trim().replace(/^\[[.k]\]\s+/, "") });
  }
  const byObject = new Map<string, number>();
  for (const row of rows) byObject.set(objectClass(row.dso), (byObject.get(objectClass(row.dso)) ?? 0) + row.pct);
  const ours = new Map<string, { symbol: string; where: string; pct: number }>();
  for (const row of rows) {
    const m = /^JS:[*~^]?(.*?) (file:\/\/\S*\/dist\/src\/\S+):(\d+):(\d+)$/.exec(row.sym);
    if (!m) continue;
    const where = mapToSource(m[2]!, Number(m[3]) - 1, Number(m[4]) - 1) ?? `${m[2]}:${m[3]}`;
    const key = `${m[1]}|${where}`;
    const e = ours.get(key) ?? { symbol: m[1] || "(anonymous)", where, pct: 0 };
    e.pct += row.pct; // optimized and baseline code of one function are separate symbols
    ours.set(key, e);
  }
  const r1 = (x: number): number => Math.round(x * 10) / 10;
  // Inclusive view (needs the call graphs recorded with -g).
  const c = await timed("perf", ["report", "-i", file, "--stdio", "--children", "--sort", "sym", "-g", "none", "-t", "|", "--percent-limit", "0.5"], "", 120_000);
  const children = new Map<string, number>();
  for (const line of c.stdout.split("\n")) {
    if (line.startsWith("#") || !line.includes("|")) continue;
    const [inclText, , sym] = line.split("|");
    const pct = Number.parseFloat((inclText ?? "").trim());
    if (Number.isFinite(pct) && sym !== undefined) children.set(sym.trim().replace(/^\[[.k]\]\s+/, ""), pct);
  }
  const pick = (what: string, re: RegExp): { what: string; pct: number } | null => {
    let best = 0;
    for (const [sym, pct] of children) if (re.test(sym)) best = Math.max(best, pct);
    return best > 0 ? { what, pct: r1(best) } : null;
  };
  const inclusive = [
    pick("SQLite statements (better-sqlite3 Statement.get/all)", /^Statement::JS_(get|all)$/),
    pick("  of which SQLite locking: fcntl()", /^__fcntl64_nocancel_adjusted$/),
    pick("  of which SQLite shared-lock/read-transaction start", /^sqlite3PagerSharedLock$/),
    pick("socket writes (reply), incl. the wake-up of the reader", /^node::StreamBase::(Write|WriteBuffer|WriteString<.*>)$/),
    pick("  of which write(2)", /^__GI___libc_write$/),
    pick("scheduler on return from syscalls (preemption, mostly right after write() wakes the reader)", /^exit_to_user_mode_loop$/),
    pick("socket reads (uv__read, includes the JS handlers it calls)", /^uv__read$/),
    pick("garbage collection (scavenges)", /^v8::internal::ScavengerCollector::CollectGarbage$/),
    pick("garbage collection (all Heap::CollectGarbage)", /^v8::internal::Heap::CollectGarbage$/),
  ].filter((x): x is { what: string; pct: number } => x !== null);
  // Optimized and baseline code of one function are separate symbols: keep the larger.
  const oursIncl = new Map<string, number>();
  for (const [sym, pct] of children) {
    const m = /^JS:[*~^]?(.*?) (file:\/\/\S*\/dist\/src\/\S+):(\d+):(\d+)$/.exec(sym);
    if (!m || pct < 2) continue;
    const where = mapToSource(m[2]!, Number(m[3]) - 1, Number(m[4]) - 1) ?? `${m[2]}:${m[3]}`;
    const key = `src: ${m[1] || "(anonymous)"} (${where})`;
    oursIncl.set(key, Math.max(oursIncl.get(key) ?? 0, pct));
  }
  for (const [what, pct] of [...oursIncl.entries()].sort((a, b) => b[1] - a[1])) inclusive.push({ what, pct: r1(pct) });
  return {
    samples,
    inclusive,
    byObject: [...byObject.entries()].sort((a, b) => b[1] - a[1]).map(([object, pct]) => ({ object, pct: r1(pct) })),
    top: rows.slice(0, topN).map((x) => ({ symbol: x.sym.length > 110 ? `${x.sym.slice(0, 107)}...` : x.sym, object: objectClass(x.dso), pct: x.pct })),
    ours: [...ours.values()].sort((a, b) => b.pct - a.pct).slice(0, topN).map((x) => ({ ...x, pct: r1(x.pct) })),
  };
}

export function formatPerf(title: string, s: PerfSummary): string {
  const lines: string[] = [`${title} (perf, on-CPU samples; % of the daemon's CPU time)`];
  lines.push("  by object:");
  for (const o of s.byObject.slice(0, 8)) lines.push(`    ${o.pct.toFixed(1).padStart(5)}%  ${o.object}`);
  lines.push("  top symbols:");
  for (const t of s.top) lines.push(`    ${t.pct.toFixed(2).padStart(5)}%  ${t.symbol}  [${t.object}]`);
  lines.push("  inclusive (the frame and everything it calls):");
  for (const i of s.inclusive) lines.push(`    ${i.pct.toFixed(1).padStart(5)}%  ${i.what}`);
  lines.push("  src/ functions, self time (JIT code, all tiers summed):");
  for (const o of s.ours) lines.push(`    ${o.pct.toFixed(2).padStart(5)}%  ${o.symbol}  (${o.where})`);
  return lines.join("\n");
}
