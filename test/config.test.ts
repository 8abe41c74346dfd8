// Config loading: both layouts of the Go mailcloak, the static provider,
// defaults, one-line errors that name the file and the key, secrets from a
// file or the environment, and the real `mailcloak` CLI.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, test } from "node:test";
import { stringify } from "yaml";
import { ConfigError, parseConfig, parseListenAddress } from "../src/config/load.js";
import type { Config, ListenAddress } from "../src/config/types.js";

const FILE = "x.yaml";
const SECRET = "kc-Secret-42-do-not-print";

const tmp = mkdtempSync(join(tmpdir(), "mailcloak-config-test-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The current layout of the Go mailcloak (idp.provider + idp.keycloak). */
const GO_CURRENT = `# /etc/mailcloak/config.yaml
daemon:
  user: "mailcloak"

idp:
  provider: "keycloak"
  keycloak:
    base_url: "https://sso.example.com/"
    realm: "mail"
    client_id: "mailcloak"
    client_secret: "${SECRET}"
    cache_ttl_seconds: 90

sqlite:
  path: "/var/lib/mailcloak/state.db"

policy:
  # "tempfail" (451) or "dunno" (fail open)
  idp_failure_mode: "dunno"

sockets:
  policy_socket: "/var/spool/postfix/private/mailcloak-policy"
  socketmap_socket: "/var/spool/postfix/private/mailcloak-socketmap"
  socket_owner_user: "postfix"
  socket_owner_group: "postfix"
  socket_mode: "0660"
`;

/** The older layout: top-level keycloak, policy.domain, policy.cache_ttl_seconds. */
const GO_OLDER = `keycloak:
  base_url: "https://sso.example.com/"
  realm: "mail"
  client_id: "mailcloak"
  client_secret: "${SECRET}"
  # admin API is derived: {base_url}/admin/realms/{realm}

sqlite:
  path: "/var/lib/mailcloak/state.db"

policy:
  domain: "Example.COM"
  cache_ttl_seconds: 90
  keycloak_failure_mode: "dunno"

sockets:
  policy_socket: "/var/spool/postfix/private/mailcloak-policy"
  socketmap_socket: "/var/spool/postfix/private/mailcloak-socketmap"
  socket_owner_user: "postfix"
  socket_owner_group: "postfix"
  socket_mode: "0660"
`;

/** The Go sample with an authentik block left in while provider is keycloak. */
const GO_WITH_AUTHENTIK = GO_CURRENT.replace(
  "\nsqlite:",
  `  authentik:
    base_url: "https://auth.example.com"
    api_token: "ak-token"
    cache_ttl_seconds: 60

sqlite:`,
);

const LIMIT_DEFAULTS = { maxConnections: 1024, idleTimeoutSeconds: 330, readTimeoutSeconds: 10, maxRequestBytes: 65_536 };

const GO_MODEL: Config = {
  file: FILE,
  warnings: [],
  idp: {
    provider: "keycloak",
    keycloak: { baseUrl: "https://sso.example.com", realm: "mail", clientId: "mailcloak", clientSecret: SECRET, timeoutMs: 2000 },
    authentik: null,
    staticUsers: [],
  },
  cache: { ttlSeconds: 90, negativeTtlSeconds: 30, maxEntries: 50_000, staleSeconds: 300 },
  sqlite: { path: "/var/lib/mailcloak/state.db", busyTimeoutMs: 5000 },
  policy: { failureMode: "dunno", recipientDelimiter: "+", sendAllowedAttribute: null, localDomains: [] },
  sockets: {
    policy: { kind: "unix", path: "/var/spool/postfix/private/mailcloak-policy" },
    socketmap: { kind: "unix", path: "/var/spool/postfix/private/mailcloak-socketmap" },
    ownerUser: "postfix",
    ownerGroup: "postfix",
    mode: 0o660,
  },
  daemon: { user: "mailcloak", allowRoot: false, pidFile: null, shutdownGraceMs: 5000 },
  limits: LIMIT_DEFAULTS,
  log: { level: "info" },
  metrics: { listen: null },
  quotas: {
    defaults: { per_hour: 0, per_day: 0, recipients_per_hour: 0 },
    attributes: { per_hour: null, per_day: null, recipients_per_hour: null },
    message: "Sending quota exceeded, try again later",
    failureMode: "open",
    backend: "sqlite",
    sqlitePath: "/var/lib/mailcloak/quota.db",
    redis: { url: "redis://127.0.0.1:6379/0", keyPrefix: "mailcloak:quota:", timeoutMs: 500 },
  },
};

/** A small valid config as a plain object, for variants. */
function base(): Record<string, Record<string, unknown>> {
  return {
    idp: {
      provider: "keycloak",
      keycloak: { base_url: "https://sso.example.com", realm: "mail", client_id: "mailcloak", client_secret: SECRET },
    },
    sqlite: { path: "/tmp/state.db" },
    sockets: { policy_socket: "/tmp/p.sock", socketmap_socket: "/tmp/s.sock" },
  };
}

function kc(obj: Record<string, Record<string, unknown>>): Record<string, unknown> {
  return obj.idp!.keycloak as Record<string, unknown>;
}

const parse = (obj: unknown, env: NodeJS.ProcessEnv = {}): Config => parseConfig(stringify(obj), FILE, env);

function staticOnly(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { idp: { provider: "static", static: { users: [] } }, ...extra };
}

/**
 * With the provider section's cache_ttl_seconds at `ttl`, the older
 * policy.cache_ttl_seconds (90) loses, with a warning that names the new key.
 */
function assertSectionTtlWins(o: Record<string, Record<string, unknown>>, provider: "keycloak" | "authentik", ttl: number): void {
  (o.idp![provider] as Record<string, unknown>).cache_ttl_seconds = ttl;
  const got = parse({ ...o, policy: { cache_ttl_seconds: 90 } });
  assert.equal(got.cache.ttlSeconds, ttl);
  assertWarnings(got, [`policy.cache_ttl_seconds: is the older name of idp.${provider}.cache_ttl_seconds`]);
}

describe("parseConfig: layouts", () => {
  test("the current Go layout maps to the expected model", () => {
    assert.deepEqual(parseConfig(GO_CURRENT, FILE), GO_MODEL);
  });

  test("the older Go layout maps to the same model (domain, TTL and failure mode carried over)", () => {
    const got = parseConfig(GO_OLDER, FILE);
    const want: Config = {
      ...GO_MODEL,
      policy: { ...GO_MODEL.policy, localDomains: ["example.com"] },
      daemon: { ...GO_MODEL.daemon, user: null },
    };
    assert.deepEqual(got, want);
  });

  test("the older layout's failure mode and TTL are really read (not defaults)", () => {
    const got = parseConfig(GO_OLDER.replace('"dunno"', '"tempfail"').replace("cache_ttl_seconds: 90", "cache_ttl_seconds: 45"), FILE);
    assert.equal(got.policy.failureMode, "tempfail");
    assert.equal(got.cache.ttlSeconds, 45);
    assert.equal(got.cache.negativeTtlSeconds, 30);
  });

  test("an idp.authentik block is accepted (and ignored) while provider is keycloak", () => {
    const got = parseConfig(GO_WITH_AUTHENTIK, FILE);
    assert.ok(GO_WITH_AUTHENTIK.includes("authentik:"));
    assert.deepEqual(got, GO_MODEL);
  });

  test("provider authentik in the Go layout: its settings and cache TTL are read, a keycloak block's TTL is not", () => {
    const got = parseConfig(GO_WITH_AUTHENTIK.replace('provider: "keycloak"', 'provider: "authentik"'), FILE);
    assert.deepEqual(got, {
      ...GO_MODEL,
      idp: { ...GO_MODEL.idp, provider: "authentik", authentik: { baseUrl: "https://auth.example.com", apiToken: "ak-token", timeoutMs: 2000 } },
      cache: { ...GO_MODEL.cache, ttlSeconds: 60 },
    });
  });

  test("provider authentik alone: base_url without trailing slash, timeout_ms read, cache TTL 120 as in the Go version", () => {
    const obj = akBase();
    ak(obj).timeout_ms = 700;
    const got = parse(obj);
    assert.deepEqual(got.idp.authentik, { baseUrl: "https://auth.example.com", apiToken: AK_TOKEN, timeoutMs: 700 });
    assert.equal(got.cache.ttlSeconds, 120);
  });

  test("a leftover idp.authentik block is still checked for typos (a warning, as for every unknown key)", () => {
    assertWarnings(parseConfig(GO_WITH_AUTHENTIK.replace("api_token:", "api_tokn:"), FILE), ["idp.authentik.api_tokn: unknown key"]);
  });

  test("Authentik keys as the Go release reads them: an unknown key warns, a TTL of 0 is the default, the section's TTL beats policy.cache_ttl_seconds", () => {
    const unknown = akBase();
    ak(unknown).realm = "x";
    assertWarnings(parse(unknown), ["idp.authentik.realm: unknown key"]);
    const zero = akBase();
    ak(zero).cache_ttl_seconds = 0;
    assert.equal(parse(zero).cache.ttlSeconds, 120);
    assertSectionTtlWins(akBase(), "authentik", 60);
  });

  test("the provider name is case-insensitive", () => {
    const got = parseConfig(GO_CURRENT.replace('provider: "keycloak"', 'provider: " KeyCloak "'), FILE);
    assert.equal(got.idp.provider, "keycloak");
  });

  test("static provider with users: names lower-cased, scalar attributes become lists", () => {
    const text = `idp:
  provider: static
  static:
    users:
      - username: Alice
        email: Alice@D1.test
        attributes:
          mailSendAllowed: "true"
          groups: [staff, admins]
          quota: 5
      - { username: carol, enabled: false }
`;
    const got = parseConfig(text, FILE);
    assert.equal(got.idp.provider, "static");
    assert.equal(got.idp.keycloak, null);
    assert.deepEqual(got.idp.staticUsers, [
      { username: "alice", email: "alice@d1.test", enabled: true, attributes: { mailSendAllowed: ["true"], groups: ["staff", "admins"], quota: ["5"] } },
      { username: "carol", email: null, enabled: false, attributes: {} },
    ]);
  });

  test("the shipped sample config is valid and shows the defaults", () => {
    const root = fileURLToPath(new URL("../../", import.meta.url));
    const got = parseConfig(readFileSync(join(root, "configs/config.yaml.sample"), "utf8"), "configs/config.yaml.sample");
    assert.equal(got.idp.provider, "keycloak");
    assert.deepEqual(got.cache, { ttlSeconds: 120, negativeTtlSeconds: 30, maxEntries: 50_000, staleSeconds: 300 });
    assert.deepEqual(got.limits, LIMIT_DEFAULTS);
    assert.equal(got.sockets.mode, 0o660);
  });

  test("the repository's dev config is valid", () => {
    const root = fileURLToPath(new URL("../../", import.meta.url));
    const got = parseConfig(readFileSync(join(root, "configs/dev.yaml"), "utf8"), "configs/dev.yaml");
    assert.equal(got.idp.provider, "static");
    assert.deepEqual(got.idp.staticUsers.map((u) => u.username), ["alice", "bob", "carol"]);
    assert.deepEqual(got.idp.staticUsers[1]!.attributes, { mailSendAllowed: ["false"] });
    assert.equal(got.policy.sendAllowedAttribute, "mailSendAllowed");
  });
});

describe("parseConfig: values", () => {
  const modes: Array<[string, number]> = [["0660", 0o660], ["660", 0o660], ["0640", 0o640], ["0600", 0o600], ["0750", 0o750], ["0664", 0o664]];
  for (const [text, want] of modes) {
    test(`socket_mode ${JSON.stringify(text)} is octal ${want.toString(8)}`, () => {
      assert.equal(parse(staticOnly({ sockets: { socket_mode: text } })).sockets.mode, want);
    });
  }

  test("socket_mode written unquoted as in a Go config (0660) is read as octal 660",
    () => {
      const got = parseConfig("idp:\n  provider: static\n  static:\n    users: []\nsockets:\n  socket_mode: 0660\n", FILE);
      assert.equal(got.sockets.mode, 0o660);
    });

  const listens: Array<{ text: string; want: ListenAddress }> = [
    { text: "inet:127.0.0.1:10001", want: { kind: "tcp", host: "127.0.0.1", port: 10001 } },
    { text: "127.0.0.1:10001", want: { kind: "tcp", host: "127.0.0.1", port: 10001 } },
    { text: "localhost:12345", want: { kind: "tcp", host: "localhost", port: 12345 } },
    { text: "inet:[::1]:10003", want: { kind: "tcp", host: "::1", port: 10003 } },
    { text: "/var/spool/postfix/private/p", want: { kind: "unix", path: "/var/spool/postfix/private/p" } },
    { text: "unix:/run/mailcloak/p.sock", want: { kind: "unix", path: "/run/mailcloak/p.sock" } },
    { text: "./var/p.sock", want: { kind: "unix", path: "./var/p.sock" } },
  ];
  for (const { text, want } of listens) {
    test(`policy_socket ${JSON.stringify(text)}`, () => {
      const got = parse(staticOnly({ sockets: { policy_socket: text, socketmap_socket: "inet:127.0.0.1:9" } }));
      assert.deepEqual(got.sockets.policy, want);
      assert.deepEqual(parseListenAddress(text), want);
    });
  }

  test("both sockets on TCP", () => {
    const got = parse(staticOnly({ sockets: { policy_socket: "inet:127.0.0.1:10001", socketmap_socket: "127.0.0.1:10002" } }));
    assert.deepEqual(got.sockets.policy, { kind: "tcp", host: "127.0.0.1", port: 10001 });
    assert.deepEqual(got.sockets.socketmap, { kind: "tcp", host: "127.0.0.1", port: 10002 });
  });

  const badListens = ["", "inet:", "inet:127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "unix:", "host:port"];
  for (const text of badListens) {
    test(`parseListenAddress(${JSON.stringify(text)}) is null`, () => assert.equal(parseListenAddress(text), null));
  }

  test("defaults are filled in", () => {
    const got = parse(staticOnly());
    assert.deepEqual(got.cache, { ttlSeconds: 120, negativeTtlSeconds: 30, maxEntries: 50_000, staleSeconds: 300 });
    assert.deepEqual(got.sqlite, { path: "/var/lib/mailcloak/state.db", busyTimeoutMs: 5000 });
    assert.deepEqual(got.policy, { failureMode: "tempfail", recipientDelimiter: "+", sendAllowedAttribute: null, localDomains: [] });
    assert.deepEqual(got.sockets, {
      policy: { kind: "unix", path: "/var/spool/postfix/private/mailcloak-policy" },
      socketmap: { kind: "unix", path: "/var/spool/postfix/private/mailcloak-socketmap" },
      ownerUser: null,
      ownerGroup: null,
      mode: 0o660,
    });
    assert.deepEqual(got.daemon, { user: null, allowRoot: false, pidFile: null, shutdownGraceMs: 5000 });
    assert.deepEqual(got.limits, LIMIT_DEFAULTS);
    assert.deepEqual(got.log, { level: "info" });
    assert.deepEqual(got.metrics, { listen: null });
  });

  test("the negative TTL defaults to at most the positive TTL", () => {
    const got = parse({ ...base(), idp: { keycloak: { ...kc(base()), cache_ttl_seconds: 10 } } });
    assert.deepEqual([got.cache.ttlSeconds, got.cache.negativeTtlSeconds], [10, 10]);
  });

  test("an empty recipient_delimiter disables extensions; a set of characters is kept whole", () => {
    assert.equal(parse(staticOnly({ policy: { recipient_delimiter: "" } })).policy.recipientDelimiter, "");
    assert.equal(parse(staticOnly({ policy: { recipient_delimiter: "+-" } })).policy.recipientDelimiter, "+-");
  });
});

/** A small valid config with the Authentik provider. */
function akBase(): Record<string, Record<string, unknown>> {
  return { ...base(), idp: { provider: "authentik", authentik: { base_url: "https://auth.example.com/", api_token: AK_TOKEN } } };
}

function ak(obj: Record<string, Record<string, unknown>>): Record<string, unknown> {
  return obj.idp!.authentik as Record<string, unknown>;
}

const AK_TOKEN = "ak-Token-7-do-not-print";

/** Each provider's secret: inline, from a file, or from the environment. */
const SECRETS = [
  { key: "idp.keycloak.client_secret", name: "client_secret", env: "MAILCLOAK_KEYCLOAK_CLIENT_SECRET", make: base, section: kc, read: (c: Config) => c.idp.keycloak?.clientSecret },
  { key: "idp.authentik.api_token", name: "api_token", env: "MAILCLOAK_AUTHENTIK_API_TOKEN", make: akBase, section: ak, read: (c: Config) => c.idp.authentik?.apiToken },
];

describe("parseConfig: secrets", () => {
  for (const { key, name, env: envName, make, section, read } of SECRETS) {
    /** The config with the inline secret replaced by `${name}_file`. */
    const fromFile = (file: string): Record<string, Record<string, unknown>> => {
      const obj = make();
      delete section(obj)[name];
      section(obj)[`${name}_file`] = file;
      return obj;
    };

    test(`${key}_file is read and trimmed`, () => {
      const file = join(tmp, `${name}-secret`);
      writeFileSync(file, "from-file-secret\n", { mode: 0o600 });
      assert.equal(read(parse(fromFile(file))), "from-file-secret");
    });

    test(`an unreadable ${key}_file is an error naming the key`, () => {
      assertConfigError(() => parse(fromFile(join(tmp, "does-not-exist"))), `${key}_file`);
    });

    test(`${envName} overrides the config and the file`, () => {
      const env = { [envName]: "from-env" };
      assert.equal(read(parse(make(), env)), "from-env");
      const file = join(tmp, `${name}-secret2`);
      writeFileSync(file, "from-file");
      assert.equal(read(parse(fromFile(file), env)), "from-env");
    });

    test(`the environment alone satisfies a missing ${key}; an empty variable does not`, () => {
      const obj = make();
      delete section(obj)[name];
      const fromEnv = parse(obj, { [envName]: "env-only" });
      assert.equal(read(fromEnv), "env-only");
      assert.deepEqual(fromEnv.warnings, []);
      // Keycloak: as the Go release, no secret is a warning (every lookup then fails); Authentik: an error.
      if (name === "client_secret") assertWarnings(parse(obj, { [envName]: "" }), [`${key}: is not set`]);
      else assertConfigError(() => parse(obj, { [envName]: "" }), key);
    });

    test(`both ${key} and ${key}_file is an error`, () => {
      const obj = make();
      section(obj)[`${name}_file`] = "/etc/mailcloak/secret";
      assertConfigError(() => parse(obj), key);
    });
  }

  test("parseConfig does not read process.env unless it is passed", () => {
    const saved = process.env.MAILCLOAK_KEYCLOAK_CLIENT_SECRET;
    process.env.MAILCLOAK_KEYCLOAK_CLIENT_SECRET = "ambient";
    try {
      assert.equal(parseConfig(GO_CURRENT, FILE).idp.keycloak?.clientSecret, SECRET);
    } finally {
      if (saved === undefined) delete process.env.MAILCLOAK_KEYCLOAK_CLIENT_SECRET;
      else process.env.MAILCLOAK_KEYCLOAK_CLIENT_SECRET = saved;
    }
  });
});

/** The config's warnings are exactly these, in order: one line each, naming the file, each containing its text. */
function assertWarnings(cfg: Config, want: readonly string[]): void {
  assert.equal(cfg.warnings.length, want.length, `warnings: ${JSON.stringify(cfg.warnings)}`);
  cfg.warnings.forEach((w, i) => {
    assert.ok(!w.includes("\n"), `one line: ${JSON.stringify(w)}`);
    assert.ok(w.startsWith(`${FILE}: `), `names the file: ${w}`);
    assert.ok(w.includes(want[i]!), `warning ${i} ${JSON.stringify(w)} should contain ${JSON.stringify(want[i])}`);
  });
}

function assertConfigError(fn: () => unknown, key: string): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `want a ConfigError naming ${key}, got ${String(caught)}`);
  const msg = caught.message;
  assert.ok(!msg.includes("\n"), `one line: ${JSON.stringify(msg)}`);
  assert.ok(msg.startsWith(FILE), `names the file: ${msg}`);
  assert.ok(msg.includes(key), `names ${key}: ${msg}`);
  return caught;
}

describe("parseConfig: errors are one line naming file and key", () => {
  const cases: Array<{ name: string; make: () => unknown; key: string }> = [
    { name: "wrong type: cache_ttl_seconds: abc", make: () => { const o = base(); kc(o).cache_ttl_seconds = "abc"; return o; }, key: "idp.keycloak.cache_ttl_seconds" },
    { name: "wrong type: policy.cache_ttl_seconds: abc (older layout)", make: () => staticOnly({ policy: { cache_ttl_seconds: "abc" } }), key: "policy.cache_ttl_seconds" },
    { name: "out of range: cache.max_entries: 1", make: () => staticOnly({ cache: { max_entries: 1 } }), key: "cache.max_entries" },
    { name: "wrong type: daemon.allow_root: yes-please", make: () => staticOnly({ daemon: { allow_root: "yes-please" } }), key: "daemon.allow_root" },
    { name: "missing idp.keycloak.realm", make: () => { const o = base(); delete kc(o).realm; return o; }, key: "idp.keycloak.realm" },
    { name: "missing idp.keycloak.base_url", make: () => { const o = base(); delete kc(o).base_url; return o; }, key: "idp.keycloak.base_url" },
    { name: "both client_secret and client_secret_file", make: () => { const o = base(); kc(o).client_secret_file = "/etc/mailcloak/secret"; return o; }, key: "idp.keycloak.client_secret" },
    { name: "socket_mode not octal", make: () => ({ ...base(), sockets: { socket_mode: "0680" } }), key: "sockets.socket_mode" },
    { name: "socket_mode as a decimal number (438)", make: () => ({ ...base(), sockets: { socket_mode: 438 } }), key: "sockets.socket_mode" },
    { name: "socket_mode empty after 0o", make: () => ({ ...base(), sockets: { socket_mode: "0o" } }), key: "sockets.socket_mode" },
    { name: "a socket address with a colon that is not HOST:PORT", make: () => ({ ...base(), sockets: { policy_socket: "127.0.0.1:0" } }), key: "sockets.policy_socket" },
    { name: "cache_ttl_seconds quoted (yaml.v3 refuses a string for an int)", make: () => { const o = base(); kc(o).cache_ttl_seconds = "90"; return o; }, key: "idp.keycloak.cache_ttl_seconds" },
    { name: "both sockets on one address", make: () => ({ ...base(), sockets: { policy_socket: "127.0.0.1:1", socketmap_socket: "inet:127.0.0.1:1" } }), key: "sockets.socketmap_socket" },
    { name: "provider authentik without idp.authentik", make: () => ({ ...base(), idp: { provider: "authentik" } }), key: "idp.authentik" },
    { name: "missing idp.authentik.base_url", make: () => { const o = akBase(); delete ak(o).base_url; return o; }, key: "idp.authentik.base_url" },
    { name: "authentik base_url that is not http(s)", make: () => { const o = akBase(); ak(o).base_url = "auth.example.com"; return o; }, key: "idp.authentik.base_url" },
    { name: "missing idp.authentik.api_token", make: () => { const o = akBase(); delete ak(o).api_token; return o; }, key: "idp.authentik.api_token" },
    { name: "api_token with a line break inside", make: () => { const o = akBase(); ak(o).api_token = "abc\ndef"; return o; }, key: "idp.authentik.api_token" },
    { name: "api_token with a non-ASCII character", make: () => { const o = akBase(); ak(o).api_token = "tökén"; return o; }, key: "idp.authentik.api_token" },
    { name: "idp.authentik.timeout_ms: 10", make: () => { const o = akBase(); ak(o).timeout_ms = 10; return o; }, key: "idp.authentik.timeout_ms" },
    { name: "unknown provider", make: () => ({ ...base(), idp: { provider: "ldap" } }), key: "idp.provider" },
    { name: "static provider without users", make: () => ({ idp: { provider: "static" } }), key: "idp.static.users" },
    { name: "static user with a bad email", make: () => ({ idp: { provider: "static", static: { users: [{ username: "a", email: "not-an-email" }] } } }), key: "idp.static.users[0].email" },
    { name: "static user without username", make: () => ({ idp: { provider: "static", static: { users: [{ username: "a" }, { email: "b@d" }] } } }), key: "idp.static.users[1].username" },
    { name: "a section that is not a mapping", make: () => ({ ...base(), sqlite: ["a"] }), key: "sqlite" },
    { name: "delimiter with whitespace", make: () => ({ ...base(), policy: { recipient_delimiter: "+ " } }), key: "policy.recipient_delimiter" },
    { name: "bad metrics.listen", make: () => ({ ...base(), metrics: { listen: "9464" } }), key: "metrics.listen" },
    { name: "bad log.level", make: () => ({ ...base(), log: { level: "verbose" } }), key: "log.level" },
  ];
  for (const { name, make, key } of cases) {
    test(`${name} -> ${key}`, () => {
      assertConfigError(() => parse(make()), key);
    });
  }

  test("no keycloak section and no provider", () => {
    assertConfigError(() => parseConfig("sqlite:\n  path: /tmp/x.db\n", FILE), "idp");
  });

  const invalidYaml: Array<[string, string]> = [
    ["unclosed flow sequence", "idp: [\n"],
    ["bad indentation", "sqlite:\n  path: a\n    busy_timeout_ms: 1\n"],
    ["duplicate key", "sqlite:\n  path: a\nsqlite:\n  path: b\n"],
    ["tab indentation", "sqlite:\n\tpath: a\n"],
  ];
  for (const [name, text] of invalidYaml) {
    test(`invalid YAML (${name}) is a one-line ConfigError naming the file`, () => {
      const err = assertConfigError(() => parseConfig(text, FILE), "invalid YAML");
      assert.ok(err.message.startsWith(`${FILE}:`));
    });
  }

  test("invalid YAML names the line", () => {
    const err = assertConfigError(() => parseConfig("sqlite:\n  path: a\nsqlite:\n  path: b\n", FILE), "invalid YAML");
    assert.match(err.message, /^x\.yaml:3: invalid YAML/);
  });

  test("static provider with a leftover idp.keycloak block that has no client_id is accepted",
    () => {
      const got = parse({ idp: { provider: "static", static: { users: [] }, keycloak: { base_url: "https://sso", realm: "mail" } } });
      assert.equal(got.idp.provider, "static");
    });
});

const FIXTURES = fileURLToPath(new URL("../../test/fixtures/", import.meta.url));
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), "utf8");

