// Distribution lists and delegated senders end to end: swaks talks to a
// private Postfix running configs/postfix-main.cf as shipped, with the real
// mailcloak daemon (lists.parent_group set) and Dovecot LMTP
// (test/helpers/mailstack.ts). Mail to a list lands in every member's
// Maildir; a member removed in Keycloak stops receiving after the TTL, and
// after `mailcloakctl cache flush` when the TTL is long; a members-only list
// refuses an outsider and a logged-in non-member with the documented reply;
// postmap prints the expansion; a delegated send-as is accepted, another
// refused, and a delegation to an unknown login or a foreign domain is
// refused with one line and nothing written. With the emulator, a list too
// large for Postfix's socketmap reply is deferred at RCPT, never delivered in
// part.
//
// One specification, two directories: e2e-lists.test.ts runs it on the
// Keycloak emulator, e2e-lists-real.test.ts on the real Keycloak. The list
// is built under a parent group of the suite's own (helpers/list-groups.ts):
//   crew (mail crew@d1.test): lena, liv (disabled), leo (no email)
//   crew/core:                lars (a subgroup's member is a member)

import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { ctl, ctlOk, mergeTree, postmap } from "./helpers/daemon.js";
import type { ListGroups } from "./helpers/list-groups.js";
import { MailStack, smtp, stackUnavailable, uniqueSubject, waitFor, waitForMessage, type SmtpResult } from "./helpers/mailstack.js";

export interface ListsSpecOptions<D extends ListGroups> {
  /** Starts the directory and its parent group, or says why it cannot run here. */
  directory: () => Promise<D | { skip: string }>;
  /** Why that directory cannot run here (checked before anything starts), or null. */
  directoryUnavailable: string | null;
  /** Per-test backstop. */
  timeoutMs: number;
  /** mailcloak's deadline for each Keycloak call. */
  keycloakTimeoutMs: number;
  /**
   * Makes a list too large for Postfix's socketmap reply (its address; the
   * emulator only: 1,500 users do not belong in a realm other files share).
   */
  oversizedList?: (dir: D) => Promise<string>;
}

const QUEUED = /^250 2\.0\.0 Ok: queued as \w+/;
const LIST = "crew@d1.test";
/** Logins of the list's members for Dovecot's passwd-file (the fixture's passwords). */
const MEMBER_PASSWORDS = { lena: "lena-pw", lars: "lars-pw" } as const;
const MEMBERS_ONLY = `550 5.7.1 <${LIST}>: Recipient address rejected: Only members may write to this list`;
const NOT_OWNED = "553 5.7.1 <info@d1.test>: Sender address rejected: Sender not owned by authenticated user";

