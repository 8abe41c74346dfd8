// An LDAP outage behind Keycloak, end to end over the daemon's real sockets:
// a real slapd (helpers/slapd.ts) federated by the run's real Keycloak
// (helpers/ldap-keycloak.ts), the real daemon asking Keycloak. While Keycloak
// cannot read the directory it still lists the imported LDAP users, marked
// disabled; mailcloak must answer those lookups with its failure mode
// (tempfail, or fail-open when configured), never with "no such user", and
// answer normally again once the directory is back, without a restart.
//
// Cases: slapd killed (connections refused), slapd stopped with SIGSTOP
// (connections accepted, nothing answered: Keycloak's LDAP timeout, or
// mailcloak's own deadline when that is shorter), Keycloak's bind refused
// (a wrong bind password: a misconfiguration is an outage for delivery),
// and the directory coming back (SIGCONT, restart) under a daemon that keeps
// running. Besides lena (imported by Keycloak, so listed disabled), each case
// asks for a newcomer added to LDAP just before the outage, whom Keycloak has
// not imported and so does not list at all. Each case has a daemon of its
// own, so no cache entry or breaker state is carried from one to the next.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Client, ctlOk, DaemonProcess, mergeTree, policyQuery, socketmapQuery, tempDir, type ConfigTree } from "./helpers/daemon.js";
import { keycloakIdpFor } from "./helpers/directory.js";
import { waitUntil } from "./helpers/faults.js";
import { releaseKeycloak, sharedKeycloak } from "./helpers/keycloak-real.js";
import { cleanUpAll, LdapRealm } from "./helpers/ldap-keycloak.js";
import { LDAP, Slapd, slapdUnavailable } from "./helpers/slapd.js";
import { STORAGE_BACK, STORAGE_DOWN } from "../src/directory/keycloak.js";
import { ACTIONS } from "../src/handlers/policy.js";

const CI = process.env.CI === "true";
const REALM = "mailcloak-ldap-outage";
/** Keycloak's LDAP timeouts: short, so a hung slapd is answered within mailcloak's deadline. */
const KC_LDAP_TIMEOUT_MS = 500;
/** mailcloak's deadline for a Keycloak call: longer than Keycloak's LDAP retries take with slapd hung (the test client waits 5 s). */
const TIMEOUT_MS = 4000;
const opts = { timeout: 90_000 } as const;

let skip: string | null = slapdUnavailable();
let slapd: Slapd | null = null;
let realm: LdapRealm | null = null;
let baseUrl = "";

before(async () => {
  if (skip !== null) {
    if (CI) throw new Error(`ldap-outage: ${skip}; .ci/run must install them`);
    return;
  }
  const shared = await sharedKeycloak();
  if ("skip" in shared) {
    skip = shared.skip;
    return;
  }
  baseUrl = shared.baseUrl;
  slapd = await Slapd.start();
  realm = new LdapRealm(baseUrl, REALM);
  await realm.create({ url: slapd.url, connectionTimeoutMs: KC_LDAP_TIMEOUT_MS, readTimeoutMs: KC_LDAP_TIMEOUT_MS });
});

after(() => cleanUpAll([
  async () => realm?.delete(),
  async () => slapd?.stop(),
  releaseKeycloak,
]));

function directory(): Slapd {
  assert.ok(slapd, "slapd is running");
  return slapd;
}

interface Stack {
  readonly d: DaemonProcess;
  readonly policy: Client;
  readonly socketmap: Client;
}

/**
 * A daemon on the LDAP realm: domain d1.test with a catch-all to alice (so
 * the alias map asks whether lena is a user). Negative answers are cached as
 * long as positive ones and nothing is served stale, so an outage wrongly
 * stored as "unknown user" would still show after the directory is back.
 */
async function daemon(t: { after: (f: () => Promise<void>) => void }, extra: ConfigTree = {}): Promise<Stack> {
  const dir = tempDir();
  for (const args of [["init"], ["domains", "add", "d1.test"], ["aliases", "add", "@d1.test", "alice"]]) await ctlOk(`${dir}/state.db`, ...args);
  const idp = keycloakIdpFor(baseUrl, { realm: REALM, cache_ttl_seconds: 300, timeout_ms: TIMEOUT_MS });
  const d = await DaemonProcess.start({ dir, config: mergeTree(mergeTree(idp, { cache: { negative_ttl_seconds: 300, stale_seconds: 0 } }), extra) });
  const s = { d, policy: await Client.connect(d.policySocket), socketmap: await Client.connect(d.socketmapSocket) };
  // Cleaned up on failure too: a live daemon or socket would keep the test file from exiting.
  t.after(async () => {
    s.policy.destroy();
    s.socketmap.destroy();
    await d.cleanup();
  });
  return s;
}