describe("parseConfig: every config the Go release accepts is accepted (drop-in)", () => {
  test("the Go sample's layout (fixture go-sample.yaml) loads; its placeholder base_url is the one warning", () => {
    const got = parseConfig(fixture("go-sample.yaml"), FILE);
    assert.equal(got.idp.provider, "keycloak");
    assert.deepEqual(got.idp.keycloak, { baseUrl: "<Keycloak URL>", realm: "<Keycloak Realm>", clientId: "<Client ID>", clientSecret: "<Client Secret>", timeoutMs: 2000 });
    assert.deepEqual(got.policy.localDomains, ["<email domain-name>"]);
    assert.equal(got.cache.ttlSeconds, 120);
    assert.equal(got.daemon.user, "mailcloak");
    assert.equal(got.sockets.mode, 0o660);
    assertWarnings(got, ["keycloak.base_url: should be an http:// or https:// URL"]);
  });

  test("the Go end-to-end suite's layout (0666 sockets, daemon.user root) loads without a warning", () => {
    const got = parseConfig(fixture("go-e2e.yaml"), FILE);
    assert.equal(got.sockets.mode, 0o666);
    assert.equal(got.daemon.user, "root");
    assert.deepEqual([got.sockets.ownerUser, got.sockets.ownerGroup], ["root", "root"]);
    assert.equal(got.cache.ttlSeconds, 1);
    assert.equal(got.policy.failureMode, "tempfail");
    assertWarnings(got, []);
  });

  test("the file the Go setup writes (empty idp.authentik block, TTL 0 in it) loads without a warning", () => {
    const got = parseConfig(fixture("go-setup-written.yaml"), FILE);
    assert.deepEqual(got, { ...GO_MODEL, idp: { ...GO_MODEL.idp, keycloak: { ...GO_MODEL.idp.keycloak!, clientSecret: "kc-setup-secret" } },
      cache: { ...GO_MODEL.cache, ttlSeconds: 120 }, policy: { ...GO_MODEL.policy, failureMode: "tempfail" } });
  });

  test("keys nobody reads are ignored with one warning each, as yaml.v3 ignores them", () => {
    const o = base();
    kc(o).relam = "x";
    const got = parse({ ...o, frobnicate: { a: 1 }, sqlite: { path: "/tmp/state.db", pth: "/tmp/x.db" }, cache: { max_entrie: 5 } });
    assert.equal(got.sqlite.path, "/tmp/state.db");
    assert.equal(got.idp.keycloak?.realm, "mail");
    assertWarnings(got, ["idp.keycloak.relam: unknown key, ignored", "sqlite.pth: unknown key", "cache.max_entrie: unknown key", "frobnicate: unknown key"]);
  });

  test("top-level keycloak together with idp.keycloak: idp.keycloak wins, the older section fills in what is empty", () => {
    const o = base();
    delete kc(o).client_secret;
    kc(o).client_id = "";
    const got = parse({ ...o, keycloak: { base_url: "https://old.example.com", client_id: "old-client", client_secret: "old-secret", cache_ttl_seconds: 60 } });
    assert.deepEqual(got.idp.keycloak, { baseUrl: "https://sso.example.com", realm: "mail", clientId: "old-client", clientSecret: "old-secret", timeoutMs: 2000 });
    assert.equal(got.cache.ttlSeconds, 60);
    assertWarnings(got, ["keycloak: the older top-level section is set together with idp.keycloak"]);
    const same = parse({ ...base(), keycloak: kc(base()) });
    assertWarnings(same, []);
    const noIdpKc = parse({ idp: { provider: "keycloak" }, keycloak: kc(base()) });
    assert.equal(noIdpKc.idp.keycloak?.clientSecret, SECRET);
  });

  test("both failure-mode names: idp_failure_mode wins (a warning when they differ)", () => {
    const same = parse({ ...base(), policy: { keycloak_failure_mode: "dunno", idp_failure_mode: "dunno" } });
    assert.equal(same.policy.failureMode, "dunno");
    assertWarnings(same, []);
    const differ = parse({ ...base(), policy: { keycloak_failure_mode: "dunno", idp_failure_mode: "tempfail" } });
    assert.equal(differ.policy.failureMode, "tempfail");
    assertWarnings(differ, ["policy.keycloak_failure_mode: is the older name"]);
  });

  test("a failure mode other than tempfail or dunno means tempfail, as in the Go release", () => {
    const current = parse({ ...base(), policy: { idp_failure_mode: "reject" } });
    assert.equal(current.policy.failureMode, "tempfail");
    assertWarnings(current, ["policy.idp_failure_mode: \"reject\" is not tempfail or dunno"]);
    const older = parse({ ...base(), policy: { keycloak_failure_mode: "open" } });
    assert.equal(older.policy.failureMode, "tempfail");
    assertWarnings(older, ["policy.keycloak_failure_mode"]);
    assert.equal(parse({ ...base(), policy: { idp_failure_mode: "DUNNO" } }).policy.failureMode, "dunno");
  });

  const ttls: Array<{ name: string; value: number; want: number; warn: string[] }> = [
    { name: "0 means the default 120", value: 0, want: 120, warn: [] },
    { name: "a negative value means the default 120", value: -5, want: 120, warn: [] },
    { name: "a fraction is truncated", value: 90.7, want: 90, warn: [] },
    { name: "a week is kept", value: 604_800, want: 604_800, warn: [] },
    { name: "beyond 2^31-1 s is clamped", value: 1e12, want: 2_147_483_647, warn: ["idp.keycloak.cache_ttl_seconds: 1000000000000 is more than"] },
  ];
  for (const { name, value, want, warn } of ttls) {
    test(`idp.keycloak.cache_ttl_seconds ${value}: ${name}`, () => {
      const o = base();
      kc(o).cache_ttl_seconds = value;
      const got = parse(o);
      assert.equal(got.cache.ttlSeconds, want);
      assertWarnings(got, warn);
    });
  }

  test("policy.cache_ttl_seconds 0 (older layout) means the default; with idp.keycloak's TTL set too, that one wins", () => {
    assert.equal(parse(staticOnly({ policy: { cache_ttl_seconds: 0 } })).cache.ttlSeconds, 120);
    assertSectionTtlWins(base(), "keycloak", 30);
  });

  test("no client_id, no client_secret, a base_url without a scheme: accepted, one warning each", () => {
    const o = base();
    delete kc(o).client_id;
    delete kc(o).client_secret;
    kc(o).base_url = "sso.example.com";
    const got = parse(o);
    assert.deepEqual(got.idp.keycloak, { baseUrl: "sso.example.com", realm: "mail", clientId: "", clientSecret: "", timeoutMs: 2000 });
    assertWarnings(got, ["idp.keycloak.base_url", "idp.keycloak.client_id: is not set", "idp.keycloak.client_secret: is not set"]);
  });

  test("string settings written as numbers keep the text as written (client_secret: 0123)", () => {
    const text = "keycloak:\n  base_url: https://sso\n  realm: 2024\n  client_id: 007\n  client_secret: 0123\ndaemon:\n  user: 1000\n";
    const got = parseConfig(text, FILE);
    assert.deepEqual([got.idp.keycloak?.realm, got.idp.keycloak?.clientId, got.idp.keycloak?.clientSecret, got.daemon.user], ["2024", "007", "0123", "1000"]);
  });

  const goModes: Array<[string, string, number, string[]]> = [
    ["quoted 0666 (Postfix's own private/ sockets)", "\"0666\"", 0o666, []],
    ["unquoted 0666", "0666", 0o666, []],
    ["unquoted 0o666 (a YAML 1.2 octal number)", "0o666", 0o666, []],
    ["quoted 0o660", "\"0o660\"", 0o660, []],
    ["666 without a leading zero", "666", 0o666, []],
    ["leading zeros 00660", "\"00660\"", 0o660, []],
    ["0777", "\"0777\"", 0o777, []],
    ["setuid bits only the permission bits apply", "\"4755\"", 0o755, ["sockets.socket_mode: 4755: only the permission bits (0755)"]],
  ];
  for (const [name, yaml, want, warn] of goModes) {
    test(`socket_mode ${yaml}: ${name}`, () => {
      const got = parseConfig(`idp:\n  provider: static\n  static:\n    users: []\nsockets:\n  socket_mode: ${yaml}\n`, FILE);
      assert.equal(got.sockets.mode, want);
      assertWarnings(got, warn);
    });
  }

  test("relative socket paths are accepted (relative to the working directory), as in the Go release", () => {
    const got = parse(staticOnly({ sockets: { policy_socket: "var/p.sock", socketmap_socket: "socketmap.sock" } }));
    assert.deepEqual(got.sockets.policy, { kind: "unix", path: "var/p.sock" });
    assert.deepEqual(got.sockets.socketmap, { kind: "unix", path: "socketmap.sock" });
  });

  test("YAML merge keys are read as yaml.v3 reads them", () => {
    const text = "defaults: &kc\n  base_url: https://sso\n  realm: mail\n  client_id: c\n  client_secret: s\nkeycloak:\n  <<: *kc\n  realm: other\n";
    const got = parseConfig(text, FILE);
    assert.deepEqual([got.idp.keycloak?.baseUrl, got.idp.keycloak?.realm, got.idp.keycloak?.clientSecret], ["https://sso", "other", "s"]);
    assertWarnings(got, ["defaults: unknown key"]);
  });
});

