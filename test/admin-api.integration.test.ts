// mailcloak-admin over real HTTP (the program itself, as a child process):
// start-up refusals, bearer-token auth, the Go version's routes and
// statuses, bad input with mailcloakctl's messages and nothing written,
// the setup wizard, the Unix socket, no secrets out, and every exchange
// checked against docs/openapi.json.

import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { rawDb } from "./helpers/sqlite.js";
import { ctl, ctlOk, tempDir } from "./helpers/daemon.js";
import { AdminProcess, runAdminOnce, type Exchange } from "./helpers/admin.js";
import { checkExchange, unexercised } from "./helpers/openapi.js";
import { FIXTURE, releaseKeycloak, sharedKeycloak, type RealKeycloak } from "./helpers/keycloak-real.js";

const TOKEN = "test-admin-token-0123456789";
const SECRET_PW = "very-secret-app-password-42";
const dir = tempDir("mailcloak-admin-api-");
const db = join(dir, "state.db");
const configPath = join(dir, "config.yaml");
let admin: AdminProcess;
/** Every exchange of every server this file started, for the OpenAPI check. */
const all: Exchange[] = [];

before(async () => {
  admin = await AdminProcess.start(["--db", db, "--config", configPath, "--init-db", "--listen", "127.0.0.1:0"], { MAILCLOAK_ADMIN_TOKEN: TOKEN });
  admin.token = TOKEN;
});

after(async () => {
  await admin?.stop();
  all.push(...admin.exchanges);
  await releaseKeycloak();
  rmSync(dir, { recursive: true, force: true });
});

function dump(): string {
  const d = rawDb(db, { readonly: true });
  try {
    return JSON.stringify(["domains", "aliases", "apps", "app_from", "sender_delegations"].map((t) => d.prepare(`SELECT * FROM ${t} ORDER BY 1, 2`).all()));
  } finally {
    d.close();
  }
}

