// AuthentikSource against the Authentik emulator over real HTTP: how users
// are matched (case, activity, service accounts, ambiguity, pages), how
// attributes are read, and every failure mode ending as `unavailable`.

import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { AuthentikSource, FORBIDDEN_HINT, TOKEN_HINT } from "../src/directory/authentik.js";
import type { AuthentikSourceOptions } from "../src/directory/authentik.js";
import { FakeAuthentik } from "./fake-authentik.js";
import type { FakeAuthentikOptions } from "./fake-authentik.js";
import { assertFound, assertUnavailable, memoryLog, type MemoryLog } from "./helpers/source-harness.js";
import { manualClock } from "./helpers/fixtures.js";

const fakes: FakeAuthentik[] = [];
after(async () => {
  await Promise.all(fakes.map((f) => f.stop()));
});

interface Setup {
  fake: FakeAuthentik;
  source: AuthentikSource;
  log: MemoryLog;
  calls: { ok: number; error: number; opened: number; rejected: number };
}

async function setup(srcOpts: Partial<AuthentikSourceOptions> = {}, fakeOpts: FakeAuthentikOptions = {}): Promise<Setup> {
  const fake = await FakeAuthentik.start(fakeOpts);
  fakes.push(fake);
  const log = memoryLog();
  const calls = { ok: 0, error: 0, opened: 0, rejected: 0 };
  const source = new AuthentikSource({
    baseUrl: `${fake.url}/`,
    apiToken: fake.token,
    timeoutMs: 1000,
    logger: log.logger,
    events: {
      onCall: (_op, outcome) => void calls[outcome]++,
      onBreakerOpen: () => void calls.opened++,
      onBreakerReject: () => void calls.rejected++,
    },
    breaker: { failureThreshold: 100 },
    ...srcOpts,
  });
  return { fake, source, log, calls };
}

/** The API token must never reach a log line or a reason. */
function assertTokenKept(s: Setup, ...reasons: string[]): void {
  assert.ok(!s.log.text().includes(s.fake.token), "the API token leaked into the log");
  for (const r of reasons) assert.ok(!r.includes(s.fake.token), "the API token leaked into a reason");
}

