// Logging: pino, JSON lines when stdout is not a terminal (for journald and
// log shippers), a short human-readable form when it is. Secrets are redacted
// by key wherever they might appear.
//
// Speed (issue 12.8; bench/README.md "Figures at the shipped defaults"): at
// log.level info every policy decision writes one line, so this file is on
// the hot path. Measured per line (200,000 decision lines, 50 per event-loop
// turn, Node 20, the bench machine): pino's `redact` with the "*.key" paths
// 9.1-9.4 µs, the same keys checked by `scrub()` below 3.2-3.5 µs, no
// redaction at all 2.9 µs. The destination matters less (sync 3.5 µs, async
// 2.9 µs, async with a 4 KiB minimum write 3.0-4.3 µs); see `destination()`.
//
// The destination is synchronous, and lines are written in batches: while
// the servers handle one event-loop turn's requests (src/server/turn.ts)
// the lines are held, and written in one write when the batch ends, before
// its replies leave. So whoever sees a reply (an operator tailing the
// journal, a test) can already read its line, and the log costs one write
// per batch instead of one per decision. A decision line made outside a
// batch (an answer after a Keycloak lookup) waits for a batch scheduled in
// the same turn (`deferLines`); other lines (startup, errors) are written at
// once unless lines are already waiting, which they then follow. Before this,
// one write per line was the biggest single cost of a cache-hit decision
// (bench/README.md).
//
// No line may be lost at exit: `exitAfterFlush` and `onFatal` write what is
// held and wait for the destination before exiting
// (test/log-loss.integration.test.ts).

import pino, { type Bindings, type ChildLoggerOptions, type DestinationStream, type Logger } from "pino";
import { Writable } from "node:stream";

/** Keys whose value is never logged, at the top level of a record or one level down (as pino's paths "key" and "*.key"). */
const SECRET_KEYS: ReadonlySet<string> = new Set([
  "clientSecret", "client_secret", "password", "secret", "token", "accessToken", "access_token",
]);
const CENSOR = "[redacted]";

const LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };

/** Flushing at exit waits at most this long for the write in flight (a stalled journald must not hold the exit forever). */
const EXIT_FLUSH_MS = 2000;

/** The daemon's stdout destination, once created: exitAfterFlush waits on it. */
let stdoutDest: ReturnType<typeof pino.destination> | null = null;

/** Lines logged during a batch, written together when it ends. */
class BatchedDestination implements DestinationStream {
  readonly #inner: ReturnType<typeof pino.destination>;
  #holding = false;
  #held = "";

  constructor(inner: ReturnType<typeof pino.destination>) {
    this.#inner = inner;
  }

  /** Schedules the batch that writes lines held outside one (deferLines); null: such lines are written at once. */
  wake: (() => void) | null = null;

  write(line: string): void {
    // Behind held lines, a line waits too: the log keeps its order.
    if (this.#holding || this.#held !== "") this.#held += line;
    else this.#inner.write(line);
  }

  /** A decision line: outside a batch it is held until the batch `wake` schedules (this event-loop turn). */
  writeSoon(line: string): void {
    if (this.#holding || this.#held !== "" || this.wake === null) {
      this.write(line);
      return;
    }
    this.#held = line;
    this.wake();
  }

  get holding(): boolean {
    return this.#holding;
  }

  /** Lines held and not yet written. */
  get pending(): boolean {
    return this.#held !== "";
  }

  hold(): void {
    this.#holding = true;
  }

  release(): void {
    this.#holding = false;
    if (this.#held === "") return;
    const lines = this.#held;
    this.#held = "";
    this.#inner.write(lines);
  }
}

let batched: BatchedDestination | null = null;

/** Lines are waiting to be written: logged in the running batch, or outside one and waiting for the batch deferLines' wake scheduled (false when logging elsewhere). */
export function linesHeld(): boolean {
  return batched !== null && batched.pending;
}

/**
 * Decision lines logged outside a batch (answers after a Keycloak lookup,
 * which complete one by one in the poll phase) are held until the batch
 * `wake` schedules in the same turn, so the misses answered in one turn cost
 * one log write, not one each; their replies wait for it like a batch's.
 */
export function deferLines(wake: () => void): void {
  if (batched !== null) batched.wake = wake;
}

/**
 * Run `run`, holding the lines it logs to stdout and writing them in one
 * write when it returns or throws. A nested call holds nothing more.
 */
export function batchLines(run: () => void): void {
  const b = batched;
  if (b === null || b.holding) {
    run();
    return;
  }
  b.hold();
  try {
    run();
  } finally {
    b.release();
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A copy of obj with SECRET_KEYS censored at depth 0 and 1; obj itself when there is none (the usual case: no allocation). */
export function scrub(obj: Record<string, unknown>): Record<string, unknown> {
  let out = obj;
  for (const k in obj) {
    const v = obj[k];
    let censored: unknown = v;
    if (SECRET_KEYS.has(k)) censored = CENSOR;
    else if (isPlainObject(v)) {
      for (const k2 in v) {
        if (!SECRET_KEYS.has(k2)) continue;
        if (censored === v) censored = { ...v };
        (censored as Record<string, unknown>)[k2] = CENSOR;
      }
    }
    if (censored !== v) {
      if (out === obj) out = { ...obj };
      out[k] = censored;
    }
  }
  return out;
}

/** One line per record: "HH:MM:SS LEVEL msg key=value ...". */
function humanStream(out: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (!line) continue;
        try {
          const rec = JSON.parse(line) as Record<string, unknown>;
          const { time, level, msg, pid: _p, hostname: _h, ...rest } = rec;
          const t = new Date(Number(time)).toISOString().slice(11, 19);
          const extra = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
          out.write(`${t} ${(LEVELS[Number(level)] ?? String(level)).padEnd(5)} ${String(msg ?? "")}${extra ? "  " + extra : ""}\n`);
        } catch {
          out.write(line + "\n");
        }
      }
      done();
    },
  });
}

