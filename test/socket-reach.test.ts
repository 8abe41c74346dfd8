// The rule behind the warning for world-writable sockets: who can reach the
// socket's directory. Table of socket mode, socket group and parent
// directory (mode, group), as Postfix's private/ and the usual mistakes.

import assert from "node:assert/strict";
import { test } from "node:test";
import { exposedToOthers } from "../src/server/socket-reach.js";

const POSTFIX_GID = 120;
const OTHER_GID = 7;

const rows: Array<{ name: string; mode: number; dirMode: number; dirGid: number; want: boolean }> = [
  { name: "0666 in Postfix's private/ (0700): not exposed", mode: 0o666, dirMode: 0o040700, dirGid: 0, want: false },
  { name: "0666 in a 0755 directory: exposed (other may search)", mode: 0o666, dirMode: 0o040755, dirGid: POSTFIX_GID, want: true },
  { name: "0666 in a 0711 directory: exposed (search alone is enough to connect)", mode: 0o666, dirMode: 0o040711, dirGid: POSTFIX_GID, want: true },
  { name: "0666 in a 0750 directory of the socket's group: not exposed", mode: 0o666, dirMode: 0o040750, dirGid: POSTFIX_GID, want: false },
  { name: "0666 in a 0750 directory of another group: exposed", mode: 0o666, dirMode: 0o040750, dirGid: OTHER_GID, want: true },
  { name: "0662 in a 0755 directory: exposed (other may write, so connect)", mode: 0o662, dirMode: 0o040755, dirGid: POSTFIX_GID, want: true },
  { name: "0664 in a 0755 directory: not exposed (other cannot write, so cannot connect)", mode: 0o664, dirMode: 0o040755, dirGid: POSTFIX_GID, want: false },
  { name: "0660 in a 0777 directory: not exposed", mode: 0o660, dirMode: 0o041777, dirGid: OTHER_GID, want: false },
  { name: "0666 in a 0701 directory: exposed", mode: 0o666, dirMode: 0o040701, dirGid: POSTFIX_GID, want: true },
];

for (const r of rows) {
  test(`exposedToOthers: ${r.name}`, () => {
    const got = exposedToOthers(r.mode, POSTFIX_GID, { mode: r.dirMode, gid: r.dirGid });
    assert.equal(got, r.want, `got ${got}, want ${r.want}`);
  });
}
