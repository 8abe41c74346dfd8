// Every config setting, once: its YAML key, type, default, bounds, whether
// SIGHUP applies it, and a one-line meaning (Postfix's habit: each parameter
// declared once in mail_params.h, with its default and unit, and one table).
//
// Who reads this table:
// - load.ts and its section files take defaults and bounds from it;
// - `mailcloak check-config` prints the effective value of each row under its
//   YAML key (effective.ts);
// - start.ts's reload names the "restart" rows that changed;
// - configs/config.yaml.sample and the README's configuration tables are
//   generated from it (docs.ts; `npm run config:docs` rewrites them), and
//   test/config-schema.test.ts fails when they, or the loader, disagree.
//
// Adding a section (e.g. `store:`):
// 1. here: `export const STORE = section({ path: "store", doc: "store" }, {...rows})`,
//    listed in SECTIONS, and "store" added to DocGroup;
// 2. src/config/store.ts: `buildStore(s: Section)` reading each row with
//    fields.ts (`int(s, STORE.settings.pool_size)`), then `s.finish()`;
// 3. one line in load.ts's buildConfig and one field in types.ts's Config;
// 4. README.md: an empty `<!-- settings:begin store -->` / `<!-- settings:end -->`
//    pair where the table goes; then `npm run config:docs` writes the table
//    and the sample, and test/config-schema.test.ts checks them.
// A row's `show` gives check-config its value; `reload: "restart"` makes a
// SIGHUP warn about it; `redact` keeps a password out of the printout.

import { describeAddress, describeHostPort } from "./address.js";
import type { Config } from "./types.js";

export type Reload = "applies" | "restart";
export type YamlValue = string | number | boolean | null | readonly YamlValue[] | { readonly [k: string]: YamlValue };

interface Common {
  /** What the setting does, one line (sample comment and README cell). */
  readonly meaning: string;
  /** More for the README only (the sample keeps the one line). */
  readonly notes?: string;
  /** Whether SIGHUP applies a new value or only a restart does. */
  readonly reload: Reload;
  /** The README's default cell when the plain default does not say it all. */
  readonly defaultText?: string;
  /** Written into the sample instead of the default. */
  readonly example?: YamlValue;
  /** Written commented out in the sample. */
  readonly commented?: boolean;
  /** How check-config shows it: a secret as [redacted], a URL without its password. */
  readonly redact?: "secret" | "url";
  /** An environment variable that overrides the key when non-empty. */
  readonly env?: string;
  /** The effective value, as it would be written in the file; undefined when not in effect. */
  readonly show: (c: Config) => YamlValue | undefined;
}

export interface IntSpec extends Common {
  readonly type: "int";
  readonly default: number;
  readonly min: number;
  readonly max: number;
}
export interface BoolSpec extends Common {
  readonly type: "bool";
  readonly default: boolean;
}
export interface EnumSpec<T extends string = string> extends Common {
  readonly type: "enum";
  readonly values: readonly T[];
  readonly default: T;
}
/** Free text of some kind; no default means required (or unset, as defaultText says). */
export interface TextSpec extends Common {
  readonly type: "string" | "path" | "url" | "address" | "octal" | "user" | "group" | "host:port" | "list";
  readonly default?: string | readonly YamlValue[];
}
export type Spec = IntSpec | BoolSpec | EnumSpec | TextSpec;

/** A row of the table: its spec plus where it sits. */
export type Setting<S extends Spec = Spec> = S & { readonly key: string; readonly name: string };

/** The README block a section's rows are listed in. */
export type DocGroup = "idp" | "cache" | "sqlite" | "store" | "policy" | "sockets" | "daemon" | "quotas" | "lists";

export interface SectionInfo {
  /** The YAML path, e.g. "idp.keycloak". */
  readonly path: string;
  readonly doc: DocGroup;
  /** One line above the section in the sample. */
  readonly intro?: string;
  /** The whole section is written commented out in the sample. */
  readonly commented?: boolean;
  /** After the section's rows in the README block (what the table cannot say). */
  readonly readme?: string;
  /** What a reload does for the section, for the README's SIGHUP table. */
  readonly reloadNote?: string;
}

