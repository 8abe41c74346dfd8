// End to end through real Postfix: postmap(1) queries the daemon's socketmap
// exactly as Postfix's daemons do (socketmap:unix:PATH:NAME).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ctlOk, DaemonProcess, have, postmap, tempDir } from "./helpers/daemon.js";

const CI = process.env.CI === "true";
const ready = have("postmap");
let d: DaemonProcess;

before(async () => {
  if (!ready) {
    if (CI) throw new Error("postmap (Debian package postfix) is not installed; .ci/run must install it");
    return;
  }
  const dir = tempDir();
  const db = `${dir}/state.db`;
  await ctlOk(db, "init");
  await ctlOk(db, "domains", "add", "d1.test");
  await ctlOk(db, "domains", "add", "off.test");
  await ctlOk(db, "aliases", "add", "sales@d1.test", "alice");
  await ctlOk(db, "aliases", "add", "old@d1.test", "alice");
  await ctlOk(db, "aliases", "disable", "old@d1.test");
  await ctlOk(db, "aliases", "add", "info@off.test", "bob");
  await ctlOk(db, "domains", "disable", "off.test");
  d = await DaemonProcess.start({ dir });
});

after(async () => {
  await d?.cleanup();
});

const opts = { skip: !ready && !CI ? "postfix not installed" : false };

test("postmap -q: found, not found, disabled alias, disabled domain, upper-case key", opts, async () => {
  const cases: [string, number, string][] = [
    ["sales@d1.test", 0, "alice@d1.test\n"],
    ["SaLeS@D1.TEST", 0, "alice@d1.test\n"],
    ["nobody@d1.test", 1, ""],
    ["old@d1.test", 1, ""],
    ["info@off.test", 1, ""],
  ];
  for (const [key, code, out] of cases) {
    const r = await postmap(d.socketmapSocket, "alias", key);
    assert.equal(r.code, code, `${key}: exit ${r.code}, stderr ${r.stderr}`);
    assert.equal(r.stdout, out, key);
  }
});

test("postmap -q - resolves many keys over one connection", opts, async () => {
  const keys = ["sales@d1.test", "nobody@d1.test", "SALES@d1.test", "old@d1.test", "info@off.test", "sales+tag@d1.test"];
  const many = Array.from({ length: 200 }, (_, i) => (i % 2 ? `sales@d1.test` : `none${i}@d1.test`));
  const r = await postmap(d.socketmapSocket, "alias", "-", [...keys, ...many].join("\n") + "\n");
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.deepEqual(lines.slice(0, 3), ["sales@d1.test\talice@d1.test", "SALES@d1.test\talice@d1.test", "sales+tag@d1.test\talice+tag@d1.test"]);
  assert.equal(lines.length, 3 + 100);
});

test("postmap sees an alias added and removed with mailcloakctl while the daemon runs", opts, async () => {
  assert.equal((await postmap(d.socketmapSocket, "alias", "fresh@d1.test")).code, 1);
  await ctlOk(d.db, "aliases", "add", "fresh@d1.test", "bob");
  const r = await postmap(d.socketmapSocket, "alias", "fresh@d1.test");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "bob@d1.test\n");
  await ctlOk(d.db, "aliases", "disable", "fresh@d1.test");
  assert.equal((await postmap(d.socketmapSocket, "alias", "fresh@d1.test")).code, 1);
});

test("postmap: domain map for virtual_mailbox_domains", opts, async () => {
  assert.equal((await postmap(d.socketmapSocket, "domain", "d1.test")).stdout, "d1.test\n");
  assert.equal((await postmap(d.socketmapSocket, "domain", "off.test")).code, 1);
});

test("postmap: an unknown map name is not found, as the Go version answers it, and the daemon logs the name once", opts, async () => {
  const r = await postmap(d.socketmapSocket, "aliasx", "sales@d1.test");
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, "");
  assert.equal((await postmap(d.socketmapSocket, "aliasx", "other@d1.test")).code, 1);
  const warned = d.records().filter((x) => x.level === 40 && x.map === "aliasx");
  assert.equal(warned.length, 1, JSON.stringify(warned));
  assert.match(String(warned[0]!.msg), /unknown map "aliasx" answered NOTFOUND/);
});