interface Answers {
  /** Policy, RCPT to lena from outside. */
  rcpt: string;
  /** Policy, lena logged in sending as herself. */
  sender: string;
  mailbox: string;
  /** The alias map for lena's address (the catch-all must not capture a user). */
  alias: string;
  /** smtpd_sender_login_maps for lena's address. */
  senders: string;
  /** RCPT and mailbox for a user in LDAP whom Keycloak has not imported yet (not listed while LDAP is down). */
  newcomer?: string;
}

let newcomers = 0;

/** A user added to LDAP now, never looked up: Keycloak imports her on her first lookup. */
async function newcomer(): Promise<string> {
  const uid = `nina${++newcomers}`;
  await directory().modify([
    `dn: uid=${uid},${LDAP.usersDn}`, "changetype: add", "objectClass: inetOrgPerson", `uid: ${uid}`,
    `cn: Nina ${newcomers}`, "sn: Nyberg", `mail: ${uid}@d1.test`, "",
  ].join("\n"));
  return uid;
}

const LENA = LDAP.users.lena.mail;
const TEMP = "TEMP identity provider lookup failed";
const UP = (nc?: string): Answers => ({
  rcpt: ACTIONS.dunno, sender: ACTIONS.dunno, mailbox: "OK d1.test/lena/", alias: "NOTFOUND", senders: "OK lena",
  ...(nc !== undefined ? { newcomer: `${ACTIONS.dunno} | OK d1.test/${nc}/` } : {}),
});
const TEMPFAIL = (nc?: string): Answers => ({
  rcpt: ACTIONS.tempfailIdp, sender: ACTIONS.tempfailIdp, mailbox: TEMP, alias: TEMP, senders: TEMP,
  ...(nc !== undefined ? { newcomer: `${ACTIONS.tempfailIdp} | ${TEMP}` } : {}),
});
/** Fail-open: accept the recipient and the login (the relay to ext.test is the MTA's business), route to her mailbox. */
const FAIL_OPEN = (nc?: string): Answers => ({
  rcpt: ACTIONS.dunno, sender: ACTIONS.dunno, mailbox: "OK d1.test/lena/", alias: "NOTFOUND", senders: "NOTFOUND",
  ...(nc !== undefined ? { newcomer: `${ACTIONS.dunno} | OK d1.test/${nc}/` } : {}),
});

/** lena first: her lookup shows the daemon the federation a newcomer may be in. */
async function answers(s: Stack, nc?: string): Promise<Answers> {
  const a: Answers = {
    rcpt: await policyQuery(s.policy, { protocol_state: "RCPT", sender: "someone@ext.test", recipient: LENA }),
    sender: await policyQuery(s.policy, { protocol_state: "RCPT", sasl_method: "PLAIN", sasl_username: "lena", sender: LENA, recipient: "friend@ext.test" }),
    mailbox: await socketmapQuery(s.socketmap, "mailbox", LENA),
    alias: await socketmapQuery(s.socketmap, "alias", LENA),
    senders: await socketmapQuery(s.socketmap, "senders", LENA),
  };
  if (nc !== undefined) {
    const addr = `${nc}@d1.test`;
    a.newcomer = `${await policyQuery(s.policy, { protocol_state: "RCPT", sender: "someone@ext.test", recipient: addr })} | ${await socketmapQuery(s.socketmap, "mailbox", addr)}`;
  }
  return a;
}

function expectAnswers(s: Stack, got: Answers, want: Answers, label: string): void {
  assert.deepEqual(got, want, `${label}\n--- daemon ---\n${s.d.output.slice(-4000)}\n--- slapd ---\n${directory().tail(10)}`);
}

/** The daemon logged why it used the failure mode, once for the outage (not per lookup), as an error. */
function expectOutageLogged(s: Stack): void {
  const lines = s.d.records().filter((r) => r.msg === STORAGE_DOWN);
  assert.equal(lines.length, 1, `one error line for the outage\n${s.d.output.slice(-4000)}`);
  assert.equal(lines[0]!.level, 50);
  assert.equal(lines[0]!.username, "lena");
  assert.equal(lines[0]!.status, 500);
}

async function eventually(s: Stack, want: Answers, label: string, nc?: string): Promise<void> {
  let last: Answers | null = null;
  try {
    await waitUntil(async () => {
      last = await answers(s, nc);
      return JSON.stringify(last) === JSON.stringify(want);
    }, 20_000, label, 250);
  } catch {
    expectAnswers(s, last ?? await answers(s, nc), want, label);
  }
}