export type SectionDef<R extends Record<string, Spec> = Record<string, Spec>> = SectionInfo & {
  readonly settings: { readonly [K in keyof R]: Setting<R[K]> };
  readonly rows: readonly Setting[];
};

function section<const R extends Record<string, Spec>>(info: SectionInfo, specs: R): SectionDef<R> {
  const settings = {} as { [K in keyof R]: Setting<R[K]> };
  for (const name of Object.keys(specs) as Array<keyof R & string>) {
    settings[name] = { ...specs[name], key: `${info.path}.${name}`, name } as Setting<R[typeof name]>;
  }
  return { ...info, settings, rows: Object.values(settings) as Setting[] };
}

/** Each IdP section's own TTL: Go's rule, 0 or less (or unset) is 120; larger than this is cut down. */
const TTL_MAX = 2_147_483_647;
const IDP_TIMEOUT = { type: "int", default: 2000, min: 50, max: 60_000 } as const;

/** A provider section's cache_ttl_seconds: the cache's positive TTL while that provider is active. */
function ttlRow(provider: Config["idp"]["provider"], max: number, meaning: string, notes?: string): IntSpec {
  return {
    type: "int", default: 120, min: 1, max, reload: "applies", meaning, ...(notes ? { notes } : {}),
    show: (c) => (c.idp.provider === provider ? c.cache.ttlSeconds : undefined),
  };
}

/** The `_file` twin of a secret: read into the secret (which check-config shows redacted). */
function secretFileRow(what: string, example: string): TextSpec {
  return {
    type: "path", default: "", reload: "applies", commented: true, example,
    meaning: `A file holding the ${what} (surrounding whitespace trimmed).`,
    show: () => undefined,
  };
}
const ATTRIBUTE = "A Keycloak user attribute";

export const IDP = section({ path: "idp", doc: "idp", reloadNote: "a new IdP client; the cache is emptied" }, {
  provider: {
    type: "enum", values: ["keycloak", "static", "authentik"], default: "keycloak", reload: "applies",
    meaning: "Where users come from: keycloak, authentik, or static (the list under idp.static, for development and tests).",
    show: (c) => c.idp.provider,
  },
});

export const IDP_KEYCLOAK = section({ path: "idp.keycloak", doc: "idp" }, {
  base_url: {
    type: "url", reload: "applies", defaultText: "required", example: "https://keycloak.example.org",
    meaning: "Server root (http:// or https://), with /auth on old (WildFly) or relative-path installs.",
    notes: "A trailing `/` is removed. Another form is accepted with a warning (every lookup then fails).",
    show: (c) => c.idp.keycloak?.baseUrl,
  },
  realm: {
    type: "string", reload: "applies", defaultText: "required", example: "example",
    meaning: "Realm of the users and of the client.",
    show: (c) => c.idp.keycloak?.realm,
  },
  client_id: {
    type: "string", default: "", reload: "applies", example: "mailcloak",
    meaning: "A confidential client with a service account that has the realm-management role view-users.",
    notes: "Unset: a warning, and every lookup fails (as in the Go version).",
    show: (c) => c.idp.keycloak?.clientId,
  },
  client_secret: {
    type: "string", default: "", reload: "applies", example: "change-me", redact: "secret", env: "MAILCLOAK_KEYCLOAK_CLIENT_SECRET",
    meaning: "The client's secret; or client_secret_file, or the environment variable (which wins). Never logged.",
    notes: "Not together with `client_secret_file`. None of them set: a warning, and every lookup fails.",
    show: (c) => c.idp.keycloak?.clientSecret,
  },
  client_secret_file: secretFileRow("client secret", "/etc/mailcloak/client_secret"),
  cache_ttl_seconds: ttlRow("keycloak", TTL_MAX, "How long a \"user found\" answer is reused, in seconds.",
    "0 or less means 120, as in the Go version; a fraction is truncated."),
  timeout_ms: {
    ...IDP_TIMEOUT, reload: "applies",
    meaning: "Deadline of each Keycloak HTTP request (token or user query), in milliseconds.",
    notes: "Well inside Postfix's 100 s policy and socketmap limits.",
    show: (c) => c.idp.keycloak?.timeoutMs,
  },
});

