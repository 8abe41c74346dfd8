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
  idp: {
    provider: "keycloak",
    keycloak: { baseUrl: "https://sso.example.com", realm: "mail", clientId: "mailcloak", clientSecret: SECRET, timeoutMs: 2000 },
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

describe("parseConfig: secrets", () => {
  test("client_secret_file is read and trimmed", () => {
    const file = join(tmp, "secret");
    writeFileSync(file, "from-file-secret\n", { mode: 0o600 });
    const obj = base();
    delete kc(obj).client_secret;
    kc(obj).client_secret_file = file;
    assert.equal(parse(obj).idp.keycloak?.clientSecret, "from-file-secret");
  });

  test("an unreadable client_secret_file is an error naming the key", () => {
    const obj = base();
    delete kc(obj).client_secret;
    kc(obj).client_secret_file = join(tmp, "does-not-exist");
    assertConfigError(() => parse(obj), "idp.keycloak.client_secret_file");
  });

  test("MAILCLOAK_KEYCLOAK_CLIENT_SECRET overrides the config and the file", () => {
    const env = { MAILCLOAK_KEYCLOAK_CLIENT_SECRET: "from-env" };
    assert.equal(parse(base(), env).idp.keycloak?.clientSecret, "from-env");
    const file = join(tmp, "secret2");
    writeFileSync(file, "from-file");
    const obj = base();
    delete kc(obj).client_secret;
    kc(obj).client_secret_file = file;
    assert.equal(parse(obj, env).idp.keycloak?.clientSecret, "from-env");
  });

  test("the environment alone satisfies a missing client_secret; an empty variable does not", () => {
    const obj = base();
    delete kc(obj).client_secret;
    assert.equal(parse(obj, { MAILCLOAK_KEYCLOAK_CLIENT_SECRET: "env-only" }).idp.keycloak?.clientSecret, "env-only");
    assertConfigError(() => parse(obj, { MAILCLOAK_KEYCLOAK_CLIENT_SECRET: "" }), "idp.keycloak.client_secret");
  });

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
    { name: "unknown top-level key", make: () => ({ ...base(), frobnicate: { a: 1 } }), key: "frobnicate" },
    { name: "unknown nested key (typo sqlite.pth)", make: () => ({ ...base(), sqlite: { pth: "/tmp/x.db" } }), key: "sqlite.pth" },
    { name: "unknown key under idp.keycloak", make: () => { const o = base(); kc(o).relam = "x"; return o; }, key: "idp.keycloak.relam" },
    { name: "wrong type: cache_ttl_seconds: abc", make: () => { const o = base(); kc(o).cache_ttl_seconds = "abc"; return o; }, key: "idp.keycloak.cache_ttl_seconds" },
    { name: "wrong type: policy.cache_ttl_seconds: abc (older layout)", make: () => staticOnly({ policy: { cache_ttl_seconds: "abc" } }), key: "policy.cache_ttl_seconds" },
    { name: "out of range: cache.max_entries: 1", make: () => staticOnly({ cache: { max_entries: 1 } }), key: "cache.max_entries" },
    { name: "wrong type: daemon.allow_root: yes-please", make: () => staticOnly({ daemon: { allow_root: "yes-please" } }), key: "daemon.allow_root" },
    { name: "bad failure mode", make: () => ({ ...base(), policy: { idp_failure_mode: "reject" } }), key: "policy.idp_failure_mode" },
    { name: "bad failure mode (older name)", make: () => ({ ...base(), policy: { keycloak_failure_mode: "open" } }), key: "policy.keycloak_failure_mode" },
    { name: "both failure-mode names", make: () => ({ ...base(), policy: { keycloak_failure_mode: "dunno", idp_failure_mode: "dunno" } }), key: "policy.keycloak_failure_mode" },
    { name: "missing idp.keycloak.realm", make: () => { const o = base(); delete kc(o).realm; return o; }, key: "idp.keycloak.realm" },
    { name: "missing idp.keycloak.base_url", make: () => { const o = base(); delete kc(o).base_url; return o; }, key: "idp.keycloak.base_url" },
    { name: "base_url that is not http(s)", make: () => { const o = base(); kc(o).base_url = "ftp://sso"; return o; }, key: "idp.keycloak.base_url" },
    { name: "missing client_secret", make: () => { const o = base(); delete kc(o).client_secret; return o; }, key: "idp.keycloak.client_secret" },
    { name: "both client_secret and client_secret_file", make: () => { const o = base(); kc(o).client_secret_file = "/etc/mailcloak/secret"; return o; }, key: "idp.keycloak.client_secret" },
    { name: "world-writable socket_mode 0666", make: () => ({ ...base(), sockets: { socket_mode: "0666" } }), key: "sockets.socket_mode" },
    { name: "world-writable socket_mode 0662", make: () => ({ ...base(), sockets: { socket_mode: "0662" } }), key: "sockets.socket_mode" },
    { name: "socket_mode not octal", make: () => ({ ...base(), sockets: { socket_mode: "0680" } }), key: "sockets.socket_mode" },
    { name: "relative socket path", make: () => ({ ...base(), sockets: { policy_socket: "var/p.sock" } }), key: "sockets.policy_socket" },
    { name: "both sockets on one address", make: () => ({ ...base(), sockets: { policy_socket: "127.0.0.1:1", socketmap_socket: "inet:127.0.0.1:1" } }), key: "sockets.socketmap_socket" },
    { name: "provider authentik", make: () => ({ ...base(), idp: { provider: "authentik", authentik: { base_url: "https://a", api_token: "t" } } }), key: "idp.provider" },
    { name: "unknown provider", make: () => ({ ...base(), idp: { provider: "ldap" } }), key: "idp.provider" },
    { name: "static provider without users", make: () => ({ idp: { provider: "static" } }), key: "idp.static.users" },
    { name: "static user with a bad email", make: () => ({ idp: { provider: "static", static: { users: [{ username: "a", email: "not-an-email" }] } } }), key: "idp.static.users[0].email" },
    { name: "static user without username", make: () => ({ idp: { provider: "static", static: { users: [{ username: "a" }, { email: "b@d" }] } } }), key: "idp.static.users[1].username" },
    { name: "older top-level keycloak together with idp", make: () => ({ ...base(), keycloak: kc(base()) }), key: "keycloak" },
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

describe("mailcloak CLI", () => {
  const root = fileURLToPath(new URL("../../", import.meta.url));
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.MAILCLOAK_KEYCLOAK_CLIENT_SECRET;

  function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, ["bin/mailcloak", ...args], { cwd: root, env, encoding: "utf8", timeout: 30_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  test("check-config on a valid config: exit 0, the secret redacted", () => {
    const file = join(tmp, "valid.yaml");
    writeFileSync(file, GO_CURRENT);
    const r = run(["check-config", file]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.includes("[redacted]"), r.stdout);
    assert.ok(!r.stdout.includes(SECRET), "the secret must not be printed");
    assert.ok(!r.stderr.includes(SECRET), "the secret must not be printed");
    assert.ok(r.stdout.includes("https://sso.example.com"), r.stdout);
    assert.ok(r.stdout.includes("0660"), r.stdout);
  });

  test("check-config on an invalid config: exit 2, one line on stderr naming the key", () => {
    const file = join(tmp, "invalid.yaml");
    writeFileSync(file, GO_CURRENT.replace("  path:", "  pth:"));
    const r = run(["check-config", file]);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^mailcloak: [^\n]*\n$/, JSON.stringify(r.stderr));
    assert.ok(r.stderr.includes("sqlite.pth"), r.stderr);
    assert.ok(r.stderr.includes(file), r.stderr);
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