describe("AuthentikSource lookups", () => {
  test("finds a user by email and by username whatever case Authentik stored, with the token as Bearer", async () => {
    const s = await setup();
    s.fake.addUser({ username: "Alice.Smith", name: "Alice Smith", email: "Alice.Smith@D1.Test" });
    const byEmail = assertFound(await s.source.userByEmail("alice.smith@d1.test"));
    assert.deepEqual(byEmail, { username: "alice.smith", email: "alice.smith@d1.test", enabled: true, attributes: {} });
    assert.deepEqual(assertFound(await s.source.userByUsername("alice.smith")), byEmail);
    const q = s.fake.queries[0]!;
    assert.equal(q.get("search"), "alice.smith@d1.test");
    assert.equal(q.get("include_groups"), "false");
    assert.equal(q.get("page"), "1");
    assert.ok(s.fake.authorizations.every((a) => a === `Bearer ${s.fake.token}`));
    assertTokenKept(s);
  });

  test("only exact matches count: substrings, names and other fields never match", async () => {
    const s = await setup();
    s.fake.addUser({ username: "malice", email: "malice@d1.test", name: "alice@d1.test" });
    s.fake.addUser({ username: "alicia", email: "alicia@d1.test" });
    assert.deepEqual(await s.source.userByEmail("alice@d1.test"), { kind: "notfound" });
    assert.deepEqual(await s.source.userByUsername("ali"), { kind: "notfound" });
    assert.deepEqual(await s.source.userByUsername("alicia@d1.test"), { kind: "notfound" }, "a username lookup never matches an email");
    assert.deepEqual(await s.source.userByEmail(""), { kind: "notfound" });
    assert.equal(assertFound(await s.source.userByEmail("malice@d1.test")).username, "malice");
  });

  test("an inactive user is returned disabled; an active namesake wins over inactive ones", async () => {
    const s = await setup();
    s.fake.addUser({ username: "old-dave", email: "dave@d1.test", isActive: false });
    assert.deepEqual(assertFound(await s.source.userByEmail("dave@d1.test")), { username: "old-dave", email: "dave@d1.test", enabled: false, attributes: {} });
    s.fake.addUser({ username: "dave", email: "Dave@d1.test" });
    const u = assertFound(await s.source.userByEmail("dave@d1.test"));
    assert.equal(u.username, "dave");
    assert.equal(u.enabled, true);
    s.fake.updateUser("dave", { isActive: false });
    assert.equal(assertFound(await s.source.userByEmail("dave@d1.test")).enabled, false);
  });

  test("two active users with one email, or usernames differing in case, are unknown, warned once", async () => {
    const s = await setup();
    s.fake.addUser({ username: "erin", email: "shared@d1.test" });
    s.fake.addUser({ username: "frank", email: "SHARED@d1.test" });
    s.fake.addUser({ username: "gina" });
    s.fake.addUser({ username: "Gina" });
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await s.source.userByEmail("shared@d1.test"), { kind: "notfound" });
      assert.deepEqual(await s.source.userByUsername("gina"), { kind: "notfound" });
    }
    const warned = s.log.messages().filter((m) => m.startsWith("several active Authentik users"));
    assert.deepEqual(warned, ["several active Authentik users have this email; treating it as unknown", "several active Authentik users have this username; treating it as unknown"]);
    s.fake.removeUser("frank");
    s.fake.removeUser("Gina");
    assert.equal(assertFound(await s.source.userByEmail("shared@d1.test")).username, "erin");
    assert.equal(assertFound(await s.source.userByUsername("gina")).username, "gina");
  });

  test("service accounts answer username lookups but never email lookups", async () => {
    const s = await setup();
    s.fake.addUser({ username: "crm-bot", email: "crm@d1.test", type: "service_account" });
    s.fake.addUser({ username: "ak-outpost", email: "outpost@d1.test", type: "internal_service_account" });
    assert.deepEqual(await s.source.userByEmail("crm@d1.test"), { kind: "notfound" });
    assert.deepEqual(await s.source.userByEmail("outpost@d1.test"), { kind: "notfound" });
    assert.equal(assertFound(await s.source.userByUsername("crm-bot")).email, "crm@d1.test");
    s.fake.addUser({ username: "crm", email: "crm@d1.test" });
    assert.equal(assertFound(await s.source.userByEmail("crm@d1.test")).username, "crm", "a person sharing the address is not ambiguous with the service account");
  });

  test("attribute values: strings, booleans and numbers become strings, lists keep their scalars, the rest is absent", async () => {
    const s = await setup();
    s.fake.addUser({
      username: "hank",
      attributes: { a: false, b: "no", c: 3, d: [true, "x", 2.5, null, { deep: 1 }], e: null, f: { nested: "false" }, g: [] },
    });
    assert.deepEqual(assertFound(await s.source.userByUsername("hank")).attributes, {
      a: ["false"], b: ["no"], c: ["3"], d: ["true", "x", "2.5"], g: [],
    });
    const only = await setup({ attributes: ["mailSendAllowed"] });
    only.fake.addUser({ username: "ivy", attributes: { mailSendAllowed: false, note: "x".repeat(5000) } });
    only.fake.addUser({ username: "jo", attributes: { quota: "1G" } });
    assert.deepEqual(assertFound(await only.source.userByUsername("ivy")).attributes, { mailSendAllowed: ["false"] });
    assert.deepEqual(assertFound(await only.source.userByUsername("jo")).attributes, {});
  });

  test("search results are read page by page, so matches and ambiguities on later pages count", async () => {
    const s = await setup({ pageSize: 2 });
    for (const name of ["ann.sam", "bo.sam", "cy.sam"]) s.fake.addUser({ username: name });
    s.fake.addUser({ username: "sam", email: "sam@d1.test" });
    assert.equal(assertFound(await s.source.userByUsername("sam")).email, "sam@d1.test");
    assert.deepEqual(s.fake.queries.map((q) => [q.get("search"), q.get("page"), q.get("page_size")]), [["sam", "1", "2"], ["sam", "2", "2"]]);
    // Ordered by username: SAM on page 1, sam on page 3.
    s.fake.addUser({ username: "SAM" });
    s.fake.resetCounters();
    assert.deepEqual(await s.source.userByUsername("sam"), { kind: "notfound" });
    assert.equal(s.fake.userQueries, 3);
  });

  test("a search broader than maxPages pages falls back to the exact filter, with one warning", async () => {
    const s = await setup({ pageSize: 2, maxPages: 2 });
    for (const name of ["a.kim", "b.kim", "c.kim", "d.kim", "e.kim"]) s.fake.addUser({ username: name });
    s.fake.addUser({ username: "kim" });
    assert.equal(assertFound(await s.source.userByUsername("kim")).username, "kim");
    const last = s.fake.queries.at(-1)!;
    assert.equal(last.get("username"), "kim");
    assert.equal(last.get("search"), null);
    assert.equal(s.fake.queries.length, 3);
    assertFound(await s.source.userByUsername("kim"));
    assert.equal(s.log.messages().filter((m) => m.includes("matched too many users")).length, 1);
  });

  test("a search with no result checks once a minute that the token can see users at all", async () => {
    const s = await setup();
    assert.deepEqual(await s.source.userByEmail("nobody@d1.test"), { kind: "notfound" });
    assert.deepEqual(await s.source.userByEmail("nobody2@d1.test"), { kind: "notfound" });
    assert.deepEqual(s.fake.queries.map((q) => q.get("search")), ["nobody@d1.test", null, "nobody2@d1.test"]);
    assert.equal(s.fake.queries[1]!.get("page_size"), "1");
  });
});