export const IDP_AUTHENTIK = section({
  path: "idp.authentik", doc: "idp", commented: true, intro: "With provider: authentik (see README \"Authentik\").",
  readme: "An `idp.authentik` block is read only with `provider: authentik`; with another provider it is checked for unknown keys and otherwise ignored (the Go sample carries one).",
}, {
  base_url: {
    type: "url", reload: "applies", defaultText: "required with `provider: authentik`", example: "https://authentik.example.org",
    meaning: "Server root (http:// or https://), without /api/v3.",
    notes: "A trailing `/` is removed.",
    show: (c) => c.idp.authentik?.baseUrl,
  },
  api_token: {
    type: "string", reload: "applies", defaultText: "required with `provider: authentik`", example: "change-me", redact: "secret", env: "MAILCLOAK_AUTHENTIK_API_TOKEN",
    meaning: "Key of an API token whose user may view users; or api_token_file, or the environment variable (which wins). Never logged.",
    notes: "See [Authentik](#authentik). Not together with `api_token_file`.",
    show: (c) => c.idp.authentik?.apiToken,
  },
  api_token_file: secretFileRow("API token", "/etc/mailcloak/authentik_token"),
  cache_ttl_seconds: ttlRow("authentik", TTL_MAX, "As idp.keycloak.cache_ttl_seconds, with provider: authentik."),
  timeout_ms: {
    ...IDP_TIMEOUT, reload: "applies",
    meaning: "Deadline of each Authentik HTTP request (one page of users), in milliseconds.",
    show: (c) => c.idp.authentik?.timeoutMs,
  },
});

export const IDP_STATIC = section({ path: "idp.static", doc: "idp", commented: true, intro: "With provider: static (development and tests)." }, {
  users: {
    type: "list", default: [], reload: "applies",
    example: [{ username: "alice", email: "alice@example.org", enabled: true, attributes: { mailSendAllowed: "true" } }],
    meaning: "The users: entries {username, email, enabled (default true), attributes (name: value or list)}.",
    notes: "Usernames and emails are lower-cased. The `idp.static` section is required when `provider: static`.",
    show: (c) => (c.idp.provider === "static" ? c.idp.staticUsers.map((u) => ({ username: u.username, email: u.email, enabled: u.enabled, attributes: u.attributes })) : undefined),
  },
  cache_ttl_seconds: ttlRow("static", 86_400, "As idp.keycloak.cache_ttl_seconds, with provider: static."),
});

export const SQLITE = section({ path: "sqlite", doc: "sqlite" }, {
  path: {
    type: "path", default: "/var/lib/mailcloak/state.db", reload: "restart",
    meaning: "The database of domains, aliases and app credentials; create it with `mailcloakctl init`.",
    show: (c) => c.sqlite.path,
  },
  busy_timeout_ms: {
    type: "int", default: 5000, min: 0, max: 60_000, reload: "restart",
    meaning: "How long a lookup waits for a mailcloakctl write to finish, in milliseconds.",
    notes: "Those writes are short.",
    show: (c) => c.sqlite.busyTimeoutMs,
  },
});

/** The PostgreSQL settings in effect, or undefined with SQLite. */
const pgOf = (c: Config) => (c.store?.backend === "postgres" ? c.store.postgres : undefined);
const PG_MS = { type: "int", reload: "restart" } as const;