describe("mailcloak CLI", () => {
  const root = fileURLToPath(new URL("../../", import.meta.url));
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.MAILCLOAK_KEYCLOAK_CLIENT_SECRET;
  delete env.MAILCLOAK_AUTHENTIK_API_TOKEN;

  function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, ["bin/mailcloak", ...args], { cwd: root, env, encoding: "utf8", timeout: 30_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** check-config on `text`, written to `name` in the temp directory. */
  function checkConfig(name: string, text: string): ReturnType<typeof run> & { file: string } {
    const file = join(tmp, name);
    writeFileSync(file, text);
    return { file, ...run(["check-config", file]) };
  }

  test("check-config on a valid config: exit 0, the secret redacted", () => {
    const r = checkConfig("valid.yaml", GO_CURRENT);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.includes("[redacted]"), r.stdout);
    assert.ok(!r.stdout.includes(SECRET), "the secret must not be printed");
    assert.ok(!r.stderr.includes(SECRET), "the secret must not be printed");
    assert.ok(r.stdout.includes("https://sso.example.com"), r.stdout);
    assert.ok(r.stdout.includes("0660"), r.stdout);
  });

  test("check-config with a key nobody reads: exit 0, one warning line on stderr naming the key", () => {
    const r = checkConfig("unknown-key.yaml", GO_CURRENT.replace("  path:", "  pth: /tmp/typo.db\n  path:"));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /: valid\n/);
    assert.match(r.stderr, /^mailcloak: warning: [^\n]*sqlite\.pth: unknown key[^\n]*\n$/, JSON.stringify(r.stderr));
  });

  test("check-config with provider authentik: exit 0, the API token redacted", () => {
    const r = checkConfig("authentik.yaml", stringify(akBase()));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^idp\.authentik\.api_token: "?\[redacted\]"?$/m);
    assert.ok(!r.stdout.includes(AK_TOKEN) && !r.stderr.includes(AK_TOKEN), "the API token must not be printed");
    assert.ok(r.stdout.includes("https://auth.example.com"), r.stdout);
  });

  test("check-config on an invalid config: exit 2, one line on stderr naming the key", () => {
    const r = checkConfig("invalid.yaml", GO_CURRENT.replace('socket_mode: "0660"', 'socket_mode: "0680"'));
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^mailcloak: [^\n]*\n$/, JSON.stringify(r.stderr));
    assert.ok(r.stderr.includes("sockets.socket_mode"), r.stderr);
    assert.ok(r.stderr.includes(r.file), r.stderr);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  });

  test("check-config on a missing file: exit 2, one line", () => {
    const r = run(["check-config", join(tmp, "nope.yaml")]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^mailcloak: [^\n]*nope\.yaml[^\n]*\n$/, JSON.stringify(r.stderr));
  });

  test("--version prints the package.json version", () => {
    const r = run(["--version"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), pkg.version);
  });
});