describe("LDAP behind Keycloak: the directory unreachable", () => {
  test("baseline: with slapd up lena is a user, receives, sends as herself; a newcomer is imported and found", opts, async (t) => {
    if (skip) return t.skip(skip);
    const s = await daemon(t);
    const nc = await newcomer();
    expectAnswers(s, await answers(s, nc), UP(nc), "slapd up");
  });

  test("(a) slapd killed (connection refused): tempfail everywhere, never 550; restarted: answers resume, no mailcloak restart", opts, async (t) => {
    if (skip) return t.skip(skip);
    const s = await daemon(t);
    const nc = await newcomer();
    await directory().kill();
    try {
      expectAnswers(s, await answers(s, nc), TEMPFAIL(nc), "slapd killed");
      expectOutageLogged(s);
    } finally {
      await directory().restart();
    }
    // Nothing of the outage was cached (TTLs of 300 s): the newcomer is found at once too.
    await eventually(s, UP(nc), "slapd restarted", nc);
    assert.ok(s.d.records().some((r) => r.msg === STORAGE_BACK), s.d.output.slice(-4000));
  });

  test("(a) slapd killed with idp_failure_mode dunno: fail-open answers", opts, async (t) => {
    if (skip) return t.skip(skip);
    const s = await daemon(t, { policy: { idp_failure_mode: "dunno" } });
    const nc = await newcomer();
    await directory().kill();
    try {
      expectAnswers(s, await answers(s, nc), FAIL_OPEN(nc), "slapd killed, fail-open");
    } finally {
      await directory().restart();
    }
    await eventually(s, UP(nc), "slapd restarted", nc);
  });

  test("(b) slapd hung (SIGSTOP), Keycloak's LDAP timeout first: tempfail; SIGCONT: answers resume", opts, async (t) => {
    if (skip) return t.skip(skip);
    const s = await daemon(t);
    const nc = await newcomer();
    directory().pause();
    try {
      expectAnswers(s, await answers(s, nc), TEMPFAIL(nc), "slapd stopped");
      expectOutageLogged(s);
    } finally {
      directory().resume();
    }
    await eventually(s, UP(nc), "slapd continued", nc);
  });

  test("(b) slapd hung (SIGSTOP), mailcloak's deadline first: tempfail; SIGCONT: answers resume", opts, async (t) => {
    if (skip) return t.skip(skip);
    // Shorter than one Keycloak LDAP timeout: Keycloak has not answered when mailcloak gives up.
    const s = await daemon(t, { idp: { keycloak: { timeout_ms: 300 } }, log: { level: "debug" } });
    directory().pause();
    try {
      expectAnswers(s, await answers(s), TEMPFAIL(), "slapd stopped, mailcloak times out");
      assert.match(s.d.output, /"reason":"keycloak [a-z ]+ timed out after 300 ms"/);
    } finally {
      directory().resume();
    }
    await eventually(s, UP(), "slapd continued");
  });

  test("(c) Keycloak's bind refused (wrong bind password): tempfail with the cause logged; fixed: answers resume", opts, async (t) => {
    if (skip) return t.skip(skip);
    const s = await daemon(t);
    const nc = await newcomer();
    const r = realm!;
    await r.updateFederation({ bindCredential: "not-the-bind-password" });
    try {
      assert.equal(await directory().canBind({ dn: LDAP.keycloak.dn, password: "not-the-bind-password" }), false);
      expectAnswers(s, await answers(s, nc), TEMPFAIL(nc), "bind refused");
      expectOutageLogged(s);
    } finally {
      await r.updateFederation({ bindCredential: LDAP.keycloak.password });
    }
    await eventually(s, UP(nc), "bind password fixed", nc);
  });

  test("a user an admin disabled in Keycloak, slapd up: still refused (550), not a tempfail", opts, async (t) => {
    if (skip) return t.skip(skip);
    const s = await daemon(t);
    const r = realm!;
    const id = await r.admin.userId("lena");
    const before = await r.admin.ok("GET", `/users/${id}`) as Record<string, unknown>;
    await r.admin.ok("PUT", `/users/${id}`, { ...before, enabled: false });
    try {
      expectAnswers(s, await answers(s), {
        rcpt: ACTIONS.noSuchUser, sender: ACTIONS.notOwned, mailbox: "NOTFOUND", alias: "NOTFOUND", senders: "NOTFOUND",
      }, "lena disabled by an admin");
    } finally {
      await r.admin.ok("PUT", `/users/${id}`, { ...before, enabled: true });
    }
  });
});
