// `mailcloak test-idp` with idp.provider: authentik, run for real against the
// Authentik emulator (test/fake-authentik.ts): a good token, a bad one, a
// token without "Can view User" (403, and the empty lists of older releases),
// a proxy's 401, wrong base URLs, a 500, a hang, and the send-allowed
// attribute. The API token must never be printed.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import type { ConfigTree } from "./helpers/daemon.js";
import { failLine, runTestIdp, show } from "./helpers/test-idp.js";
import { FakeAuthentik } from "./fake-authentik.js";

let ak: FakeAuthentik;

before(async () => {
  ak = await FakeAuthentik.start();
  ak.addUser({ username: "alice", name: "Alice", email: "alice@d1.test" });
  ak.addUser({ username: "bob", name: "Bob", email: "Bob@D1.test", attributes: { mailSendAllowed: false } });
  ak.addUser({ username: "carol", email: "carol@d1.test", isActive: false });
  ak.addUser({ username: "viewer", name: "no permission" });
  ak.addToken("no-permission-token", "viewer", false);
});

after(async () => {
  await ak.stop();
});

function idp(over: Record<string, unknown> = {}): ConfigTree {
  return { provider: "authentik", authentik: { base_url: ak.url, api_token: ak.token, timeout_ms: 5000, ...over } };
}

function testIdp(config: ConfigTree, policy: ConfigTree = { send_allowed_attribute: "mailSendAllowed" }, args?: (file: string) => string[]) {
  const token = (config.authentik as { api_token?: string }).api_token ?? "";
  return runTestIdp(config, policy, [token, ak.token, "no-permission-token"], args);
}

test("Authentik, a good token: every check passes, exit 0", async (t) => {
  const r = await testIdp(idp());
  show(t, r);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(r.lines, [
    `ok   API token at ${ak.url} accepted (it belongs to mailcloak, a service account)`,
    "ok   user query GET /api/v3/core/users/?search=mailcloak answered (HTTP 200)",
    "ok   token sees users (found its own user mailcloak; the directory counts 5 users)",
    "ok   policy.send_allowed_attribute mailSendAllowed is visible: set on 1 of 4 users looked at (e.g. bob)",
    "ok   the daemon's lookup of alice@d1.test by email: found alice, email alice@d1.test, enabled, mailSendAllowed not set",
    "all 5 checks passed",
  ]);
  assert.equal(r.stderr, "");
});

test("Authentik, --user: the daemon's lookup as typed in any case, sending disabled by a boolean false", async (t) => {
  const r = await testIdp(idp(), undefined, (file) => [file, "--user", "BOB@d1.test"]);
  show(t, r);
  assert.equal(r.code, 0, r.stdout);
  assert.equal(r.lines.at(-2), "ok   the daemon's lookup of bob@d1.test by email: found bob, email bob@d1.test, enabled, mailSendAllowed=false (sending disabled)");
});

test("Authentik, an unknown token: 403 Token invalid/expired, the bad-token hint", async (t) => {
  const r = await testIdp(idp({ api_token: "not-a-token" }));
  show(t, r);
  assert.equal(r.code, 1);
  assert.match(failLine(r), /^FAIL API token at http:\/\/127\.0\.0\.1:\d+: HTTP 403 "Token invalid\/expired" — hint: bad token: check idp\.authentik\.api_token/);
  assert.equal(r.lines.filter((l) => l.startsWith("skip ")).length, 3);
});

