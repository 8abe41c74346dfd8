// `mailcloak test-idp`, run for real (bin/mailcloak as a child process) against
// the real Keycloak of the run, against the Keycloak emulator for the faults a
// real server will not produce on demand (a hang, a 500), and on static users.
// Every run also checks that neither the client secret nor a token is printed.
// Authentik: test-idp-authentik.integration.test.ts.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { ConfigTree } from "./helpers/daemon.js";
import { failLine, runTestIdp, show, TEST_IDP_DIR, type TestIdpRun } from "./helpers/test-idp.js";
import { FIXTURE, KeycloakAdmin, releaseKeycloak, sharedKeycloak, type RealKeycloak } from "./helpers/keycloak-real.js";
import { FakeKeycloak } from "./fake-keycloak.js";

let kc: RealKeycloak | { skip: string };
let admin: KeycloakAdmin | null = null;
const created: string[] = []; // ids of clients this file added to the shared realm
let seq = 0;

before(async () => {
  kc = await sharedKeycloak();
  if (!("skip" in kc)) admin = new KeycloakAdmin(kc.baseUrl);
});

after(async () => {
  for (const id of created) await admin?.call("DELETE", `/clients/${id}`);
  await releaseKeycloak();
});

/** `mailcloak test-idp` on {idp, policy}; the client secret must not be printed. */
function testIdp(idp: ConfigTree, policy: ConfigTree = { send_allowed_attribute: "mailSendAllowed" },
  args?: (file: string) => string[]): Promise<TestIdpRun> {
  const secret = (idp.keycloak as { client_secret?: string } | undefined)?.client_secret;
  return runTestIdp(idp, policy, secret ? [secret] : [], args);
}

function keycloakIdp(k: RealKeycloak, over: Record<string, unknown> = {}): ConfigTree {
  return {
    provider: "keycloak",
    keycloak: { base_url: k.baseUrl, realm: FIXTURE.realm, client_id: FIXTURE.client.id, client_secret: FIXTURE.client.secret, timeout_ms: 10_000, ...over },
  };
}

/** A confidential client added to the shared realm for one test (removed in after()). */
async function addClient(body: Record<string, unknown>): Promise<{ id: string; clientId: string; secret: string }> {
  const clientId = `testidp-${process.pid}-${++seq}`;
  const secret = `secret-${clientId}`;
  const r = await admin!.call("POST", "/clients", { clientId, secret, publicClient: false, ...body });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const id = r.location!.split("/").pop()!;
  created.push(id);
  return { id, clientId, secret };
}

// ---- the real Keycloak ----------------------------------------------------------