export const STORE = section({
  path: "store", doc: "store",
  intro: "Where domains, aliases and apps live: sqlite (sqlite.path) or one PostgreSQL shared by several MX hosts (docs/several-hosts.md).",
}, {
  backend: {
    type: "enum", values: ["sqlite", "postgres"], default: "sqlite", reload: "restart",
    meaning: "Where the data is: sqlite (the file at sqlite.path) or postgres (the database at url, shared by several hosts).",
    show: (c) => c.store?.backend ?? "sqlite",
  },
  url: {
    type: "url", reload: "restart", defaultText: "required with `backend: postgres`", example: "postgres://mailcloak@127.0.0.1:5432/mailcloak",
    commented: true, redact: "url",
    meaning: "postgres://USER@HOST:PORT/DATABASE; a password in it is taken out (with a warning) and never shown.",
    show: (c) => pgOf(c)?.url,
  },
  password: {
    type: "string", default: "", reload: "restart", commented: true, example: "change-me", redact: "secret", env: "MAILCLOAK_STORE_PASSWORD",
    meaning: "The database user's password; or password_file, or the environment variable (which wins). Never logged.",
    notes: "Not together with `password_file`.",
    show: (c) => pgOf(c)?.password,
  },
  password_file: {
    type: "path", default: "", reload: "restart", commented: true, example: "/etc/mailcloak/store_password",
    meaning: "A file holding the database password (one line).",
    show: () => undefined,
  },
  pool_size: {
    type: "int", default: 4, min: 1, max: 100, reload: "restart",
    meaning: "Connections of mailcloakctl and mailcloak-admin; the daemon reads over one of its own.",
    show: (c) => pgOf(c)?.poolSize,
  },
  query_timeout_ms: {
    ...PG_MS, default: 5000, min: 100, max: 60_000,
    meaning: "Deadline of each query, on the server (statement_timeout) and in the driver, in ms.",
    show: (c) => pgOf(c)?.queryTimeoutMs,
  },
  connect_timeout_ms: { ...PG_MS, default: 3000, min: 100, max: 60_000, meaning: "Deadline of each connection attempt, in ms.", show: (c) => pgOf(c)?.connectTimeoutMs },
  check_interval_ms: {
    ...PG_MS, default: 250, min: 50, max: 500,
    meaning: "How often the daemon compares its copy's version with the server's (a lost notification is caught within this), in ms.",
    show: (c) => pgOf(c)?.checkIntervalMs,
  },
  max_stale_ms: {
    ...PG_MS, default: 1000, min: 500, max: 60_000,
    meaning: "A copy the server has not confirmed for this long is not used: 451 4.3.0 / TEMP until it is; at least twice check_interval_ms.",
    show: (c) => pgOf(c)?.maxStaleMs,
  },
});

export const POLICY = section({ path: "policy", doc: "policy", reloadNote: "a new send_allowed_attribute empties the cache" }, {
  idp_failure_mode: {
    type: "enum", values: ["tempfail", "dunno"], default: "tempfail", reload: "applies",
    meaning: "When the IdP cannot answer and no usable cached answer exists: tempfail defers (451 4.3.0, socketmap TEMP), dunno fails open.",
    notes: "See [Failure handling](#failure-handling). Case is ignored; any other value means `tempfail` (as in the Go version), with a warning.",
    show: (c) => c.policy.failureMode,
  },
  recipient_delimiter: {
    type: "string", default: "+", reload: "applies",
    meaning: "Postfix's recipient_delimiter (a set of characters): extensions (user+tag@) are stripped before lookups; \"\" disables them.",
    notes: "Keep it equal to main.cf. No whitespace or `@`.",
    show: (c) => c.policy.recipientDelimiter,
  },
  send_allowed_attribute: {
    type: "string", default: "", reload: "applies", defaultText: "`\"\"` (off)",
    meaning: `${ATTRIBUTE}; when one of its values is "false" the user still receives mail but may not send. Empty: no sending control.`,
    notes: "For Authentik, a key of the user's `attributes` (see [Authentik](#authentik)). `false` is compared case-insensitively.",
    show: (c) => c.policy.sendAllowedAttribute ?? "",
  },
});

