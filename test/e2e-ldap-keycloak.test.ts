// Seed 002's world, through Keycloak: an OpenLDAP directory owns the users and
// their tnMailSendAllowed flag; Keycloak federates it (LDAP user federation,
// no cache, a user-attribute mapper tnMailSendAllowed -> mailSendAllowed);
// mailcloak reads mailSendAllowed from Keycloak; Postfix enforces it at SMTP
// time. Everything is real: slapd (test/helpers/slapd.ts), the run's shared
// Keycloak, the mailcloak daemon, Postfix and Dovecot (test/helpers/mailstack.ts).
//
// The federation goes into a realm of its own on the shared server (a copy of
// the fixture realm under another name), so the other suites never see LDAP
// users or an LDAP outage; it is deleted at the end.
//
// Dovecot's passdb stays the stack's passwd-file (lena and otto are added to
// it): SMTP AUTH is not what this suite is about. Their LDAP passwords are
// checked through Keycloak's own login instead.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ctlOk, type ConfigTree } from "./helpers/daemon.js";
import { keycloakIdpFor } from "./helpers/directory.js";
import { releaseKeycloak, sharedKeycloak, type KeycloakAdmin, type RealKeycloak } from "./helpers/keycloak-real.js";
import { cleanUpAll, LdapRealm } from "./helpers/ldap-keycloak.js";
import { MailStack, smtp, stackUnavailable, uniqueSubject, waitForMessage, type SmtpResult } from "./helpers/mailstack.js";
import { LDAP, Slapd, slapdUnavailable } from "./helpers/slapd.js";

const CI = process.env.CI === "true";
const REALM = "mailcloak-ldap";
/** A public client for Keycloak's password grant: proves the LDAP password is what Keycloak checks. */
const LOGIN_CLIENT = "ldap-login";

const missing = [stackUnavailable(), slapdUnavailable()].filter((x) => x !== null).join("; ") || null;
let skip: string | null = missing;
const opts = { timeout: 120_000 } as const;

let kc: RealKeycloak;
let admin: KeycloakAdmin;
let ldapRealm: LdapRealm | null = null;
let slapd: Slapd | null = null;
let s: MailStack | null = null;
let federationId = "";

before(async () => {
  if (missing !== null) {
    if (CI) throw new Error(`e2e-ldap-keycloak: ${missing}; .ci/run must install them`);
    return;
  }
  const shared = await sharedKeycloak();
  if ("skip" in shared) {
    skip = shared.skip;
    return;
  }
  kc = shared;
  const t0 = Date.now();
  slapd = await Slapd.start();
  const t1 = Date.now();
  ldapRealm = new LdapRealm(kc.baseUrl, REALM);
  admin = ldapRealm.admin;
  await ldapRealm.create({
    url: slapd.url,
    extraClients: [{
      clientId: LOGIN_CLIENT, enabled: true, publicClient: true, directAccessGrantsEnabled: true,
      standardFlowEnabled: false, protocol: "openid-connect",
    }],
  });
  federationId = ldapRealm.federationId;
  const t2 = Date.now();
  s = await MailStack.start({
    // The TTL is long enough that a change in LDAP shows only after `mailcloakctl cache flush`.
    idp: keycloakIdpFor(kc.baseUrl, { realm: REALM, cache_ttl_seconds: 300, timeout_ms: 10_000 }).idp as ConfigTree,
    passwords: { lena: LDAP.users.lena.password, otto: LDAP.users.otto.password },
  });
  process.stderr.write(`slapd ready in ${t1 - t0} ms at ${slapd.url} (pid ${slapd.pid}); realm and federation ${t2 - t1} ms; mail stack ${Date.now() - t2} ms\n`);
});

after(() => cleanUpAll([
  async () => s?.stop(),
  async () => ldapRealm?.delete(),
  async () => slapd?.stop(),
  releaseKeycloak,
]));

// ---- helpers ----

const OK_RCPT = "250 2.1.5 Ok";
const AUTH_OK = "235 2.7.0 Authentication successful";
const disabled = (a: string): string => `554 5.7.1 <${a}>: Sender address rejected: Sending is disabled for this account`;

function stack(): MailStack {
  assert.ok(s, "the mail stack is running");
  return s;
}

function directory(): Slapd {
  assert.ok(slapd, "slapd is running");
  return slapd;
}

