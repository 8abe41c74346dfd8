// src/log.ts: secret keys never reach a log line (top level and one level
// down, as pino's redact paths "key" and "*.key" did), records without one
// pass through untouched; asserted on an in-memory sink as pino's own tests do.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { createLogger, infoLine, scrub } from "../src/log.js";
import { execFileSync } from "node:child_process";

function sink(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString("utf8");
      done();
    },
  });
  return { stream, lines: () => text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const SECRETS = ["clientSecret", "client_secret", "password", "secret", "token", "accessToken", "access_token"];

test("logger censors every secret key at the top level of a record", () => {
  for (const key of SECRETS) {
    const s = sink();
    createLogger("info", s.stream).info({ [key]: "hunter2", user: "alice" }, "m");
    const [rec] = s.lines();
    assert.equal(rec?.[key], "[redacted]", key);
    assert.equal(rec?.user, "alice");
  }
});

test("logger censors a secret key one level down and leaves the rest of that object", () => {
  const s = sink();
  createLogger("info", s.stream).info({ kc: { client_secret: "s3cret", realm: "test" }, err: { token: "eyJ", status: 401 } }, "m");
  const [rec] = s.lines();
  assert.deepEqual(rec?.kc, { client_secret: "[redacted]", realm: "test" });
  assert.deepEqual(rec?.err, { token: "[redacted]", status: 401 });
  assert.equal(JSON.stringify(s.lines()).includes("s3cret"), false);
});

test("logger censors secret keys in a child logger's bindings", () => {
  const s = sink();
  createLogger("info", s.stream).child({ password: "pw", conn: 7 }).info("m");
  const [rec] = s.lines();
  assert.equal(rec?.password, "[redacted]");
  assert.equal(rec?.conn, 7);
});

test("scrub returns the same object when there is nothing to censor, and never changes its input", () => {
  const plain = { state: "RCPT", recipient: "a@d1.test", nested: { realm: "test" } };
  assert.equal(scrub(plain), plain);
  const withSecret = { password: "pw", nested: { token: "t" } };
  const out = scrub(withSecret);
  assert.notEqual(out, withSecret);
  assert.deepEqual(withSecret, { password: "pw", nested: { token: "t" } });
  assert.deepEqual(out, { password: "[redacted]", nested: { token: "[redacted]" } });
});

test("logger keeps the decision line's format: level, time, pid, fields, msg", () => {
  const s = sink();
  createLogger("info", s.stream).info({ state: "RCPT", action: "DUNNO", reason: "recipient ok", ms: 0.1 }, "policy decision");
  const [rec] = s.lines();
  assert.deepEqual(Object.keys(rec ?? {}), ["level", "time", "pid", "state", "action", "reason", "ms", "msg"]);
  assert.equal(rec?.level, 30);
  assert.equal(rec?.pid, process.pid);
});

test("infoLine writes what pino writes, or is log.info when the logger is not the daemon's stdout one", () => {
  const s = sink();
  const log = createLogger("info", s.stream).child({ server: "policy" });
  infoLine(log)({ state: "RCPT", login: undefined, sender: "a\"b@example.net", ms: 0.1 }, "policy decision");
  log.info({ state: "RCPT", login: undefined, sender: "a\"b@example.net", ms: 0.1 }, "policy decision");
  const [viaLine, viaPino] = s.lines();
  const { time: _t1, ...a } = viaLine ?? {};
  const { time: _t2, ...b } = viaPino ?? {};
  assert.deepEqual(a, b);
  assert.deepEqual(Object.keys(viaLine ?? {}), ["level", "time", "pid", "server", "state", "sender", "ms", "msg"]);
});

test("infoLine on the daemon's stdout logger writes the bytes pino writes (but the time), in batches too", () => {
  // A child process, so stdout is a pipe: the logger the daemon gets, with the batched destination.
  const logJs = new URL("../src/log.js", import.meta.url).href;
  const script = `
    import { batchLines, createLogger, infoLine } from ${JSON.stringify(logJs)};
    const log = createLogger("info").child({ server: "policy" });
    const line = infoLine(log);
    const f = { state: "RCPT", login: undefined, sender: "q\\"uote\\\\ é\\u0001@example.net", recipient: "r@d1.test", ms: 0.1, n: 3 };
    // The line must be built by infoLine itself, not by falling back to log.info.
    const info = log.info;
    const fast = (m) => { log.info = () => { throw new Error("infoLine fell back to log.info"); }; try { line(f, m); } finally { log.info = info; } };
    fast("policy decision");
    log.info(f, "policy decision");
    batchLines(() => { fast("held"); log.info(f, "held"); });
    // Strings with nothing to escape (infoLine's shortcut), a long one, a tab, DEL and U+2028 (left as they are).
    const g = { state: "RCPT", sender: "plain@example.net", recipient: "x".repeat(60) + "@d1.test", reason: "tab\\there \\u007f \\u2028" };
    Object.assign(f, g); fast("plain"); log.info(f, "plain");
    // A lone surrogate: escaped, so the line stays valid UTF-8 and parses back to the same string.
    line({ sender: "lone\\ud800@example.net" }, "surrogate");`;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  const lines = out.trimEnd().split("\n").map((l) => l.replace(/"time":\d+/, '"time":0'));
  assert.equal(lines.length, 7, out);
  assert.equal(lines[0], lines[1]);
  assert.equal(lines[2], lines[3]);
  assert.equal(lines[4], lines[5]);
  assert.ok(lines[6]!.includes('"sender":"lone\\ud800@example.net"'), lines[6]);
  assert.equal((JSON.parse(lines[6]!) as { sender: string }).sender, "lone\ud800@example.net");
  const rec = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(rec.sender, 'q"uote\\ é\u0001@example.net');
  assert.deepEqual(Object.keys(rec), ["level", "time", "pid", "server", "state", "sender", "recipient", "ms", "n", "msg"]);
});
