// KeycloakSource against the fake Keycloak over real HTTP, with the real
// @keycloak/keycloak-admin-client underneath.

import assert from "node:assert/strict";
import { after, describe, mock, test } from "node:test";
import KcAdminClient from "@keycloak/keycloak-admin-client";
import { FEDERATION_PROBE, FORBIDDEN_HINT, KeycloakSource, STORAGE_BACK, STORAGE_DOWN } from "../src/directory/keycloak.js";
import type { KeycloakEvents, KeycloakSourceOptions } from "../src/directory/keycloak.js";
import { FakeKeycloak } from "./fake-keycloak.js";
import type { FakeKeycloakOptions } from "./fake-keycloak.js";
import { assertFound, assertUnavailable, memoryLog } from "./helpers/source-harness.js";
import { manualClock } from "./helpers/fixtures.js";
import type { DirectoryUser } from "../src/directory/lookup.js";

interface Harness {
  fake: FakeKeycloak;
  source: KeycloakSource;
  /** Everything the source logged so far, as raw pino JSON lines. */
  logText: () => string;
  logMessages: () => string[];
  counts: { token: number; users: number; usersError: number; renewals: number; opened: number; rejected: number };
}

const fakes: FakeKeycloak[] = [];
after(async () => {
  await Promise.all(fakes.map((f) => f.stop()));
});

async function harness(
  fakeOpts: FakeKeycloakOptions = {},
  srcOpts: Partial<KeycloakSourceOptions> = {},
): Promise<Harness> {
  const fake = await FakeKeycloak.start(fakeOpts);
  fakes.push(fake);
  const log = memoryLog();
  const counts = { token: 0, users: 0, usersError: 0, renewals: 0, opened: 0, rejected: 0 };
  const events: KeycloakEvents = {
    onCall(op, outcome) {
      if (op === "token") counts.token++;
      else if (outcome === "ok") counts.users++;
      else counts.usersError++;
    },
    onTokenRenewal: () => void counts.renewals++,
    onBreakerOpen: () => void counts.opened++,
    onBreakerReject: () => void counts.rejected++,
  };
  const source = new KeycloakSource({
    baseUrl: fake.url,
    realm: fake.realm,
    clientId: "mailcloak",
    clientSecret: fakeOpts.clientSecret ?? "s3cret",
    timeoutMs: 1000,
    logger: log.logger,
    events,
    breaker: { failureThreshold: 100, openMs: 5000 },
    ...srcOpts,
  });
  return { fake, source, logText: log.text, logMessages: log.messages, counts };
}

/** Logs must never carry the secret or a token (the fake's tokens start with base64 '{"' = eyJ). */
function assertNoSecrets(h: Harness, secret = "s3cret"): void {
  assert.ok(!h.logText().includes(secret), "client secret leaked into the log");
  assert.ok(!h.logText().includes("eyJ"), "access token leaked into the log");
}

