// The web UI in a real browser (Debian's Chromium, headless, driven by
// playwright-core) against the real Keycloak and the real Postfix + Dovecot
// stack: an admin signs in through Keycloak's own login page, adds a domain
// and an alias, and postmap(1) resolves it through the running daemon; an
// ordinary user creates an app password and sends mail with it; users get
// 403 from admin pages and routes; a request without the CSRF token is
// refused. Every screen is photographed into test-output/admin-ui/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { freePort, postmap, ROOT, type ConfigTree } from "./helpers/daemon.js";
import { AdminProcess } from "./helpers/admin.js";
import { keycloakIdpFor } from "./helpers/directory.js";
import { FIXTURE, releaseKeycloak, sharedKeycloak, type RealKeycloak } from "./helpers/keycloak-real.js";
import { MailStack, smtp, stackUnavailable, uniqueSubject, waitForMessage } from "./helpers/mailstack.js";

const CHROMIUM = "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"];
export const SCREENS = join(ROOT, "test-output/admin-ui");
const TOKEN = "browser-test-token-abcdef";

let kc: RealKeycloak | { skip: string };
let skip: string | null = null;
let stack: MailStack | null = null;
let admin: AdminProcess | null = null;
let browser: Browser | null = null;

before(async () => {
  kc = await sharedKeycloak();
  const why = "skip" in kc ? kc.skip : stackUnavailable() ?? (existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing (apt-get install chromium)`);
  if (why) {
    if (process.env.CI === "true") throw new Error(`${why}; .ci/run must install it`);
    skip = why;
    return;
  }
  const k = kc as RealKeycloak;
  mkdirSync(SCREENS, { recursive: true });
  stack = await MailStack.start({ idp: keycloakIdpFor(k.baseUrl, { cache_ttl_seconds: 1 }).idp as ConfigTree });
  const port = await freePort();
  admin = await AdminProcess.start([
    "--db", join(stack.mcDir, "state.db"), "--config", stack.daemon.configPath, "--listen", `127.0.0.1:${port}`, "--token", TOKEN,
    "--oidc-client-id", FIXTURE.adminClient.id, "--oidc-issuer", `${k.baseUrl}/realms/${FIXTURE.realm}`, "--admin-group", FIXTURE.adminClient.group,
  ], { MAILCLOAK_ADMIN_OIDC_CLIENT_SECRET: FIXTURE.adminClient.secret });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
});

after(async () => {
  await browser?.close();
  await admin?.stop();
  await stack?.stop();
  await releaseKeycloak();
});

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SCREENS, `${name}.png`), fullPage: true });
}

/** Run `fn` on a fresh browser context (no cookies); on failure keep a screenshot of where it stopped. */
async function withPage(name: string, fn: (page: Page) => Promise<void>): Promise<void> {
  const ctx = await browser!.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(30_000);
  try {
    await fn(page);
  } catch (err) {
    await shot(page, `FAILED-${name}`).catch(() => undefined);
    throw err;
  } finally {
    await ctx.close();
  }
}

/** Through Keycloak's own login page. */
async function signIn(page: Page, username: string, password: string): Promise<void> {
  await page.goto(admin!.address);
  await page.getByRole("link", { name: "Sign in with Keycloak" }).click();
  await page.waitForURL((u) => u.pathname.includes("/protocol/openid-connect/auth"));
  await page.locator("#username").fill(username);
  await page.locator("#password").fill(password);
  await page.locator("#kc-login").click();
  await page.waitForURL((u) => u.href.startsWith(admin!.address));
  await page.getByText(`${username} (`).waitFor();
}

async function confirmDialog(page: Page): Promise<void> {
  await page.locator("dialog#confirm").waitFor();
  await page.locator("#confirm-ok").click();
}

test("an admin signs in through Keycloak, adds a domain and an alias; postmap resolves it through the daemon", async (t) => {
  if (skip) return t.skip(skip);
  await withPage("admin", async (page) => {
    await page.goto(admin!.address);
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await shot(page, "signin");
    await signIn(page, "alice", "alice-pw");
    await page.getByText("alice (admin)").waitFor();
    await page.locator("#ov-daemon").getByText("Configured", { exact: true }).waitFor();
    await shot(page, "overview");

    await page.getByRole("link", { name: "Domains" }).click();
    await page.getByLabel("Domain", { exact: true }).fill("D3.test");
    await page.getByRole("button", { name: "Add domain" }).click();
    await page.getByRole("cell", { name: "d3.test", exact: true }).waitFor();
    // A mistake is shown as the API says it (mailcloakctl's message).
    await page.getByLabel("Domain", { exact: true }).fill("d3.test");
    await page.getByRole("button", { name: "Add domain" }).click();
    await page.getByRole("alert").getByText("domain already exists: d3.test").waitFor();
    await shot(page, "domains");

    await page.getByRole("link", { name: "Aliases" }).click();
    await page.getByLabel("Alias address").fill("team@d3.test");
    await page.getByLabel("User", { exact: true }).fill("alice");
    await page.getByRole("button", { name: "Add alias" }).click();
    await page.getByRole("cell", { name: "team@d3.test", exact: true }).waitFor();
    await page.getByLabel("Filter by user").fill("alice");
    await shot(page, "aliases");

    const r = await postmap(stack!.socketmapSocket, "alias", "team@d3.test");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /alice/);

    // A destructive action asks first; cancelling changes nothing.
    await page.getByRole("button", { name: "Delete team@d3.test" }).click();
    await page.locator("#confirm-cancel").click();
    await page.getByRole("cell", { name: "team@d3.test", exact: true }).waitFor();

    await page.getByRole("link", { name: "Apps" }).click();
    await page.getByRole("cell", { name: "crm", exact: true }).waitFor();
    await shot(page, "apps");
    await page.getByRole("link", { name: "Setup" }).click();
    await page.getByRole("heading", { name: "Setup" }).waitFor();
    await shot(page, "setup");

    // Logout ends the Keycloak session too: signing in again asks for the password.
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL((u) => u.href.startsWith(admin!.address));
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await page.getByRole("link", { name: "Sign in with Keycloak" }).click();
    await page.locator("#username").waitFor();
  });
  const audit = admin!.records().filter((x) => x.audit === true && x.action === "alias.add");
  assert.deepEqual(audit.map((x) => [x.who, x.via, x.from, x.target]), [["alice", "web", "127.0.0.1", "team@d3.test -> alice"]]);
});

test("an ordinary user creates an app password and sends mail with it; admin pages and routes are 403; no CSRF token, no change", async (t) => {
  if (skip) return t.skip(skip);
  await withPage("user", async (page) => {
    await signIn(page, "dave", "dave-pw");
    await page.getByText("dave (user)").waitFor();
    await page.getByRole("heading", { name: "My mail" }).waitFor();
    assert.equal(await page.getByRole("link", { name: "Domains" }).isHidden(), true, "no admin links for a user");

    await page.getByLabel("Name").fill("phone");
    await page.getByRole("button", { name: "Create app password" }).click();
    await page.locator("#self-created").waitFor();
    const appId = await page.locator("#self-created-id").textContent();
    const password = await page.locator("#self-created-pw").textContent();
    assert.equal(appId, "dave.phone");
    assert.ok(password && password.length >= 24);
    await page.getByLabel("Allow sender for dave.phone").selectOption("dave@d2.test");
    await page.getByRole("button", { name: "Allow" }).click();
    await page.getByRole("list").getByText("dave@d2.test").waitFor();
    await shot(page, "self");

    const subject = uniqueSubject("app-password");
    const sent = await smtp({ port: stack!.submissionPort, from: "dave@d2.test", to: "alice@d1.test", auth: { user: appId!, password: password! }, quitAfter: null, headers: { Subject: subject } });
    assert.match(sent.auth ?? "", /^235/, sent.transcript);
    assert.match(sent.endOfData ?? "", /^250/, sent.transcript);
    await waitForMessage(stack!.maildirNew("d1.test", "alice"), subject, 20_000);
    // The app may not send as someone else's address.
    const other = await smtp({ port: stack!.submissionPort, from: "alice@d1.test", to: "alice@d1.test", auth: { user: appId!, password: password! } });
    assert.match(other.rcpt ?? "", /^5/, other.transcript);

    await page.goto(`${admin!.address}/#domains`);
    await page.getByRole("heading", { name: "Admins only" }).waitFor();
    await shot(page, "user-forbidden");
    const csrf = await page.evaluate(async () => ((await (await fetch("/api/me")).json()) as { csrf: string }).csrf);
    const status = (method: string, path: string, body?: unknown, withCsrf = true): Promise<{ status: number; error: string }> =>
      page.evaluate(async ([m, p, b, c]) => {
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (c) headers["x-csrf-token"] = c;
        const r = await fetch(p as string, { method: m as string, headers, ...(b === undefined ? {} : { body: JSON.stringify(b) }) });
        return { status: r.status, error: ((await r.json()) as { error: string }).error };
      }, [method, path, body, withCsrf ? csrf : ""] as const);
    for (const [m, p, b] of [["GET", "/api/domains"], ["GET", "/api/overview"], ["POST", "/api/domains", { domain_name: "evil.test" }], ["DELETE", "/api/apps/crm"], ["GET", "/api/setup/status"]] as const) {
      const r = await status(m, p, b);
      assert.equal(r.status, 403, `${m} ${p}`);
      assert.match(r.error, /admin/);
    }
    const noCsrf = await status("POST", "/api/self/apps", { name: "sneaky" }, false);
    assert.deepEqual(noCsrf, { status: 403, error: "missing or wrong CSRF token (reload the page)" });
    const notMine = await status("POST", "/api/self/apps/dave.phone/senders", { from_addr: "alice@d1.test" });
    assert.equal(notMine.status, 403);
    const theirs = await status("DELETE", "/api/self/apps/crm");
    assert.equal(theirs.status, 404, "an app of someone else's reads as absent");

    // Revoke: asks first, then the password stops working.
    await page.goto(`${admin!.address}/#self`);
    await page.getByRole("button", { name: "Revoke dave.phone" }).click();
    await confirmDialog(page);
    await page.getByText("No app passwords").waitFor();
    const revoked = await smtp({ port: stack!.submissionPort, from: "dave@d2.test", to: "alice@d1.test", auth: { user: appId!, password: password! }, clientAddress: "127.0.0.9", quitAfter: "AUTH" });
    assert.match(revoked.auth ?? "", /^535/, revoked.transcript);
  });
  assert.ok(!admin!.output.includes(FIXTURE.adminClient.secret), "the client secret is never logged");
});
