// Shared by the benchmark's processes and threads: the load generator's
// message types, Postfix-shaped request builders and small statistics helpers.

import { readdirSync, readFileSync } from "node:fs";

export type WireProtocol = "policy" | "socketmap";

/** Where a run's requests come from; the load generator encodes them once. */
export type RequestSource =
  /** A fixed list, cycled; each connection starts at its own offset. */
  | { readonly kind: "cycle"; readonly items: readonly string[] }
  /**
   * Every request distinct: `template` with every "{n}" replaced by a counter
   * that starts at `start` (one number per request sent).
   */
  | { readonly kind: "distinct"; readonly template: string; readonly start: number };

export interface RunSpec {
  readonly type: "run";
  readonly socket: string;
  readonly protocol: WireProtocol;
  readonly connections: number;
  readonly warmupMs: number;
  /** Measurement window after the warm-up (the upper bound of the run when `limit` is set). */
  readonly measureMs: number;
  readonly requests: RequestSource;
  /** Reply payload prefix counted as correct (policy: the action; socketmap: the netstring payload). */
  readonly expect: string;
  /** Stop after this many requests (every reply then counts; no warm-up). */
  readonly limit?: number;
  /**
   * The server closes the connection after each reply (one request per
   * connection, as the Go mailcloak's policy server does): open a new one and
   * send the next request on it, as Postfix's smtpd would. Latency then
   * includes the connect.
   */
  readonly reconnect?: boolean;
}

export interface RunResult {
  readonly type: "result";
  /** Replies received, warm-up included. */
  readonly completed: number;
  /** Replies received inside the measurement window. */
  readonly measured: number;
  /** Length of the measurement window in seconds. */
  readonly seconds: number;
  readonly rps: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
  /** Replies that did not start with the expected payload. */
  readonly wrong: number;
  readonly sampleWrong: string | null;
  /** Requests sent (for distinct sources: counter values consumed). */
  readonly used: number;
  readonly errors: readonly string[];
}

/**
 * A policy request with the attributes Postfix 3.7 sends (order and count as
 * in a real smtpd request, ~600 bytes), so parsing costs are realistic.
 */
export function policyRequest(a: {
  readonly sender: string;
  readonly recipient: string;
  readonly instance: string;
  readonly policyContext: string;
  readonly saslUsername?: string;
  readonly saslMethod?: string;
  /** Default RCPT; END-OF-MESSAGE for the quota check (smtpd_end_of_data_restrictions). */
  readonly protocolState?: string;
  readonly recipientCount?: number;
}): string {
  const attrs: readonly (readonly [string, string])[] = [
    ["request", "smtpd_access_policy"],
    ["protocol_state", a.protocolState ?? "RCPT"],
    ["protocol_name", "ESMTP"],
    ["client_address", "192.0.2.10"],
    ["client_name", "mail.example.net"],
    ["client_port", "41234"],
    ["reverse_client_name", "mail.example.net"],
    ["server_address", "127.0.0.1"],
    ["server_port", "25"],
    ["helo_name", "mail.example.net"],
    ["sender", a.sender],
    ["recipient", a.recipient],
    ["recipient_count", String(a.recipientCount ?? 0)],
    ["queue_id", ""],
    ["instance", a.instance],
    ["size", "0"],
    ["etrn_domain", ""],
    ["stress", ""],
    ["sasl_method", a.saslMethod ?? ""],
    ["sasl_username", a.saslUsername ?? ""],
    ["sasl_sender", ""],
    ["ccert_subject", ""],
    ["ccert_issuer", ""],
    ["ccert_fingerprint", ""],
    ["ccert_pubkey_fingerprint", ""],
    ["encryption_protocol", ""],
    ["encryption_cipher", ""],
    ["encryption_keysize", "0"],
    ["policy_context", a.policyContext],
    ["compatibility_level", "3.6"],
    ["mail_version", "3.7.11"],
  ];
  let s = "";
  for (const [k, v] of attrs) s += `${k}=${v}\n`;
  return s + "\n";
}

/** A Postfix-like transaction id ("instance"), distinct for each i. */
export function instanceId(i: number | string): string {
  return `b${i}.6566a1f2.4e3a1.0`;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Nearest-rank percentile of an already sorted array. */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function round(x: number, digits: number): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** A PASS/FAIL line of the report (pass null: not run). */
export interface Target {
  name: string;
  value: string;
  target: string;
  pass: boolean | null;
}

/** CPU time (ns) of every thread of a process: /proc/PID/task/TID/schedstat, first field. */
export function cpuNs(pid: number): number {
  let total = 0;
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return NaN;
  }
  for (const tid of tids) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      /* thread gone */
    }
  }
  return total;
}
