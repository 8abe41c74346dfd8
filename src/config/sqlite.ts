// The sqlite: section: the database of domains, aliases and apps.

import { int, nonEmpty } from "./fields.js";
import type { Section } from "./reader.js";
import { SQLITE } from "./schema.js";
import type { Config } from "./types.js";

export function buildSqlite(s: Section): Config["sqlite"] {
  const path = nonEmpty(s, SQLITE.settings.path);
  const busyTimeoutMs = int(s, SQLITE.settings.busy_timeout_ms);
  s.finish();
  return { path, busyTimeoutMs };
}
