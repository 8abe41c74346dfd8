// Reads a V8 .cpuprofile (node --cpu-prof) and summarises where the daemon's
// CPU time went: self time per function (ours mapped back to src/*.ts through
// the compiled files' source maps), inclusive time for our functions, and
// totals per category (ours, each dependency, Node internals, GC, idle).

import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { relative } from "node:path";
import { ROOT } from "../test/helpers/daemon.js";

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
  readonly columnNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

export interface FunctionCost {
  readonly name: string;
  /** src/x.ts:LINE for our code, package or node:module otherwise. */
  readonly where: string;
  readonly category: string;
  readonly selfPct: number;
  readonly selfPctBusy: number;
}

export interface ProfileSummary {
  readonly seconds: number;
  readonly samples: number;
  readonly busyPct: number;
  readonly categories: readonly { readonly category: string; readonly pctBusy: number }[];
  readonly top: readonly FunctionCost[];
  readonly ours: readonly FunctionCost[];
  readonly oursInclusive: readonly { readonly name: string; readonly where: string; readonly pctBusy: number }[];
}

// ---- source maps (just enough: line/column of a generated position) ----

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

interface Segment {
  readonly col: number;
  readonly src: number;
  readonly line: number;
}

class SourceMap {
  readonly sources: string[];
  readonly lines: Segment[][] = [];

  constructor(text: string, mapDir: string) {
    const m = JSON.parse(text) as { sources: string[]; sourceRoot?: string; mappings: string };
    this.sources = m.sources.map((s) => relative(ROOT, new URL(s, `file://${mapDir}/`).pathname));
    let src = 0;
    let line = 0;
    for (const genLine of m.mappings.split(";")) {
      const segs: Segment[] = [];
      let col = 0;
      for (const seg of genLine.split(",")) {
        if (seg === "") continue;
        const v = decodeVlq(seg);
        col += v[0]!;
        if (v.length >= 4) {
          src += v[1]!;
          line += v[2]!;
          segs.push({ col, src, line });
        }
      }
      this.lines.push(segs);
    }
  }

  /** Original "file:line" (1-based) of a 0-based generated position. */
  lookup(line: number, col: number): string | null {
    const segs = this.lines[line];
    if (!segs || segs.length === 0) return null;
    let best = segs[0]!;
    for (const s of segs) {
      if (s.col <= col) best = s;
      else break;
    }
    return `${this.sources[best.src]}:${best.line + 1}`;
  }
}

function decodeVlq(seg: string): number[] {
  const out: number[] = [];
  let value = 0;
  let shift = 0;
  for (const ch of seg) {
    const d = B64.indexOf(ch);
    value += (d & 31) << shift;
    if (d & 32) shift += 5;
    else {
      out.push(value & 1 ? -(value >>> 1) : value >>> 1);
      value = 0;
      shift = 0;
    }
  }
  return out;
}

const maps = new Map<string, SourceMap | null>();

function mapFor(url: string): SourceMap | null {
  if (maps.has(url)) return maps.get(url)!;
  let sm: SourceMap | null = null;
  try {
    const file = fileURLToPath(url);
    if (existsSync(`${file}.map`)) sm = new SourceMap(readFileSync(`${file}.map`, "utf8"), file.slice(0, file.lastIndexOf("/")));
  } catch {
    sm = null;
  }
  maps.set(url, sm);
  return sm;
}

/** "src/x.ts:LINE" for a 0-based position in a compiled file (file:// URL), when it has a source map. */
export function mapToSource(url: string, line: number, col: number): string | null {
  return mapFor(url)?.lookup(line, col) ?? null;
}

// ---- classification -----------------------------------------------------

function classify(cf: CallFrame): { category: string; where: string; ours: boolean } {
  const { url, functionName } = cf;
  if (functionName === "(idle)") return { category: "(idle)", where: "", ours: false };
  if (functionName === "(garbage collector)") return { category: "GC", where: "", ours: false };
  if (functionName === "(program)") return { category: "(program: V8/native, unattributed)", where: "", ours: false };
  if (url.includes("/dist/src/")) {
    const mapped = mapFor(url)?.lookup(cf.lineNumber, cf.columnNumber);
    const where = mapped ?? `${url.slice(url.indexOf("/dist/src/") + 1)}:${cf.lineNumber + 1}`;
    return { category: "mailcloak (src/)", where, ours: true };
  }
  const nm = url.lastIndexOf("/node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "/node_modules/".length).split("/");
    const pkg = rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
    return { category: `dependency ${pkg}`, where: pkg, ours: false };
  }
  if (url.startsWith("node:")) {
    return { category: "Node.js internals", where: url.slice(5), ours: false };
  }
  if (url === "") return { category: "V8 builtins / native", where: "", ours: false };
  return { category: "other JS", where: url, ours: false };
}

