// End-to-end figures with the real Postfix programs:
//  (i)  postmap -q - over a key list: mailcloak's socketmap against Postfix's
//       own sqlite: table over the same database file;
//  (ii) smtp-source into a private Postfix smtpd (own config and queue
//       directory, loopback port, discard transport) with and without
//       mailcloak's policy service.
// Nothing of the system's Postfix (/etc/postfix/main.cf, /var/spool/postfix,
// port 25) is used; the private instance is stopped at the end.

import { spawn } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort, have } from "../test/helpers/daemon.js";
import { canConnect, gid, MASTER_BASE, pidAlive, privateMainCf, uid } from "../test/helpers/mailstack.js";
import { median, round } from "./common.js";

export interface Timed {
  readonly code: number | null;
  readonly ms: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run a program with stdin text and a deadline; time it from spawn to exit. */
export function timed(cmd: string, args: readonly string[], input = "", timeoutMs = 60_000): Promise<Timed> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const t = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (e) => err.push(Buffer.from(String(e))));
    child.on("close", (code) => {
      clearTimeout(t);
      resolve({ code, ms: performance.now() - started, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(input);
  });
}

/** Why the end-to-end part cannot run here, or null. */
export function postfixMissing(): string | null {
  const missing = ["postmap", "postfix", "smtp-source"].filter((t) => !have(t));
  if (missing.length > 0) return `not installed: ${missing.join(", ")} (Debian packages postfix, postfix-sqlite)`;
  if (!existsSync("/usr/lib/postfix/postfix-sqlite.so") && !/sqlite/.test(safeRead("/etc/postfix/dynamicmaps.cf") + dynamicmapsD())) {
    return "Postfix's sqlite table support is not installed (Debian package postfix-sqlite)";
  }
  return null;
}

function safeRead(p: string): string {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return "";
  }
}

function dynamicmapsD(): string {
  try {
    return readdirSync("/etc/postfix/dynamicmaps.cf.d").join(" ");
  } catch {
    return "";
  }
}

// ---- (i) postmap ---------------------------------------------------------

export interface PostmapResult {
  readonly keys: number;
  readonly reps: number;
  readonly socketmapMs: number;
  readonly sqliteMs: number;
  /** The same key list against the bare responder (Node, fixed reply, no lookup). */
  readonly bareMs: number | null;
  /** Against bench/floor.c (C, fixed reply, no lookup): the Unix-socket round trip alone; null without a C compiler. */
  readonly floorMs: number | null;
  /** socketmap time / sqlite time. */
  readonly ratio: number;
  readonly socketmapFound: number;
  readonly sqliteFound: number;
  readonly identicalOutput: boolean;
  readonly runsMs: Readonly<Record<string, readonly number[]>>;
}

export async function comparePostmap(o: { dir: string; db: string; socketmapSocket: string; bareSocket: string | null; keys: readonly string[]; reps: number }): Promise<PostmapResult> {
  const conf = join(o.dir, "postmap-conf");
  mkdirSync(conf, { recursive: true });
  // A private config directory: postmap needs a main.cf, not the system's.
  writeFileSync(join(conf, "main.cf"), "compatibility_level = 3.6\nmyhostname = bench.invalid\nmydomain = invalid\n");
  const cf = join(conf, "aliases-sqlite.cf");
  writeFileSync(cf, [
    `dbpath = ${o.db}`,
    "query = SELECT target_user || '@' || alias_domain_name FROM aliases WHERE alias_email='%s' AND enabled=1",
    "",
  ].join("\n"));
  const input = o.keys.join("\n") + "\n";
  const floor = await startFloor(o.dir);
  const tables: Record<string, string> = {
    socketmap: `socketmap:unix:${o.socketmapSocket}:alias`,
    sqlite: `sqlite:${cf}`,
    ...(o.bareSocket ? { bare: `socketmap:unix:${o.bareSocket}:alias` } : {}),
    ...(floor ? { floor: `socketmap:unix:${floor.socket}:alias` } : {}),
  };
  try {
    return await timeTables(o, conf, tables, input);
  } finally {
    floor?.child.kill("SIGTERM");
  }
}

/** bench/floor.c, compiled into the run's directory; null when there is no C compiler. */
async function startFloor(dir: string): Promise<{ child: ReturnType<typeof spawn>; socket: string } | null> {
  if (!have("cc")) return null;
  const bin = join(dir, "floor");
  const src = new URL("../../bench/floor.c", import.meta.url).pathname;
  const built = await timed("cc", ["-O2", "-o", bin, src]);
  if (built.code !== 0) throw new Error(`cc bench/floor.c: ${built.stderr.slice(0, 300)}`);
  const socket = join(dir, "floor.sock");
  const child = spawn(bin, [socket], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.once("error", reject);
    child.stdout!.once("data", () => resolve());
  });
  return { child, socket };
}

