// End to end through real SMTP: swaks talks to a private Postfix configured
// with configs/postfix-main.cf and configs/postfix-master.cf, which asks the
// real mailcloak daemon (policy + socketmap; users from a Keycloak) and a
// real Dovecot (configs/dovecot-mailcloak.conf: SASL, where app passwords
// are the Argon2id hashes in mailcloak's database, and LMTP delivery).
// Assertions are on the exact SMTP replies Postfix gives, on Postfix's log
// and on delivered maildir files. The whole stack is set up and torn down by
// test/helpers/mailstack.ts.
//
// One specification, two directories: e2e-smtp.test.ts runs it against the
// Keycloak emulator, e2e-smtp-real.test.ts against a real Keycloak the suite
// owns (it stops and starts it for the outage tests). The suite changes users,
// token lifetimes and availability only through a DirectoryController.
//
// Ports: 'smtp' (MX, no AUTH), 'submission' (AUTH required), both from
// postfix-master.cf; 'native' is a test-only submission port that checks
// senders with Postfix's own reject_authenticated_sender_login_mismatch.

import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { ctlOk } from "./helpers/daemon.js";
import type { DirectoryController } from "./helpers/directory.js";
import {
  MailStack, PASSWORDS, run, smtp, stackUnavailable, uniqueSubject, waitFor, waitForMessage,
  type SmtpOptions, type SmtpResult,
} from "./helpers/mailstack.js";

export interface SmtpSpecOptions {
  /** Starts the directory mailcloak uses (before the stack). */
  directory: () => Promise<DirectoryController>;
  /** Why that directory cannot run here, or null. */
  directoryUnavailable: string | null;
  /** Per-test backstop (a real Keycloak's restart takes tens of seconds). */
  timeoutMs: number;
  /** mailcloak's deadline for each Keycloak call. */
  keycloakTimeoutMs: number;
  /** Lifetime (s) of tokens in the renewal test: short, so the test sees several. */
  shortTokenLifespan: number;
  /** How long the renewal test runs (ms). */
  renewalRunMs: number;
}