describe("lookups", () => {
  test("with `attributes`, cached users keep only the attributes the rules read", async () => {
    const h = await harness({}, { attributes: ["mailSendAllowed"] });
    h.fake.addUser({ username: "ann", email: "ann@x.test", attributes: { mailSendAllowed: ["false"], quota: ["2G"], note: ["x".repeat(5000)] } });
    h.fake.addUser({ username: "ben", email: "ben@x.test", attributes: { quota: ["1G"] } });
    assert.deepEqual(assertFound(await h.source.userByEmail("ann@x.test")).attributes, { mailSendAllowed: ["false"] });
    assert.deepEqual(assertFound(await h.source.userByUsername("ben")).attributes, {});
    h.fake.addUser({ username: "dee", email: "dee@x.test", attributes: { mailSendAllowed: ["false"], quota: ["9G"] } });
    const ann = assertFound(await h.source.userByUsername("ann"));
    const dee = assertFound(await h.source.userByUsername("dee"));
    assert.equal(ann.attributes, dee.attributes, "equal attribute sets are one shared (frozen) object, not a copy per cached user");
    assert.ok(Object.isFrozen(ann.attributes) && Object.isFrozen(ann.attributes.mailSendAllowed));
    const none = await harness({}, { attributes: [] });
    none.fake.addUser({ username: "cy", attributes: { mailSendAllowed: ["true"] } });
    assert.deepEqual(assertFound(await none.source.userByUsername("cy")).attributes, {});
    await h.source.close();
    await none.source.close();
  });

  test("found by username and by email, lower-cased, attributes passed through", async () => {
    const h = await harness();
    h.fake.addUser({
      username: "Alice",
      email: "Alice@Example.TEST",
      firstName: "Alice",
      attributes: { mailAlias: ["al@example.test", "alice.l@example.test"], quota: ["2G"] },
    });
    h.fake.addUser({ username: "bob" });
    const expected: DirectoryUser = {
      username: "alice",
      email: "alice@example.test",
      enabled: true,
      attributes: { mailAlias: ["al@example.test", "alice.l@example.test"], quota: ["2G"] },
    };
    assert.deepEqual(assertFound(await h.source.userByUsername("alice")), expected);
    assert.deepEqual(assertFound(await h.source.userByEmail("alice@example.test")), expected);
    // No email, no attributes.
    assert.deepEqual(assertFound(await h.source.userByUsername("bob")), {
      username: "bob", email: null, enabled: true, attributes: {},
    });
    assert.equal(h.counts.users, 3);
  });

  test("notfound, including substring and LIKE-wildcard near misses", async () => {
    const h = await harness();
    h.fake.addUser({ username: "alice", email: "a_b@x.test" });
    h.fake.addUser({ username: "carol", email: "cxd@x.test" });
    assert.deepEqual(await h.source.userByUsername("nobody"), { kind: "notfound" });
    assert.deepEqual(await h.source.userByEmail("nobody@x.test"), { kind: "notfound" });
    assert.deepEqual(await h.source.userByEmail("axb@x.test"), { kind: "notfound" });
    assert.deepEqual(await h.source.userByUsername("alic"), { kind: "notfound" });
    assert.deepEqual(await h.source.userByEmail("b@x.test"), { kind: "notfound" });
    // `_` in the key would match `x` under Keycloak's non-exact LIKE; the fake
    // does that too (checked below), so exact=true is what keeps this notfound.
    assert.deepEqual(await h.source.userByEmail("c_d@x.test"), { kind: "notfound" });
    assertFound(await h.source.userByEmail("a_b@x.test"));

    const kc = new KcAdminClient({ baseUrl: h.fake.url, realmName: h.fake.realm });
    await kc.auth({ grantType: "client_credentials", clientId: "mailcloak", clientSecret: "s3cret" });
    const loose = await kc.users.find({ email: "c_d@x.test" });
    assert.deepEqual(loose.map((u) => u.username), ["carol"]);

    // If the server ignored exact=true (keycloak#30580), the client-side re-check still holds.
    h.fake.ignoreExact = true;
    assert.deepEqual(await h.source.userByEmail("c_d@x.test"), { kind: "notfound" });
    assert.deepEqual(await h.source.userByUsername("ali"), { kind: "notfound" });
    assertFound(await h.source.userByUsername("alice"));
  });

  test("disabled user is returned with enabled=false", async () => {
    const h = await harness();
    h.fake.addUser({ username: "dave", email: "dave@x.test", enabled: false });
    const u = assertFound(await h.source.userByEmail("dave@x.test"));
    assert.equal(u.enabled, false);
    h.fake.updateUser("dave", { enabled: true });
    assert.equal(assertFound(await h.source.userByUsername("dave")).enabled, true);
  });

  test("service accounts are users like any other; duplicate emails are notfound with one warning", async () => {
    const h = await harness();
    // Keycloak's admin API does not mark service-account users (checked by
    // keycloak-emulator-parity), so one an admin gave an email is found by it.
    h.fake.addUser({ username: "service-account-mailcloak", email: "svc@x.test", serviceAccountClientId: "mailcloak" });
    h.fake.addUser({ username: "erin", email: "shared@x.test" });
    h.fake.addUser({ username: "frank", email: "shared@x.test" });
    assert.equal(assertFound(await h.source.userByEmail("svc@x.test")).username, "service-account-mailcloak");
    assert.equal(assertFound(await h.source.userByUsername("service-account-mailcloak")).email, "svc@x.test");
    for (let i = 0; i < 3; i++) assert.deepEqual(await h.source.userByEmail("shared@x.test"), { kind: "notfound" });
    assert.equal(h.logMessages().filter((m) => m.includes("several Keycloak users")).length, 1);
    h.fake.removeUser("frank");
    assert.equal(assertFound(await h.source.userByEmail("shared@x.test")).username, "erin");
  });

  test("client secret with reserved characters is sent correctly; a wrong secret is unavailable and never logged", async () => {
    const secret = "p@ss word:+%&=ü";
    const ok = await harness({ clientSecret: secret });
    ok.fake.addUser({ username: "gina" });
    assertFound(await ok.source.userByUsername("gina"));
    assertNoSecrets(ok, secret);

    const bad = await harness({}, { clientSecret: "wrong-secret-xyz" });
    bad.fake.addUser({ username: "gina" });
    const reason = assertUnavailable(await bad.source.userByUsername("gina"), /token request HTTP 401 \(unauthorized_client\)/);
    assert.ok(!reason.includes("wrong-secret-xyz"));
    assert.equal(bad.fake.userQueries, 0);
    assertNoSecrets(bad, "wrong-secret-xyz");
  });
});

