// Logging: pino, JSON lines when stdout is not a terminal (for journald and
// log shippers), a short human-readable form when it is. Secrets are redacted
// by key wherever they might appear.

import pino, { type Logger } from "pino";
import { Writable } from "node:stream";

const REDACT = [
  "clientSecret", "client_secret", "password", "secret", "token", "accessToken", "access_token",
  "*.clientSecret", "*.client_secret", "*.password", "*.secret", "*.token", "*.accessToken",
];

const LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };

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

export function createLogger(level: string, dest?: NodeJS.WritableStream): Logger {
  const opts = { level, base: { pid: process.pid }, redact: { paths: REDACT, censor: "[redacted]" } };
  if (dest) return pino(opts, dest);
  if (process.stdout.isTTY) return pino(opts, humanStream(process.stdout));
  return pino(opts, pino.destination({ fd: 1, sync: false }));
}
