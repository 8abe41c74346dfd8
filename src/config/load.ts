// Reads the YAML config (the Go mailcloak's current layout, or its older one)
// into one validated Config. Nothing else in the program reads the file.

import { readFileSync } from "node:fs";
import { parseDocument } from "yaml";
import { ConfigError, Section } from "./reader.js";
import type { Config, ListenAddress, StaticUser } from "./types.js";
import { parseQuotas } from "./quotas.js";
import { DEFAULTS } from "./types.js";

export { ConfigError } from "./reader.js";
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
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line;
    throw new ConfigError(`${file}:${line ?? "?"}: invalid YAML: ${e.message.split("\n")[0]}`);
  }
  const top = new Section(file, "", doc.toJS());
  return buildConfig(top, file, env);
}

function buildConfig(top: Section, file: string, env: NodeJS.ProcessEnv): Config {
  const idp = top.maybeSection("idp");
  const legacyKc = top.maybeSection("keycloak");
  if (idp && legacyKc) {
    throw top.error("keycloak", "the older top-level keycloak section cannot be combined with idp; move its keys under idp.keycloak");
  }
  const policy = top.section("policy");

  // Identity source.
  const provider = idp
    ? idp.oneOf("provider", ["keycloak", "static", "authentik"] as const, "keycloak")
    : "keycloak";
  if (provider === "authentik") {
    throw idp!.error(idp!.key("provider"), "authentik is not supported by this version; use keycloak or static");
  }
  if (idp) idp.maybeSection("authentik"); // accepted for config compatibility, unused

  const kcSection = idp ? idp.maybeSection("keycloak") : legacyKc;
  let keycloak: Config["idp"]["keycloak"] = null;
  let cacheTtl: number = DEFAULTS.cacheTtlSeconds;
  if (kcSection) {
    const secretKey = kcSection.key("client_secret");
    const inline = kcSection.optionalString("client_secret");
    const secretFile = kcSection.optionalString("client_secret_file");
    const fromEnv = env.MAILCLOAK_KEYCLOAK_CLIENT_SECRET;
    if (inline !== undefined && secretFile !== undefined) {
      throw kcSection.error(secretKey, "set client_secret or client_secret_file, not both");
    }
    let clientSecret = inline ?? "";
    if (secretFile !== undefined) clientSecret = readSecretFile(kcSection, secretFile);
    if (fromEnv !== undefined && fromEnv !== "") clientSecret = fromEnv;
    const baseUrl = (provider === "keycloak" ? kcSection.nonEmpty("base_url") : kcSection.string("base_url", "")).replace(/\/+$/, "");
    if (provider === "keycloak" && !/^https?:\/\/[^/\s]+/i.test(baseUrl)) {
      throw kcSection.error(kcSection.key("base_url"), `must be an http:// or https:// URL, got ${JSON.stringify(baseUrl)}`);
    }
    keycloak = {
      baseUrl,
      realm: provider === "keycloak" ? kcSection.nonEmpty("realm") : kcSection.string("realm", ""),
      clientId: provider === "keycloak" ? kcSection.nonEmpty("client_id") : kcSection.string("client_id", "").trim(),
      clientSecret,
      timeoutMs: kcSection.int("timeout_ms", DEFAULTS.keycloakTimeoutMs, 50, 60_000),
    };
    if (kcSection.has("cache_ttl_seconds")) cacheTtl = kcSection.int("cache_ttl_seconds", cacheTtl, 1, 86_400);
    else kcSection.raw("cache_ttl_seconds");
    kcSection.finish();
    if (provider === "keycloak" && clientSecret === "") {
      throw kcSection.error(secretKey, "is required (or client_secret_file, or MAILCLOAK_KEYCLOAK_CLIENT_SECRET in the environment)");
    }
  } else if (provider === "keycloak") {
    throw top.error(idp ? "idp.keycloak" : "idp", "is required: set idp.provider: static, or configure idp.keycloak");
  }

  let staticUsers: StaticUser[] = [];
  const staticSection = idp?.maybeSection("static");
  if (staticSection) {
    staticUsers = staticSection.list("users").map((u, i) => parseStaticUser(staticSection, i, u));
    if (staticSection.has("cache_ttl_seconds") && provider === "static") {
      cacheTtl = staticSection.int("cache_ttl_seconds", cacheTtl, 1, 86_400);
    } else staticSection.raw("cache_ttl_seconds");
    staticSection.finish();
  }
  if (provider === "static" && !staticSection) {
    throw idp!.error("idp.static.users", "is required when idp.provider is static");
  }
  idp?.finish();

  // Policy (current and older key names).
  const modeKey = policy.has("keycloak_failure_mode") && !policy.has("idp_failure_mode") ? "keycloak_failure_mode" : "idp_failure_mode";
  if (policy.has("keycloak_failure_mode") && policy.has("idp_failure_mode")) {
    throw policy.error("policy.keycloak_failure_mode", "is the older name of policy.idp_failure_mode; set only one");
  }
  const failureMode = policy.oneOf(modeKey, ["tempfail", "dunno"] as const, "tempfail");
  policy.raw(modeKey === "idp_failure_mode" ? "keycloak_failure_mode" : "idp_failure_mode");
  if (policy.has("cache_ttl_seconds")) {
    if (kcSection?.has("cache_ttl_seconds") && idp) {
      throw policy.error("policy.cache_ttl_seconds", "is the older name of idp.keycloak.cache_ttl_seconds; set only one");
    }
    cacheTtl = policy.int("cache_ttl_seconds", cacheTtl, 1, 86_400);
  } else policy.raw("cache_ttl_seconds");
  const localDomains: string[] = [];
  const legacyDomain = policy.optionalString("domain");
  if (legacyDomain !== undefined) localDomains.push(legacyDomain.trim().toLowerCase());
  const delimiter = policy.string("recipient_delimiter", DEFAULTS.recipientDelimiter);
  if (/[\s@]/.test(delimiter)) {
    throw policy.error("policy.recipient_delimiter", "must not contain whitespace or @ (use \"\" to disable extensions)");
  }
  const sendAttr = policy.optionalString("send_allowed_attribute")?.trim() || null;
  policy.finish();

  // SQLite.
  const sqlite = top.section("sqlite");
  const sqlitePath = sqlite.nonEmpty("path", DEFAULTS.sqlitePath);
  const busyTimeoutMs = sqlite.int("busy_timeout_ms", DEFAULTS.busyTimeoutMs, 0, 60_000);
  sqlite.finish();

  // Sockets.
  const sockets = top.section("sockets");
  const policySocket = parseListen(sockets, "policy_socket", DEFAULTS.policySocket);
  const socketmapSocket = parseListen(sockets, "socketmap_socket", DEFAULTS.socketmapSocket);
  // Unquoted 0660 reads as the number 660 in YAML 1.2; the Go version reads
  // it as the string "0660". Both mean octal.
  const rawMode = sockets.raw("socket_mode");
  const modeText = typeof rawMode === "number" && Number.isInteger(rawMode) ? String(rawMode) : sockets.string("socket_mode", DEFAULTS.socketMode).trim();
  if (!/^0?[0-7]{3}$/.test(modeText)) {
    throw sockets.error("sockets.socket_mode", `must be an octal mode like "0660", got ${JSON.stringify(modeText)}`);
  }
  const socketMode = parseInt(modeText, 8);
  if (socketMode & 0o002) {
    throw sockets.error("sockets.socket_mode", "must not be world-writable (anyone could query and probe addresses); use 0660");
  }
  const socketOwnerUser = sockets.optionalString("socket_owner_user")?.trim();
  const socketOwnerGroup = sockets.optionalString("socket_owner_group")?.trim();
  sockets.finish();
  if (sameAddress(policySocket, socketmapSocket)) {
    throw sockets.error("sockets.socketmap_socket", "must differ from sockets.policy_socket");
  }

  // Daemon.
  const daemon = top.section("daemon");
  const user = daemon.optionalString("user")?.trim() ?? null;
  const allowRoot = daemon.bool("allow_root", false);
  const pidFile = daemon.optionalString("pid_file")?.trim() ?? null;
  const shutdownGraceMs = daemon.int("shutdown_grace_ms", DEFAULTS.shutdownGraceMs, 0, 600_000);
  daemon.finish();

  // Cache.
  const cache = top.section("cache");
  const maxEntries = cache.int("max_entries", DEFAULTS.cacheMaxEntries, 10, 10_000_000);
  const negativeTtl = cache.int("negative_ttl_seconds", Math.min(DEFAULTS.negativeTtlSeconds, cacheTtl), 0, 86_400);
  const staleSeconds = cache.int("stale_seconds", DEFAULTS.staleSeconds, 0, 86_400);
  cache.finish();

  // Limits (per listener).
  const limits = top.section("limits");
  const limitValues = {
    maxConnections: limits.int("max_connections", DEFAULTS.maxConnections, 1, 100_000),
    idleTimeoutSeconds: limits.int("idle_timeout_seconds", DEFAULTS.idleTimeoutSeconds, 1, 86_400),
    readTimeoutSeconds: limits.int("read_timeout_seconds", DEFAULTS.readTimeoutSeconds, 1, 3_600),
    maxRequestBytes: limits.int("max_request_bytes", DEFAULTS.maxRequestBytes, 1024, 16 * 1024 * 1024),
  };
  limits.finish();

  // Logging and metrics.
  const log = top.section("log");
  const level = log.oneOf("level", ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const, "info");
  log.finish();
  const metrics = top.section("metrics");
  const metricsListen = metrics.optionalString("listen")?.trim();
  let metricsAddress: { host: string; port: number } | null = null;
  if (metricsListen) {
    const a = parseHostPort(metricsListen);
    if (!a) throw metrics.error("metrics.listen", `must be HOST:PORT like 127.0.0.1:9464, got ${JSON.stringify(metricsListen)}`);
    metricsAddress = a;
  }
  metrics.finish();

  const quotas = parseQuotas(top.section("quotas"), sqlitePath);

  top.finish();

  return {
    file,
    idp: { provider, keycloak, staticUsers },
    cache: { ttlSeconds: cacheTtl, negativeTtlSeconds: negativeTtl, maxEntries, staleSeconds },
    sqlite: { path: sqlitePath, busyTimeoutMs },
    policy: { failureMode, recipientDelimiter: delimiter, sendAllowedAttribute: sendAttr, localDomains },
    sockets: {
      policy: policySocket,
      socketmap: socketmapSocket,
      ownerUser: socketOwnerUser || null,
      ownerGroup: socketOwnerGroup || null,
      mode: socketMode,
    },
    daemon: { user, allowRoot, pidFile, shutdownGraceMs },
    limits: limitValues,
    log: { level },
    metrics: { listen: metricsAddress },
    quotas,
  };
}

