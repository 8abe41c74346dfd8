// Reads the YAML config (the Go mailcloak's current layout, or its older one)
// into one validated Config. Nothing else in the program reads the file.
// Defaults, bounds and key names come from schema.ts; each section is read
// by its own builder, in the order below (errors and warnings come out in
// that order).
//
// Drop-in rule: every file the current Go release starts on is accepted here.
// Where that release accepts something this port would have refused (keys it
// ignores, both layouts at once, a TTL of 0, an unknown failure mode, a
// missing client secret), the value is taken as Go takes it and a warning
// says so; errors are kept for what the Go release refuses too, and for the
// keys only this port reads.

import { readFileSync } from "node:fs";
import { parseDocument } from "yaml";
import { buildCache } from "./cache.js";
import { buildDaemon, buildLimits, buildLog, buildMetrics } from "./daemon.js";
import { buildIdp } from "./idp.js";
import { parseLists } from "./lists.js";
import { buildPolicy } from "./policy.js";
import { parseQuotas } from "./quotas.js";
import { ConfigError, scalarSources, Section, type SectionContext } from "./reader.js";
import { buildSockets } from "./sockets.js";
import { buildSqlite } from "./sqlite.js";
import { buildStore } from "./store.js";
import type { Config } from "./types.js";

export { ConfigError } from "./reader.js";
export { describeAddress, parseListenAddress } from "./address.js";
export const DEFAULT_CONFIG_PATH = "/etc/mailcloak/config.yaml";

/** Read and validate a config file; throws ConfigError with one line. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new ConfigError(`${file}: cannot read config file (${code}); pass the right path with --config`);
  }
  return parseConfig(text, file, env);
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = {}): Config {
  return parse(text, file, env);
}

/** Every key a parse of `text` reads, by full YAML path (the schema test checks each is in schema.ts). */
export function keysRead(text: string, file: string, env: NodeJS.ProcessEnv = {}): string[] {
  const keys: string[] = [];
  parse(text, file, env, (k) => keys.push(k));
  return keys;
}

function parse(text: string, file: string, env: NodeJS.ProcessEnv, onRead?: (key: string) => void): Config {
  // Merge keys (<<) as yaml.v3 reads them; duplicate keys are an error there too.
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, merge: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line;
    throw new ConfigError(`${file}:${line ?? "?"}: invalid YAML: ${e.message.split("\n")[0]}`);
  }
  const js: unknown = doc.toJS();
  const ctx: SectionContext = { file, sources: scalarSources(doc.contents, js), warnings: [], ...(onRead ? { onRead } : {}) };
  return buildConfig(new Section(ctx, "", js), ctx, env);
}

function buildConfig(top: Section, ctx: SectionContext, env: NodeJS.ProcessEnv): Config {
  // Opened in the order the Go layouts are weighed (a section that is not a mapping fails here).
  const idpSection = top.maybeSection("idp");
  const legacyKeycloak = top.maybeSection("keycloak");
  const policySection = top.section("policy");
  const idp = buildIdp(top, { idp: idpSection, legacyKeycloak }, env);
  const { policy, cacheTtl } = buildPolicy(policySection, idp);
  const sqlite = buildSqlite(top.section("sqlite"));
  const sockets = buildSockets(top.section("sockets"));
  const daemon = buildDaemon(top.section("daemon"));
  const cache = buildCache(top.section("cache"), cacheTtl);
  const limits = buildLimits(top.section("limits"));
  const log = buildLog(top.section("log"));
  const metrics = buildMetrics(top.section("metrics"));
  const quotas = parseQuotas(top.section("quotas"), sqlite.path);
  const lists = parseLists(top.section("lists"));
  const store = buildStore(top.section("store"), env);
  top.finish();
  return {
    file: ctx.file,
    warnings: ctx.warnings,
    idp: idp.idp,
    cache,
    sqlite,
    policy,
    sockets,
    daemon,
    limits,
    log,
    metrics,
    quotas,
    // Absent while off, so a config without lists reads as before.
    ...(lists.parentGroup !== null ? { lists } : {}),
    ...(store.backend === "postgres" ? { store } : {}),
  };
}