/** A line's fields: a string or number each, or undefined (left out, as pino does). No secrets: they are not scrubbed. */
export type LineFields = Readonly<Record<string, string | number | undefined>>;

/** Writes one info line; the caller has checked that info is enabled. */
export type InfoLine = (fields: LineFields, msg: string) => void;

/**
 * An info-line writer for `log`. When `log` writes JSON lines to stdout (the
 * daemon's case), the line is built here, byte for byte as pino builds it
 * (level, time, pid, the child's bindings, the fields in order, msg), and
 * goes to the same destination, in the same batches. This skips pino's
 * generic serializer, which was the largest cost of a policy decision after
 * the writes themselves (bench/README.md). Otherwise (a terminal, a caller's
 * stream) it is log.info. For fixed, secret-free keys only: no scrub.
 */
export function infoLine(log: Logger): InfoLine {
  // The logger's own stream (pino.symbols, public): children share their root's.
  const dest = (log as unknown as Record<symbol, unknown>)[pino.symbols.streamSym];
  if (!(dest instanceof BatchedDestination)) return (fields, msg) => log.info(fields, msg);
  let prefix = `,"pid":${process.pid}`;
  for (const [k, v] of Object.entries(log.bindings())) prefix += `,${JSON.stringify(k)}:${JSON.stringify(v)}`;
  return (fields, msg) => {
    let line = `{"level":30,"time":${Date.now()}${prefix}`;
    for (const k in fields) {
      const v = fields[k];
      if (v !== undefined) line += `,"${k}":${typeof v === "number" ? String(v) : jsonString(v)}`;
    }
    dest.writeSoon(`${line},"msg":${jsonString(msg)}}\n`);
  };
}

/** What JSON.stringify needs to escape in a string (surrogates: a lone one is escaped, so any sends the string there). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * JSON.stringify(v), without its call for the usual string that has nothing
 * to escape (an address, a reason): 0.24-0.37 against 0.46-0.54 µs for a
 * decision line's 8 strings (micro-benchmark, 300,000 lines).
 */
function jsonString(v: string): string {
  return NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : `"${v}"`;
}

/** stdout, written synchronously (sonic-boom; see the header for why). */
function destination(): DestinationStream {
  stdoutDest = pino.destination({ fd: 1, sync: true });
  batched = new BatchedDestination(stdoutDest);
  return batched;
}

export function createLogger(level: string, dest?: NodeJS.WritableStream): Logger {
  const opts = { level, base: { pid: process.pid }, formatters: { log: scrub } };
  const log = dest ? pino(opts, dest) : process.stdout.isTTY ? pino(opts, humanStream(process.stdout)) : pino(opts, destination());
  return scrubChildBindings(log);
}

/**
 * pino gives a child's bindings no formatter (it resets `formatters.bindings`
 * for children), so scrub them on the way in. Set on the root logger, the
 * wrapper is inherited by every descendant (a child is Object.create(parent)).
 */
function scrubChildBindings(log: Logger): Logger {
  const child = log.child;
  log.child = function scrubbed<L extends string = never>(this: Logger, bindings: Bindings, options?: ChildLoggerOptions<L>): Logger<L> {
    return (options === undefined ? child.call(this, scrub(bindings)) : child.call(this, scrub(bindings), options)) as Logger<L>;
  };
  return log;
}

/**
 * Exit once every buffered line is written. sonic-boom's flush(cb) does not
 * wait for a write in flight when writes are not batched by size, so this
 * queues an empty write behind everything and exits on the "drain" that
 * follows it (emitted when nothing is left to write). Exiting with a write
 * in flight would let the exit-time synchronous flush write the later lines
 * before it, or lose it. After EXIT_FLUSH_MS, exit anyway.
 */
export function exitAfterFlush(log: Logger, code: number): void {
  let exited = false;
  const exit = (): void => {
    if (exited) return;
    exited = true;
    process.exit(code);
  };
  setTimeout(exit, EXIT_FLUSH_MS);
  batched?.release();
  const dest = stdoutDest;
  if (dest === null) {
    // A caller's stream or the terminal: flush as far as pino can, then go.
    log.flush(() => exit());
    return;
  }
  try {
    dest.once("drain", exit);
    dest.write("");
  } catch {
    exit(); // destroyed (EPIPE): nothing more can be written
  }
}

/**
 * An uncaught exception or unhandled rejection: one FATAL line (message and
 * stack), every buffered line written, exit 1 — rather than Node's default,
 * which prints to stderr and exits with an asynchronous write possibly in
 * flight.
 */
export function onFatal(log: Logger): void {
  let fatal = false;
  const die = (kind: string, err: unknown): void => {
    if (fatal) return;
    fatal = true;
    batched?.release(); // lines held by a batch come before the FATAL line
    const e = err instanceof Error ? { err: err.message, stack: err.stack } : { err: String(err) };
    log.fatal(e, `fatal: ${kind}; exiting`);
    exitAfterFlush(log, 1);
  };
  process.on("uncaughtException", (err) => die("uncaught exception", err));
  process.on("unhandledRejection", (err) => die("unhandled promise rejection", err));
}
