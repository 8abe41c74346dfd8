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
// 2.9 µs, async with a 4 KiB minimum write 3.0-3.3 µs); see `destination()`.
//
// No line may be lost at exit: the buffered destination is flushed (and its
// in-flight write awaited) before every exit the daemon chooses
// (`exitAfterFlush`), on an uncaught error (`onFatal`), and synchronously on
// any other process exit (pino registers that for an asynchronous
// destination). Only SIGKILL or a crash of Node itself can lose the lines
// still in the buffer.

import pino, { type DestinationStream, type Logger } from "pino";
import { Writable } from "node:stream";

/** Keys whose value is never logged, at the top level of a record or one level down (as pino's paths "key" and "*.key"). */
const SECRET_KEYS: ReadonlySet<string> = new Set([
  "clientSecret", "client_secret", "password", "secret", "token", "accessToken", "access_token",
]);
const CENSOR = "[redacted]";

const LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };

/** Asynchronous writes leave when at least this much is buffered (or at the flush tick): fewer write(2) calls under load. */
const MIN_WRITE_BYTES = 4096;
/** A quiet daemon's last lines reach the log within this (a buffer under MIN_WRITE_BYTES would otherwise wait for the next line). */
const FLUSH_EVERY_MS = 200;

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

/**
 * stdout, written asynchronously in chunks of MIN_WRITE_BYTES or more, with a
 * timer so a quiet daemon's lines still leave within FLUSH_EVERY_MS. The
 * measured alternatives (bench/README.md): minLength 0 (one write per busy
 * period) and a synchronous write per line cost more daemon CPU per request.
 */
function destination(): DestinationStream {
  const dest = pino.destination({ fd: 1, sync: false, minLength: MIN_WRITE_BYTES });
  setInterval(() => {
    try {
      dest.flush();
    } catch {
      /* not open yet, or closed at exit */
    }
  }, FLUSH_EVERY_MS).unref();
  return dest;
}

export function createLogger(level: string, dest?: NodeJS.WritableStream): Logger {
  const opts = { level, base: { pid: process.pid }, formatters: { log: scrub, bindings: scrub } };
  if (dest) return pino(opts, dest);
  if (process.stdout.isTTY) return pino(opts, humanStream(process.stdout));
  return pino(opts, destination());
}

/**
 * Exit once every buffered line is written (the flush callback runs after the
 * write in flight and the buffer behind it are done). Should the flush never
 * call back, exit after 2 s anyway; the exit-time synchronous flush then
 * writes what is left.
 */
export function exitAfterFlush(log: Logger, code: number): void {
  let exited = false;
  const exit = (): void => {
    if (exited) return;
    exited = true;
    process.exit(code);
  };
  setTimeout(exit, 2000);
  try {
    log.flush(() => exit());
  } catch {
    exit();
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
    const e = err instanceof Error ? { err: err.message, stack: err.stack } : { err: String(err) };
    log.fatal(e, `fatal: ${kind}; exiting`);
    exitAfterFlush(log, 1);
  };
  process.on("uncaughtException", (err) => die("uncaught exception", err));
  process.on("unhandledRejection", (err) => die("unhandled promise rejection", err));
}
