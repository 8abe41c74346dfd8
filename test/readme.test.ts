// The README and its companion documents against the repository (issue 12.7):
// the README stays admin-sized, its test command is the one CI runs, the
// source tree names only paths that exist and every directory under src/,
// and every relative link in the documents resolves to a file and, with a
// #fragment, to a heading (or <a id>) of that file. Headings become anchors
// as GitHub makes them, so a link that works here works on GitHub.

import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

// dist/test/readme.test.js → the repository root.
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const README = "README.md";
const MAX_README_LINES = 600;

/** The documents whose links are checked, relative to ROOT. */
function documents(): string[] {
  const docs = readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).sort().map((f) => `docs/${f}`);
  return [README, "SECURITY.md", "CONTRIBUTING.md", "bench/README.md", ...docs];
}

function read(path: string): string {
  return readFileSync(join(ROOT, path), "utf8");
}

function lineCount(text: string): number {
  return text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
}

/** Lines outside fenced code blocks, with their line numbers (1-based). */
function proseLines(text: string): { line: string; no: number }[] {
  const out: { line: string; no: number }[] = [];
  let fence: string | null = null;
  text.split("\n").forEach((line, i) => {
    const m = /^\s*(`{3,}|~{3,})/.exec(line);
    if (m?.[1]) {
      if (fence === null) fence = m[1][0] ?? null;
      else if (m[1].startsWith(fence)) fence = null;
      return;
    }
    if (fence === null) out.push({ line, no: i + 1 });
  });
  return out;
}

/** GitHub's anchor for a heading: rendered text, lower-cased, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  const rendered = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/[`*_]{1,3}([^`*_]+)[`*_]{1,3}/g, "$1")
    .replace(/<[^>]+>/g, "");
  return rendered.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
}

/** Every anchor a document offers: headings (duplicates numbered as GitHub does) and <a id|name>. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const { line } of proseLines(text)) {
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (h?.[1] !== undefined) {
      const base = slug(h[1]);
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      out.add(n === 0 ? base : `${base}-${n}`);
    }
    for (const a of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) if (a[1]) out.add(a[1]);
  }
  return out;
}

/** Link targets in prose (inline code removed), with the line they are on. */
function links(text: string): { target: string; no: number }[] {
  const out: { target: string; no: number }[] = [];
  for (const { line, no } of proseLines(text)) {
    const prose = line.replace(/`[^`]*`/g, "");
    for (const m of prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) if (m[1]) out.push({ target: m[1], no });
    const ref = /^\s*\[[^\]]+\]:\s*(\S+)/.exec(prose);
    if (ref?.[1]) out.push({ target: ref[1], no });
  }
  return out;
}

/** What is wrong with one link of `from`, or null when it resolves. */
function brokenLink(from: string, target: string): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return null; // https:, mailto: ...: not ours to check
  const hash = target.indexOf("#");
  const pathPart = decodeURI(hash < 0 ? target : target.slice(0, hash));
  const fragment = hash < 0 ? "" : decodeURIComponent(target.slice(hash + 1));
  const file = pathPart === "" ? from : relative(ROOT, join(ROOT, dirname(from), pathPart));
  if (file.startsWith("..")) return `${target}: points outside the repository`;
  if (!existsSync(join(ROOT, file))) return `${target}: ${file} does not exist`;
  if (fragment === "") return null;
  if (!file.endsWith(".md") || statSync(join(ROOT, file)).isDirectory()) return `${target}: a #fragment on a file that is not Markdown`;
  return anchors(read(file)).has(fragment) ? null : `${target}: ${file} has no heading with anchor #${fragment}`;
}

/** The source tree: the first fenced block after a "Source tree" heading, one path per line. */
function sourceTree(doc: string): { path: string; no: number }[] | null {
  if (!existsSync(join(ROOT, doc))) return null;
  const lines = read(doc).split("\n");
  const at = lines.findIndex((l) => /^#{2,4}\s+Source tree\s*$/.test(l));
  if (at < 0) return null;
  const open = lines.findIndex((l, i) => i > at && /^```/.test(l));
  const close = lines.findIndex((l, i) => i > open && /^```/.test(l));
  assert.ok(open > at && close > open, `${doc}: the "Source tree" heading is not followed by a fenced block`);
  const out: { path: string; no: number }[] = [];
  for (let i = open + 1; i < close; i++) {
    const path = (lines[i] ?? "").trim().split(/\s+/)[0];
    if (path) out.push({ path, no: i + 1 });
  }
  return out;
}

function dirsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    out.push(`${dir}/${e.name}`);
    out.push(...dirsUnder(`${dir}/${e.name}`));
  }
  return out;
}

test("README.md stays admin-sized (at most 600 lines)", () => {
  const n = lineCount(read(README));
  assert.ok(n <= MAX_README_LINES, `README.md has ${n} lines; move reference material into docs/*.md (at most ${MAX_README_LINES})`);
});

test("README's test command is the command .ci/run runs", () => {
  const ci = read(".ci/run").split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
  const last = ci[ci.length - 1];
  const named = /test command is `([^`]+)`/.exec(read(README).replace(/\s+/g, " "));
  assert.ok(named?.[1], 'README.md does not say "The test command is `...`"');
  assert.equal(named[1], last, "README.md's test command differs from the last command of .ci/run");
});

test("README keeps the sections other tests and branches rely on", () => {
  const have = anchors(read(README));
  const want = [
    "quick-start", "installing-on-a-server", "configuration-reference", "identity-source", "cache", "sqlite",
    "policy", "sockets", "daemon-limits-log-metrics", "quotas", "what-sighup-applies",
    "postfix-and-dovecot-integration", "socketmaps", "policy-decisions", "failure-handling",
    "distribution-lists-keycloak-groups-and-delegated-senders", "cli-reference", "operations",
    "switching-from-the-go-mailcloak",
  ];
  assert.deepEqual(want.filter((a) => !have.has(a)), [], "README.md lost these section headings");
  const text = read(README);
  for (const header of ["| when | reply |", "| map | key | answer |", "| key | type | default | meaning |"]) {
    assert.ok(text.includes(`\n${header}\n`), `README.md has no table with the header row ${header}`);
  }
});

test("the source tree names only paths that exist, and every directory under src/", () => {
  const trees = ([README, "CONTRIBUTING.md"] as const).map((doc) => ({ doc, tree: sourceTree(doc) }));
  assert.ok(trees.some((t) => t.tree !== null), 'neither README.md nor CONTRIBUTING.md has a "Source tree" section');
  const listed = new Set<string>();
  const missing: string[] = [];
  for (const { doc, tree } of trees) {
    for (const { path, no } of tree ?? []) {
      const full = join(ROOT, path);
      if (!existsSync(full)) missing.push(`${doc}:${no}: ${path} does not exist`);
      else if (path.endsWith("/") && !statSync(full).isDirectory()) missing.push(`${doc}:${no}: ${path} is not a directory`);
      listed.add(path.replace(/\/$/, ""));
    }
  }
  assert.deepEqual(missing, [], "the source tree names paths that are gone; update it");
  const unlisted = dirsUnder("src").filter((d) => !listed.has(d));
  assert.deepEqual(unlisted, [], "directories under src/ missing from the source tree (one line each)");
});

test("every relative link in the README, SECURITY, CONTRIBUTING, bench and docs documents resolves", () => {
  const broken: string[] = [];
  let checked = 0;
  for (const doc of documents()) {
    if (!existsSync(join(ROOT, doc))) {
      broken.push(`${doc} does not exist`);
      continue;
    }
    for (const { target, no } of links(read(doc))) {
      checked++;
      const why = brokenLink(doc, target);
      if (why) broken.push(`${doc}:${no}: ${why}`);
    }
  }
  assert.deepEqual(broken, []);
  assert.ok(checked > 50, `only ${checked} links found: is the link pattern still right?`);
});

test("GitHub anchors: punctuation dropped, spaces to hyphens, code spans rendered", () => {
  const rows: [string, string][] = [
    ["Daemon, limits, log, metrics", "daemon-limits-log-metrics"],
    ["Web admin and self-service (mailcloak-admin)", "web-admin-and-self-service-mailcloak-admin"],
    ["Dovecot: app passwords", "dovecot-app-passwords"],
    ["mailcloak (the daemon)", "mailcloak-the-daemon"],
    ["`policy.domain` and friends", "policydomain-and-friends"],
    ["A — B", "a--b"],
  ];
  for (const [heading, want] of rows) assert.equal(slug(heading), want, heading);
  assert.ok(anchors("# A\n\n## A\n").has("a-1"), "a repeated heading gets -1");
  assert.ok(!anchors("```\n# not a heading\n```\n").has("not-a-heading"), "code blocks hold no headings");
});