export const CACHE = section({ path: "cache", doc: "cache", reloadNote: "for answers cached from then on" }, {
  max_entries: {
    type: "int", default: 50_000, min: 10, max: 10_000_000, reload: "restart",
    meaning: "Most IdP answers kept in memory (about 0.3 KB of heap each).",
    notes: "The service files cap the V8 heap (`NODE_OPTIONS`, 96 MB old space): above ~100,000 raise `--max-old-space-size` too; mailcloak warns at start when the bound does not fit the heap.",
    show: (c) => c.cache.maxEntries,
  },
  negative_ttl_seconds: {
    type: "int", default: 30, min: 0, max: 86_400, reload: "applies", defaultText: "30, or the positive TTL if that is smaller",
    meaning: "How long a \"no such user\" answer is reused, in seconds; 0: never cached.",
    notes: "Short, so a user created in the IdP gets mail within half a minute.",
    show: (c) => c.cache.negativeTtlSeconds,
  },
  stale_seconds: {
    type: "int", default: 300, min: 0, max: 86_400, reload: "applies",
    meaning: "While the IdP fails, an answer is still used up to this long after its TTL ran out; then idp_failure_mode applies.",
    show: (c) => c.cache.staleSeconds,
  },
});

export const SOCKETS = section({
  path: "sockets", doc: "sockets",
  intro: "A Unix socket path (inside the Postfix chroot), unix:PATH, or inet:HOST:PORT / HOST:PORT for TCP (unauthenticated: loopback only).",
}, {
  policy_socket: {
    type: "address", default: "/var/spool/postfix/private/mailcloak-policy", reload: "restart",
    meaning: "The policy delegation listener.",
    show: (c) => describeAddress(c.sockets.policy),
  },
  socketmap_socket: {
    type: "address", default: "/var/spool/postfix/private/mailcloak-socketmap", reload: "restart",
    meaning: "The socketmap listener; must differ from the policy socket.",
    show: (c) => describeAddress(c.sockets.socketmap),
  },
  socket_owner_user: {
    type: "user", default: "", reload: "restart", example: "postfix",
    defaultText: "`postfix` when started as root and that user exists, else the process's",
    meaning: "Owner of the Unix socket files; Postfix's daemons must be able to connect.",
    show: (c) => c.sockets.ownerUser ?? "",
  },
  socket_owner_group: {
    type: "group", default: "", reload: "restart", example: "postfix",
    defaultText: "`postfix` when started as root and that group exists, else the process's",
    meaning: "Group of the Unix socket files.",
    show: (c) => c.sockets.ownerGroup ?? "",
  },
  socket_mode: {
    type: "octal", default: "0660", reload: "restart",
    meaning: "Mode of the Unix socket files, octal (\"0660\", 0660, 0o660 and 660 are the same); mailcloak warns when a world-writable socket is reachable.",
    notes: "Bits above 0777 are ignored (warning). World-writable modes such as Postfix's own `0666` are accepted; see below.",
    show: (c) => "0" + c.sockets.mode.toString(8),
  },
});

export const DAEMON = section({ path: "daemon", doc: "daemon" }, {
  user: {
    type: "user", default: "", reload: "restart", example: "mailcloak", defaultText: "`mailcloak` (the Go version's default)",
    meaning: "When started as root: after binding the sockets and opening the DB, run as this user with its groups; root stays root (warning).",
    notes: "Unset and no user `mailcloak`: the start is refused. Ignored when not started as root.",
    show: (c) => c.daemon.user ?? "",
  },
  allow_root: {
    type: "bool", default: false, reload: "restart",
    meaning: "With user unset: keep running as root (one warning) instead of switching to mailcloak. Not recommended.",
    show: (c) => c.daemon.allowRoot,
  },
  pid_file: {
    type: "path", default: "", reload: "restart", example: "/run/mailcloak/mailcloak.pid",
    meaning: "Written at start (as root, mode 0644) and removed at stop; `mailcloakctl cache flush` finds the daemon by it.",
    show: (c) => c.daemon.pidFile ?? "",
  },
  shutdown_grace_ms: {
    type: "int", default: 5000, min: 0, max: 600_000, reload: "applies",
    meaning: "On SIGTERM/SIGINT, how long in-flight requests may take before the remaining connections are closed, in ms.",
    show: (c) => c.daemon.shutdownGraceMs,
  },
});

