// Distribution lists and delegated senders end to end: swaks talks to a
// private Postfix running configs/postfix-main.cf as shipped, with the real
// mailcloak daemon (lists.parent_group set, Keycloak emulated) and Dovecot
// LMTP (test/helpers/mailstack.ts). Mail to a list lands in every member's
// Maildir; a member removed in Keycloak stops receiving after the TTL; a
// members-only list refuses an outsider with the documented reply; postmap
// prints the expansion; a delegated send-as is accepted, another refused.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { ctlOk, postmap } from "./helpers/daemon.js";
import { MailStack, PASSWORDS, smtp, stackUnavailable, uniqueSubject, waitForMessage, type SmtpResult } from "./helpers/mailstack.js";

const CI = process.env.CI === "true";
const unavailable = stackUnavailable();
const opts = { skip: unavailable !== null && !CI ? unavailable : false, timeout: 120_000 } as const;
const QUEUED = /^250 2\.0\.0 Ok: queued as \w+/;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let s: MailStack;

before(async () => {
  if (unavailable !== null) {
    if (CI) throw new Error(`e2e-lists: ${unavailable}; .ci/run must install them`);
    return;
  }
  s = await MailStack.start({ config: { lists: { parent_group: "/lists" } } });
  s.fake!.addUser({ username: "nomail", enabled: true });
  s.fake!.addGroup("/lists/crew", { mail: ["crew@d1.test"] });
  for (const u of ["alice", "carol", "nomail"]) s.fake!.addMember(u, "/lists/crew");
  s.fake!.addMember("dave", "/lists/crew/core"); // a subgroup's member is a member
  await ctlOk(s.daemon.db, "senders", "allow", "info@d1.test", "alice");
});

after(async () => {
  await s?.stop();
});

const count = (dir: string): number => (existsSync(dir) ? readdirSync(dir).length : 0);

function expect(r: SmtpResult, which: "rcpt" | "end", want: string | RegExp, label: string): void {
  const got = which === "rcpt" ? r.rcpt : r.endOfData;
  const msg = `${label}\n--- swaks ---\n${r.transcript}\n${s.diagnostics()}`;
  if (typeof want === "string") assert.equal(got, want, msg);
  else assert.match(got ?? "", want, msg);
}

test("postmap -q prints the expansion: enabled members with an email, subgroups included", opts, async () => {
  const r = await postmap(s.socketmapSocket, "alias", "crew@d1.test");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "alice@d1.test,dave@d2.test\n");
});

test("a member's mail to the list lands in every member's Maildir", opts, async () => {
  const subject = uniqueSubject("list");
  const r = await smtp({ port: s.submissionPort, from: "alice@d1.test", to: "crew@d1.test", auth: { user: "alice", password: PASSWORDS.alice }, quitAfter: null, headers: { Subject: subject } });
  expect(r, "end", QUEUED, "alice to crew");
  await waitForMessage(s.maildirNew("d1.test", "alice"), subject, 20_000);
  await waitForMessage(s.maildirNew("d2.test", "dave"), subject, 20_000);
  assert.equal(count(s.maildirNew("d1.test", "carol")), 0, "the disabled member gets nothing");
});

test("a members-only list refuses an outsider with the documented reply", opts, async () => {
  const r = await smtp({ port: s.smtpPort, from: "someone@ext.test", to: "crew@d1.test" });
  expect(r, "rcpt", "550 5.7.1 <crew@d1.test>: Recipient address rejected: Only members may write to this list", "outsider to crew");
});

test("a member removed in Keycloak stops receiving after the TTL", opts, async () => {
  s.fake!.removeMember("dave", "/lists/crew/core");
  await sleep(2500); // cache_ttl_seconds 1 in the stack
  const p = await postmap(s.socketmapSocket, "alias", "crew@d1.test");
  assert.equal(p.stdout, "alice@d1.test\n");
  const daveBefore = count(s.maildirNew("d2.test", "dave"));
  const subject = uniqueSubject("list-after");
  const r = await smtp({ port: s.submissionPort, from: "alice@d1.test", to: "crew@d1.test", auth: { user: "alice", password: PASSWORDS.alice }, quitAfter: null, headers: { Subject: subject } });
  expect(r, "end", QUEUED, "alice to crew after removal");
  await waitForMessage(s.maildirNew("d1.test", "alice"), subject, 20_000);
  await sleep(1000);
  assert.equal(count(s.maildirNew("d2.test", "dave")), daveBefore, "dave no longer receives");
});

test("delegated send-as accepted; a login without the delegation refused", opts, async () => {
  const ok = await smtp({ port: s.submissionPort, from: "info@d1.test", to: "dave@d2.test", auth: { user: "alice", password: PASSWORDS.alice } });
  expect(ok, "rcpt", /^250 2\.1\.5 Ok/, "alice as info@");
  const no = await smtp({ port: s.submissionPort, from: "info@d1.test", to: "alice@d1.test", auth: { user: "dave", password: PASSWORDS.dave } });
  expect(no, "rcpt", "553 5.7.1 <info@d1.test>: Sender address rejected: Sender not owned by authenticated user", "dave as info@");
  // Postfix's own reject_authenticated_sender_login_mismatch reads the senders map.
  const native = await smtp({ port: s.nativePort, from: "info@d1.test", to: "dave@d2.test", auth: { user: "alice", password: PASSWORDS.alice } });
  expect(native, "rcpt", /^250 2\.1\.5 Ok/, "alice as info@ on the native-check port");
});