export function smtpSpec(name: string, o: SmtpSpecOptions): void {
  const CI = process.env.CI === "true";
  const unavailable = [stackUnavailable(), o.directoryUnavailable].filter((x) => x !== null).join("; ") || null;
  // Outside CI a machine without Postfix/Dovecot/swaks (or Keycloak's needs) skips the suite; in CI it fails (before() throws).
  // Every wait inside a test has its own deadline; the timeout is a backstop.
  const opts = { skip: unavailable !== null && !CI ? unavailable : false, timeout: o.timeoutMs } as const;
  describe(name, () => {
    let s: MailStack;
    let dir: DirectoryController;

    before(async () => {
      if (unavailable !== null) {
        if (CI) throw new Error(`e2e-smtp (${name}): ${unavailable}; .ci/run must install them`);
        return;
      }
      dir = await o.directory();
      try {
        s = await MailStack.start({ failureMode: "tempfail", idp: dir.idp({ cache_ttl_seconds: 1, timeout_ms: o.keycloakTimeoutMs }) });
      } catch (err) {
        await dir.dispose();
        throw err;
      }
    });

    after(async () => {
      await s?.stop();
      await dir?.dispose();
    });

    // ---- helpers ----

    const OK_RCPT = "250 2.1.5 Ok";
    const AUTH_OK = "235 2.7.0 Authentication successful";
    const noSuchUser = (a: string): string => `550 5.1.1 <${a}>: Recipient address rejected: No such user`;
    const senderRejected = (code: string, a: string, text: string): string => `${code} <${a}>: Sender address rejected: ${text}`;
    const NOT_OWNED = "Sender not owned by authenticated user";

    /** Unauthenticated, on the MX port, from an outside sender. */
    function mx(to: string, from = "someone@ext.test"): Promise<SmtpResult> {
      return smtp({ port: s.smtpPort, from, to });
    }

    /** Logged in on the submission port. */
    function submit(user: keyof typeof PASSWORDS, from: string, to = "friend@ext.test", extra: Partial<SmtpOptions> = {}): Promise<SmtpResult> {
      return smtp({ port: s.submissionPort, from, to, auth: { user, password: PASSWORDS[user] }, ...extra });
    }

    /** Assert a reply, showing the transcript and the logs when it differs. */
    function expectReply(r: SmtpResult, which: "rcpt" | "auth", want: string | RegExp, label = ""): void {
      const got = which === "rcpt" ? r.rcpt : r.auth;
      const msg = `${label}\n--- swaks ---\n${r.transcript}\n${s.diagnostics()}`;
      if (typeof want === "string") assert.equal(got, want, msg);
      else assert.match(got ?? "", want, msg);
    }

    // ---- the documented configuration ----

    test("the documented Postfix and Dovecot snippets are valid as installed (no warnings)", opts, async () => {
      const pc = await run("postconf", ["-c", s.postfixDir, "-n"]);
      assert.equal(pc.code, 0, pc.stderr);
      assert.equal(pc.stderr, "", "postconf warnings");
      const mc = await run("postconf", ["-c", s.postfixDir, "-M"]);
      assert.equal(mc.stderr, "", "master.cf warnings");
      const dc = await run("doveconf", ["-c", s.dovecotConf, "-n"]);
      assert.equal(dc.code, 0, dc.stderr);
      assert.equal(dc.stderr, "", "doveconf warnings");
      // Postfix's sockets are config.yaml.sample's defaults, relative to the queue directory.
      const names = MailStack.sampleSocketNames();
      const h = async (p: string): Promise<string> => (await run("postconf", ["-c", s.postfixDir, "-h", p])).stdout.trim();
      assert.equal(await h("virtual_alias_maps"), `socketmap:unix:${names.socketmap}:alias`);
      assert.match(await h("smtpd_recipient_restrictions"), new RegExp(`unix:${names.policy}\\b`));
      assert.equal(await h("smtpd_sasl_path"), "private/auth");
      const startup = s.postfixLog();
      assert.doesNotMatch(startup, /warning|fatal|panic/, startup);
    });

    // ---- recipients (MX port, no login) ----

    const recipients: [string, string, (a: string) => string][] = [
      ["a user's primary address", "alice@d1.test", () => OK_RCPT],
      ["a user's address with +extension", "alice+news@d1.test", () => OK_RCPT],
      ["a user in the second domain", "dave@d2.test", () => OK_RCPT],
      ["an alias", "sales@d1.test", () => OK_RCPT],
      ["an alias with +extension", "sales+x@d1.test", () => OK_RCPT],
      ["a user whose sending is disabled still receives", "bob@d1.test", () => OK_RCPT],
      ["upper case", "ALICE@D1.TEST", () => OK_RCPT],
      ["a disabled alias", "old@d1.test", noSuchUser],
      ["a user disabled in Keycloak", "carol@d1.test", noSuchUser],
      ["an unknown address", "nobody@d1.test", noSuchUser],
      ["an app id is not a mailbox", "crm@d1.test", noSuchUser],
    ];

    for (const [name, rcpt, want] of recipients) {
      test(`RCPT ${name} (${rcpt}) -> ${want(rcpt)}`, opts, async () => {
        expectReply(await mx(rcpt), "rcpt", want(rcpt));
      });
    }

    test("Postfix logs mailcloak's rejection as a NOQUEUE reject", opts, async () => {
      await mx("nobody2@d1.test");
      const line = await waitFor("the reject line in Postfix's log", () =>
        s.postfixLog().split("\n").find((l) => l.includes("NOQUEUE: reject: RCPT") && l.includes("<nobody2@d1.test>")), 5000);
      assert.match(line, /550 5\.1\.1 <nobody2@d1\.test>: Recipient address rejected: No such user; from=<someone@ext\.test> to=<nobody2@d1\.test>/);
    });

    test("unauthenticated mail to a domain that is not ours is refused before mailcloak is asked (relay restrictions)", opts, async () => {
      expectReply(await mx("x@ext.test"), "rcpt", "554 5.7.1 <x@ext.test>: Relay access denied");
    });

    test("an unauthenticated sender in our domains -> 553 requires authentication", opts, async () => {
      expectReply(await mx("alice@d1.test", "alice@d1.test"), "rcpt",
        senderRejected("553 5.7.1", "alice@d1.test", "Sending from local domains requires authentication"));
      expectReply(await mx("dave@d2.test", "sales@d1.test"), "rcpt",
        senderRejected("553 5.7.1", "sales@d1.test", "Sending from local domains requires authentication"));
    });

    test("the null sender (bounces) is accepted without login", opts, async () => {
      expectReply(await mx("alice@d1.test", ""), "rcpt", OK_RCPT);
    });

    test("submission without a login accepts nothing", opts, async () => {
      expectReply(await smtp({ port: s.submissionPort, from: "someone@ext.test", to: "alice@d1.test" }), "rcpt",
        "554 5.7.1 <unknown[127.0.0.1]>: Client host rejected: Access denied");
    });

    // ---- senders (submission, logged in) ----

    test("alice may send as her address, her alias, and either with +extension, to anywhere", opts, async () => {
      for (const from of ["alice@d1.test", "sales@d1.test", "sales+x@d1.test", "alice+y@d1.test"]) {
        const r = await submit("alice", from);
        expectReply(r, "auth", AUTH_OK, from);
        expectReply(r, "rcpt", OK_RCPT, from);
      }
      expectReply(await submit("alice", "alice@d1.test", "bob@d1.test"), "rcpt", OK_RCPT);
    });

    test("alice may not send as bob -> 553 not owned", opts, async () => {
      expectReply(await submit("alice", "bob@d1.test"), "rcpt", senderRejected("553 5.7.1", "bob@d1.test", NOT_OWNED));
      expectReply(await submit("alice", "old@d1.test"), "rcpt", senderRejected("553 5.7.1", "old@d1.test", NOT_OWNED));
      expectReply(await submit("alice", "alice@ext.test"), "rcpt", senderRejected("553 5.7.1", "alice@ext.test", NOT_OWNED));
    });

    test("a logged-in user may use the null sender", opts, async () => {
      expectReply(await submit("alice", ""), "rcpt", OK_RCPT);
    });

    test("a user disabled in Keycloak cannot send even though the passdb still knows her", opts, async () => {
      const r = await submit("carol", "carol@d1.test");
      expectReply(r, "auth", AUTH_OK);
      expectReply(r, "rcpt", senderRejected("553 5.7.1", "carol@d1.test", NOT_OWNED));
    });

    // Failed logins come from addresses of their own (see SmtpOptions.clientAddress).
    test("a wrong password is refused by Dovecot", opts, async () => {
      const r = await smtp({ port: s.submissionPort, from: "alice@d1.test", to: "x@ext.test", auth: { user: "alice", password: "nope" }, clientAddress: "127.0.0.11" });
      expectReply(r, "auth", /^535 5\.7\.8 Error: authentication failed/);
      assert.equal(r.rcpt, undefined);
    });

    // ---- apps (Dovecot passdb sql over mailcloak's DB) ----

    test("app crm logs in with its Argon2id-hashed password and may send as sales@d1.test only", opts, async () => {
      const ok = await submit("crm", "sales@d1.test");
      expectReply(ok, "auth", AUTH_OK);
      expectReply(ok, "rcpt", OK_RCPT);
      expectReply(await submit("crm", "alice@d1.test"), "rcpt", senderRejected("553 5.7.1", "alice@d1.test", NOT_OWNED));
      const bad = await smtp({ port: s.submissionPort, from: "sales@d1.test", to: "x@ext.test", auth: { user: "crm", password: "wrong" }, clientAddress: "127.0.0.12" });
      expectReply(bad, "auth", /^535 5\.7\.8 /);
      assert.match(s.dovecotLog(), /sql\(crm[^)]*\): Password mismatch/);
    });

    test("a disabled app cannot log in (Dovecot's query reads enabled), and can again once enabled", opts, async () => {
      await ctlOk(s.daemon.db, "apps", "disable", "crm");
      try {
        expectReply(await submit("crm", "sales@d1.test", "friend@ext.test", { clientAddress: "127.0.0.13" }), "auth", /^535 5\.7\.8 /);
      } finally {
        await ctlOk(s.daemon.db, "apps", "enable", "crm");
      }
      expectReply(await submit("crm", "sales@d1.test"), "auth", AUTH_OK);
    });

    // ---- send_allowed_attribute ----

    test("bob (mailSendAllowed false) cannot send -> 554 sending disabled, but still receives", opts, async () => {
      const r = await submit("bob", "bob@d1.test");
      expectReply(r, "auth", AUTH_OK);
      expectReply(r, "rcpt", senderRejected("554 5.7.1", "bob@d1.test", "Sending is disabled for this account"));
      expectReply(await mx("bob@d1.test"), "rcpt", OK_RCPT);
    });

    test("optional Postfix-native check: smtpd_sender_login_maps + reject_authenticated_sender_login_mismatch", opts, async () => {
      const native = (user: keyof typeof PASSWORDS, from: string): Promise<SmtpResult> =>
        smtp({ port: s.nativePort, from, to: "friend@ext.test", auth: { user, password: PASSWORDS[user] } });
      for (const [user, from] of [["alice", "alice@d1.test"], ["alice", "sales@d1.test"], ["alice", "sales+x@d1.test"], ["crm", "sales@d1.test"]] as const) {
        expectReply(await native(user, from), "rcpt", OK_RCPT, `${user} as ${from}`);
      }
      expectReply(await native("alice", "bob@d1.test"), "rcpt", senderRejected("553 5.7.1", "bob@d1.test", "not owned by user alice"));
      expectReply(await native("crm", "alice@d1.test"), "rcpt", senderRejected("553 5.7.1", "alice@d1.test", "not owned by user crm"));
      // Sending disabled: the senders map leaves bob out.
      expectReply(await native("bob", "bob@d1.test"), "rcpt", senderRejected("553 5.7.1", "bob@d1.test", "not owned by user bob"));
    });

    test("turning bob's attribute to \"true\" in Keycloak lets him send after the cache TTL, without a Postfix reload", opts, async () => {
      const master = s.runningMasterPid();
      assert.notEqual(master, null);
      expectReply(await submit("bob", "bob@d1.test"), "rcpt", senderRejected("554 5.7.1", "bob@d1.test", "Sending is disabled for this account"));
      await dir.updateUser("bob", { attributes: { mailSendAllowed: ["true"] } });
      const changed = Date.now();
      try {
        const r = await waitFor("bob to be allowed to send", async () => {
          const r = await submit("bob", "bob@d1.test");
          return r.rcpt === OK_RCPT ? r : undefined;
        }, 8000, 200);
        expectReply(r, "rcpt", OK_RCPT);
        assert.ok(Date.now() - changed < 8000);
      } finally {
        await dir.updateUser("bob", { attributes: { mailSendAllowed: ["false"] } });
      }
      assert.equal(s.runningMasterPid(), master, "same Postfix master");
      assert.doesNotMatch(s.postfixLog(), /refreshing the Postfix mail system|reload -- version/);
      await waitFor("bob's sending to be disabled again", async () =>
        (await submit("bob", "bob@d1.test")).rcpt?.startsWith("554 5.7.1") === true, 8000, 200);
    });

    // ---- Keycloak token lifecycle ----

    test("tokens expiring mid-run are renewed: every lookup succeeds and few tokens are requested", opts, async (t) => {
      const lifespan = o.shortTokenLifespan;
      await dir.setTokenLifespan(lifespan);
      await dir.revokeTokens(); // the daemon's current token is revoked as well
      const before = await dir.counts(s.metricsPort);
      const started = Date.now();
      // An address never asked before, so the daemon must ask the directory.
      expectReply(await mx("renewal@d1.test"), "rcpt", noSuchUser("renewal@d1.test"), "first lookup after the revocation");
      const renewed = await dir.counts(s.metricsPort);
      assert.ok(renewed.tokens > before.tokens, "the revoked token was replaced at the first lookup");
      let n = 0;
      const times: number[] = [];
      try {
        while (Date.now() - started < o.renewalRunMs) {
          for (const rcpt of ["alice@d1.test", "dave@d2.test"]) {
            const t0 = Date.now();
            expectReply(await mx(rcpt), "rcpt", OK_RCPT, `lookup ${n}`);
            times.push(Date.now() - t0);
            n++;
          }
          await sleep(300);
        }
      } finally {
        await dir.setTokenLifespan(dir.defaultTokenLifespan);
      }
      const elapsed = (Date.now() - started) / 1000;
      const now = await dir.counts(s.metricsPort);
      const tokenRequests = now.tokens - before.tokens;
      const userQueries = now.userQueries - before.userQueries;
      // One token after the revocation, then one per lifetime (renewed 10% early).
      const bound = 1 + Math.ceil(elapsed / (lifespan * 0.9));
      t.diagnostic(`${dir.name}: ${n} RCPTs in ${elapsed.toFixed(1)} s: ${tokenRequests} token requests (bound ${bound}), ${userQueries} user queries; RCPT ms ${times.join(",")}`);
      assert.ok(tokenRequests >= 2, `a token was renewed (${tokenRequests})`);
      assert.ok(tokenRequests <= bound, `tokenRequests ${tokenRequests} <= ${bound} over ${elapsed.toFixed(1)} s, ${n} RCPTs`);
      assert.ok(userQueries >= 3, `Keycloak was really asked (${userQueries})`);
    });

    // ---- delivery ----

    test("a message to an alias is delivered to the user's maildir", opts, async () => {
      const subject = uniqueSubject("e2e alias");
      const r = await smtp({ port: s.smtpPort, from: "someone@ext.test", to: "sales@d1.test", quitAfter: null, headers: { Subject: subject } });
      assert.match(r.endOfData ?? "", /^250 2\.0\.0 Ok: queued as \w+/, r.transcript);
      const msg = await waitForMessage(s.maildirNew("d1.test", "alice"), subject, 10_000).catch((err: Error) => {
        throw new Error(`${err.message}\n${s.diagnostics()}`);
      });
      assert.match(msg, /^Delivered-To: alice@d1\.test$/m);
    });

    test("a message to alias+tag is delivered to the user's maildir", opts, async () => {
      const subject = uniqueSubject("e2e alias+tag");
      const r = await smtp({ port: s.smtpPort, from: "someone@ext.test", to: "sales+tag@d1.test", quitAfter: null, headers: { Subject: subject } });
      assert.match(r.endOfData ?? "", /^250 2\.0\.0 Ok: queued as \w+/, r.transcript);
      const msg = await waitForMessage(s.maildirNew("d1.test", "alice"), subject, 10_000).catch((err: Error) => {
        throw new Error(`${err.message}\n${s.diagnostics()}`);
      });
      assert.match(msg, /^Delivered-To: alice\+tag@d1\.test$/m);
    });

    // ---- Keycloak outage ----

    test("Keycloak down, idp_failure_mode tempfail -> 451 4.3.0 for a recipient not in cache", opts, async () => {
      await s.setFailureMode("tempfail"); // fresh daemon: empty cache
      const pid = s.daemon.child?.pid;
      expectReply(await mx("alice@d1.test"), "rcpt", OK_RCPT); // alice is now cached, for cache_ttl_seconds (1)
      await dir.down();
      try {
        expectReply(await mx("dave@d2.test"), "rcpt", "451 4.3.0 <dave@d2.test>: Recipient address rejected: Temporary authentication/lookup failure");
        // Past the TTL, with stale_seconds 0, a known answer is not reused either.
        await sleep(1200);
        expectReply(await mx("alice@d1.test"), "rcpt", "451 4.3.0 <alice@d1.test>: Recipient address rejected: Temporary authentication/lookup failure");
        // An alias needs no Keycloak at RCPT time (the message waits in the queue for delivery).
        expectReply(await mx("sales@d1.test"), "rcpt", OK_RCPT);
      } finally {
        await dir.up();
      }
      await waitFor("lookups to work again", async () => (await mx("dave@d2.test")).rcpt === OK_RCPT, 15_000, 250);
      expectReply(await mx("nobody@d1.test"), "rcpt", noSuchUser("nobody@d1.test"));
      assert.equal(s.daemon.child?.pid, pid, "the same mailcloak process");
    });

    test("Keycloak down, idp_failure_mode dunno -> accepted", opts, async () => {
      await s.setFailureMode("dunno");
      try {
        const pid = s.daemon.child?.pid;
        await dir.down();
        try {
          expectReply(await mx("dave@d2.test"), "rcpt", OK_RCPT);
          expectReply(await mx("alice@d1.test"), "rcpt", OK_RCPT);
          // Fail-open: while nobody can say, even an unknown address is accepted.
          expectReply(await mx("nobody@d1.test"), "rcpt", OK_RCPT);
        } finally {
          await dir.up();
        }
        // Then normal answers again, from the same mailcloak process.
        const want = noSuchUser("nobody@d1.test");
        await waitFor("an unknown address to be refused again", async () => (await mx("nobody@d1.test")).rcpt === want, 15_000, 250);
        expectReply(await mx("alice@d1.test"), "rcpt", OK_RCPT);
        assert.equal(s.daemon.child?.pid, pid, "the same mailcloak process");
      } finally {
        await s.setFailureMode("tempfail");
      }
      await waitFor("lookups to work again", async () => (await mx("dave@d2.test")).rcpt === OK_RCPT, 15_000, 250);
    });

    // ---- mailcloak itself down (last: it leaves Postfix with broken connections) ----

    test("mailcloak not running -> Postfix's default_action from postfix-main.cf, and Postfix recovers by itself", opts, async () => {
      await s.daemon.stop();
      try {
        // The sender list is evaluated first, so its default_action is the one clients see.
        expectReply(await mx("alice@d1.test"), "rcpt", "451 4.3.5 <someone@ext.test>: Sender address rejected: Sender check unavailable, try again later");
        assert.match(s.postfixLog(), /warning: problem talking to server private\/mailcloak-policy/);
      } finally {
        await s.daemon.spawn();
      }
      // Back without a Postfix reload (smtpd reconnects to the policy socket, the maps to the socketmap).
      await waitFor("Postfix to use mailcloak again", async () => (await mx("alice@d1.test")).rcpt === OK_RCPT, 15_000, 250);
    });
  });
}
