// Policy delegation codec (PROTOCOLS.md 1.2): attribute blocks ended by an
// empty line, incremental; reply framing.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { PolicyDecoder, emptyPolicyRequest, formatPolicyReply } from "../src/protocol/policy.js";
import type { PolicyDecodeError, PolicyRequest } from "../src/protocol/policy.js";
import { feedPolicy, oneByOne } from "./helpers/codecs.js";

const b = (s: string): Buffer => Buffer.from(s, "utf8");
const req = (fields: Partial<PolicyRequest>): PolicyRequest => ({ ...emptyPolicyRequest(), ...fields });

const RCPT = [
  "request=smtpd_access_policy",
  "protocol_state=RCPT",
  "protocol_name=ESMTP",
  "client_address=192.0.2.7",
  "client_name=mx.example.net",
  "helo_name=mx.example.net",
  "queue_id=",
  "sender=bob@example.net",
  "recipient=alice@d1.test",
  "sasl_method=",
  "sasl_username=",
  "instance=1a2b.5f3e4d.c0ffee.0",
  "policy_context=submission",
  "size=12345",
  "",
  "",
].join("\n");

const RCPT_WANT = req({
  request: "smtpd_access_policy",
  protocol_state: "RCPT",
  client_address: "192.0.2.7",
  queue_id: "",
  sender: "bob@example.net",
  recipient: "alice@d1.test",
  instance: "1a2b.5f3e4d.c0ffee.0",
  policy_context: "submission",
});

describe("PolicyDecoder: parsing", () => {
  const cases: Array<{ name: string; input: string; want: PolicyRequest[] }> = [
    { name: "a realistic RCPT request (unknown attributes ignored)", input: RCPT, want: [RCPT_WANT] },
    {
      name: "attributes in any order",
      input: "recipient=r@d\nsasl_username=u\nrequest=smtpd_access_policy\nprotocol_state=MAIL\nsender=s@d\n\n",
      want: [req({ recipient: "r@d", sasl_username: "u", request: "smtpd_access_policy", protocol_state: "MAIL", sender: "s@d" })],
    },
    {
      name: "only unknown attributes give an all-empty request",
      input: "ccert_subject=x\nencryption_cipher=y\nfuture_attribute_2031=z\n\n",
      want: [emptyPolicyRequest()],
    },
    {
      name: "a value containing '=' is split at the first '=' only",
      input: "sender=a=b@d\nrecipient==x=\npolicy_context=k=v=w\n\n",
      want: [req({ sender: "a=b@d", recipient: "=x=", policy_context: "k=v=w" })],
    },
    {
      name: "empty values",
      input: "sender=\nrecipient=\n\n",
      want: [req({})],
    },
    {
      name: "several requests in one chunk",
      input: "recipient=a@d\n\nrecipient=b@d\nsender=s@d\n\nrecipient=c@d\n\n",
      want: [req({ recipient: "a@d" }), req({ recipient: "b@d", sender: "s@d" }), req({ recipient: "c@d" })],
    },
    {
      name: "CRLF line ends are tolerated",
      input: "request=smtpd_access_policy\r\nrecipient=a@d\r\n\r\n",
      want: [req({ request: "smtpd_access_policy", recipient: "a@d" })],
    },
    {
      name: "stray empty lines before and between requests are ignored",
      input: "\n\r\n\nrecipient=a@d\n\n\n\nrecipient=b@d\n\n\n",
      want: [req({ recipient: "a@d" }), req({ recipient: "b@d" })],
    },
    {
      name: "UTF-8 values",
      input: "sender=jürgen@exämple.test\nrecipient=日本@example.jp\n\n",
      want: [req({ sender: "jürgen@exämple.test", recipient: "日本@example.jp" })],
    },
    {
      name: "a repeated attribute keeps one of its values (the last)",
      input: "recipient=a@d\nrecipient=b@d\n\n",
      want: [req({ recipient: "b@d" })],
    },
    {
      name: "names that exist on Object.prototype are ignored",
      input: "__proto__=x\nconstructor=y\ntoString=z\nrecipient=a@d\n\n",
      want: [req({ recipient: "a@d" })],
    },
    {
      name: "no request until the empty line",
      input: "recipient=a@d\nsender=s@d\n",
      want: [],
    },
  ];
  for (const { name, input, want } of cases) {
    test(name, () => {
      assert.deepEqual(feedPolicy(65_536, [b(input)]), { requests: want, error: null });
    });
    test(`${name} (byte by byte)`, () => {
      assert.deepEqual(feedPolicy(65_536, oneByOne(b(input))), { requests: want, error: null });
    });
  }

  test("a request split at every byte boundary gives the same requests", () => {
    const input = b(`${RCPT}recipient=é@d\r\n\r\n`);
    const want = [RCPT_WANT, req({ recipient: "é@d" })];
    for (let cut = 0; cut <= input.length; cut++) {
      assert.deepEqual(feedPolicy(65_536, [input.subarray(0, cut), input.subarray(cut)]), { requests: want, error: null }, `cut at ${cut}`);
    }
  });

  test("non-UTF-8 bytes in a value do not throw and become U+FFFD", () => {
    const input = Buffer.concat([b("sender="), Buffer.from([0xff, 0xfe, 0xc3]), b("@d\nrecipient="), Buffer.from([0x80]), b("\n\n")]);
    const r = new PolicyDecoder(1000).push(input);
    assert.equal(r.error, null);
    assert.equal(r.requests.length, 1);
    assert.equal(r.requests[0]!.sender, "\uFFFD\uFFFD\uFFFD@d");
    assert.equal(r.requests[0]!.recipient, "\uFFFD");
  });

  test("non-UTF-8 bytes in a name do not throw (unknown attribute)", () => {
    const input = Buffer.concat([Buffer.from([0xff, 0x80]), b("=x\nrecipient=a@d\n\n")]);
    assert.deepEqual(feedPolicy(1000, [input]), { requests: [req({ recipient: "a@d" })], error: null });
  });

  test("a value that begins with U+FEFF keeps it", () => {
    const r = new PolicyDecoder(1000).push(b("sender=\uFEFFalice@d1.test\n\n"));
    assert.equal(r.requests[0]?.sender, "\uFEFFalice@d1.test");
  });
});

