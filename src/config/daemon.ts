// The process's own sections: daemon:, limits: (per listener), log: and
// metrics:.

import { parseHostPort } from "./address.js";
import { bool, choice, int, optional } from "./fields.js";
import type { Section } from "./reader.js";
import { DAEMON, LIMITS, LOG, METRICS } from "./schema.js";
import type { Config } from "./types.js";

export function buildDaemon(s: Section): Config["daemon"] {
  const D = DAEMON.settings;
  const user = optional(s, D.user)?.trim() ?? null;
  const allowRoot = bool(s, D.allow_root);
  const pidFile = optional(s, D.pid_file)?.trim() ?? null;
  const shutdownGraceMs = int(s, D.shutdown_grace_ms);
  s.finish();
  return { user, allowRoot, pidFile, shutdownGraceMs };
}

export function buildLimits(s: Section): Config["limits"] {
  const L = LIMITS.settings;
  const limits = {
    maxConnections: int(s, L.max_connections),
    idleTimeoutSeconds: int(s, L.idle_timeout_seconds),
    readTimeoutSeconds: int(s, L.read_timeout_seconds),
    maxRequestBytes: int(s, L.max_request_bytes),
  };
  s.finish();
  return limits;
}

export function buildLog(s: Section): Config["log"] {
  const level = choice(s, LOG.settings.level);
  s.finish();
  return { level };
}

export function buildMetrics(s: Section): Config["metrics"] {
  const row = METRICS.settings.listen;
  const text = optional(s, row)?.trim();
  let listen: { host: string; port: number } | null = null;
  if (text) {
    listen = parseHostPort(text);
    if (!listen) throw s.error(row.key, `must be HOST:PORT like 127.0.0.1:9464, got ${JSON.stringify(text)}`);
  }
  s.finish();
  return { listen };
}
