// The quotas: section of the config file (outbound rate limits per login).

import { dirname, join } from "node:path";
import type { Section } from "./reader.js";
import { DEFAULTS, type QuotaSettings } from "./types.js";

const MAX_LIMIT = 1_000_000_000;

/** The counter file when quotas.sqlite_path is not set: quota.db beside the main database. */
export function defaultQuotaPath(sqlitePath: string): string {
  return join(dirname(sqlitePath), DEFAULTS.quotaFileName);
}

export function parseQuotas(q: Section, sqlitePath: string): QuotaSettings {
  const limit = (name: string): number => q.int(name, 0, 0, MAX_LIMIT);
  const attribute = (name: string): string | null => {
    const v = q.optionalString(name)?.trim() ?? "";
    if (/[\s,]/.test(v)) throw q.error(q.key(name), `must be one Keycloak attribute name (no spaces or commas), got ${JSON.stringify(v)}`);
    return v === "" ? null : v;
  };
  const defaults = { per_hour: limit("per_hour"), per_day: limit("per_day"), recipients_per_hour: limit("recipients_per_hour") };
  const attributes = {
    per_hour: attribute("per_hour_attribute"),
    per_day: attribute("per_day_attribute"),
    recipients_per_hour: attribute("recipients_per_hour_attribute"),
  };
  const message = q.string("message", DEFAULTS.quotaMessage).trim();
  if (message === "" || /[\x00-\x1f\x7f]/.test(message) || message.length > 400) {
    throw q.error(q.key("message"), "must be one line of text (1-400 characters) shown after \"450 4.7.1 \"");
  }
  if (/^\d/.test(message)) throw q.error(q.key("message"), "is the text only; the reply code 450 4.7.1 is added by mailcloak");
  const failureMode = q.oneOf("failure_mode", ["open", "closed"] as const, "open");
  const backend = q.oneOf("backend", ["sqlite", "redis"] as const, "sqlite");
  const path = q.optionalString("sqlite_path")?.trim() || defaultQuotaPath(sqlitePath);
  if (path === sqlitePath) throw q.error(q.key("sqlite_path"), "must differ from sqlite.path (the counters are written once per message)");

  const r = q.section("redis");
  const url = r.nonEmpty("url", DEFAULTS.redisUrl);
  if (!/^rediss?:\/\/[^\s]*$/i.test(url)) throw r.error(r.key("url"), `must be a redis:// or rediss:// URL like ${DEFAULTS.redisUrl}`);
  const keyPrefix = r.string("key_prefix", DEFAULTS.redisKeyPrefix);
  if (/\s/.test(keyPrefix)) throw r.error(r.key("key_prefix"), "must not contain whitespace");
  const timeoutMs = r.int("timeout_ms", DEFAULTS.redisTimeoutMs, 10, 10_000);
  r.finish();
  q.finish();
  return { defaults, attributes, message, failureMode, backend, sqlitePath: path, redis: { url, keyPrefix, timeoutMs } };
}