describe("start-up", () => {
  test("refuses without auth, insecure mode off loopback, and root without --allow-root", async () => {
    const d = tempDir("mailcloak-admin-start-");
    try {
      const base = ["--db", join(d, "s.db"), "--config", join(d, "c.yaml"), "--init-db", "--listen", "127.0.0.1:0"];
      const noAuth = await runAdminOnce([...base, "--allow-root"], { MAILCLOAK_ADMIN_TOKEN: "" });
      assert.equal(noAuth.code, 2);
      assert.match(noAuth.output, /missing admin token: set --token, --token-file or MAILCLOAK_ADMIN_TOKEN/);
      const wide = await runAdminOnce(["--db", join(d, "s.db"), "--config", join(d, "c.yaml"), "--listen", "0.0.0.0:0", "--insecure-no-auth", "--allow-root"], { MAILCLOAK_ADMIN_TOKEN: "" });
      assert.equal(wide.code, 2);
      assert.match(wide.output, /--insecure-no-auth: only on a loopback address/);
      if (process.getuid?.() === 0) {
        const root = await runAdminOnce([...base, "--token", "x"]);
        assert.equal(root.code, 2);
        assert.match(root.output, /refusing to run as root/);
      }
      const badListen = await runAdminOnce([...base, "--token", "x", "--allow-root", "--listen", "nowhere"]);
      assert.equal(badListen.code, 2);
      assert.match(badListen.output, /--listen: must be HOST:PORT or unix:PATH/);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  test("the token from --token-file; --insecure-no-auth serves loopback without a token but wants JSON", async () => {
    const d = tempDir("mailcloak-admin-start-");
    const tokenFile = join(d, "token");
    writeFileSync(tokenFile, "file-token-abc\n", { mode: 0o600 });
    const a = await AdminProcess.start(["--db", join(d, "s.db"), "--config", join(d, "c.yaml"), "--init-db", "--listen", "127.0.0.1:0", "--token-file", tokenFile], { MAILCLOAK_ADMIN_TOKEN: "" });
    const b = await AdminProcess.start(["--db", join(d, "s.db"), "--config", join(d, "c.yaml"), "--listen", "127.0.0.1:0", "--insecure-no-auth"], { MAILCLOAK_ADMIN_TOKEN: "" });
    try {
      assert.equal((await a.request("GET", "/api/domains", { token: "file-token-abc" })).status, 200);
      assert.equal((await a.request("GET", "/api/domains", { token: "file-token-abd" })).status, 401);
      assert.equal((await b.request("GET", "/api/domains")).status, 200);
      const form = await b.request("POST", "/api/domains", { raw: '{"domain_name":"x.test"}', headers: { "content-type": "text/plain" } });
      assert.deepEqual([form.status, form.body], [400, { error: "content-type must be application/json" }]);
      assert.equal((await b.request("POST", "/api/domains", { json: { domain_name: "x.test" } })).status, 204);
      assert.match(b.output, /authentication disabled by --insecure-no-auth/);
    } finally {
      await a.stop();
      await b.stop();
      all.push(...a.exchanges, ...b.exchanges);
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe("bearer-token auth (as the Go version)", () => {
  test("health needs none; everything else 401 without the right token", async () => {
    const h = await admin.request("GET", "/api/health", { token: null });
    assert.deepEqual([h.status, h.body], [200, { status: "ok" }]);
    for (const token of [null, "wrong", `${TOKEN}x`]) {
      const r = await admin.request("GET", "/api/domains", { token });
      assert.deepEqual([r.status, r.body], [401, { error: "unauthorized" }], String(token));
    }
    assert.equal((await admin.request("GET", "/api/domains")).status, 200);
    const me = await admin.request("GET", "/api/me");
    assert.deepEqual(me.body, { kind: "token", role: "admin", name: "token", email: null, csrf: null, oidc: false });
  });

  test("unknown routes 404, wrong methods 405", async () => {
    assert.deepEqual((await admin.request("GET", "/api/nope")).body, { error: "not found" });
    assert.equal((await admin.request("GET", "/nope")).status, 404);
    assert.equal((await admin.request("GET", "/api/domains/a/b")).status, 404);
    assert.equal((await admin.request("DELETE", "/api/domains/%E0%A4%A")).status, 404);
    for (const [m, p] of [["PUT", "/api/domains"], ["GET", "/api/domains/x.test"], ["DELETE", "/api/setup/status"], ["GET", "/api/setup/apply"], ["POST", "/api/health"], ["GET", "/api/apps/x/senders"]] as const) {
      const r = await admin.request(m, p);
      assert.deepEqual([r.status, r.body], [405, { error: "method not allowed" }], `${m} ${p}`);
    }
  });

  test("a bearer-token caller is no user: self-service answers 403", async () => {
    const r = await admin.request("GET", "/api/self");
    assert.equal(r.status, 403);
    assert.equal((await admin.request("POST", "/api/self/apps", { json: { name: "phone" } })).status, 403);
    assert.equal((await admin.request("DELETE", "/api/self/apps/x")).status, 403);
    assert.equal((await admin.request("POST", "/api/self/apps/x/senders", { json: { from_addr: "a@b.test" } })).status, 403);
    assert.equal((await admin.request("DELETE", "/api/self/apps/x/senders/a@b.test")).status, 403);
  });
});

describe("domains, aliases, apps (the Go version's routes)", () => {
  test("domains and aliases: normalised, filtered by user, disabled, 409 on duplicates, 404 on unknown rows", async () => {
    assert.equal((await admin.request("POST", "/api/domains", { json: { domain_name: "Example.COM" } })).status, 204);
    const dup = await admin.request("POST", "/api/domains", { json: { domain_name: "example.com" } });
    assert.deepEqual([dup.status, dup.body], [409, { error: "domain already exists: example.com" }]);
    assert.equal((await admin.request("POST", "/api/aliases", { json: { alias_email: "Alias@Example.COM", target_user: "alice" } })).status, 204);
    assert.equal((await admin.request("POST", "/api/aliases", { json: { alias_email: "other@example.com", target_user: "bob" } })).status, 204);
    assert.equal((await admin.request("POST", "/api/aliases", { json: { alias_email: "alias@example.com", target_user: "bob" } })).status, 409);
    const list = await admin.request("GET", "/api/aliases?user=alice");
    assert.equal(list.status, 200);
    assert.deepEqual((list.body as { alias_email: string; target_user: string }[]).map((a) => [a.alias_email, a.target_user]), [["alias@example.com", "alice"]]);
    assert.equal((await admin.request("GET", "/api/aliases")).body instanceof Array, true);
    assert.equal((await admin.request("PATCH", `/api/aliases/${encodeURIComponent("alias@example.com")}`, { json: { enabled: false } })).status, 204);
    assert.equal((await ctlOk(db, "aliases", "list", "--user", "alice")).split("\t")[2], "disabled");
    assert.equal((await admin.request("PATCH", "/api/domains/example.com", { json: { enabled: false } })).status, 204);
    assert.equal((await admin.request("PATCH", "/api/domains/example.com", { json: { enabled: true } })).status, 204);
    const domains = await admin.request("GET", "/api/domains");
    assert.deepEqual((domains.body as { domain_name: string; enabled: boolean }[]).map((d) => [d.domain_name, d.enabled]), [["example.com", true]]);
    for (const [m, p, body] of [
      ["PATCH", "/api/domains/nope.test", { enabled: true }], ["DELETE", "/api/domains/nope.test", undefined],
      ["PATCH", "/api/aliases/nope@example.com", { enabled: true }], ["DELETE", "/api/aliases/nope@example.com", undefined],
      ["PATCH", "/api/apps/nope", { enabled: true }], ["DELETE", "/api/apps/nope", undefined],
      ["POST", "/api/apps/nope/senders", { from_addr: "a@example.com" }], ["DELETE", "/api/apps/nope/senders/a@example.com", undefined],
    ] as const) {
      const r = await admin.request(m, p, body === undefined ? {} : { json: body });
      assert.equal(r.status, 404, `${m} ${p}: ${r.text}`);
      assert.match((r.body as { error: string }).error, /^no such (domain|alias|app)/);
    }
    assert.equal((await admin.request("DELETE", "/api/aliases/other@example.com")).status, 204);
  });

  test("apps and senders; the password's hash never leaves the server", async () => {
    assert.equal((await admin.request("POST", "/api/apps", { json: { app_id: "app1", password: SECRET_PW } })).status, 204);
    assert.equal((await admin.request("POST", "/api/apps/app1/senders", { json: { from_addr: "Sender@Example.COM" } })).status, 204);
    const apps = await admin.request("GET", "/api/apps");
    const app1 = (apps.body as { app_id: string; senders: { from_addr: string }[] }[]).find((a) => a.app_id === "app1")!;
    assert.deepEqual(app1.senders.map((s) => s.from_addr), ["sender@example.com"]);
    assert.doesNotMatch(apps.text, /argon2|secret_hash/i);
    // replacing the password: 204, still one app
    assert.equal((await admin.request("POST", "/api/apps", { json: { app_id: "app1", password: `${SECRET_PW}-2` } })).status, 204);
    assert.equal((await admin.request("PATCH", "/api/apps/app1", { json: { enabled: false } })).status, 204);
    assert.equal((await admin.request("PATCH", "/api/apps/app1", { json: { enabled: true } })).status, 204);
    assert.equal((await admin.request("DELETE", `/api/apps/app1/senders/${encodeURIComponent("sender@example.com")}`)).status, 204);
    assert.equal((await admin.request("DELETE", "/api/apps/app1/senders/sender@example.com")).status, 404);
    assert.equal((await admin.request("POST", "/api/apps", { json: { app_id: "gone", password: "pw" } })).status, 204);
    assert.equal((await admin.request("DELETE", "/api/apps/gone")).status, 204);
    assert.equal((await admin.request("POST", "/api/domains", { json: { domain_name: "gone.test" } })).status, 204);
    assert.equal((await admin.request("DELETE", "/api/domains/gone.test")).status, 204);
    assert.doesNotMatch(admin.output, new RegExp(`${SECRET_PW}|argon2`, "i"), "no password or hash in the log");
    for (const e of admin.exchanges) assert.doesNotMatch(e.text, new RegExp(`${SECRET_PW}|argon2`, "i"), `${e.method} ${e.path}`);
  });

  test("every change is one audit line: who, what, from which address", async () => {
    // The log is written asynchronously: the last lines may trail the last reply.
    for (let i = 0; i < 100 && !admin.records().some((r) => r.action === "domain.delete"); i++) await new Promise((r) => setTimeout(r, 20));
    const audit = admin.records().filter((r) => r.audit === true);
    const adds = audit.filter((r) => r.action === "domain.add" && r.target === "example.com");
    assert.equal(adds.length, 1);
    assert.deepEqual([adds[0]!.who, adds[0]!.via, adds[0]!.from], ["token", "api", "127.0.0.1"]);
    for (const action of ["alias.add", "alias.disable", "alias.delete", "app.add", "app.password", "app.allow", "app.disallow", "app.delete", "domain.delete", "domain.disable", "domain.enable"]) {
      assert.ok(audit.some((r) => r.action === action), `audit line for ${action}`);
    }
  });
});

describe("delegated senders (send-as), as mailcloakctl senders", () => {
  test("allow, list (filtered by login), deny; one audit line each; refusals as mailcloakctl's", async () => {
    assert.equal((await admin.request("POST", "/api/senders", { json: { from_addr: "Desk@Example.com", login: "Alice" } })).status, 204);
    assert.equal((await admin.request("POST", "/api/senders", { json: { from_addr: "desk@example.com", login: "bob" } })).status, 204);
    assert.equal((await admin.request("POST", "/api/senders", { json: { from_addr: "desk@example.com", login: "bob" } })).status, 204, "again: no change");
    const all = await admin.request("GET", "/api/senders");
    assert.deepEqual((all.body as { from_addr: string; login: string }[]).map((r) => `${r.login} ${r.from_addr}`), ["alice desk@example.com", "bob desk@example.com"]);
    assert.equal(await ctlOk(db, "senders", "list", "--login", "bob").then((o) => o.split("\t").slice(0, 2).join(" ")), "desk@example.com bob");
    const bob = await admin.request("GET", "/api/senders?login=bob");
    assert.deepEqual((bob.body as { login: string }[]).map((r) => r.login), ["bob"]);
    assert.equal((await admin.request("DELETE", `/api/senders/${encodeURIComponent("desk@example.com")}/bob`)).status, 204);
    const gone = await admin.request("DELETE", "/api/senders/desk@example.com/bob");
    assert.equal(gone.status, 404);
    assert.match((gone.body as { error: string }).error, /bob has no delegation to send as desk@example\.com/);
    assert.equal((await admin.request("DELETE", "/api/senders/desk@example.com/alice")).status, 204);
    for (let i = 0; i < 100 && !admin.records().some((r) => r.action === "sender.deny" && r.target === "alice as desk@example.com"); i++) await new Promise((r) => setTimeout(r, 20));
    const audit = admin.records().filter((r) => r.audit === true && String(r.action).startsWith("sender."));
    assert.deepEqual(audit.map((r) => `${String(r.action)} ${String(r.target)}`), [
      "sender.allow alice as desk@example.com", "sender.allow bob as desk@example.com", "sender.deny bob as desk@example.com", "sender.deny alice as desk@example.com",
    ]);
  });
});

describe("bad input: mailcloakctl's rules and messages, nothing written, never a 500", () => {
  // [API method, path, body, mailcloakctl args]: the same mistake both ways.
  const CASES: readonly [string, string, Record<string, unknown>, string[]][] = [
    ["POST", "/api/domains", { domain_name: "not a domain" }, ["domains", "add", "not a domain"]],
    ["POST", "/api/domains", { domain_name: "" }, ["domains", "add", ""]],
    ["POST", "/api/aliases", { alias_email: "no-at-sign", target_user: "alice" }, ["aliases", "add", "no-at-sign", "alice"]],
    ["POST", "/api/aliases", { alias_email: "x@unknown.test", target_user: "alice" }, ["aliases", "add", "x@unknown.test", "alice"]],
    ["POST", "/api/aliases", { alias_email: "x@example.com", target_user: "a b" }, ["aliases", "add", "x@example.com", "a b"]],
    ["POST", "/api/aliases", { alias_email: "x@example.com", target_user: "" }, ["aliases", "add", "x@example.com", ""]],
    ["POST", "/api/apps", { app_id: "has space", password: "pw" }, ["apps", "add", "has space", "pw"]],
    ["POST", "/api/apps", { app_id: "newapp", password: "" }, ["apps", "add", "newapp", ""]],
    ["POST", "/api/apps/app1/senders", { from_addr: "not-an-address" }, ["apps", "allow", "app1", "not-an-address"]],
    ["POST", "/api/senders", { from_addr: "not-an-address", login: "alice" }, ["senders", "allow", "not-an-address", "alice"]],
    ["POST", "/api/senders", { from_addr: "x@elsewhere.test", login: "alice" }, ["senders", "allow", "x@elsewhere.test", "alice"]],
    ["POST", "/api/senders", { from_addr: "x@example.com", login: "app1" }, ["senders", "allow", "x@example.com", "app1"]],
    ["POST", "/api/senders", { from_addr: "x@example.com", login: "a b" }, ["senders", "allow", "x@example.com", "a b"]],
  ];

  test("each field as mailcloakctl validates it, with the same message", async () => {
    const before = dump();
    for (const [m, p, body, args] of CASES) {
      const r = await admin.request(m, p, { json: body });
      const c = await ctl(db, ...args);
      assert.equal(r.status, 400, `${m} ${p} ${JSON.stringify(body)}: ${r.text}`);
      assert.equal(c.code, 1, args.join(" "));
      assert.equal(`mailcloakctl: ${(r.body as { error: string }).error}\n`, c.stderr, `${args.join(" ")}: same message`);
    }
    assert.equal(dump(), before, "nothing written");
  });

  test("bodies: trailing values, unknown fields, wrong types, missing enabled, no body, over 1 MiB", async () => {
    const before = dump();
    const expect = async (m: string, p: string, raw: string | Buffer, error: RegExp): Promise<void> => {
      const r = await admin.request(m, p, { raw, headers: { "content-type": "application/json" } });
      assert.equal(r.status, 400, `${m} ${p} ${String(raw).slice(0, 40)}: ${r.text}`);
      assert.match((r.body as { error: string }).error, error);
    };
    await expect("POST", "/api/domains", '{"domain_name":"example.org"} {}', /^invalid json body/);
    await expect("POST", "/api/domains", '{"domain_name":"example.org","extra":1}', /^invalid json body: json: unknown field "extra"/);
    await expect("POST", "/api/domains", '{"domain_name":5}', /^invalid json body: field "domain_name" must be a string/);
    await expect("POST", "/api/domains", "[1]", /^invalid json body: expected a JSON object/);
    await expect("POST", "/api/domains", "", /^missing json body$/);
    await expect("PATCH", "/api/domains/example.com", "{}", /^missing enabled$/);
    await expect("PATCH", "/api/domains/example.com", '{"enabled":"yes"}', /must be a boolean/);
    await expect("POST", "/api/setup/apply", '{"config":{},"overwrite":1}', /must be a boolean/);
    await expect("POST", "/api/domains", Buffer.alloc((1 << 20) + 10, 0x20), /request body too large/);
    assert.equal(dump(), before, "nothing written");
    assert.ok(admin.exchanges.every((e) => e.status < 500), "no 500 so far");
  });
});

describe("setup wizard", () => {
  const good = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    idp: { provider: "static", static: { users: [{ username: "alice", email: "alice@d1.test" }] } },
    sockets: { policy_socket: join(dir, "p.sock"), socketmap_socket: join(dir, "s.sock"), socket_owner_user: "" },
    daemon: { user: "" },
    ...extra,
  });

  test("status, validate (the daemon's loader), apply: writes 0640, never over a file without overwrite", async () => {
    const s0 = await admin.request("GET", "/api/setup/status");
    assert.equal(s0.status, 200);
    assert.deepEqual([(s0.body as Record<string, unknown>).config_exists, (s0.body as Record<string, unknown>).db_initialized], [false, true]);
    assert.deepEqual((await admin.request("POST", "/api/setup/validate", { json: { config: good() } })).body, { valid: true });
    const bad = await admin.request("POST", "/api/setup/validate", { json: { config: good({ policy: { idp_failure_mode: "maybe" } }) } });
    assert.equal(bad.status, 400);
    assert.match((bad.body as { error: string }).error, /policy\.idp_failure_mode.*tempfail/);
    const unknown = await admin.request("POST", "/api/setup/validate", { json: { config: good({ bogus: { x: 1 } }) } });
    assert.equal(unknown.status, 400);
    assert.match((unknown.body as { error: string }).error, /bogus/);
    const mismatch = await admin.request("POST", "/api/setup/apply", { json: { config: good({ sqlite: { path: "/elsewhere.db" } }) } });
    assert.deepEqual(mismatch.body, { error: "config.sqlite.path must match the admin server db path" });
    assert.equal(existsSync(configPath), false, "nothing written on error");

    const applied = await admin.request("POST", "/api/setup/apply", { json: { config: good(), init_db: true, test_idp: true } });
    assert.equal(applied.status, 200, applied.text);
    assert.deepEqual(applied.body, { config_path: configPath, db_path: db, idp_test: { provider: "static", ok: true } });
    assert.equal(statSync(configPath).mode & 0o777, 0o640);
    const written = parse(readFileSync(configPath, "utf8")) as { sqlite: { path: string }; daemon?: unknown };
    assert.equal(written.sqlite.path, db);
    assert.equal(written.daemon, undefined, "empty strings are unset, as in the Go version");
    const before = readFileSync(configPath, "utf8");
    const again = await admin.request("POST", "/api/setup/apply", { json: { config: good({ policy: { idp_failure_mode: "dunno" } }) } });
    assert.equal(again.status, 400);
    assert.match((again.body as { error: string }).error, /^config already exists at .*overwrite/);
    assert.equal(readFileSync(configPath, "utf8"), before);
    assert.equal((await admin.request("POST", "/api/setup/apply", { json: { config: good({ policy: { idp_failure_mode: "dunno" } }), overwrite: true } })).status, 200);
    assert.match(readFileSync(configPath, "utf8"), /idp_failure_mode: dunno/);
    const s1 = (await admin.request("GET", "/api/setup/status")).body as Record<string, unknown>;
    assert.deepEqual([s1.config_exists, s1.config_valid, s1.config_writable, s1.db_exists, s1.db_initialized, s1.db_writable], [true, true, true, true, true, true]);
    const ov = await admin.request("GET", "/api/overview");
    assert.equal(ov.status, 200);
    assert.deepEqual((ov.body as { idp: unknown }).idp, { ok: true, provider: "static", detail: "answers" });
    assert.equal((ov.body as { daemon: { configured: boolean } }).daemon.configured, false);
  });

  test("idp test against the real Keycloak: ok with the fixture client, a clear 400 with a wrong secret", async (t) => {
    const kc: RealKeycloak | { skip: string } = await sharedKeycloak();
    if ("skip" in kc) return t.skip(kc.skip);
    const cfg = (secret: string): Record<string, unknown> => ({
      idp: { provider: "keycloak", keycloak: { base_url: kc.baseUrl, realm: FIXTURE.realm, client_id: FIXTURE.client.id, client_secret: secret } },
    });
    const ok = await admin.request("POST", "/api/idp/test", { json: { config: cfg(FIXTURE.client.secret) } });
    assert.deepEqual([ok.status, ok.body], [200, { provider: "keycloak", ok: true }]);
    const wrong = await admin.request("POST", "/api/idp/test", { json: { config: cfg("wrong-secret-xyz") } });
    assert.equal(wrong.status, 400);
    assert.match((wrong.body as { error: string }).error, /^keycloak token request: HTTP 401/);
    assert.doesNotMatch(wrong.text + admin.output, /wrong-secret-xyz|mailcloak-test-secret/, "the secret is never echoed or logged");
  });
});

describe("Unix socket for a reverse proxy", () => {
  test("listens on unix:PATH with mode 0660; the audit line takes the client from X-Forwarded-For", async () => {
    const sock = join(dir, "admin.sock");
    const u = await AdminProcess.start(["--db", db, "--config", configPath, "--listen", `unix:${sock}`, "--token", TOKEN]);
    try {
      assert.equal(u.address, `unix:${sock}`);
      assert.equal(statSync(sock).mode & 0o777, 0o660);
      u.token = TOKEN;
      assert.equal((await u.request("GET", "/api/health", { token: null })).status, 200);
      assert.equal((await u.request("POST", "/api/domains", { json: { domain_name: "proxied.test" }, headers: { "x-forwarded-for": "203.0.113.7, 10.0.0.1" } })).status, 204);
      const line = u.records().find((r) => r.action === "domain.add");
      assert.equal(line?.from, "203.0.113.7");
      assert.equal((await u.request("DELETE", "/api/domains/proxied.test")).status, 204);
    } finally {
      await u.stop();
      all.push(...u.exchanges);
    }
  });
});

describe("OpenAPI document", () => {
  test("every response of this file's servers conforms to docs/openapi.json, and every operation was exercised", () => {
    const exchanges = [...all, ...admin.exchanges];
    const problems = exchanges.flatMap(checkExchange);
    assert.deepEqual(problems, []);
    assert.deepEqual(unexercised(exchanges).filter((k) => k !== "GET /api/self/apps"), []);
    assert.ok(exchanges.length > 60, `${exchanges.length} exchanges checked`);
  });
});