describe("token handling", () => {
  test("200 lookups of distinct keys use exactly one token request", async () => {
    const h = await harness();
    for (let i = 0; i < 50; i++) h.fake.addUser({ username: `user${i}`, email: `user${i}@x.test` });
    for (let i = 0; i < 100; i++) {
      const r = await h.source.userByUsername(`user${i}`);
      assert.equal(r.kind, i < 50 ? "found" : "notfound");
    }
    for (let i = 0; i < 100; i++) {
      const r = await h.source.userByEmail(`user${i}@x.test`);
      assert.equal(r.kind, i < 50 ? "found" : "notfound");
    }
    assert.equal(h.fake.tokenRequests, 1);
    assert.equal(h.fake.userQueries, 200);
    assert.equal(h.counts.renewals, 1);
    assertNoSecrets(h);
  });

  test("50 concurrent lookups with no token yet share one token request", async () => {
    const h = await harness();
    h.fake.latencyMs = 30;
    for (let i = 0; i < 50; i++) h.fake.addUser({ username: `c${i}` });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => h.source.userByUsername(`c${i}`)));
    assert.deepEqual(results.map((r) => r.kind), Array(50).fill("found"));
    assert.deepEqual(results.map((r) => assertFound(r).username), Array.from({ length: 50 }, (_, i) => `c${i}`));
    assert.equal(h.fake.tokenRequests, 1);
    assert.equal(h.counts.token, 1);
  });

  test("a token that really expires is renewed once, before Keycloak rejects it", async (t) => {
    const h = await harness({ expiresIn: 2 });
    h.fake.addUser({ username: "hank" });
    // Only Date is faked: the source's token clock and the fake's expiry
    // check both read it, and sockets keep their real timers.
    mock.timers.enable({ apis: ["Date"], now: Date.now() });
    t.after(() => mock.timers.reset());
    assertFound(await h.source.userByUsername("hank"));
    assert.equal(h.fake.tokenRequests, 1);
    mock.timers.tick(2200);
    h.fake.resetCounters();
    for (let i = 0; i < 5; i++) assertFound(await h.source.userByUsername("hank"));
    assert.equal(h.fake.tokenRequests, 1, "exactly one renewal");
    assert.equal(h.fake.userQueries, 5, "no 401 round trip: the expired token was never sent");
  });

  test("revoked tokens: the next lookup gets 401, renews once and succeeds", async () => {
    const h = await harness();
    h.fake.addUser({ username: "ivy" });
    assertFound(await h.source.userByUsername("ivy"));
    h.fake.expireAllTokens();
    h.fake.resetCounters();
    assertFound(await h.source.userByUsername("ivy"));
    assert.equal(h.fake.tokenRequests, 1);
    assert.equal(h.fake.userQueries, 2);
    assertFound(await h.source.userByUsername("ivy"));
    assert.equal(h.fake.tokenRequests, 1);
  });

  test("401 forever: unavailable after one renewal and one retry", async () => {
    const h = await harness();
    h.fake.addUser({ username: "jack" });
    h.fake.mode = "unauthorizedForever";
    assertUnavailable(await h.source.userByUsername("jack"), /401/);
    assert.equal(h.fake.tokenRequests, 2);
    assert.equal(h.fake.userQueries, 2);
    h.fake.mode = "ok";
    assertFound(await h.source.userByUsername("jack"));
  });

  test("token endpoint failing does not matter while the cached token is valid", async () => {
    const h = await harness();
    h.fake.addUser({ username: "kim" });
    assertFound(await h.source.userByUsername("kim"));
    h.fake.mode = "tokenFails";
    for (let i = 0; i < 5; i++) assertFound(await h.source.userByUsername("kim"));
    assert.equal(h.fake.tokenRequests, 1);
    // Once the token is gone, the failing endpoint shows.
    h.fake.expireAllTokens();
    assertUnavailable(await h.source.userByUsername("kim"), /token request HTTP 500/);
    assert.equal(h.fake.tokenRequests, 2);
    assertNoSecrets(h);
  });
});