export function listsSpec<D extends ListGroups>(name: string, o: ListsSpecOptions<D>): void {
  const CI = process.env.CI === "true";
  const unavailable = [stackUnavailable(), o.directoryUnavailable].filter((x) => x !== null).join("; ") || null;
  const opts = { skip: unavailable !== null && !CI ? unavailable : false, timeout: o.timeoutMs } as const;

  describe(name, () => {
    let s: MailStack;
    let dir: D | null = null;
    let skip = "";
    let oversized: string | null = null;

    before(async () => {
      if (unavailable !== null) {
        if (CI) throw new Error(`e2e-lists (${name}): ${unavailable}; .ci/run must install them`);
        return;
      }
      const d = await o.directory();
      if ("skip" in d) {
        skip = d.skip;
        return;
      }
      dir = d;
      try {
        await dir.addGroup("crew", { mail: [LIST] });
        await dir.addGroup("crew/core");
        for (const u of ["lena", "liv", "leo"]) await dir.addMember(u, "crew");
        await dir.addMember("lars", "crew/core");
        oversized = o.oversizedList ? await o.oversizedList(dir) : null;
        s = await MailStack.start({
          idp: dir.idp({ cache_ttl_seconds: 1, timeout_ms: o.keycloakTimeoutMs }),
          config: { lists: { parent_group: dir.parentGroup } },
          passwords: MEMBER_PASSWORDS,
        });
      } catch (err) {
        await s?.stop().catch(() => undefined);
        await dir.dispose();
        throw err;
      }
    });

    after(async () => {
      await s?.stop();
      await dir?.dispose();
    });

    /** False (and the test skipped) when the directory could not start here. */
    const ready = (t: { skip(msg: string): void }): boolean => {
      if (dir !== null) return true;
      t.skip(skip);
      return false;
    };

    const count = (dir: string): number => (existsSync(dir) ? readdirSync(dir).length : 0);
    const maildir = (local: string): string => s.maildirNew("d1.test", local);

    function expect(r: SmtpResult, which: "rcpt" | "end", want: string | RegExp, label: string): void {
      const got = which === "rcpt" ? r.rcpt : r.endOfData;
      const msg = `${label}\n--- swaks ---\n${r.transcript}\n${s.diagnostics()}`;
      if (typeof want === "string") assert.equal(got, want, msg);
      else assert.match(got ?? "", want, msg);
    }

    async function expansion(): Promise<string> {
      const r = await postmap(s.socketmapSocket, "alias", LIST);
      assert.equal(r.code, 0, `postmap: ${r.stderr}\n${s.diagnostics()}`);
      return r.stdout;
    }

    /** A member writes to the list: returns the subject, once it is in `waitIn`'s Maildir. */
    async function writeToList(from: keyof typeof MEMBER_PASSWORDS, waitIn: string): Promise<string> {
      const subject = uniqueSubject("list");
      const r = await smtp({
        port: s.submissionPort, from: `${from}@d1.test`, to: LIST, auth: { user: from, password: MEMBER_PASSWORDS[from] },
        quitAfter: null, headers: { Subject: subject },
      });
      expect(r, "end", QUEUED, `${from} to ${LIST}`);
      await waitForMessage(maildir(waitIn), subject, 30_000);
      return subject;
    }

    test("postmap -q prints the expansion: enabled members with an email, subgroups included", opts, async (t) => {
      if (!ready(t)) return;
      assert.equal(await expansion(), "lena@d1.test,lars@d1.test\n");
    });

    test("a member's mail to the list lands in every member's Maildir, none for the disabled one", opts, async (t) => {
      if (!ready(t)) return;
      const subject = await writeToList("lars", "lena");
      await waitForMessage(maildir("lars"), subject, 30_000);
      assert.equal(count(maildir("liv")), 0, "the disabled member gets nothing");
      assert.equal(count(maildir("leo")), 0, "the member without email gets nothing");
    });

    test("a members-only list refuses an outsider and a logged-in non-member with the documented reply", opts, async (t) => {
      if (!ready(t)) return;
      const mx = await smtp({ port: s.smtpPort, from: "someone@ext.test", to: LIST });
      expect(mx, "rcpt", MEMBERS_ONLY, "outsider to the list");
      const alice = await smtp({ port: s.submissionPort, from: "alice@d1.test", to: LIST, auth: { user: "alice", password: "alice-pw" } });
      expect(alice, "rcpt", MEMBERS_ONLY, "alice (no member) to the list");
    });

    if (o.oversizedList) {
      test("a list too large for Postfix's socketmap reply is deferred at RCPT (451 4.3.0), never delivered in part", opts, async (t) => {
        if (!ready(t)) return;
        const big = oversized!;
        const p = await postmap(s.socketmapSocket, "alias", big);
        assert.notEqual(p.code, 0, "postmap gets no expansion");
        assert.equal(p.stdout, "");
        const r = await smtp({ port: s.smtpPort, from: "someone@ext.test", to: big });
        expect(r, "rcpt", `451 4.3.0 <${big}>: Temporary lookup failure`, "outsider to the oversized list");
        await sleep(200);
        const lines = s.daemon.records().filter((x) => String(x.msg).startsWith("list expansion is larger than Postfix's socketmap_max_reply_size"));
        assert.equal(lines.length, 1, "one error line");
      });
    }

    test("senders allow: checked against the directory; unknown login or foreign domain refused with one line, nothing written", opts, async (t) => {
      if (!ready(t)) return;
      const withConfig = ["--config", s.daemon.configPath];
      const unknown = await ctl(s.daemon.db, ...withConfig, "senders", "allow", "info@d1.test", "nosuchuser");
      assert.notEqual(unknown.code, 0);
      assert.equal(unknown.stdout, "");
      assert.match(unknown.stderr, /^[^\n]*unknown login nosuchuser: no such user in the identity source[^\n]*nothing written\n$/);
      const foreign = await ctl(s.daemon.db, ...withConfig, "senders", "allow", "info@elsewhere.test", "lena");
      assert.notEqual(foreign.code, 0);
      assert.match(foreign.stderr, /^[^\n]*domain elsewhere\.test is not a local domain[^\n]*nothing written\n$/);
      assert.equal(await ctlOk(s.daemon.db, "senders", "list"), "", "nothing was written");
      assert.equal(await ctlOk(s.daemon.db, ...withConfig, "senders", "allow", "info@d1.test", "lena"), "lena may send as info@d1.test\n");
    });

    test("delegated send-as accepted; a login without the delegation refused (policy and Postfix's own check)", opts, async (t) => {
      if (!ready(t)) return;
      const lena = { user: "lena", password: MEMBER_PASSWORDS.lena };
      const lars = { user: "lars", password: MEMBER_PASSWORDS.lars };
      expect(await smtp({ port: s.submissionPort, from: "info@d1.test", to: "friend@ext.test", auth: lena }), "rcpt", /^250 2\.1\.5 Ok/, "lena as info@");
      expect(await smtp({ port: s.submissionPort, from: "info@d1.test", to: "friend@ext.test", auth: lars }), "rcpt", NOT_OWNED, "lars as info@");
      // Postfix's reject_authenticated_sender_login_mismatch reads the senders map.
      expect(await smtp({ port: s.nativePort, from: "info@d1.test", to: "friend@ext.test", auth: lena }), "rcpt", /^250 2\.1\.5 Ok/, "lena as info@, native check");
      expect(await smtp({ port: s.nativePort, from: "info@d1.test", to: "friend@ext.test", auth: lars }), "rcpt", "553 5.7.1 <info@d1.test>: Sender address rejected: not owned by user lars", "lars as info@, native check");
      const r = await postmap(s.socketmapSocket, "senders", "info@d1.test");
      assert.equal(r.stdout, "lena\n");
    });

    test("a member removed in Keycloak stops receiving after the TTL", opts, async (t) => {
      if (!ready(t)) return;
      await dir!.removeMember("lars", "crew/core");
      await sleep(2500); // cache_ttl_seconds 1
      assert.equal(await expansion(), "lena@d1.test\n");
      const larsBefore = count(maildir("lars"));
      await writeToList("lena", "lena");
      await sleep(1500); // the expansion has happened: lena's copy is in
      assert.equal(count(maildir("lars")), larsBefore, "lars no longer receives");
    });

    test("with a long TTL, a member removed in Keycloak stops receiving after mailcloakctl cache flush", opts, async (t) => {
      if (!ready(t)) return;
      await dir!.addMember("lars", "crew/core");
      s.extraConfig = mergeTree(s.extraConfig, { idp: { keycloak: { cache_ttl_seconds: 3600 } } });
      await s.restartDaemon(); // the cache starts empty
      assert.equal(await expansion(), "lena@d1.test,lars@d1.test\n");
      await dir!.removeMember("lena", "crew");
      await sleep(1500);
      assert.equal(await expansion(), "lena@d1.test,lars@d1.test\n", "the expansion is cached for the TTL");
      assert.match(await ctlOk(s.daemon.db, "--config", s.daemon.configPath, "cache", "flush"), /^cache flush requested \(pid \d+\)\n$/);
      // The signal is handled between two requests: poll (only the flush can change it within the TTL).
      await waitFor("the expansion without lena", async () => (await expansion()) === "lars@d1.test\n", 10_000, 200);
      const lenaBefore = count(maildir("lena"));
      await writeToList("lars", "lars");
      await sleep(1500);
      assert.equal(count(maildir("lena")), lenaBefore, "lena no longer receives");
    });
  });
}
