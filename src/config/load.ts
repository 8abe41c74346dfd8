// Reads the YAML config (the Go mailcloak's current layout, or its older one)
// into one validated Config. Nothing else in the program reads the file.
//
// Drop-in rule: every file the current Go release starts on is accepted here.
// Where that release accepts something this port would have refused (keys it
// ignores, both layouts at once, a TTL of 0, an unknown failure mode, a
// missing client secret), the value is taken as Go takes it and a warning
// says so; errors are kept for what the Go release refuses too, and for the
// keys only this port reads.

import { readFileSync } from "node:fs";
import { parseDocument } from "yaml";
import { ConfigError, scalarSources, Section, type SectionContext } from "./reader.js";
import type { Config, FailureMode, ListenAddress, StaticUser } from "./types.js";
import { parseQuotas } from "./quotas.js";
import { parseLists } from "./lists.js";
import { parseStore } from "./store.js";
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
  // Merge keys (<<) as yaml.v3 reads them; duplicate keys are an error there too.
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, merge: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line;
    throw new ConfigError(`${file}:${line ?? "?"}: invalid YAML: ${e.message.split("\n")[0]}`);
  }
  const js: unknown = doc.toJS();
  const ctx: SectionContext = { file, sources: scalarSources(doc.contents, js), warnings: [] };
  const top = new Section(ctx, "", js);
  return buildConfig(top, ctx, env);
}

/** Largest cache TTL: far beyond any sensible value, small enough for timer arithmetic. */
const MAX_TTL_SECONDS = 2_147_483_647;

/**
 * A Go cache_ttl_seconds: a whole number; 0 or less means the default (120),
 * as the Go release has it. A fraction is truncated as yaml.v3 does for an int.
 */
function goTtl(s: Section, name: string): number | undefined {
  const v = s.raw(name);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) throw s.error(s.key(name), `must be a whole number of seconds, got ${JSON.stringify(v)}`);
  const n = Math.trunc(v);
  if (n <= 0) return undefined;
  if (n > MAX_TTL_SECONDS) {
    s.warn(s.key(name), `${n} is more than ${MAX_TTL_SECONDS}; using ${MAX_TTL_SECONDS}`);
    return MAX_TTL_SECONDS;
  }
  return n;
}

/**
 * The Go failure mode: anything but "dunno" means tempfail there. The case
 * of the two names is ignored here; any other value is read as tempfail,
 * with a warning.
 */
function failureModeOf(s: Section, name: string): FailureMode | undefined {
  const text = s.optionalString(name)?.trim().toLowerCase();
  if (text === undefined || text === "") return undefined;
  if (text === "dunno" || text === "tempfail") return text;
  s.warn(s.key(name), `${JSON.stringify(text)} is not tempfail or dunno; using tempfail (as the Go mailcloak does)`);
  return "tempfail";
}