describe("faults", () => {
  test("403: unavailable, hint logged exactly once", async () => {
    const h = await harness();
    h.fake.addUser({ username: "leo" });
    h.fake.mode = "users403";
    for (let i = 0; i < 4; i++) assertUnavailable(await h.source.userByUsername("leo"), /403/);
    assert.equal(h.logMessages().filter((m) => m === FORBIDDEN_HINT).length, 1);
    assert.match(FORBIDDEN_HINT, /view-users/);
    assert.equal(h.fake.tokenRequests, 1, "403 is not treated as a token problem");
    assertNoSecrets(h);
  });

  test("500 and malformed JSON are unavailable", async () => {
    const h = await harness();
    h.fake.addUser({ username: "mia" });
    h.fake.mode = "users500";
    assertUnavailable(await h.source.userByUsername("mia"), /HTTP 500/);
    h.fake.mode = "usersMalformed";
    assertUnavailable(await h.source.userByEmail("mia@x.test"), /malformed/);
    h.fake.mode = "ok";
    assertFound(await h.source.userByUsername("mia"));
    assert.equal(h.counts.usersError, 2);
  });

  test("a hanging Keycloak is cut off at timeoutMs", async () => {
    const h = await harness({}, { timeoutMs: 300 });
    h.fake.addUser({ username: "ned" });
    assertFound(await h.source.userByUsername("ned"));
    h.fake.mode = "hang";
    let t0 = performance.now();
    assertUnavailable(await h.source.userByUsername("ned"), /timed out after 300 ms/);
    let took = performance.now() - t0;
    assert.ok(took >= 280 && took < 700, `users call took ${took} ms`);

    // No token yet: the token request itself hangs.
    const fresh = await harness({}, { timeoutMs: 300 });
    fresh.fake.mode = "hang";
    t0 = performance.now();
    assertUnavailable(await fresh.source.userByUsername("ned"), /token request timed out/);
    took = performance.now() - t0;
    assert.ok(took >= 280 && took < 700, `token call took ${took} ms`);
    fresh.fake.mode = "ok";
    h.fake.mode = "ok";
  });

  test("Keycloak down: unavailable quickly; back up on the same port: found", async () => {
    const h = await harness();
    h.fake.addUser({ username: "olga" });
    assertFound(await h.source.userByUsername("olga"));
    const url = h.fake.url;
    await h.fake.down();
    const t0 = performance.now();
    assertUnavailable(await h.source.userByUsername("olga"), /ECONNREFUSED|ECONNRESET|failed/);
    assert.ok(performance.now() - t0 < 250, "refused connections fail fast");
    await h.fake.up();
    assert.equal(h.fake.url, url);
    assertFound(await h.source.userByUsername("olga"));
  });

  test("circuit breaker opens after the threshold and closes after openMs", async () => {
    const clock = manualClock();
    const h = await harness({}, { breaker: { failureThreshold: 3, openMs: 400, now: clock.now } });
    h.fake.addUser({ username: "pia" });
    h.fake.mode = "users500";
    for (let i = 0; i < 3; i++) assertUnavailable(await h.source.userByUsername("pia"), /HTTP 500/);
    assert.equal(h.fake.userQueries, 3);
    assert.equal(h.counts.opened, 1);

    // Open: no network at all, even once Keycloak is healthy again.
    for (let i = 0; i < 5; i++) assertUnavailable(await h.source.userByUsername("pia"), /^keycloak circuit open$/);
    h.fake.mode = "ok";
    assertUnavailable(await h.source.userByUsername("pia"), /circuit open/);
    assert.equal(h.fake.userQueries, 3);
    assert.equal(h.counts.rejected, 6);

    // Half-open with a failing trial: exactly one call goes out, then open again.
    h.fake.mode = "users500";
    clock.advance(450);
    const trial = await Promise.all([h.source.userByUsername("pia"), h.source.userByUsername("pia")]);
    assert.deepEqual(trial.map((r) => r.kind), ["unavailable", "unavailable"]);
    assert.equal(h.fake.userQueries, 4, "one trial call only");
    assert.equal(h.counts.opened, 2);
    assertUnavailable(await h.source.userByUsername("pia"), /circuit open/);

    // Half-open with a healthy Keycloak: the trial closes the breaker.
    h.fake.mode = "ok";
    clock.advance(450);
    assertFound(await h.source.userByUsername("pia"));
    for (let i = 0; i < 3; i++) assertFound(await h.source.userByUsername("pia"));
    assert.equal(h.fake.userQueries, 8);
    assert.ok(h.logMessages().includes("keycloak circuit breaker closed"));
  });

  test("close(): later lookups are unavailable without network", async () => {
    const h = await harness();
    h.fake.addUser({ username: "quinn" });
    await h.source.close();
    assertUnavailable(await h.source.userByUsername("quinn"), /closed/);
    assert.equal(h.fake.tokenRequests + h.fake.userQueries, 0);
  });
});