async function timeTables(o: { keys: readonly string[]; reps: number }, conf: string, tables: Record<string, string>, input: string): Promise<PostmapResult> {
  const names = Object.keys(tables);
  const runs: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, [] as number[]]));
  const outputs: Record<string, string> = {};
  // One untimed run of each first: the first postmap of a run was seen to
  // take ~2 s longer (whatever the table), which is not what is measured here.
  const warm = o.keys.slice(0, 100).join("\n") + "\n";
  for (const which of names) await timed("postmap", ["-c", conf, "-q", "-", tables[which]!], warm);
  for (let r = 0; r < o.reps; r++) {
    // Rotate which goes first, so none always runs on a warmer cache.
    const order = names.map((_, i) => names[(i + r) % names.length]!);
    for (const which of order) {
      const t = await timed("postmap", ["-c", conf, "-q", "-", tables[which]!], input);
      if (t.code !== 0) throw new Error(`postmap -q - ${tables[which]} exited ${t.code}: ${t.stderr.slice(0, 500)}`);
      runs[which]!.push(t.ms);
      outputs[which] = t.stdout;
    }
  }
  const count = (s: string | undefined): number => (s ?? "").split("\n").filter((l) => l !== "").length;
  const socketmapMs = median(runs.socketmap!);
  const sqliteMs = median(runs.sqlite!);
  return {
    keys: o.keys.length,
    reps: o.reps,
    socketmapMs: round(socketmapMs, 1),
    sqliteMs: round(sqliteMs, 1),
    bareMs: runs.bare ? round(median(runs.bare), 1) : null,
    floorMs: runs.floor ? round(median(runs.floor), 1) : null,
    ratio: round(socketmapMs / sqliteMs, 2),
    socketmapFound: count(outputs.socketmap),
    sqliteFound: count(outputs.sqlite),
    identicalOutput: outputs.socketmap === outputs.sqlite,
    runsMs: Object.fromEntries(names.map((n) => [n, runs[n]!.map((x) => round(x, 1))])),
  };
}

// ---- (ii) smtp-source through a private Postfix ----------------------------

export type SmtpVariant = "permit" | "policy" | "policy2";

export const SMTP_VARIANTS: Readonly<Record<SmtpVariant, string>> = {
  permit: "smtpd_recipient_restrictions = permit (no policy service)",
  policy: "smtpd_recipient_restrictions = check_policy_service unix:<mailcloak> (one request per RCPT)",
  policy2: "configs/postfix-main.cf layout: policy in sender and recipient restrictions, policy_context=sender/recipient (two requests per RCPT)",
};

export interface SmtpRun {
  readonly variant: SmtpVariant;
  readonly seconds: number;
  readonly messagesPerSecond: number;
  readonly rejects: number;
  /** CPU the mailcloak daemon used during the run, in ms (all threads). */
  readonly daemonCpuMs: number;
}

export interface SmtpResult {
  readonly sessions: number;
  readonly messages: number;
  readonly runs: readonly SmtpRun[];
  /** Median messages/s per variant run. */
  readonly rate: Readonly<Partial<Record<SmtpVariant, number>>>;
  /** (permit - policy) / permit, in %. */
  readonly costPct: number;
  /** Same for policy2, when run. */
  readonly cost2Pct: number | null;
  readonly delivered: number;
}

/** The test stack's standard services (chroot n) plus a loopback smtpd. */
const MASTER_CF = (port: number): string => `127.0.0.1:${port} inet n - n - - smtpd\n${MASTER_BASE}`;

function restrictions(variant: SmtpVariant, policySocket: string): string {
  switch (variant) {
    case "permit":
      return "smtpd_sender_restrictions =\nsmtpd_recipient_restrictions = permit\n";
    case "policy":
      return `smtpd_sender_restrictions =\nsmtpd_recipient_restrictions = check_policy_service unix:${policySocket}\n`;
    case "policy2":
      return `smtpd_sender_restrictions = check_policy_service { unix:${policySocket}, policy_context=sender }\n` +
        `smtpd_recipient_restrictions = check_policy_service { unix:${policySocket}, policy_context=recipient }\n`;
  }
}

function mainCf(dir: string, variant: SmtpVariant, policySocket: string): string {
  return [
    ...privateMainCf({
      queueDir: join(dir, "spool"), dataDir: join(dir, "data"), domain: "bench.test",
      mynetworks: "127.0.0.0/8", logFile: join(dir, "postfix.log"), dir,
    }),
    "smtpd_peername_lookup = no",
    "smtp_dns_support_level = disabled",
    "biff = no",
    "default_process_limit = 100",
    // Accept as fast as smtpd can: no arrival-rate throttling.
    "in_flow_delay = 0",
    // Mail for the test domain is relayed... into the discard transport.
    "relay_domains = d1.test",
    "relay_transport = discard:",
    "default_transport = discard:",
    "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
    restrictions(variant, policySocket),
  ].join("\n");
}

function queuedFiles(spool: string): number {
  let n = 0;
  for (const q of ["incoming", "active", "deferred", "maildrop", "hold"]) {
    const walk = (d: string): void => {
      if (!existsSync(d)) return;
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(d, e.name));
        else n++;
      }
    };
    walk(join(spool, q));
  }
  return n;
}

function countMatches(text: string, re: RegExp): number {
  return (text.match(re) ?? []).length;
}