test("Authentik, a token whose user may not view users: 403, grant Can view User", async (t) => {
  const r = await testIdp(idp({ api_token: "no-permission-token" }));
  show(t, r);
  assert.equal(r.code, 1);
  assert.match(r.lines[0]!, /^ok   API token at .* accepted \(it belongs to viewer, a user\)$/);
  assert.match(failLine(r), /^FAIL user query GET \/api\/v3\/core\/users\/\?search=viewer: HTTP 403 "You do not have permission to perform this action\." — hint: give the token's user the permission "Can view User" \(authentik_core\.view_user\)/);
});

test("Authentik (older release), a token without permission gets empty lists: the same grant, said so", async (t) => {
  ak.deniedListing = "empty";
  try {
    const r = await testIdp(idp({ api_token: "no-permission-token" }));
    show(t, r);
    assert.equal(r.code, 1);
    assert.match(r.lines[1]!, /^ok   user query .* answered \(HTTP 200\)$/);
    assert.match(failLine(r), /^FAIL token sees users: user lists are empty, not even its own user viewer — hint: lists are empty: give the token's user the permission "Can view User" .*older Authentik answers an empty list instead of 403/);
  } finally {
    ak.deniedListing = "403";
  }
});

test("Authentik behind a proxy that answers 401: bad token or the proxy's own credentials", async () => {
  ak.mode = "proxy401";
  try {
    const r = await testIdp(idp());
    assert.equal(r.code, 1);
    assert.match(failLine(r), /^FAIL API token at .*: HTTP 401 — hint: bad token \(check idp\.authentik\.api_token\), or a proxy in front of Authentik/);
  } finally {
    ak.mode = "ok";
  }
});

test("Authentik, /api/v3 in the base URL: remove it", async (t) => {
  const r = await testIdp(idp({ base_url: `${ak.url}/api/v3` }));
  show(t, r);
  assert.equal(r.code, 1);
  assert.equal(failLine(r), `FAIL API token at ${ak.url}/api/v3: HTTP 404 — hint: idp.authentik.base_url is the server root: remove /api/v3 (${ak.url})`);
});

test("Authentik, a base URL with another path: wrong base URL", async () => {
  const r = await testIdp(idp({ base_url: `${ak.url}/authentik` }));
  assert.equal(r.code, 1);
  assert.match(failLine(r), /: HTTP 404 — hint: wrong base URL: idp\.authentik\.base_url is the server root/);
});

test("Authentik answering 500: a server-side failure, see its log", async () => {
  ak.mode = "error500";
  try {
    const r = await testIdp(idp());
    assert.equal(r.code, 1);
    assert.match(failLine(r), /^FAIL API token at .*: HTTP 500 — hint: Authentik failed on its side: see its server log$/);
  } finally {
    ak.mode = "ok";
  }
});

test("Authentik answering something that is not its API: not Authentik", async () => {
  ak.mode = "wrongShape";
  try {
    const r = await testIdp(idp());
    assert.equal(r.code, 1);
    assert.match(failLine(r), /HTTP 200 but not Authentik's answer — hint: idp\.authentik\.base_url reaches something that is not Authentik/);
  } finally {
    ak.mode = "ok";
  }
});

test("Authentik that never answers: the deadline (timeout_ms) holds", async (t) => {
  const hung = await FakeAuthentik.start();
  hung.mode = "hang";
  try {
    const r = await runTestIdp({ provider: "authentik", authentik: { base_url: hung.url, api_token: hung.token, timeout_ms: 600 } }, {}, [hung.token]);
    show(t, r);
    assert.equal(r.code, 1);
    assert.match(failLine(r), /^FAIL API token at .*: no answer within 600 ms — hint: .*idp\.authentik\.timeout_ms sets this deadline$/);
    assert.ok(r.ms >= 600 && r.ms < 600 + 8000, `${r.ms} ms for a 600 ms deadline`);
  } finally {
    await hung.stop();
  }
});

test("Authentik, the attribute as a mapping, or in another case: FAIL with what mailcloak reads", async () => {
  ak.addUser({ username: "dora", email: "dora@d1.test", attributes: { mailSendAllowed: { value: false } } });
  try {
    const mapping = await testIdp(idp());
    assert.equal(mapping.code, 1);
    assert.equal(failLine(mapping), "FAIL policy.send_allowed_attribute mailSendAllowed is a mapping on dora — hint: mailcloak reads a string, a boolean or a list of them: set it to false to disable sending");
  } finally {
    ak.removeUser("dora");
  }
  const cased = await testIdp(idp(), { send_allowed_attribute: "MailSendAllowed" });
  assert.equal(cased.code, 1);
  assert.match(failLine(cased), /MailSendAllowed is on none of 4 users looked at, but mailSendAllowed is — hint: attribute names are case-sensitive/);
  const unset = await testIdp(idp(), { send_allowed_attribute: "otherFlag" });
  assert.equal(unset.code, 0, unset.stdout);
  assert.equal(unset.lines[3], "ok   policy.send_allowed_attribute otherFlag is set on none of 4 users looked at (Authentik hides no attributes; absent means sending is allowed)");
});