describe("PolicyDecoder: errors", () => {
  const cases: Array<{ name: string; max: number; input: string; want: { requests: PolicyRequest[]; error: PolicyDecodeError } }> = [
    { name: "a line without '='", max: 1000, input: "recipient=a@d\nhello\n\n", want: { requests: [], error: "FORMAT" } },
    { name: "a line with an empty name", max: 1000, input: "=value\n\n", want: { requests: [], error: "FORMAT" } },
    { name: "a bare CR line with text", max: 1000, input: "abc\r\n\r\n", want: { requests: [], error: "FORMAT" } },
    {
      name: "requests before a FORMAT error are returned",
      max: 1000,
      input: "recipient=a@d\n\nrecipient=b@d\n\nGET / HTTP/1.0\n\n",
      want: { requests: [req({ recipient: "a@d" }), req({ recipient: "b@d" })], error: "FORMAT" },
    },
    { name: "one request over the cap", max: 40, input: `recipient=${"x".repeat(40)}@d\n\n`, want: { requests: [], error: "SIZE" } },
    { name: "over the cap with no newline at all", max: 40, input: "x".repeat(41), want: { requests: [], error: "SIZE" } },
    { name: "over the cap in many short lines", max: 40, input: "a=1\n".repeat(11), want: { requests: [], error: "SIZE" } },
    {
      name: "requests before a SIZE error are returned",
      max: 40,
      input: `recipient=a@d\n\n${"y".repeat(50)}`,
      want: { requests: [req({ recipient: "a@d" })], error: "SIZE" },
    },
  ];
  for (const { name, max, input, want } of cases) {
    test(`${name} -> ${want.error}`, () => {
      assert.deepEqual(feedPolicy(max, [b(input)]), want);
    });
    test(`${name} -> ${want.error} (byte by byte)`, () => {
      assert.deepEqual(feedPolicy(max, oneByOne(b(input))), want);
    });
  }

  test("the cap counts each request on its own, not the connection", () => {
    const one = "recipient=abcdefgh@d\n\n"; // 22 bytes
    assert.deepEqual(feedPolicy(40, [b(one.repeat(20))]).error, null);
    assert.equal(feedPolicy(40, [b(one.repeat(20))]).requests.length, 20);
  });

  test("a request of exactly the cap is accepted; one byte more is SIZE", () => {
    const exact = `recipient=${"x".repeat(27)}\n\n`; // 10 + 27 + 2 = 39 bytes
    assert.equal(Buffer.byteLength(exact), 39);
    assert.equal(feedPolicy(39, [b(exact)]).error, null);
    assert.equal(feedPolicy(38, [b(exact)]).error, "SIZE");
  });

  test("an oversize request without a newline is reported before the rest arrives", () => {
    const d = new PolicyDecoder(100);
    assert.equal(d.push(b("x".repeat(60))).error, null);
    assert.equal(d.push(b("x".repeat(60))).error, "SIZE");
  });

  test("the decoder stays dead after an error", () => {
    const d = new PolicyDecoder(1000);
    assert.equal(d.push(b("junk\n")).error, "FORMAT");
    assert.deepEqual(d.push(b("recipient=a@d\n\n")), { requests: [], error: "FORMAT" });
    const s = new PolicyDecoder(10);
    assert.equal(s.push(b("x".repeat(11))).error, "SIZE");
    assert.deepEqual(s.push(b("a=b\n\n")), { requests: [], error: "SIZE" });
  });
});

