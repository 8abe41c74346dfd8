// The README's decision tables and the in-process rule tables
// (helpers/rule-rows.ts) cannot drift apart: every row of a README decision
// table (found by its header row, wherever the README puts it) must have a
// row in the rule tables that gives the README's reply, every reply text and
// reason code quoted in the failure-handling, socketmap and lists sections
// must be one the rule tables give, and every README text a rule row cites
// must still be in the README.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./helpers/daemon.js";
import { formatSocketmapReply } from "../src/protocol/socketmap.js";
import { ANSWERS } from "../src/rules/maps.js";
import { DECISIONS } from "../src/rules/policy.js";
import { MAP_ROWS, POLICY_ROWS } from "./helpers/rule-rows.js";

const README = readFileSync(join(ROOT, "README.md"), "utf8");

interface Table {
  readonly heading: string;
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

/** Cells of a Markdown table line; `\|` stays inside a cell. */
function cells(line: string): string[] {
  return line.trim().replace(/^\|/, "").replace(/\|$/, "").split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, "|"));
}

/** Every table with the heading above it. */
function tables(md: string): Table[] {
  const lines = md.split("\n");
  const out: Table[] = [];
  let heading = "";
  let inCode = false;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.startsWith("```")) inCode = !inCode;
    if (inCode) continue;
    if (/^#{1,6} /.test(l)) heading = l.replace(/^#+ /, "");
    if (!l.trim().startsWith("|") || !/^\s*\|?\s*:?-{3,}/.test(lines[i + 1] ?? "")) continue;
    const header = cells(l).map((c) => c.toLowerCase());
    const rows: string[][] = [];
    for (i += 2; i < lines.length && lines[i]!.trim().startsWith("|"); i++) rows.push(cells(lines[i]!));
    out.push({ heading, header, rows });
  }
  return out;
}