function readSecretFile(s: Section, path: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw s.error(s.key("client_secret_file"), `cannot read ${path} (${code})`);
  }
}

function parseStaticUser(s: Section, i: number, raw: unknown): StaticUser {
  const sec = s.child(`${s.key("users")}[${i}]`, raw);
  const username = sec.nonEmpty("username").toLowerCase();
  const emailRaw = sec.optionalString("email");
  const email = emailRaw ? emailRaw.trim().toLowerCase() : null;
  if (email !== null && !/^[^@\s]+@[^@\s]+$/.test(email)) {
    throw sec.error(sec.key("email"), `must be an email address, got ${JSON.stringify(emailRaw)}`);
  }
  const enabled = sec.bool("enabled", true);
  const attrs: Record<string, string[]> = {};
  const rawAttrs = sec.raw("attributes");
  if (rawAttrs !== undefined && rawAttrs !== null) {
    if (typeof rawAttrs !== "object" || Array.isArray(rawAttrs)) {
      throw sec.error(sec.key("attributes"), "must be a mapping of name to value or list of values");
    }
    for (const [k, v] of Object.entries(rawAttrs as Record<string, unknown>)) {
      const list = Array.isArray(v) ? v : [v];
      attrs[k] = list.filter((x) => x !== null && x !== undefined).map((x) => String(x));
    }
  }
  sec.finish();
  return { username, email, enabled, attributes: attrs };
}