describe("PolicyDecoder: midRequest", () => {
  test("false before anything, true mid-request, false after the empty line", () => {
    const d = new PolicyDecoder(1000);
    const steps: Array<{ push: string; want: boolean }> = [
      { push: "", want: false },
      { push: "recip", want: true }, // partial line
      { push: "ient=a@d", want: true },
      { push: "\n", want: true }, // one attribute, no terminator
      { push: "sender=s@d\n", want: true },
      { push: "\n", want: false }, // request complete
      { push: "\n", want: false }, // stray empty line
      { push: "\r", want: true }, // an unfinished line, even if it may become empty
      { push: "\n", want: false },
      { push: "recipient=b@d\n\nsender=", want: true }, // one complete, the next started
      { push: "x\n\n", want: false },
    ];
    for (const [i, { push, want }] of steps.entries()) {
      d.push(b(push));
      assert.equal(d.midRequest, want, `step ${i}: after pushing ${JSON.stringify(push)}`);
    }
  });

  test("false after an error (the buffered bytes are dropped)", () => {
    const d = new PolicyDecoder(1000);
    d.push(b("recipient=a@d\n"));
    assert.equal(d.midRequest, true);
    d.push(b("oops\n"));
    assert.equal(d.midRequest, false);
  });
});

describe("formatPolicyReply", () => {
  const cases: Array<{ action: string; want: string }> = [
    { action: "DUNNO", want: "action=DUNNO\n\n" },
    { action: "OK", want: "action=OK\n\n" },
    { action: "550 5.1.1 <a@d>: Recipient address rejected: User unknown", want: "action=550 5.1.1 <a@d>: Recipient address rejected: User unknown\n\n" },
    { action: "DEFER_IF_PERMIT Service temporarily unavailable", want: "action=DEFER_IF_PERMIT Service temporarily unavailable\n\n" },
    { action: "REJECT a\nb", want: "action=REJECT a b\n\n" },
    { action: "REJECT a\r\n\r\nb", want: "action=REJECT a    b\n\n" },
    { action: "REJECT \x00\x07\t\x1b\x7f", want: "action=REJECT      \n\n" },
    { action: "450 4.7.1 é ünïcode stays", want: "action=450 4.7.1 é ünïcode stays\n\n" },
  ];
  for (const { action, want } of cases) {
    test(`reply for ${JSON.stringify(action)}`, () => {
      assert.equal(formatPolicyReply(action), want);
    });
  }

  test("every reply is one action line ended by one empty line", () => {
    const nasty = ["", "\n", "\n\n", "x\n\naction=OK", "\r", "a\x00b", "\u0085 and \u2028 are not C0"];
    for (const a of nasty) {
      const got = formatPolicyReply(a);
      assert.ok(got.startsWith("action="), JSON.stringify(got));
      assert.ok(got.endsWith("\n\n"), JSON.stringify(got));
      const body = got.slice(0, -2);
      assert.doesNotMatch(body, /[\x00-\x1f\x7f]/, `control char in ${JSON.stringify(got)}`);
    }
  });

  test("the action text is bounded well below Postfix's ~8 KiB reader limit", () => {
    const got = formatPolicyReply(`REJECT ${"x".repeat(20_000)}`);
    assert.ok(Buffer.byteLength(got) < 8192, `${Buffer.byteLength(got)} bytes`);
    assert.ok(got.endsWith("\n\n"));
  });
});