export const LIMITS = section({ path: "limits", doc: "daemon", intro: "Per listener.", reloadNote: "new connections; max_connections at the next accept" }, {
  max_connections: {
    type: "int", default: 1024, min: 1, max: 100_000, reload: "applies",
    meaning: "Open connections per listener; more are closed at once and counted.",
    notes: "More than Postfix's `default_process_limit` (100) times the kinds of process that connect.",
    show: (c) => c.limits.maxConnections,
  },
  idle_timeout_seconds: {
    type: "int", default: 330, min: 1, max: 86_400, reload: "applies",
    meaning: "Close a connection with no request in progress after this, in seconds.",
    notes: "Longer than `smtpd_policy_service_max_idle` (300 s): if mailcloak closed first, Postfix would find a dead connection and pay a 1 s retry.",
    show: (c) => c.limits.idleTimeoutSeconds,
  },
  read_timeout_seconds: {
    type: "int", default: 10, min: 1, max: 3_600, reload: "applies",
    meaning: "A request that has started must be complete within this, in seconds, or the connection is closed.",
    notes: "Postfix writes each request at once.",
    show: (c) => c.limits.readTimeoutSeconds,
  },
  max_request_bytes: {
    type: "int", default: 65_536, min: 1024, max: 16 * 1024 * 1024, reload: "applies",
    meaning: "Largest policy request or socketmap frame; a larger one closes the connection.",
    notes: "Postfix's socketmap queries stop at 10000 bytes; policy requests are a few hundred.",
    show: (c) => c.limits.maxRequestBytes,
  },
});

export const LOG = section({ path: "log", doc: "daemon" }, {
  level: {
    type: "enum", values: ["trace", "debug", "info", "warn", "error", "fatal", "silent"], default: "info", reload: "applies",
    meaning: "info logs one line per policy decision; debug adds one per socketmap lookup.",
    show: (c) => c.log.level,
  },
});

export const METRICS = section({ path: "metrics", doc: "daemon" }, {
  listen: {
    type: "host:port", default: "", reload: "restart", defaultText: "`\"\"` (off)",
    meaning: "Serve Prometheus /metrics, /health and /ready over HTTP on HOST:PORT (no authentication: bind to loopback); empty: off.",
    show: (c) => (c.metrics.listen ? describeHostPort(c.metrics.listen) : ""),
  },
});

const QUOTA_LIMIT = { type: "int", default: 0, min: 0, max: 1_000_000_000, reload: "applies", defaultText: "`0` (unlimited)" } as const;
const QUOTA_ATTRIBUTE = { type: "string", default: "", reload: "applies", defaultText: "`\"\"` (not read)" } as const;

export const QUOTAS = section({
  path: "quotas", doc: "quotas",
  intro: "Outbound limits per SMTP login, checked at the end of each authenticated message (see README \"Outbound quotas\").",
}, {
  per_hour: { ...QUOTA_LIMIT, meaning: "Messages per hour and login; 0: unlimited.", show: (c) => c.quotas.defaults.per_hour },
  per_day: { ...QUOTA_LIMIT, meaning: "Messages per day and login; 0: unlimited.", show: (c) => c.quotas.defaults.per_day },
  recipients_per_hour: { ...QUOTA_LIMIT, meaning: "Recipients per hour and login, summed over all messages; 0: unlimited.", show: (c) => c.quotas.defaults.recipients_per_hour },
  per_hour_attribute: {
    ...QUOTA_ATTRIBUTE, meaning: `${ATTRIBUTE} overriding per_hour for its user (a whole number); empty: not read.`,
    notes: "`mailcloakctl quota set` overrides both.", show: (c) => c.quotas.attributes.per_hour ?? "",
  },
  per_day_attribute: { ...QUOTA_ATTRIBUTE, meaning: `${ATTRIBUTE} overriding per_day for its user; empty: not read.`, show: (c) => c.quotas.attributes.per_day ?? "" },
  recipients_per_hour_attribute: {
    ...QUOTA_ATTRIBUTE, meaning: `${ATTRIBUTE} overriding recipients_per_hour for its user; empty: not read.`, show: (c) => c.quotas.attributes.recipients_per_hour ?? "",
  },
  message: {
    type: "string", default: "Sending quota exceeded, try again later", reload: "applies",
    meaning: "Text of the refusal, after \"450 4.7.1 \" (one line, 1-400 characters).",
    show: (c) => c.quotas.message,
  },
  failure_mode: {
    type: "enum", values: ["open", "closed"], default: "open", reload: "applies",
    meaning: "When the counters cannot be read or written: open lets the message through (counted in a metric), closed defers it (451 4.3.0).",
    show: (c) => c.quotas.failureMode,
  },
  backend: {
    type: "enum", values: ["sqlite", "redis"], default: "sqlite", reload: "restart",
    meaning: "Where the counters are: sqlite (a file on this host) or redis (shared by several MX hosts).",
    show: (c) => c.quotas.backend,
  },
  sqlite_path: {
    type: "path", default: "", reload: "restart", defaultText: "`quota.db` beside `sqlite.path`",
    meaning: "The SQLite counter file (created by the daemon); empty: quota.db in the directory of sqlite.path.",
    show: (c) => c.quotas.sqlitePath,
  },
});