describe("AuthentikSource failures are unavailable, never not found", () => {
  test("an unknown or revoked token: 403 Token invalid/expired, explained once, the token never logged", async () => {
    const s = await setup({ apiToken: "wrong-token-value" });
    s.fake.addUser({ username: "kay" });
    const reasons: string[] = [];
    for (let i = 0; i < 3; i++) reasons.push(assertUnavailable(await s.source.userByUsername("kay"), /rejected the API token \(403: Token invalid\/expired\)/));
    assert.equal(s.log.messages().filter((m) => m === TOKEN_HINT).length, 1);
    assert.ok(!s.log.text().includes("wrong-token-value"));
    assertTokenKept(s, ...reasons);

    const revoked = await setup();
    revoked.fake.addUser({ username: "kay" });
    assertFound(await revoked.source.userByUsername("kay"));
    revoked.fake.revokeToken(revoked.fake.token);
    assertUnavailable(await revoked.source.userByUsername("kay"), /Token invalid\/expired/);
  });

  test("a token without permission to view users: 403, or (older Authentik) an empty list", async () => {
    const s = await setup();
    s.fake.addUser({ username: "lee" });
    s.fake.setPermission(s.fake.token, false);
    for (let i = 0; i < 3; i++) assertUnavailable(await s.source.userByUsername("lee"), /denied the user lookup \(403\)/);
    assert.equal(s.log.messages().filter((m) => m === FORBIDDEN_HINT).length, 1);
    assert.match(FORBIDDEN_HINT, /view_user/);

    const legacy = await setup({}, { deniedListing: "empty" });
    legacy.fake.addUser({ username: "lee" });
    legacy.fake.setPermission(legacy.fake.token, false);
    assertUnavailable(await legacy.source.userByUsername("lee"), /can see no users/);
    assert.ok(legacy.log.messages().includes(FORBIDDEN_HINT));
    legacy.fake.setPermission(legacy.fake.token, true);
    assertFound(await legacy.source.userByUsername("lee"));
  });

  test("401 from a proxy, 500, malformed JSON and a body that is not a page", async () => {
    const s = await setup();
    s.fake.addUser({ username: "max" });
    const cases = [["proxy401", /rejected the API token \(401\)/], ["error500", /HTTP 500/], ["malformed", /malformed user list/], ["wrongShape", /malformed user list/]] as const;
    for (const [mode, reason] of cases) {
      s.fake.mode = mode;
      assertUnavailable(await s.source.userByUsername("max"), reason);
    }
    s.fake.mode = "ok";
    assertFound(await s.source.userByUsername("max"));
    assert.deepEqual([s.calls.error, s.calls.ok], [4, 1]);
  });

  test("a base_url that misses the API (Django's 404) is unavailable and explained once", async () => {
    const fake = await FakeAuthentik.start();
    fakes.push(fake);
    const log = memoryLog();
    const source = new AuthentikSource({ baseUrl: `${fake.url}/authentik`, apiToken: fake.token, logger: log.logger });
    for (let i = 0; i < 2; i++) assertUnavailable(await source.userByUsername("ned"), /endpoint not found \(404\)/);
    assert.equal(log.messages().filter((m) => m.includes("check idp.authentik.base_url")).length, 1);
  });

  test("a hanging Authentik is cut off at timeoutMs", async () => {
    const s = await setup({ timeoutMs: 300 });
    s.fake.addUser({ username: "olga" });
    s.fake.mode = "hang";
    const t0 = performance.now();
    assertUnavailable(await s.source.userByUsername("olga"), /authentik users query timed out after 300 ms/);
    const took = performance.now() - t0;
    assert.ok(took >= 280 && took < 800, `took ${took} ms`);
    s.fake.mode = "ok";
    assertFound(await s.source.userByUsername("olga"));
  });

  test("Authentik down: refused at once; back up on the same port: found", async () => {
    const s = await setup();
    s.fake.addUser({ username: "pat" });
    await s.fake.down();
    const t0 = performance.now();
    assertUnavailable(await s.source.userByUsername("pat"), /ECONNREFUSED|ECONNRESET|failed/);
    assert.ok(performance.now() - t0 < 250);
    await s.fake.up();
    assertFound(await s.source.userByUsername("pat"));
  });

  test("the circuit breaker: open after the threshold, one trial when half-open, closed by a success", async () => {
    const clock = manualClock();
    const s = await setup({ breaker: { failureThreshold: 2, openMs: 300, now: clock.now } });
    s.fake.addUser({ username: "quinn" });
    s.fake.mode = "error500";
    await s.source.userByUsername("quinn");
    await s.source.userByUsername("quinn");
    assert.equal(s.calls.opened, 1);
    s.fake.mode = "ok";
    s.fake.resetCounters();
    assertUnavailable(await s.source.userByEmail("quinn@d1.test"), /^authentik circuit open$/);
    assert.equal(s.fake.userQueries, 0, "no request while open");
    assert.equal(s.calls.rejected, 1);
    clock.advance(350);
    const [first, second] = await Promise.all([s.source.userByUsername("quinn"), s.source.userByUsername("quinn")]);
    assert.equal(first.kind, "found");
    assertUnavailable(second, /circuit open/);
    assert.equal(s.fake.userQueries, 1, "one trial request");
    assertFound(await s.source.userByUsername("quinn"));
    assert.ok(s.log.messages().includes("authentik circuit breaker closed"));
    assert.equal(s.source.health(0), null);
  });

  test("close(): later lookups are unavailable without a request", async () => {
    const s = await setup();
    await s.source.close();
    assertUnavailable(await s.source.userByUsername("rita"), /closed/);
    assert.equal(s.fake.userQueries, 0);
  });
});

