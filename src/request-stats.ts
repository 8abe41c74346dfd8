// The two per-request metrics, mailcloak_requests_total and
// mailcloak_request_duration_seconds, kept in plain counters and written in
// Prometheus's text format when scraped, after nothing but a few map
// lookups per request. prom-client (which keeps every other metric) hashes
// and validates its label object on every inc() and observe(): about 0.6 µs
// a request, 9 % of a cached policy decision's CPU and 14 % of a socketmap
// hit's in the benchmark's profile (bench/README.md). The text is what
// prom-client wrote for them: the same names, help, label order, buckets.

const REQUESTS = "mailcloak_requests_total";
const REQUESTS_HELP = "Requests answered, by server, map (socketmap) and action/status";
const DURATION = "mailcloak_request_duration_seconds";
const DURATION_HELP = "Time to answer one request";

interface Count {
  /** The label set as written. */
  readonly labels: string;
  n: number;
}

interface Latency {
  /** Observations per bucket (not cumulative); the last is +Inf. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

/** A label value in the text format: backslash, double quote and newline escaped. */
function labelValue(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

export class RequestStats {
  readonly #bounds: readonly number[];
  /** server → map → action → its count; `#order` lists them first seen first, as prom-client does. */
  readonly #counts = new Map<string, Map<string, Map<string, Count>>>();
  readonly #order: Count[] = [];
  readonly #latency = new Map<string, Latency>();

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
  }

  count(server: string, map: string, action: string): void {
    let byMap = this.#counts.get(server);
    if (byMap === undefined) this.#counts.set(server, (byMap = new Map()));
    let byAction = byMap.get(map);
    if (byAction === undefined) byMap.set(map, (byAction = new Map()));
    const c = byAction.get(action);
    if (c !== undefined) {
      c.n++;
      return;
    }
    const fresh = { labels: `server="${labelValue(server)}",map="${labelValue(map)}",action="${labelValue(action)}"`, n: 1 };
    byAction.set(action, fresh);
    this.#order.push(fresh);
  }

  observe(server: string, seconds: number): void {
    let l = this.#latency.get(server);
    if (l === undefined) this.#latency.set(server, (l = { counts: new Float64Array(this.#bounds.length + 1), sum: 0, count: 0 }));
    const b = this.#bounds;
    let i = 0;
    while (i < b.length && seconds > b[i]!) i++;
    l.counts[i]!++;
    l.sum += seconds;
    l.count++;
  }

  /** Both metrics in the Prometheus text format (0.0.4), each block ending with a newline. */
  text(): string {
    let out = `# HELP ${REQUESTS} ${REQUESTS_HELP}\n# TYPE ${REQUESTS} counter\n`;
    for (const c of this.#order) out += `${REQUESTS}{${c.labels}} ${c.n}\n`;
    out += `\n# HELP ${DURATION} ${DURATION_HELP}\n# TYPE ${DURATION} histogram\n`;
    for (const [server, l] of this.#latency) {
      const s = labelValue(server);
      let cumulative = 0;
      for (let i = 0; i <= this.#bounds.length; i++) {
        cumulative += l.counts[i]!;
        const le = i < this.#bounds.length ? String(this.#bounds[i]) : "+Inf";
        out += `${DURATION}_bucket{le="${le}",server="${s}"} ${cumulative}\n`;
      }
      out += `${DURATION}_sum{server="${s}"} ${l.sum}\n${DURATION}_count{server="${s}"} ${l.count}\n`;
    }
    return out;
  }
}