/**
 * Summarise a profile; with `window` (seconds from the profile's start) only
 * the samples taken inside it count (e.g. the load, not start-up or exit).
 */
export function analyzeProfile(path: string, topN = 15, window?: { readonly fromS: number; readonly toS: number }): ProfileSummary {
  const raw = JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
  let samples = raw.samples;
  let seconds = (raw.endTime - raw.startTime) / 1e6;
  if (window) {
    const kept: number[] = [];
    let t = 0;
    for (let i = 0; i < raw.samples.length; i++) {
      t += raw.timeDeltas[i]! / 1e6;
      if (t >= window.fromS && t <= window.toS) kept.push(raw.samples[i]!);
    }
    samples = kept;
    seconds = window.toS - window.fromS;
  }
  const p = { ...raw, samples };
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  // Self samples per node.
  const self = new Map<number, number>();
  for (const s of p.samples) self.set(s, (self.get(s) ?? 0) + 1);
  const total = p.samples.length;
  let idle = 0;
  for (const [id, n] of self) if (byId.get(id)!.callFrame.functionName === "(idle)") idle += n;
  const busy = Math.max(1, total - idle);

  const keyOf = (cf: CallFrame): string => `${cf.functionName}|${cf.url}|${cf.lineNumber}|${cf.columnNumber}`;
  const fnSelf = new Map<string, { cf: CallFrame; n: number }>();
  const cats = new Map<string, number>();
  for (const [id, n] of self) {
    const cf = byId.get(id)!.callFrame;
    const k = keyOf(cf);
    const e = fnSelf.get(k) ?? { cf, n: 0 };
    e.n += n;
    fnSelf.set(k, e);
    const c = classify(cf).category;
    cats.set(c, (cats.get(c) ?? 0) + n);
  }

  // Inclusive samples for our functions: a sample counts once per distinct
  // function on its stack.
  const incl = new Map<string, { cf: CallFrame; n: number }>();
  for (const [id, n] of self) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur)!.callFrame;
      if (!cf.url.includes("/dist/src/")) continue;
      const k = keyOf(cf);
      if (seen.has(k)) continue;
      seen.add(k);
      const e = incl.get(k) ?? { cf, n: 0 };
      e.n += n;
      incl.set(k, e);
    }
  }

  const pct = (n: number, of: number): number => Math.round((n / of) * 1000) / 10;
  const cost = (e: { cf: CallFrame; n: number }): FunctionCost => {
    const c = classify(e.cf);
    return {
      name: e.cf.functionName || "(anonymous)",
      where: c.where,
      category: c.category,
      selfPct: pct(e.n, total),
      selfPctBusy: pct(e.n, busy),
    };
  };
  const sorted = [...fnSelf.values()].sort((a, b) => b.n - a.n);
  return {
    seconds,
    samples: total,
    busyPct: pct(total - idle, total),
    categories: [...cats.entries()].filter(([c]) => c !== "(idle)").sort((a, b) => b[1] - a[1]).map(([category, n]) => ({ category, pctBusy: pct(n, busy) })),
    top: sorted.filter((e) => e.cf.functionName !== "(idle)").slice(0, topN).map(cost),
    ours: sorted.filter((e) => classify(e.cf).ours).slice(0, topN).map(cost),
    oursInclusive: [...incl.values()].sort((a, b) => b.n - a.n).slice(0, topN).map((e) => ({
      name: e.cf.functionName || "(anonymous)",
      where: classify(e.cf).where,
      pctBusy: pct(e.n, busy),
    })),
  };
}

export function formatProfile(title: string, s: ProfileSummary): string {
  const lines: string[] = [];
  lines.push(`${title}: ${s.seconds.toFixed(1)} s profiled, ${s.samples} samples, daemon busy ${s.busyPct}% of the time`);
  lines.push("  CPU by category (% of busy samples):");
  for (const c of s.categories.slice(0, 12)) lines.push(`    ${c.pctBusy.toFixed(1).padStart(5)}%  ${c.category}`);
  lines.push("  top self time, all code (% of busy samples):");
  for (const f of s.top) lines.push(`    ${f.selfPctBusy.toFixed(1).padStart(5)}%  ${f.name}  ${f.where ? `(${f.where})` : ""}  [${f.category}]`);
  lines.push("  top self time in src/ (% of busy samples):");
  for (const f of s.ours) lines.push(`    ${f.selfPctBusy.toFixed(1).padStart(5)}%  ${f.name}  (${f.where})`);
  lines.push("  inclusive time of src/ functions (% of busy samples):");
  for (const f of s.oursInclusive) lines.push(`    ${f.pctBusy.toFixed(1).padStart(5)}%  ${f.name}  (${f.where})`);
  return lines.join("\n");
}