describe("the Authentik emulator itself", () => {
  test("answers like Authentik: 403 bodies, pages, exact filters, search, 404s", async () => {
    const fake = await FakeAuthentik.start();
    fakes.push(fake);
    fake.addUser({ username: "Zed", email: "Zed@X.test", name: "Zed Quux", attributes: { a: [1] } });
    fake.addUser({ username: "amy", email: "amy@x.test", isActive: false });
    const get = (path: string, auth: string | null = `Bearer ${fake.token}`): Promise<Response> =>
      fetch(`${fake.url}${path}`, auth === null ? {} : { headers: { authorization: auth } });
    const json = async (r: Response): Promise<Record<string, unknown>> => (await r.json()) as Record<string, unknown>;

    let r = await get("/api/v3/core/users/", null);
    assert.deepEqual([r.status, await json(r)], [403, { detail: "Authentication credentials were not provided." }]);
    r = await get("/api/v3/core/users/", "Bearer nope");
    assert.deepEqual([r.status, await json(r)], [403, { detail: "Token invalid/expired" }]);
    r = await get("/api/v3/core/users/", "Basic YTpi");
    assert.deepEqual([r.status, await json(r)], [403, { detail: "Unsupported authentication type" }]);
    r = await get("/api/v3/core/users");
    assert.equal(r.status, 404);
    assert.match(await r.text(), /<h1>Not Found<\/h1>/);

    type Page = { pagination: Record<string, number>; results: Array<{ pk: number; username: string; attributes: unknown; groups_obj: unknown }>; autocomplete: unknown };
    const list = async (query: string): Promise<Page> => (await json(await get(`/api/v3/core/users/?${query}`))) as unknown as Page;
    const all = await list("");
    assert.deepEqual(all.results.map((u) => u.username), ["Zed", "amy", "mailcloak"]);
    assert.deepEqual(all.pagination, { next: 0, previous: 0, count: 3, current: 1, total_pages: 1, start_index: 1, end_index: 3 });
    assert.deepEqual(all.autocomplete, {});
    const second = await list("page_size=2&page=2");
    assert.deepEqual(second.pagination, { next: 0, previous: 1, count: 3, current: 2, total_pages: 2, start_index: 3, end_index: 3 });
    r = await get("/api/v3/core/users/?page=3&page_size=2");
    assert.deepEqual([r.status, await json(r)], [404, { detail: "Invalid page." }]);
    assert.deepEqual((await list("username=zed")).results, [], "username= is case-sensitive");
    assert.deepEqual((await list("email=Zed@X.test")).results.map((u) => u.username), ["Zed"]);
    assert.deepEqual((await list("is_active=false")).results.map((u) => u.username), ["amy"]);
    assert.deepEqual((await list("search=ZED")).results.map((u) => u.username), ["Zed"]);
    assert.deepEqual((await list("search=x.test%20quux")).results.map((u) => u.username), ["Zed"], "terms are ANDed");
    assert.deepEqual((await list("search=nobody")).pagination, { next: 0, previous: 0, count: 0, current: 1, total_pages: 1, start_index: 0, end_index: 0 });
    const [zed] = (await list("search=zed&include_groups=false")).results;
    assert.deepEqual([zed?.attributes, zed?.groups_obj], [{ a: [1] }, null]);
    assert.equal((await get(`/api/v3/core/users/${zed?.pk}/`)).status, 200);
    r = await get("/api/v3/core/users/999/");
    assert.deepEqual([r.status, await json(r)], [404, { detail: "No User matches the given query." }]);
    r = await fetch(`${fake.url}/api/v3/core/users/`, { method: "DELETE", headers: { authorization: `Bearer ${fake.token}` } });
    assert.deepEqual([r.status, await json(r)], [405, { detail: 'Method "DELETE" not allowed.' }]);
    fake.setPermission(fake.token, false);
    r = await get("/api/v3/core/users/");
    assert.deepEqual([r.status, await json(r)], [403, { detail: "You do not have permission to perform this action." }]);
  });
});