export const QUOTAS_REDIS = section({ path: "quotas.redis", doc: "quotas" }, {
  url: {
    type: "url", default: "redis://127.0.0.1:6379/0", reload: "restart", redact: "url",
    meaning: "A redis:// or rediss:// URL; a password in it is redacted in check-config and logs.",
    show: (c) => c.quotas.redis.url,
  },
  key_prefix: {
    type: "string", default: "mailcloak:quota:", reload: "restart",
    meaning: "Prefix of every counter key (no whitespace).",
    show: (c) => c.quotas.redis.keyPrefix,
  },
  timeout_ms: {
    type: "int", default: 500, min: 10, max: 10_000, reload: "restart",
    meaning: "Deadline of each Redis command and connection attempt, in ms; past it failure_mode applies.",
    notes: "Well inside Postfix's 10 s policy timeout of postfix-main.cf.",
    show: (c) => c.quotas.redis.timeoutMs,
  },
});

const LIST_ATTRIBUTE = { type: "string", reload: "restart" } as const;
/** Who may write to a list (lists.default_posting and the subgroups' posting attribute). */
export const POSTINGS = ["anyone", "members", "local"] as const;

export const LISTS = section({
  path: "lists", doc: "lists",
  intro: "Distribution lists from Keycloak groups (see README \"Distribution lists\"); off while parent_group is empty.",
}, {
  parent_group: {
    type: "string", default: "", reload: "restart", defaultText: "`\"\"` (off)", example: "",
    meaning: "The Keycloak group whose direct subgroups are lists, e.g. /lists; empty: lists are off (Keycloak only).",
    notes: "See [Distribution lists](#distribution-lists-keycloak-groups-and-delegated-senders).",
    show: (c) => c.lists?.parentGroup ?? "",
  },
  address_attribute: { ...LIST_ATTRIBUTE, default: "mail", meaning: "The subgroup attribute holding the list's address.", show: (c) => c.lists?.addressAttribute },
  posting_attribute: {
    ...LIST_ATTRIBUTE, default: "mailPosting", meaning: "The subgroup attribute saying who may write to the list: anyone, members or local.",
    show: (c) => c.lists?.postingAttribute,
  },
  default_posting: {
    type: "enum", values: POSTINGS, default: "members", reload: "restart",
    meaning: "Who may write to a list that does not say.",
    show: (c) => c.lists?.defaultPosting,
  },
  send_as_attribute: {
    ...LIST_ATTRIBUTE, default: "mailSendAs", meaning: "The subgroup attribute naming who may send as the list: members, or a group path; absent: nobody.",
    show: (c) => c.lists?.sendAsAttribute,
  },
  page_size: {
    type: "int", default: 500, min: 10, max: 5000, reload: "restart",
    meaning: "Groups and members read per Keycloak request.",
    show: (c) => c.lists?.pageSize,
  },
});