export async function compareSmtp(o: {
  dir: string;
  policySocket: string;
  sessions: number;
  messages: number;
  rounds: number;
  variants: readonly SmtpVariant[];
  recipient: string;
  /** CPU time of the daemon so far, ns. */
  daemonCpuNs: () => number;
  log: (line: string) => void;
}): Promise<SmtpResult> {
  const dir = join(o.dir, "postfix");
  const conf = join(dir, "conf");
  const spool = join(dir, "spool");
  const data = join(dir, "data");
  for (const d of [conf, spool, data]) mkdirSync(d, { recursive: true });
  chmodSync(dir, 0o755);
  chownSync(data, uid("postfix"), gid("postfix"));
  const logFile = join(dir, "postfix.log");
  let port = await freePort();
  const writeConfig = (variant: SmtpVariant): void => {
    writeFileSync(join(conf, "main.cf"), mainCf(dir, variant, o.policySocket));
    writeFileSync(join(conf, "master.cf"), MASTER_CF(port));
  };
  writeConfig("permit");
  const check = await timed("postfix", ["-c", conf, "check"]);
  if (check.code !== 0) throw new Error(`postfix check: ${check.stderr}${check.stdout}`);
  let started = false;
  for (let attempt = 1; attempt <= 3 && !started; attempt++) {
    const r = await timed("postfix", ["-c", conf, "start"]);
    if (r.code === 0) started = true;
    else if (attempt < 3) {
      port = await freePort();
      writeConfig("permit");
    } else throw new Error(`postfix start: ${r.stderr}${r.stdout}\n${safeRead(logFile).slice(-2000)}`);
  }
  const masterPid = Number(safeRead(join(spool, "pid/master.pid")).trim());
  try {
    const deadline = Date.now() + 10_000;
    while (!(await canConnect(port))) {
      if (Date.now() > deadline) throw new Error(`private Postfix does not accept on 127.0.0.1:${port}\n${safeRead(logFile).slice(-2000)}`);
      await sleep(50);
    }
    const runs: SmtpRun[] = [];
    const order = o.variants;
    let current: SmtpVariant = "permit";
    for (let pass = 0; pass < o.rounds; pass++) {
      // A B, then B A, ...: a drift in machine load hits both variants alike.
      for (const variant of pass % 2 === 0 ? order : [...order].reverse()) {
        if (variant !== current) {
          writeConfig(variant);
          const r = await timed("postfix", ["-c", conf, "reload"]);
          if (r.code !== 0) throw new Error(`postfix reload: ${r.stderr}`);
          current = variant;
          await sleep(700); // let the master replace its smtpd processes
        }
        const before = safeRead(logFile);
        const cpu0 = o.daemonCpuNs();
        const t = await timed("smtp-source", [
          "-s", String(o.sessions), "-m", String(o.messages),
          "-f", "sender@example.net", "-t", o.recipient, "-M", "client.example.net",
          `127.0.0.1:${port}`,
        ], "", 180_000);
        if (t.code !== 0) throw new Error(`smtp-source (${variant}) exited ${t.code}: ${t.stderr.slice(0, 800)}`);
        const daemonCpuMs = round((o.daemonCpuNs() - cpu0) / 1e6, 0);
        const logged = safeRead(logFile).slice(before.length);
        const rejects = countMatches(logged, /NOQUEUE: reject/g);
        const seconds = t.ms / 1000;
        runs.push({ variant, seconds: round(seconds, 2), messagesPerSecond: round(o.messages / seconds, 1), rejects, daemonCpuMs });
        o.log(`        smtp-source ${variant.padEnd(7)} ${o.messages} msgs in ${seconds.toFixed(2)} s = ${(o.messages / seconds).toFixed(0)} msg/s, rejects ${rejects}, mailcloak CPU ${daemonCpuMs} ms`);
        // Let the queue drain into the discard transport before the next run.
        const drain = Date.now() + 30_000;
        while (queuedFiles(spool) > 0 && Date.now() < drain) await sleep(100);
      }
    }
    const rate = (v: SmtpVariant): number => round(median(runs.filter((r) => r.variant === v).map((r) => r.messagesPerSecond)), 1);
    const rates: Partial<Record<SmtpVariant, number>> = {};
    for (const v of order) rates[v] = rate(v);
    const cost = (v: SmtpVariant): number | null => {
      const base = rates.permit;
      const x = rates[v];
      return base === undefined || x === undefined ? null : round(((base - x) / base) * 100, 1);
    };
    const delivered = countMatches(safeRead(logFile), /status=sent/g);
    return {
      sessions: o.sessions,
      messages: o.messages,
      runs,
      rate: rates,
      costPct: cost("policy") ?? NaN,
      cost2Pct: cost("policy2"),
      delivered,
    };
  } finally {
    await timed("postfix", ["-c", conf, "stop"], "", 20_000);
    const deadline = Date.now() + 10_000;
    while (masterPid > 0 && pidAlive(masterPid) && Date.now() < deadline) await sleep(50);
    if (masterPid > 0 && pidAlive(masterPid)) process.kill(masterPid, "SIGKILL");
  }
}