/** "inet:HOST:PORT", "HOST:PORT" or "unix:PATH" / a path. */
export function parseListenAddress(text: string): ListenAddress | null {
  const t = text.trim();
  if (t === "") return null;
  if (t.startsWith("inet:")) {
    const hp = parseHostPort(t.slice(5));
    return hp ? { kind: "tcp", ...hp } : null;
  }
  if (t.startsWith("unix:")) return t.length > 5 ? { kind: "unix", path: t.slice(5) } : null;
  if (t.includes("/")) return { kind: "unix", path: t };
  const hp = parseHostPort(t);
  return hp ? { kind: "tcp", ...hp } : null;
}

function parseHostPort(t: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(t.trim());
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: (m[1] ?? m[2])!, port };
}

function parseListen(s: Section, name: string, fallback: string): ListenAddress {
  const text = s.string(name, fallback);
  const a = parseListenAddress(text);
  if (!a) {
    throw s.error(s.key(name), `must be an absolute socket path, unix:PATH, inet:HOST:PORT or HOST:PORT, got ${JSON.stringify(text)}`);
  }
  if (a.kind === "unix" && !a.path.startsWith("/") && !a.path.startsWith("./") && !a.path.startsWith("../")) {
    throw s.error(s.key(name), `socket path must be absolute (or start with ./), got ${JSON.stringify(a.path)}`);
  }
  return a;
}

function sameAddress(a: ListenAddress, b: ListenAddress): boolean {
  if (a.kind === "unix" && b.kind === "unix") return a.path === b.path;
  if (a.kind === "tcp" && b.kind === "tcp") return a.host === b.host && a.port === b.port;
  return false;
}

export function describeAddress(a: ListenAddress): string {
  return a.kind === "unix" ? a.path : `inet:${a.host.includes(":") ? `[${a.host}]` : a.host}:${a.port}`;
}