/** Every section, in the sample's order (a sub-section after its parent's rows). */
export const SECTIONS: readonly SectionDef[] = [
  IDP, IDP_KEYCLOAK, IDP_AUTHENTIK, IDP_STATIC, SQLITE, STORE, POLICY, CACHE, SOCKETS, DAEMON, LIMITS, LOG, METRICS, QUOTAS, QUOTAS_REDIS, LISTS,
];

/** Every setting, in the same order. */
export const SETTINGS: readonly Setting[] = SECTIONS.flatMap((s) => s.rows);

/**
 * Keys of the Go mailcloak's older layout, read as their current
 * equivalents (load.ts says how); not written in the sample.
 */
export interface OlderKey {
  readonly key: string;
  readonly current: string;
  readonly notes: string;
  /** What check-config shows for it, when it has no current key. */
  readonly show?: (c: Config) => YamlValue | undefined;
}

export const OLDER_KEYS: readonly OlderKey[] = [
  {
    key: "keycloak.*", current: "idp.keycloak.*",
    notes: "The top-level section, same sub-keys; implies `provider: keycloak`. Together with `idp.keycloak`, the `idp.keycloak` keys win and these fill in the empty ones, as in the Go version.",
  },
  { key: "policy.cache_ttl_seconds", current: "idp.keycloak.cache_ttl_seconds", notes: "Or the active provider's. When both are set, the provider section's wins (warning if they differ)." },
  { key: "policy.keycloak_failure_mode", current: "policy.idp_failure_mode", notes: "When both are set, `idp_failure_mode` wins (warning if they differ)." },
  { key: "policy.domain", current: "a `domains` row", notes: "A domain that is always local, in addition to the enabled domains in the DB.", show: (c) => c.policy.localDomains[0] },
];

/** Defaults by name, for modules that need one without a config (CLI fallbacks, bench). */
export const DEFAULTS = {
  cacheTtlSeconds: IDP_KEYCLOAK.settings.cache_ttl_seconds.default,
  negativeTtlSeconds: CACHE.settings.negative_ttl_seconds.default,
  cacheMaxEntries: CACHE.settings.max_entries.default,
  staleSeconds: CACHE.settings.stale_seconds.default,
  keycloakTimeoutMs: IDP_KEYCLOAK.settings.timeout_ms.default,
  recipientDelimiter: POLICY.settings.recipient_delimiter.default,
  sqlitePath: SQLITE.settings.path.default,
  busyTimeoutMs: SQLITE.settings.busy_timeout_ms.default,
  policySocket: SOCKETS.settings.policy_socket.default,
  socketmapSocket: SOCKETS.settings.socketmap_socket.default,
  socketMode: SOCKETS.settings.socket_mode.default,
  /** The Go release's daemon.user when the key is unset (used when started as root). */
  daemonUser: "mailcloak",
  shutdownGraceMs: DAEMON.settings.shutdown_grace_ms.default,
  maxConnections: LIMITS.settings.max_connections.default,
  idleTimeoutSeconds: LIMITS.settings.idle_timeout_seconds.default,
  readTimeoutSeconds: LIMITS.settings.read_timeout_seconds.default,
  maxRequestBytes: LIMITS.settings.max_request_bytes.default,
  /** The quota counter file, beside sqlite.path. */
  quotaFileName: "quota.db",
  quotaMessage: QUOTAS.settings.message.default,
  redisUrl: QUOTAS_REDIS.settings.url.default,
  redisKeyPrefix: QUOTAS_REDIS.settings.key_prefix.default,
  redisTimeoutMs: QUOTAS_REDIS.settings.timeout_ms.default,
  storePoolSize: STORE.settings.pool_size.default,
  storeQueryTimeoutMs: STORE.settings.query_timeout_ms.default,
  storeConnectTimeoutMs: STORE.settings.connect_timeout_ms.default,
  storeCheckIntervalMs: STORE.settings.check_interval_ms.default,
  storeMaxStaleMs: STORE.settings.max_stale_ms.default,
  storePasswordEnv: STORE.settings.password.env,
} as const;
