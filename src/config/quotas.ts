// The quotas: section of the config file (outbound rate limits per login).

import { dirname, join } from "node:path";
import { choice, int, nonEmpty, optional, text } from "./fields.js";
import type { Section } from "./reader.js";
import { DEFAULTS, QUOTAS, QUOTAS_REDIS, type Setting, type TextSpec } from "./schema.js";
import type { QuotaSettings } from "./types.js";

const Q = QUOTAS.settings;
const R = QUOTAS_REDIS.settings;

/** The counter file when quotas.sqlite_path is not set: quota.db beside the main database. */
export function defaultQuotaPath(sqlitePath: string): string {
  return join(dirname(sqlitePath), DEFAULTS.quotaFileName);
}

export function parseQuotas(q: Section, sqlitePath: string): QuotaSettings {
  const attribute = (row: Setting<TextSpec>): string | null => {
    const v = optional(q, row)?.trim() ?? "";
    if (/[\s,]/.test(v)) throw q.error(q.key(row.name), `must be one Keycloak attribute name (no spaces or commas), got ${JSON.stringify(v)}`);
    return v === "" ? null : v;
  };
  const defaults = { per_hour: int(q, Q.per_hour), per_day: int(q, Q.per_day), recipients_per_hour: int(q, Q.recipients_per_hour) };
  const attributes = {
    per_hour: attribute(Q.per_hour_attribute),
    per_day: attribute(Q.per_day_attribute),
    recipients_per_hour: attribute(Q.recipients_per_hour_attribute),
  };
  const message = text(q, Q.message).trim();
  if (message === "" || /[\x00-\x1f\x7f]/.test(message) || message.length > 400) {
    throw q.error(q.key(Q.message.name), "must be one line of text (1-400 characters) shown after \"450 4.7.1 \"");
  }
  if (/^\d/.test(message)) throw q.error(q.key(Q.message.name), "is the text only; the reply code 450 4.7.1 is added by mailcloak");
  const failureMode = choice(q, Q.failure_mode);
  const backend = choice(q, Q.backend);
  const path = optional(q, Q.sqlite_path)?.trim() || defaultQuotaPath(sqlitePath);
  if (path === sqlitePath) throw q.error(q.key(Q.sqlite_path.name), "must differ from sqlite.path (the counters are written once per message)");

  const r = q.section("redis");
  const url = nonEmpty(r, R.url);
  if (!/^rediss?:\/\/[^\s]*$/i.test(url)) throw r.error(r.key(R.url.name), `must be a redis:// or rediss:// URL like ${R.url.default}`);
  const keyPrefix = text(r, R.key_prefix);
  if (/\s/.test(keyPrefix)) throw r.error(r.key(R.key_prefix.name), "must not contain whitespace");
  const timeoutMs = int(r, R.timeout_ms);
  r.finish();
  q.finish();
  return { defaults, attributes, message, failureMode, backend, sqlitePath: path, redis: { url, keyPrefix, timeoutMs } };
}