describe("users from a federation (LDAP) whose directory Keycloak cannot read", () => {
  test("listed disabled while the directory is unreachable: unavailable, not disabled; one error line; found again once it answers", async () => {
    const h = await harness();
    h.fake.addUser({ username: "lena", email: "lena@x.test", federationLink: "ldap1" });
    h.fake.unreachableFederations.add("ldap1");
    for (let i = 0; i < 3; i++) {
      assertUnavailable(await h.source.userByEmail("lena@x.test"), /^keycloak user storage ldap1 unavailable \(HTTP 500\)$/);
    }
    // The check names no real user (Keycloak answers a real one by importing it again).
    assert.deepEqual(h.fake.federationLookups, [FEDERATION_PROBE, FEDERATION_PROBE, FEDERATION_PROBE]);
    assert.equal(h.logMessages().filter((m) => m === STORAGE_DOWN).length, 1, h.logText());
    h.fake.unreachableFederations.delete("ldap1");
    assert.equal(assertFound(await h.source.userByEmail("lena@x.test")).enabled, true);
    assert.equal(h.logMessages().filter((m) => m === STORAGE_BACK).length, 1, h.logText());
    assert.equal(h.fake.federationLookups.length, 3, "an enabled user needs no check");
  });

  test("a disabled federated user while the directory answers stays disabled; a user without federation is never checked", async () => {
    const h = await harness();
    h.fake.addUser({ username: "otto", email: "otto@x.test", enabled: false, federationLink: "ldap1" });
    h.fake.addUser({ username: "dave", email: "dave@x.test", enabled: false });
    assert.equal(assertFound(await h.source.userByUsername("otto")).enabled, false);
    assert.equal(assertFound(await h.source.userByUsername("dave")).enabled, false);
    assert.deepEqual(h.fake.federationLookups, [FEDERATION_PROBE]);
    assert.ok(!h.logMessages().includes(STORAGE_DOWN));
  });

  test("not found: checked against the federations seen so far (a user not imported yet is not listed while the directory is down)", async () => {
    const h = await harness();
    h.fake.addUser({ username: "lena", federationLink: "ldap1" });
    // No federation seen yet: a miss costs nothing more.
    assert.equal((await h.source.userByUsername("nobody")).kind, "notfound");
    assert.equal(h.fake.federationLookups.length, 0);
    assertFound(await h.source.userByUsername("lena"));
    assert.equal((await h.source.userByUsername("nobody")).kind, "notfound");
    assert.deepEqual(h.fake.federationLookups, [FEDERATION_PROBE]);
    h.fake.unreachableFederations.add("ldap1");
    assertUnavailable(await h.source.userByEmail("nina@x.test"), /user storage ldap1 unavailable/);
    // Concurrent misses share one check.
    const before = h.fake.federationLookups.length;
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => h.source.userByUsername(`new${i}`)));
    assert.ok(many.every((r) => r.kind === "unavailable"));
    assert.ok(h.fake.federationLookups.length - before < 20, `${h.fake.federationLookups.length - before} checks for 20 concurrent misses`);
    assert.equal(h.logMessages().filter((m) => m === STORAGE_DOWN).length, 1);
  });

  test("several users with the key: unknown, without asking the federations seen (their state cannot change the answer)", async () => {
    const h = await harness();
    h.fake.addUser({ username: "lena", federationLink: "ldap1" });
    h.fake.addUser({ username: "twin1", email: "twin@x.test" });
    h.fake.addUser({ username: "twin2", email: "twin@x.test" });
    assertFound(await h.source.userByUsername("lena"));
    h.fake.unreachableFederations.add("ldap1");
    assert.equal((await h.source.userByEmail("twin@x.test")).kind, "notfound");
    assert.equal(h.fake.federationLookups.length, 0);
    // A plain miss still is checked (the control: the federation is seen and down).
    assertUnavailable(await h.source.userByEmail("nina@x.test"), /user storage ldap1 unavailable/);
    assert.equal(h.fake.federationLookups.length, 1);
  });

  test("the directory's outage does not open the breaker: Keycloak's own users are still asked", async () => {
    const h = await harness({}, { breaker: { failureThreshold: 2, openMs: 60_000 } });
    h.fake.addUser({ username: "lena", federationLink: "ldap1" });
    h.fake.addUser({ username: "alice" });
    h.fake.unreachableFederations.add("ldap1");
    for (let i = 0; i < 5; i++) assertUnavailable(await h.source.userByUsername("lena"), /user storage ldap1/);
    assert.equal(h.counts.opened, 0);
    assert.equal(assertFound(await h.source.userByUsername("alice")).enabled, true);
  });
});

