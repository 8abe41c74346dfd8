// The load generator, run as a worker thread: behaves like a set of Postfix
// processes, each with one persistent Unix-socket connection and exactly one
// request in flight (closed loop: the next request leaves when the reply is
// complete). Requests are encoded before the run; replies are only framed
// (policy: up to the blank line; socketmap: one netstring) and their first
// bytes compared with the expected answer.

import net from "node:net";
import { parentPort } from "node:worker_threads";
import { percentileSorted, type RequestSource, type RunResult, type RunSpec, type WireProtocol } from "./common.js";

const LF = 0x0a;
const COLON = 0x3a;

function netstring(payload: string): Buffer {
  const body = Buffer.from(payload, "utf8");
  return Buffer.concat([Buffer.from(`${body.length}:`, "latin1"), body, Buffer.from(",")]);
}

function encode(protocol: WireProtocol, text: string): Buffer {
  return protocol === "policy" ? Buffer.from(text, "utf8") : netstring(text);
}

/** Yields the next request for a connection. */
type Next = (conn: number) => Buffer;

function requestSource(protocol: WireProtocol, src: RequestSource, connections: number): { next: Next; used: () => number } {
  let used = 0;
  if (src.kind === "cycle") {
    const bufs = src.items.map((t) => encode(protocol, t));
    const pos = Array.from({ length: connections }, (_, i) => Math.floor((i * bufs.length) / connections));
    return {
      next: (c) => {
        used++;
        const p = pos[c]!;
        pos[c] = p + 1 === bufs.length ? 0 : p + 1;
        return bufs[p]!;
      },
      used: () => used,
    };
  }
  const parts = src.template.split("{n}");
  let n = src.start;
  return {
    next: () => {
      used++;
      return encode(protocol, parts.join(String(n++)));
    },
    used: () => used,
  };
}

/** Length of a complete reply at the start of b (one request in flight: nothing follows it), or 0. */
function policyComplete(b: Buffer): number {
  const n = b.length;
  return n >= 2 && b[n - 1] === LF && b[n - 2] === LF ? n : 0;
}

function netstringComplete(b: Buffer): number {
  let len = 0;
  for (let i = 0; i < b.length && i < 12; i++) {
    const c = b[i]!;
    if (c === COLON) {
      const total = i + 1 + len + 1;
      return b.length >= total ? total : 0;
    }
    len = len * 10 + (c - 0x30);
  }
  return 0;
}

async function run(spec: RunSpec): Promise<RunResult> {
  const { protocol, connections } = spec;
  const src = requestSource(protocol, spec.requests, connections);
  const complete = protocol === "policy" ? policyComplete : netstringComplete;
  const expect = Buffer.from(protocol === "policy" ? `action=${spec.expect}` : spec.expect, "utf8");
  const limit = spec.limit ?? Infinity;
  const errors: string[] = [];

  let lat = new Float64Array(1 << 18);
  let nLat = 0;
  let completed = 0;
  let wrong = 0;
  let sampleWrong: string | null = null;
  let sent = 0;
  const sentAt = new Float64Array(connections);

  const sockets = await Promise.all(Array.from({ length: connections }, () => new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ path: spec.socket }, () => {
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  })));

  const t0 = performance.now();
  const wStart = spec.limit !== undefined ? t0 : t0 + spec.warmupMs;
  const wEnd = wStart + spec.measureMs;
  let active = connections;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const done = (): void => {
    if (--active === 0) finish();
  };

  const connect = (): Promise<net.Socket> => new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ path: spec.socket }, () => {
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
  const live = new Set<net.Socket>(sockets);

  const attach = (socket: net.Socket, c: number, connectStart: number | null): void => {
    let acc: Buffer | null = null;
    let open = true;
    let replied = false;
    const send = (startedAt = performance.now()): void => {
      if (sent >= limit) {
        open = false;
        done();
        return;
      }
      sent++;
      const req = src.next(c);
      sentAt[c] = startedAt;
      socket.write(req);
    };
    socket.on("data", (chunk: Buffer) => {
      const b = acc === null ? chunk : Buffer.concat([acc, chunk]);
      const n = complete(b);
      if (n === 0) {
        acc = b;
        return;
      }
      acc = null;
      const now = performance.now();
      completed++;
      if (now >= wStart && now < wEnd) {
        if (nLat === lat.length) {
          const bigger = new Float64Array(lat.length * 2);
          bigger.set(lat);
          lat = bigger;
        }
        lat[nLat++] = now - sentAt[c]!;
      }
      // Correctness: compare the payload's first bytes with the expected answer.
      const off = protocol === "policy" ? 0 : b.indexOf(COLON) + 1;
      if (b.length - off < expect.length || b.compare(expect, 0, expect.length, off, off + expect.length) !== 0) {
        wrong++;
        sampleWrong ??= b.toString("utf8").slice(0, 200);
      }
      if (n < b.length && errors.length < 5) errors.push(`${b.length - n} unsolicited bytes after a reply`);
      if (now >= wEnd) {
        open = false;
        done();
        return;
      }
      if (spec.reconnect) {
        // The next request leaves on a new connection once this one is closed.
        replied = true;
        return;
      }
      send();
    });
    socket.on("error", (err) => {
      if (errors.length < 5) errors.push(err.message);
    });
    socket.on("close", () => {
      live.delete(socket);
      if (!open) return;
      if (spec.reconnect && replied && sent >= limit) {
        open = false;
        done();
        return;
      }
      if (spec.reconnect && replied) {
        open = false;
        // The connect counts in the next request's latency (as for Postfix).
        const t = performance.now();
        connect().then((s) => {
          live.add(s);
          attach(s, c, t);
        }, (err: unknown) => {
          if (errors.length < 5) errors.push(`reconnect: ${err instanceof Error ? err.message : String(err)}`);
          done();
        });
        return;
      }
      open = false;
      if (errors.length < 5) errors.push("connection closed by server");
      done();
    });
    send(connectStart ?? performance.now());
  };
  sockets.forEach((socket, c) => attach(socket, c, null));

  // A reply that never comes must not hang the benchmark.
  const guard = setTimeout(() => {
    errors.push(`${active} connection(s) still waiting for a reply ${((performance.now() - t0) / 1000).toFixed(1)} s after the start`);
    active = 1;
    done();
  }, spec.warmupMs + spec.measureMs + 15_000);
  await finished;
  clearTimeout(guard);
  const end = performance.now();
  for (const s of live) s.destroy();

  const sorted = lat.subarray(0, nLat).sort();
  let sum = 0;
  for (let i = 0; i < nLat; i++) sum += sorted[i]!;
  const seconds = spec.limit !== undefined ? (end - t0) / 1000 : spec.measureMs / 1000;
  const measured = spec.limit !== undefined ? completed : nLat;
  return {
    type: "result",
    completed,
    measured,
    seconds,
    rps: measured / seconds,
    p50: percentileSorted(sorted, 50),
    p90: percentileSorted(sorted, 90),
    p99: percentileSorted(sorted, 99),
    max: nLat > 0 ? sorted[nLat - 1]! : NaN,
    mean: nLat > 0 ? sum / nLat : NaN,
    wrong,
    sampleWrong,
    used: src.used(),
    errors,
  };
}

const port = parentPort;
if (port) {
  port.on("message", (spec: RunSpec) => {
    run(spec).then(
      (r) => port.postMessage(r),
      (err: unknown) => port.postMessage({ type: "error", message: err instanceof Error ? err.message : String(err) }),
    );
  });
}
