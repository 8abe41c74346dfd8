// What `mailcloak check-config` prints: each setting in effect under its
// YAML key, one `key: value` line per row of schema.ts, secrets redacted.
// And which of the settings SIGHUP cannot apply differ between two configs.

import { stringify } from "yaml";
import { redactUrl } from "../quota/redis-counters.js";
import { OLDER_KEYS, SETTINGS, type Setting, type YamlValue } from "./schema.js";
import type { Config } from "./types.js";

function redact(row: Setting, v: YamlValue): YamlValue {
  if (row.redact === "secret") return v === "" ? "" : "[redacted]";
  if (row.redact === "url" && typeof v === "string") return redactUrl(v);
  return v;
}

/** One line per setting in effect, e.g. `idp.keycloak.cache_ttl_seconds: 120`. */
export function effectiveSettings(cfg: Config): string {
  const out: string[] = [];
  const line = (key: string, v: YamlValue): void => {
    out.push(`${key}: ${stringify(v, { collectionStyle: "flow", lineWidth: 0 }).trimEnd()}`);
  };
  for (const row of SETTINGS) {
    const v = row.show(cfg);
    if (v !== undefined) line(row.key, redact(row, v));
  }
  for (const older of OLDER_KEYS) {
    const v = older.show?.(cfg);
    if (v !== undefined) line(older.key, v);
  }
  return out.join("\n") + "\n";
}

/** The YAML keys marked "restart" whose values differ: SIGHUP keeps the old ones. */
export function restartKeys(next: Config, started: Config): string[] {
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
  return SETTINGS.filter((row) => row.reload === "restart" && !same(row.show(next), row.show(started))).map((row) => row.key);
}
