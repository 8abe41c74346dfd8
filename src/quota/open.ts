// The counter store the config names (quotas.backend), for the daemon and
// for mailcloakctl quota.

import type { Logger } from "pino";
import type { QuotaSettings } from "../config/types.js";
import { redactUrl } from "../redact-url.js";
import type { Counters } from "./counters.js";
import { RedisCounters } from "./redis-counters.js";
import { SqliteCounters } from "../store/sqlite/counters.js";

export interface OpenCountersOptions {
  readonly busyTimeoutMs: number;
  /** The daemon: create the SQLite file, reconnect to Redis for ever. mailcloakctl: neither. */
  readonly daemon: boolean;
  readonly logger?: Logger;
  readonly owner?: { readonly uid: number; readonly gid: number } | null;
}

export function openCounters(q: QuotaSettings, o: OpenCountersOptions): Counters {
  if (q.backend === "redis") {
    const r = new RedisCounters({ url: q.redis.url, keyPrefix: q.redis.keyPrefix, timeoutMs: q.redis.timeoutMs, reconnect: o.daemon, ...(o.logger ? { logger: o.logger } : {}) });
    return r;
  }
  return new SqliteCounters({ path: q.sqlitePath, busyTimeoutMs: o.busyTimeoutMs, create: o.daemon, owner: o.owner ?? null });
}

/** Where the counters are, for messages. */
export function describeCounters(q: QuotaSettings): string {
  return q.backend === "redis" ? `redis ${redactUrl(q.redis.url)}` : q.sqlitePath;
}