/** The text of a README section (its heading to the next heading of the same or a higher level), found by heading text. */
function section(md: string, title: RegExp): string {
  const lines = md.split("\n");
  const start = lines.findIndex((l) => /^#{1,6} /.test(l) && title.test(l));
  assert.ok(start >= 0, `README has a section matching ${title}`);
  const level = /^#+/.exec(lines[start]!)![0].length;
  let end = start + 1;
  while (end < lines.length && !(new RegExp(`^#{1,${level}} `).test(lines[end]!))) end++;
  return lines.slice(start, end).join("\n");
}

const norm = (s: string): string => s.replace(/`/g, "").replace(/\s+/g, " ").trim().toLowerCase();
/** Inline code spans (they may wrap across lines), outside fenced blocks. */
const quoted = (s: string): string[] => [...s.replace(/^```[^]*?^```/gm, "").matchAll(/`([^`]+)`/g)].map((m) => m[1]!.replace(/\s+/g, " "));

const policyReplies = POLICY_ROWS.map((r) => r.want.action);
const mapReplies = MAP_ROWS.map((r) => r.want[0]);
const reasons = new Set([...POLICY_ROWS.map((r) => r.want.reason), ...MAP_ROWS.map((r) => r.want[1])]);
/** Answers made outside the pure rules (the wrapper's answer to an exception) count as defined by the code. */
const defined = new Set([...Object.values(DECISIONS).map((d) => d.reason), ...Object.values(ANSWERS).map((a) => a.reason)]);

/** The reply a README cell states: the first quoted text, or "no objection" (DUNNO). */
function statedReply(cell: string): string {
  const q = quoted(cell)[0];
  if (q !== undefined) return q;
  assert.match(cell, /no objection/i, `a reply cell the test can read: ${JSON.stringify(cell)}`);
  return "DUNNO";
}

const decisionTables = tables(README).filter((t) => t.header.includes("when") && (t.header.includes("reply") || t.header.includes("action")));
const mapTables = tables(README).filter((t) => t.header[0] === "map" && t.header.includes("answer"));

test("README: the policy decision tables are found by their header rows", () => {
  assert.ok(decisionTables.length >= 2, "a sender table and a recipient table");
  assert.ok(decisionTables.reduce((n, t) => n + t.rows.length, 0) >= 20);
  assert.equal(mapTables.length, 1, "the socketmap table");
});

test("README: every policy decision row has an in-process row with its reply (and reason)", () => {
  for (const t of decisionTables) {
    const when = t.header.indexOf("when");
    const reply = t.header.includes("reply") ? t.header.indexOf("reply") : t.header.indexOf("action");
    const reason = t.header.indexOf("reason");
    for (const cellsOfRow of t.rows) {
      const want = statedReply(cellsOfRow[reply] ?? "");
      const mine = reason >= 0
        ? POLICY_ROWS.filter((r) => r.want.reason === norm(cellsOfRow[reason] ?? ""))
        : POLICY_ROWS.filter((r) => r.readme !== undefined && norm(r.readme) === norm(cellsOfRow[when] ?? ""));
      assert.ok(mine.length > 0, `README row "${cellsOfRow[when]}" (${t.heading}) has no row in test/helpers/rule-rows.ts`);
      for (const r of mine) assert.equal(r.want.action, want, `row "${r.name}" gives the README's reply for "${cellsOfRow[when]}"`);
    }
  }
});

test("README: every socketmap in the map table has in-process rows, with OK and NOTFOUND answers", () => {
  for (const row of mapTables[0]!.rows) {
    const map = norm(row[0] ?? "");
    const mine = MAP_ROWS.filter((r) => r.readme === map && r.map === map);
    assert.ok(mine.length > 0, `map ${map} has rows in test/helpers/rule-rows.ts`);
    assert.ok(mine.some((r) => r.want[0].startsWith("OK ")) && mine.some((r) => r.want[0] === "NOTFOUND"), `map ${map}: an OK and a NOTFOUND row`);
  }
});

test("README: every reply and reason quoted in failure handling, socketmaps and lists is one the rule tables give", () => {
  // (The policy decision section is checked by its tables: its prose also quotes Postfix's rendering and a Go-only reply.)
  const text = [/Failure handling/, /^#+ Socketmaps/, /Distribution lists/].map((h) => section(README, h)).join("\n");
  const replyLike = /^(\d{3} \d\.\d\.\d\b.*|TEMP\b.*|NOTFOUND)$/;
  const replies = quoted(text).filter((q) => replyLike.test(q));
  assert.ok(replies.length >= 5, "the sections quote replies");
  for (const q of replies) {
    const covered = [...policyReplies, ...mapReplies].some((a) => a === q || a.startsWith(`${q} `) || a.startsWith(q)) ||
      [...POLICY_ROWS, ...MAP_ROWS].some((r) => r.readme === q);
    assert.ok(covered, `README reply ${JSON.stringify(q)} is given by a row of test/helpers/rule-rows.ts`);
  }
  const codes = [...text.matchAll(/reason\s+`([a-z-]+)`/g)].map((m) => m[1]!);
  assert.ok(codes.length >= 2, "the sections name reason codes");
  for (const c of codes) assert.ok(reasons.has(c) || defined.has(c), `README reason ${c} is a reason the rules give`);
});

test("README: every README text a rule row cites is still in the README", () => {
  const all = norm(README);
  for (const r of [...POLICY_ROWS, ...MAP_ROWS]) {
    if (r.readme === undefined) continue;
    assert.ok(all.includes(norm(r.readme)), `row "${r.name}" cites ${JSON.stringify(r.readme)}, which the README no longer says`);
  }
});

test("README: the socketmap replies quoted are formatted as the maps send them", () => {
  for (const a of Object.values(ANSWERS)) assert.ok(/^(OK .+|NOTFOUND|TEMP.*)$/.test(formatSocketmapReply(a.reply)));
});