test("real Keycloak, the good client: every check passes, exit 0", async (t) => {
  if ("skip" in kc) return t.skip(kc.skip);
  const r = await testIdp(keycloakIdp(kc));
  show(t, r);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(r.lines.map((l) => l.slice(0, 5)), ["ok   ", "ok   ", "ok   ", "ok   ", "ok   ", "all 5"]);
  assert.equal(r.lines[0], `ok   token obtained from ${kc.baseUrl} (realm ${FIXTURE.realm}, client ${FIXTURE.client.id})`);
  assert.match(r.lines[1]!, /user query GET \/admin\/realms\/mailcloak-test\/users\?exact=true&username=service-account-mailcloak answered \(HTTP 200\)/);
  assert.match(r.lines[2]!, /service account sees users \(found its own user service-account-mailcloak; the realm counts \d+ users\)/);
  assert.match(r.lines[3]!, /mailSendAllowed is visible: set on \d+ of \d+ users looked at \(e\.g\. bob\)/);
  assert.match(r.lines[4]!, /^ok   the daemon's lookup of \S+@\S+ by email: found \S+, email \S+, enabled, mailSendAllowed/);
  assert.equal(r.lines[5], "all 5 checks passed");
  assert.equal(r.stderr, "");
});

test("real Keycloak, --user: what the daemon's own lookup finds (sending disabled, disabled user, unknown address)", async (t) => {
  if ("skip" in kc) return t.skip(kc.skip);
  const bob = await testIdp(keycloakIdp(kc), undefined, (file) => ["--config", file, "--user", "Bob@D1.test"]);
  show(t, bob);
  assert.equal(bob.code, 0, bob.stdout);
  assert.equal(bob.lines.at(-2), "ok   the daemon's lookup of bob@d1.test by email: found bob, email bob@d1.test, enabled, mailSendAllowed=false (sending disabled)");
  const carol = await testIdp(keycloakIdp(kc), undefined, (file) => [file, "-u", "carol"]);
  assert.equal(carol.code, 0, carol.stdout);
  assert.equal(carol.lines.at(-2), "ok   the daemon's lookup of carol by username: found carol, email carol@d1.test, disabled (mailcloak refuses its mail and logins), mailSendAllowed not set");
  const nobody = await testIdp(keycloakIdp(kc), undefined, (file) => [file, "--user", "nobody@d1.test"]);
  assert.equal(nobody.code, 1);
  assert.match(failLine(nobody), /^FAIL the daemon's lookup of nobody@d1\.test by email: not found — hint: mailcloak treats this address as unknown/);
});

test("real Keycloak, the config path given as an argument, no attribute configured: four checks, no attribute line", async (t) => {
  if ("skip" in kc) return t.skip(kc.skip);
  const r = await testIdp(keycloakIdp(kc), {}, (file) => [file]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.lines.length, 5, r.stdout);
  assert.equal(r.lines.at(-1), "all 4 checks passed");
});

test("real Keycloak, a wrong secret: 401 and the secret/client-id hint", async (t) => {
  if ("skip" in kc) return t.skip(kc.skip);
  const r = await testIdp(keycloakIdp(kc, { client_secret: "not-the-secret" }));
  show(t, r);
  assert.equal(r.code, 1);
  assert.match(failLine(r), /^FAIL token request to .* \(realm mailcloak-test, client mailcloak\): HTTP 401 "unauthorized_client" .* — hint: wrong client secret or client id/);
  assert.equal(r.lines.filter((l) => l.startsWith("skip ")).length, 3, "the checks after the token are skipped, not run");
  assert.equal(r.lines.at(-1), "1 of 4 checks failed, 3 skipped");
});

test("real Keycloak, an unknown client id: the same hint", async (t) => {
  if ("skip" in kc) return t.skip(kc.skip);
  const r = await testIdp(keycloakIdp(kc, { client_id: "no-such-client" }));
  assert.equal(r.code, 1);
  assert.match(failLine(r), /HTTP 401 "invalid_client" .* — hint: wrong client secret or client id/);
});

test("real Keycloak, a client without service accounts: enable Service accounts", async (t) => {
  if ("skip" in kc) return t.skip(kc.skip);
  const c = await addClient({ serviceAccountsEnabled: false, standardFlowEnabled: true });
  const r = await testIdp(keycloakIdp(kc, { client_id: c.clientId, client_secret: c.secret }));
  show(t, r);
  assert.equal(r.code, 1);
  assert.match(failLine(r), /"unauthorized_client" "Client not enabled to retrieve service account" — hint: enable Service accounts \(client credentials\) on the client/);
});

test("real Keycloak, a public client: turn Client authentication on", async (t) => {
  if ("skip" in kc) return t.skip(kc.skip);
  const c = await addClient({ publicClient: true });
  const r = await testIdp(keycloakIdp(kc, { client_id: c.clientId, client_secret: "anything" }));
  assert.equal(r.code, 1);
  assert.match(failLine(r), /"Public client not allowed to retrieve service account" — hint: .* is a public client: turn Client authentication on/);
});

test("real Keycloak, the query-users-only client: 200 with empty lists, grant view-users", async (t) => {
  if ("skip" in kc) return t.skip(kc.skip);
  const r = await testIdp(keycloakIdp(kc, { client_id: FIXTURE.queryOnlyClient.id, client_secret: FIXTURE.queryOnlyClient.secret }));
  show(t, r);
  assert.equal(r.code, 1);
  assert.match(r.lines[1]!, /^ok   user query .* answered \(HTTP 200\)$/, "the query itself works");
  assert.match(failLine(r), /^FAIL service account sees users: user lists are empty, not even its own user service-account-mailcloak-query; the realm counts \d+ users \(realm-management roles in the token: query-users\) — hint: lists are empty: grant view-users/);
  assert.match(r.lines[3]!, /^skip policy.send_allowed_attribute mailSendAllowed visible \(no user is visible\)$/);
  assert.equal(r.lines.length, 5, "no daemon lookup without a user seen or asked for");
});

test("real Keycloak, the client with no role: 403, role missing or not in the token's scope", async (t) => {
  if ("skip" in kc) return t.skip(kc.skip);
  const r = await testIdp(keycloakIdp(kc, { client_id: FIXTURE.noRoleClient.id, client_secret: FIXTURE.noRoleClient.secret }));
  show(t, r);
  assert.equal(r.code, 1);
  assert.match(r.lines[0]!, /^ok   token obtained from /);
  assert.match(failLine(r), /^FAIL user query .*: HTTP 403 Forbidden \(realm-management roles in the token: none\) — hint: role missing \(give the service account realm-management view-users.* or not in the token's scope/);
});

test("real Keycloak, view-users assigned but full scope off: the token lacks the role, same 403 hint", async (t) => {
  if ("skip" in kc) return t.skip(kc.skip);
  const c = await addClient({ serviceAccountsEnabled: true, fullScopeAllowed: false });
  const sa = await admin!.ok("GET", `/clients/${c.id}/service-account-user`) as { id: string };
  const rm = (await admin!.ok("GET", "/clients?clientId=realm-management") as { id: string }[])[0]!;
  const role = await admin!.ok("GET", `/clients/${rm.id}/roles/view-users`);
  await admin!.ok("POST", `/users/${sa.id}/role-mappings/clients/${rm.id}`, [role]);
  const r = await testIdp(keycloakIdp(kc, { client_id: c.clientId, client_secret: c.secret }));
  assert.equal(r.code, 1);
  assert.match(failLine(r), /HTTP 403 Forbidden \(realm-management roles in the token: none\) — hint: .*not in the token's scope \(Clients → testidp-\S+ → Client scopes → testidp-\S+-dedicated → Scope: Full scope allowed/);
});

test("real Keycloak, a wrong realm: 404, wrong realm", async (t) => {
  if ("skip" in kc) return t.skip(kc.skip);
  const r = await testIdp(keycloakIdp(kc, { realm: "no-such-realm" }));
  show(t, r);
  assert.equal(r.code, 1);
  assert.match(failLine(r), /^FAIL token request to .* \(realm no-such-realm, client mailcloak\): HTTP 404 "Realm does not exist" — hint: wrong realm: this Keycloak has no realm "no-such-realm"/);
});

test("real Keycloak, a bogus /auth in the base URL: remove /auth", async (t) => {
  if ("skip" in kc) return t.skip(kc.skip);
  const r = await testIdp(keycloakIdp(kc, { base_url: `${kc.baseUrl}/auth` }));
  show(t, r);
  assert.equal(r.code, 1);
  assert.match(failLine(r), new RegExp(`HTTP 404 .* — hint: remove /auth from idp.keycloak.base_url \\(${kc.baseUrl.replace(/[.]/g, "\\.")}\\): Keycloak 17 and later serve without it$`));
});

test("real Keycloak, a bogus /auth and a wrong realm: both named", async (t) => {
  if ("skip" in kc) return t.skip(kc.skip);
  const r = await testIdp(keycloakIdp(kc, { base_url: `${kc.baseUrl}/auth`, realm: "no-such-realm" }));
  assert.equal(r.code, 1);
  assert.match(failLine(r), /— hint: wrong realm, and the base URL should be http:\/\/127\.0\.0\.1:\d+: no realm "no-such-realm" there either/);
});

test("real Keycloak served under /auth (a prefix proxy): add /auth; with it, every check passes", async (t) => {
  if ("skip" in kc) return t.skip(kc.skip);
  const proxy = await prefixProxy(kc.baseUrl, "/auth");
  try {
    const without = await testIdp(keycloakIdp(kc, { base_url: proxy.url }));
    show(t, without);
    assert.equal(without.code, 1);
    assert.match(failLine(without), new RegExp(`HTTP 404 — hint: add /auth to idp.keycloak.base_url \\(${proxy.url.replace(/[.]/g, "\\.")}/auth\\): this server serves under /auth`));
    const withAuth = await testIdp(keycloakIdp(kc, { base_url: `${proxy.url}/auth` }));
    assert.equal(withAuth.code, 0, withAuth.stdout);
  } finally {
    await new Promise((r) => proxy.server.close(r));
  }
});

test("real Keycloak, an attribute the user profile does not declare (grace's legacySendFlag): the user-profile hint", async (t) => {
  if ("skip" in kc) return t.skip(kc.skip);
  // grace has legacySendFlag in the store; Keycloak leaves it out of every answer.
  const stored = await admin!.ok("GET", `/users/${await admin!.userId("grace")}`) as { attributes?: Record<string, unknown> };
  assert.equal(stored.attributes?.legacySendFlag, undefined, "the fixture hides legacySendFlag even from the admin");
  const r = await testIdp(keycloakIdp(kc), { send_allowed_attribute: "legacySendFlag" });
  show(t, r);
  assert.equal(r.code, 1);
  assert.match(failLine(r), /^FAIL policy.send_allowed_attribute legacySendFlag is not visible on any of \d+ users looked at and the realm's user profile does not declare it — hint: Keycloak 24\+'s user profile hides undeclared attributes: declare legacySendFlag in Realm settings → User profile/);
  // And what that means for grace: the daemon sees no flag, so her sending stays allowed.
  const grace = await testIdp(keycloakIdp(kc), { send_allowed_attribute: "legacySendFlag" }, (file) => [file, "--user", "grace"]);
  assert.equal(grace.lines.at(-2), "ok   the daemon's lookup of grace by username: found grace, email grace@d1.test, enabled, legacySendFlag not set");
});

test("real Keycloak, the attribute name in the wrong case: names are case-sensitive", async (t) => {
  if ("skip" in kc) return t.skip(kc.skip);
  const r = await testIdp(keycloakIdp(kc), { send_allowed_attribute: "mailsendallowed" });
  assert.equal(r.code, 1);
  assert.match(failLine(r), /mailsendallowed is on none of \d+ users looked at, but mailSendAllowed is — hint: attribute names are case-sensitive/);
});

test("nothing listening at the base URL: connection refused", async () => {
  const fake = await FakeKeycloak.start();
  const url = fake.url;
  await fake.stop();
  const r = await testIdp({ provider: "keycloak", keycloak: { base_url: url, realm: "test", client_id: "mailcloak", client_secret: "s3cret" } });
  assert.equal(r.code, 1);
  assert.match(failLine(r), /: connection refused by 127\.0\.0\.1:\d+ — hint: nothing listens there/);
});

// ---- the emulator: faults on demand -----------------------------------------------

function fakeIdp(fake: FakeKeycloak, timeoutMs: number): ConfigTree {
  return { provider: "keycloak", keycloak: { base_url: fake.url, realm: fake.realm, client_id: "mailcloak", client_secret: "s3cret", timeout_ms: timeoutMs } };
}

test("emulator that never answers: the deadline (timeout_ms) holds and the run ends", async (t) => {
  const fake = await FakeKeycloak.start();
  fake.mode = "hang";
  try {
    const r = await testIdp(fakeIdp(fake, 700));
    show(t, r);
    assert.equal(r.code, 1);
    assert.match(failLine(r), /^FAIL token request to .*: no answer within 700 ms — hint: .*idp\.keycloak\.timeout_ms sets this deadline$/);
    assert.ok(r.ms >= 700, `ended before the deadline (${r.ms} ms)`);
    assert.ok(r.ms < 700 + 8000, `took ${r.ms} ms for a 700 ms deadline`);
    assert.equal(fake.tokenRequests, 1);
  } finally {
    await fake.stop();
  }
});

test("emulator answering 500 to user queries: a server-side failure, see its log", async (t) => {
  const fake = await FakeKeycloak.start();
  fake.mode = "users500";
  try {
    const r = await testIdp(fakeIdp(fake, 5000));
    show(t, r);
    assert.equal(r.code, 1);
    assert.match(r.lines[0]!, /^ok   token obtained/);
    assert.match(failLine(r), /^FAIL user query .*: HTTP 500 — hint: Keycloak failed on its side: see its server log$/);
  } finally {
    await fake.stop();
  }
});

test("emulator answering 500 to the token request", async () => {
  const fake = await FakeKeycloak.start();
  fake.mode = "tokenFails";
  try {
    const r = await testIdp(fakeIdp(fake, 5000));
    assert.equal(r.code, 1);
    assert.match(failLine(r), /^FAIL token request .*: HTTP 500 "unknown_error" — hint: Keycloak failed on its side/);
  } finally {
    await fake.stop();
  }
});

test("a base URL with a password in it: FAIL without printing the password", async () => {
  const fake = await FakeKeycloak.start();
  try {
    const url = fake.url.replace("http://", "http://admin:hunter2@");
    const r = await runTestIdp({ provider: "keycloak", keycloak: { base_url: url, realm: fake.realm, client_id: "mailcloak", client_secret: "s3cret" } }, {}, ["hunter2", "s3cret"]);
    assert.equal(r.code, 1);
    assert.equal(failLine(r), `FAIL token request to ${fake.url}: the base URL carries a user name or password — hint: remove them from idp.keycloak.base_url: Keycloak authenticates the client with client_id and client_secret`);
    assert.equal(fake.tokenRequests, 0);
  } finally {
    await fake.stop();
  }
});

// ---- static users and bad input ----------------------------------------------------

test("static users: nothing remote to test, the list's shape is checked, exit 0", async () => {
  const r = await testIdp({ provider: "static", static: { users: [
    { username: "alice", email: "alice@d1.test" },
    { username: "bob", email: "bob@d1.test", attributes: { mailSendAllowed: "false" } },
    { username: "carol", enabled: false },
  ] } });
  assert.equal(r.code, 0, r.stdout);
  assert.deepEqual(r.lines, [
    "ok   static users: 3 in idp.static.users (2 enabled, 2 with an email); nothing remote to test",
    "ok   policy.send_allowed_attribute mailSendAllowed: set on 1 of 3 static users (absent means sending is allowed)",
    "ok   the daemon's lookup of alice@d1.test by email: found alice, email alice@d1.test, enabled, mailSendAllowed not set",
    "all 3 checks passed",
  ]);
});

test("static users listed twice: FAIL, only the last entry counts", async () => {
  const r = await testIdp({ provider: "static", static: { users: [
    { username: "alice", email: "a@d1.test" }, { username: "alice", email: "b@d1.test" }, { username: "bob", email: "a@d1.test" },
  ] } }, {});
  assert.equal(r.code, 1);
  assert.equal(failLine(r), "FAIL static users: listed more than once: username alice, email a@d1.test — hint: only the last entry of each is used: keep one entry per username and per email");
});

test("an unreadable config: one line on stderr, exit 2, nothing tested", async () => {
  const r = await testIdp({ provider: "static", static: { users: [] } }, {}, () => ["--config", join(TEST_IDP_DIR, "missing.yaml")]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /^mailcloak: .*missing\.yaml: cannot read config file \(ENOENT\); pass the right path with --config\n$/);
});

/** An HTTP server that serves `target` under `prefix` only (as a proxy or Keycloak 16 under /auth would). */
async function prefixProxy(target: string, prefix: string): Promise<{ server: Server; url: string }> {
  const to = new URL(target);
  const server = createServer((req, res) => {
    const path = req.url ?? "/";
    if (path !== prefix && !path.startsWith(`${prefix}/`)) {
      res.writeHead(404, { "content-type": "text/html" });
      res.end("<html><body><h1>404 - Not Found</h1></body></html>");
      return;
    }
    const up = request({ host: to.hostname, port: to.port, method: req.method, path: path.slice(prefix.length) || "/", headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on("error", () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}