function submit(user: keyof typeof LDAP.users): Promise<SmtpResult> {
  const u = LDAP.users[user];
  return smtp({ port: stack().submissionPort, from: u.mail, to: "friend@ext.test", auth: { user, password: u.password } });
}

function expectReply(r: SmtpResult, which: "rcpt" | "auth", want: string, label = ""): void {
  assert.equal(which === "rcpt" ? r.rcpt : r.auth, want, `${label}\n--- swaks ---\n${r.transcript}\n${stack().diagnostics()}\n--- slapd ---\n${directory().tail()}`);
}

/** A whole message from outside to `to`, found in the mailbox of `local`@d1.test. */
async function deliver(to: string, local: string): Promise<string> {
  const subject = uniqueSubject(`ldap ${local}`);
  const r = await smtp({ port: stack().smtpPort, from: "someone@ext.test", to, quitAfter: null, headers: { Subject: subject } });
  assert.match(r.endOfData ?? "", /^250 2\.0\.0 Ok: queued as \w+/, r.transcript);
  return waitForMessage(stack().maildirNew("d1.test", local), subject, 15_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${stack().diagnostics()}`);
  });
}

async function flush(): Promise<void> {
  const out = await ctlOk(stack().daemon.db, "cache", "flush", "--pid-file", stack().pidFile);
  assert.match(out, /^cache flush requested \(pid \d+\)/);
}

async function kcUser(query: string): Promise<{ username: string; email?: string; federationLink?: string; attributes?: Record<string, string[]> }> {
  const list = await admin.ok("GET", `/users?${query}&exact=true&briefRepresentation=false`) as { username: string }[];
  assert.equal(list.length, 1, `one Keycloak user for ${query}: ${JSON.stringify(list)}`);
  return list[0]!;
}

async function keycloakLogin(username: string, password: string): Promise<number> {
  const r = await fetch(`${kc.baseUrl}/realms/${REALM}/protocol/openid-connect/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "password", client_id: LOGIN_CLIENT, username, password, scope: "openid" }),
  });
  await r.body?.cancel();
  return r.status;
}

// ---- the directory and the federation ----

