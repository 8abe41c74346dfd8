// The policy rules (src/rules/policy.ts) as tables, in process: every row of
// the README's policy decision tables and failure handling, with the action
// and the reason it must give (rows: helpers/rule-rows.ts). The same rules
// over the real socket: policy.integration.test.ts.

import { test } from "node:test";
import assert from "node:assert/strict";
import { countsQuota, decidePolicy, policyView, type PolicyFacts } from "../src/rules/policy.js";
import { POLICY_FAILURE_ROWS, POLICY_FLOW_ROWS, POLICY_RECIPIENT_ROWS, POLICY_SENDER_ROWS, SETTINGS, policyRequest, type PolicyRow } from "./helpers/rule-rows.js";

function run(row: PolicyRow): ReturnType<typeof decidePolicy> {
  const facts: PolicyFacts = { settings: SETTINGS, listsOn: false, ...row.facts };
  return decidePolicy(policyView(policyRequest(row.req), facts.settings), facts);
}

for (const [table, rows] of [["sender", POLICY_SENDER_ROWS], ["recipient", POLICY_RECIPIENT_ROWS], ["states and contexts", POLICY_FLOW_ROWS], ["failure handling", POLICY_FAILURE_ROWS]] as const) {
  test(`policy rules: ${table} table`, async (t) => {
    for (const row of rows) {
      await t.test(row.name, () => {
        const got = run(row);
        assert.ok(typeof got === "object", `the rule asked for the fact ${JSON.stringify(got)}, which the row does not give`);
        assert.deepEqual({ action: got.action, reason: got.reason }, { action: row.want.action, reason: row.want.reason });
      });
    }
  });
}

test("policy rules ask for the facts they need, one at a time, in their order", () => {
  const req = policyRequest({ protocol_state: "RCPT", sasl_username: "alice", sender: "alice+x@d1.test", recipient: "bob@d1.test" });
  const facts: PolicyFacts = { settings: SETTINGS, listsOn: false };
  const asked: string[] = [];
  const view = policyView(req, SETTINGS);
  const answers: Record<string, unknown> = {
    app: false,
    loginUser: { kind: "found", value: { username: "alice", email: "alice@d1.test", enabled: true, attributes: {} } },
    senderAlias: null,
    senderDomainRow: true,
    senderDelegates: [],
    recipientRows: { domainEnabled: true, exact: undefined, base: undefined, catchAll: undefined },
    recipientUser: { kind: "notfound" },
  };
  for (;;) {
    const r = decidePolicy(view, facts);
    if (typeof r === "object") {
      assert.equal(r.reason, "no-such-user");
      break;
    }
    asked.push(r);
    assert.ok(r in answers, `unexpected need ${r}`);
    Object.assign(facts, { [r]: answers[r] });
  }
  // The sender's base is the user's email: no alias or delegation lookup for it; no lookup of the recipient's base (it has none).
  assert.deepEqual(asked, ["app", "loginUser", "senderAlias", "senderDomainRow", "senderDelegates", "recipientRows", "recipientUser"]);
});

test("countsQuota: END-OF-MESSAGE and DATA in any case, never RCPT or MAIL", () => {
  const at = (s: string) => countsQuota(policyRequest({ protocol_state: s }));
  assert.deepEqual(["END-OF-MESSAGE", "end-of-message", "DATA", "data", "RCPT", "MAIL", "CONNECT"].map(at), [true, true, true, true, false, false, false]);
});