function buildConfig(top: Section, ctx: SectionContext, env: NodeJS.ProcessEnv): Config {
  const file = ctx.file;
  const idp = top.maybeSection("idp");
  const legacyKc = top.maybeSection("keycloak");
  const policy = top.section("policy");

  // Identity source.
  const provider = idp
    ? idp.oneOf("provider", ["keycloak", "static", "authentik"] as const, "keycloak")
    : "keycloak";
  /** The idp.*.cache_ttl_seconds key in effect, if one is set. */
  let idpTtlKey: string | null = null;

  // Both layouts at once: as the Go release, idp.keycloak keys win and the
  // top-level keycloak section fills in the ones that are empty or absent.
  const idpKc = idp?.maybeSection("keycloak");
  const kcSection = idpKc && legacyKc ? idpKc.withFallback(legacyKc) : (idpKc ?? legacyKc);
  if (idpKc && legacyKc && idpKc.conflictsWith(legacyKc)) {
    top.warn("keycloak", "the older top-level section is set together with idp.keycloak; where both set a key, idp.keycloak's value is used");
  }
  let keycloak: Config["idp"]["keycloak"] = null;
  let cacheTtl: number = DEFAULTS.cacheTtlSeconds;
  /** The active provider's cache_ttl_seconds, if set. */
  let idpTtl: number | undefined;
  if (kcSection) {
    const secretKey = kcSection.key("client_secret");
    const clientSecret = readSecret(kcSection, "client_secret", env.MAILCLOAK_KEYCLOAK_CLIENT_SECRET);
    // The Go release requires base_url and realm only; what it starts on
    // with the rest missing or malformed starts here too, with a warning
    // (every Keycloak lookup then fails and the failure mode applies).
    const kcBaseUrl = (provider === "keycloak" ? kcSection.nonEmpty("base_url") : kcSection.string("base_url", "")).replace(/\/+$/, "");
    const failing = "every Keycloak lookup will fail (policy.idp_failure_mode applies) until it is";
    if (provider === "keycloak" && !/^https?:\/\/[^/\s]+/i.test(kcBaseUrl)) {
      kcSection.warn(kcSection.key("base_url"), `should be an http:// or https:// URL, got ${JSON.stringify(kcBaseUrl)}; ${failing}`);
    }
    const clientId = kcSection.string("client_id", "").trim();
    if (provider === "keycloak" && clientId === "") kcSection.warn(kcSection.key("client_id"), `is not set; ${failing}`);
    keycloak = {
      baseUrl: kcBaseUrl,
      realm: provider === "keycloak" ? kcSection.nonEmpty("realm") : kcSection.string("realm", ""),
      clientId,
      clientSecret,
      timeoutMs: kcSection.int("timeout_ms", DEFAULTS.keycloakTimeoutMs, 50, 60_000),
    };
    if (provider !== "authentik") {
      idpTtl = goTtl(kcSection, "cache_ttl_seconds");
      if (idpTtl !== undefined) idpTtlKey = kcSection.key("cache_ttl_seconds");
      cacheTtl = idpTtl ?? cacheTtl;
    } else kcSection.raw("cache_ttl_seconds");
    kcSection.finish();
    if (provider === "keycloak" && clientSecret === "") {
      kcSection.warn(secretKey, `is not set (nor client_secret_file, nor MAILCLOAK_KEYCLOAK_CLIENT_SECRET in the environment); ${failing}`);
    }
  } else if (provider === "keycloak") {
    throw top.error(idp ? "idp.keycloak" : "idp", "is required: set idp.provider: static, or configure idp.keycloak");
  }

  // Authentik: read only when it is the provider (a leftover block is checked for typos, then ignored).
  const akSection = idp?.maybeSection("authentik");
  let authentik: Config["idp"]["authentik"] = null;
  if (akSection) {
    const active = provider === "authentik";
    const tokenKey = akSection.key("api_token");
    const apiToken = readSecret(akSection, "api_token", env.MAILCLOAK_AUTHENTIK_API_TOKEN).trim();
    // It goes into an HTTP header; Authentik's keys are printable ASCII.
    if (apiToken !== "" && !/^[\x21-\x7e]+$/.test(apiToken)) {
      throw akSection.error(tokenKey, "must be printable ASCII without spaces (copy the token's key exactly)");
    }
    const settings = { baseUrl: baseUrl(akSection, active), apiToken, timeoutMs: akSection.int("timeout_ms", DEFAULTS.keycloakTimeoutMs, 50, 60_000) };
    const akTtl = goTtl(akSection, "cache_ttl_seconds");
    if (akTtl !== undefined && active) {
      idpTtl = akTtl;
      cacheTtl = akTtl;
      idpTtlKey = akSection.key("cache_ttl_seconds");
    }
    akSection.finish();
    if (active && apiToken === "") {
      throw akSection.error(tokenKey, "is required (or api_token_file, or MAILCLOAK_AUTHENTIK_API_TOKEN in the environment)");
    }
    if (active) authentik = settings;
  } else if (provider === "authentik") {
    throw top.error("idp.authentik", "is required when idp.provider is authentik (base_url and api_token)");
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

  // Policy (current and older key names). As the Go release: the current
  // name wins when both are set, the older one is used otherwise.
  const currentMode = failureModeOf(policy, "idp_failure_mode");
  const olderMode = failureModeOf(policy, "keycloak_failure_mode");
  if (currentMode !== undefined && olderMode !== undefined && currentMode !== olderMode) {
    policy.warn("policy.keycloak_failure_mode", `is the older name of policy.idp_failure_mode, which is also set; using idp_failure_mode: ${currentMode}`);
  }
  const failureMode: FailureMode = currentMode ?? olderMode ?? "tempfail";
  // The older layout's TTL; the current Go release ignores it, so the
  // Keycloak section's own TTL wins when both are set.
  const olderTtl = goTtl(policy, "cache_ttl_seconds");
  if (olderTtl !== undefined) {
    if (idpTtl !== undefined) {
      if (olderTtl !== idpTtl) policy.warn("policy.cache_ttl_seconds", `is the older name of ${idpTtlKey ?? "idp.keycloak.cache_ttl_seconds"}, which is also set; using ${cacheTtl}`);
    } else cacheTtl = olderTtl;
  }
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
  const socketMode = parseSocketMode(sockets);
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
  const lists = parseLists(top.section("lists"));
  const store = parseStore(top.section("store"), env);

  top.finish();

  return {
    file,
    warnings: ctx.warnings,
    idp: { provider, keycloak, authentik, staticUsers },
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
    // Absent while off, so a config without lists reads as before.
    ...(lists.parentGroup !== null ? { lists } : {}),
    ...(store.backend === "postgres" ? { store } : {}),
  };
}

/**
 * A secret from `name` in the file, or `name_file` (trimmed), or the
 * environment variable (which wins when non-empty); "" when none is set.
 */
function readSecret(s: Section, name: string, fromEnv: string | undefined): string {
  const inline = s.optionalString(name);
  const file = s.optionalString(`${name}_file`);
  if (inline !== undefined && file !== undefined) {
    throw s.error(s.key(name), `set ${name} or ${name}_file, not both`);
  }
  let secret = inline ?? "";
  if (file !== undefined) {
    try {
      secret = readFileSync(file, "utf8").trim();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      throw s.error(s.key(`${name}_file`), `cannot read ${file} (${code})`);
    }
  }
  if (fromEnv !== undefined && fromEnv !== "") secret = fromEnv;
  return secret;
}

/** An IdP's base_url without trailing slashes; required and checked only for the active provider. */
function baseUrl(s: Section, required: boolean): string {
  const url = (required ? s.nonEmpty("base_url") : s.string("base_url", "")).replace(/\/+$/, "");
  if (required && !/^https?:\/\/[^/\s]+/i.test(url)) {
    throw s.error(s.key("base_url"), `must be an http:// or https:// URL, got ${JSON.stringify(url)}`);
  }
  return url;
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

/**
 * The socket mode, as the Go release reads it: octal digits (ParseUint base
 * 8), quoted or not. Unquoted 0660 is the number 660 in YAML 1.2 and 0o660
 * is 432, so the text as written is read, not the number; "0o" is accepted
 * too. Only the permission bits apply (Go's os.Chmod drops the rest).
 * World-accessible modes are accepted: Postfix's own private/ sockets are
 * 0666 in a 0700 directory; start.ts warns when the directory is open.
 */
function parseSocketMode(s: Section): number {
  const raw = s.raw("socket_mode");
  const text = (raw === undefined || raw === null || raw === "" ? DEFAULTS.socketMode : s.string("socket_mode")).trim();
  const digits = /^0o/i.test(text) ? text.slice(2) : text;
  if (!/^[0-7]{1,11}$/.test(digits)) {
    throw s.error("sockets.socket_mode", `must be an octal mode like "0660", got ${JSON.stringify(text)}`);
  }
  const mode = parseInt(digits, 8);
  if (mode > 0o777) s.warn("sockets.socket_mode", `${text}: only the permission bits (${(mode & 0o777).toString(8).padStart(4, "0")}) apply to a socket`);
  return mode & 0o777;
}

/**
 * "inet:HOST:PORT", "HOST:PORT", "unix:PATH", or a path. A path may be
 * relative (to the daemon's working directory), as in the Go release; a
 * text with a colon that is not HOST:PORT is refused rather than taken for
 * a file name.
 */
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
  if (hp) return { kind: "tcp", ...hp };
  return t.includes(":") ? null : { kind: "unix", path: t };
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
    throw s.error(s.key(name), `must be a socket path, unix:PATH, inet:HOST:PORT or HOST:PORT, got ${JSON.stringify(text)}`);
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