describe("fake keycloak itself", () => {
  test("token endpoint and user queries behave like Keycloak", async () => {
    const fake = await FakeKeycloak.start({ realm: "corp" });
    fakes.push(fake);
    fake.addUser({ username: "Zed", email: "zed@x.test", firstName: "Zedd", lastName: "Quux", attributes: { a: ["1"] } });
    fake.addUser({ username: "amy", email: "amy@x.test" });
    fake.addUser({ username: "service-account-x", serviceAccountClientId: "x" });

    const bad = await fetch(`${fake.url}/realms/corp/protocol/openid-connect/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=client_credentials&client_id=mailcloak&client_secret=nope",
    });
    assert.equal(bad.status, 401);
    // A known client with a wrong secret; an unknown client gets invalid_client.
    assert.deepEqual(await bad.json(), {
      error: "unauthorized_client",
      error_description: "Invalid client or Invalid client credentials",
    });
    const good = await fetch(`${fake.url}/realms/corp/protocol/openid-connect/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=client_credentials&client_id=mailcloak&client_secret=s3cret",
    });
    const tok = (await good.json()) as Record<string, unknown>;
    assert.equal(tok.token_type, "Bearer");
    assert.equal(tok.expires_in, 300);
    assert.equal(tok.refresh_expires_in, 0);

    const get = (path: string, token = String(tok.access_token)): Promise<Response> =>
      fetch(`${fake.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal((await get("/admin/realms/corp/users", "bogus")).status, 401);
    const other = await get("/admin/realms/nope/users");
    assert.equal(other.status, 404);
    assert.deepEqual(await other.json(), { error: "Realm not found." });

    type U = { id: string; username: string; attributes?: unknown };
    const list = async (query: string): Promise<U[]> => (await (await get(`/admin/realms/corp/users?${query}`)).json()) as U[];
    assert.deepEqual((await list("")).map((u) => u.username), ["amy", "zed"], "a plain listing leaves service accounts out");
    assert.deepEqual((await list("search=ZE")).map((u) => u.username), ["zed"]);
    assert.deepEqual((await list("search=ed")).map((u) => u.username), []);
    assert.deepEqual((await list("search=*ed*")).map((u) => u.username), ["zed"]);
    assert.deepEqual((await list("search=%22zed%22")).map((u) => u.username), ["zed"]);
    assert.deepEqual((await list("search=service")).map((u) => u.username), [], "search excludes service accounts");
    assert.deepEqual((await list("username=E")).map((u) => u.username), ["service-account-x", "zed"]);
    assert.deepEqual((await list("username=E&exact=true")).map((u) => u.username), []);
    assert.deepEqual((await list("first=1&max=1")).map((u) => u.username), ["zed"]);
    assert.deepEqual((await list("exact=true&first=1&max=1")).map((u) => u.username), ["service-account-x"], "any filter includes them");
    const [zed] = await list("username=zed&exact=true&briefRepresentation=false");
    assert.deepEqual(zed?.attributes, { a: ["1"] });
    assert.equal((await list("username=zed&briefRepresentation=true"))[0]?.attributes, undefined);
    assert.equal((await get(`/admin/realms/corp/users/${zed?.id}`)).status, 200);
    assert.equal((await get("/admin/realms/corp/users/00000000-0000-0000-0000-000000000000")).status, 404);
    assert.equal(fake.tokenRequests, 2);
    assert.equal(fake.userQueries, 16);
  });
});