test("slapd runs as our foreground child on loopback, with the fixture's schema and entries", opts, async (t) => {
  if (skip) return t.skip(skip);
  const d = directory();
  assert.match(d.url, /^ldap:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(d.pidFromFile(), d.pid, "slapd's pid file names the process we spawned");
  const lena = await d.search(LDAP.usersDn, "(uid=lena)", ["mail", "tnMailSendAllowed"]);
  assert.match(lena, /^mail: lena@d1\.test$/m);
  assert.match(lena, /^tnMailSendAllowed: TRUE$/m);
  // The schema's Boolean syntax: nothing but TRUE or FALSE.
  await assert.rejects(d.replace(LDAP.users.lena.dn, "tnMailSendAllowed", "no"), /Invalid syntax/);
  // Keycloak's bind reads the entries but never a password hash; users bind with their own password.
  const seen = await d.search(LDAP.usersDn, "(uid=lena)", ["uid", "tnMailSendAllowed", "userPassword"], LDAP.keycloak);
  assert.match(seen, /^tnMailSendAllowed: TRUE$/m);
  assert.doesNotMatch(seen, /userPassword/);
  assert.match(await d.search(LDAP.usersDn, "(uid=lena)", ["userPassword"]), /^userPassword::? /m, "the root DN sees it: the ACL is what hides it");
  assert.ok(await d.canBind({ dn: LDAP.users.lena.dn, password: LDAP.users.lena.password }));
  assert.equal(await d.canBind({ dn: LDAP.users.lena.dn, password: "wrong" }), false);
});

test("Keycloak finds the LDAP users by username and email, with tnMailSendAllowed as mailSendAllowed", opts, async (t) => {
  if (skip) return t.skip(skip);
  const lena = await kcUser("username=lena");
  assert.equal(lena.email, "lena@d1.test");
  assert.equal(lena.federationLink, federationId, "lena comes from the LDAP federation");
  assert.deepEqual(lena.attributes?.mailSendAllowed, ["TRUE"]);
  const otto = await kcUser(`email=${encodeURIComponent("otto@d1.test")}`);
  assert.equal(otto.username, "otto");
  assert.deepEqual(otto.attributes?.mailSendAllowed, ["FALSE"]);
  // Keycloak checks passwords with a bind to LDAP (the hashes stay in the directory).
  assert.equal(await keycloakLogin("lena", LDAP.users.lena.password), 200);
  assert.equal(await keycloakLogin("lena", "wrong"), 401);
});

// ---- mail ----

test("an LDAP user receives mail in her maildir", opts, async (t) => {
  if (skip) return t.skip(skip);
  const msg = await deliver("lena@d1.test", "lena");
  assert.match(msg, /^Delivered-To: lena@d1\.test$/m);
});

test("an LDAP user with tnMailSendAllowed TRUE sends (authenticated submission accepted)", opts, async (t) => {
  if (skip) return t.skip(skip);
  const r = await submit("lena");
  expectReply(r, "auth", AUTH_OK);
  expectReply(r, "rcpt", OK_RCPT);
});

test("an LDAP user with tnMailSendAllowed FALSE logs in and receives, but sending is refused with 554 5.7.1", opts, async (t) => {
  if (skip) return t.skip(skip);
  const r = await submit("otto");
  expectReply(r, "auth", AUTH_OK);
  expectReply(r, "rcpt", disabled("otto@d1.test"));
  await deliver("otto@d1.test", "otto");
});

test("ldapmodify tnMailSendAllowed FALSE: after a cache flush lena may not send, yet logs in and receives; TRUE again: she sends", opts, async (t) => {
  if (skip) return t.skip(skip);
  const master = stack().runningMasterPid();
  assert.notEqual(master, null);
  expectReply(await submit("lena"), "rcpt", OK_RCPT, "before the change");
  const timings: string[] = [];
  const timed = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    const v = await f();
    timings.push(`${what} ${Date.now() - t0} ms`);
    return v;
  };
  try {
    await directory().replace(LDAP.users.lena.dn, "tnMailSendAllowed", "FALSE");
    // mailcloak's own cache (cache_ttl_seconds 300) still holds the old answer...
    expectReply(await submit("lena"), "rcpt", OK_RCPT, "cached by mailcloak until the flush");
    // ...and once it is emptied, Keycloak (no federation cache) reads the entry from LDAP again.
    await flush();
    const refused = await timed("refused after flush", () => submit("lena"));
    expectReply(refused, "auth", AUTH_OK, "still authenticates");
    expectReply(refused, "rcpt", disabled("lena@d1.test"), "after the flush");
    await timed("delivery", () => deliver("lena@d1.test", "lena"));
  } finally {
    await directory().replace(LDAP.users.lena.dn, "tnMailSendAllowed", "TRUE");
  }
  await flush();
  expectReply(await timed("accepted after flush", () => submit("lena")), "rcpt", OK_RCPT, "after setting TRUE again");
  assert.equal(stack().runningMasterPid(), master, "same Postfix master: no reload");
  t.diagnostic(timings.join("; "));
});

// ---- the directory down ----

test("the directory down: Keycloak lists its users as disabled, mailcloak defers them (4xx, not 5xx); back up: accepted again without a restart", opts, async (t) => {
  if (skip) return t.skip(skip);
  await directory().kill();
  try {
    await flush();
    const lena = await admin.ok("GET", "/users?username=lena&exact=true&briefRepresentation=false") as { enabled?: boolean }[];
    assert.equal(lena[0]?.enabled, false, `Keycloak's answer for lena with LDAP down: ${JSON.stringify(lena)}`);
    expectReply(await smtp({ port: stack().smtpPort, from: "someone@ext.test", to: "lena@d1.test" }), "rcpt",
      "451 4.3.0 <lena@d1.test>: Recipient address rejected: Temporary authentication/lookup failure", "an LDAP user as recipient");
    const r = await submit("lena");
    expectReply(r, "auth", AUTH_OK, "the passwd-file login does not need LDAP");
    expectReply(r, "rcpt", "451 4.3.0 <lena@d1.test>: Sender address rejected: Temporary authentication/lookup failure", "an LDAP user as sender");
    // Keycloak's own users are unaffected.
    expectReply(await smtp({ port: stack().smtpPort, from: "someone@ext.test", to: "alice@d1.test" }), "rcpt", OK_RCPT, "a Keycloak-only user");
  } finally {
    await directory().restart();
  }
  expectReply(await smtp({ port: stack().smtpPort, from: "someone@ext.test", to: "lena@d1.test" }), "rcpt", OK_RCPT, "the directory back");
  expectReply(await submit("lena"), "rcpt", OK_RCPT, "the directory back, sending");
});
