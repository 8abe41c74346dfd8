// `mailcloak test-idp` for idp.provider: static: nothing remote to reach, so
// the check is on the users list itself (what lookups will find in it).

import type { StaticUser } from "../config/types.js";
import type { Reached, Report } from "./report.js";

export function checkStatic(users: readonly StaticUser[], sendAttribute: string | null, report: Report): Reached {
  const enabled = users.filter((u) => u.enabled).length;
  const withEmail = users.filter((u) => u.email !== null).length;
  report.ok(`static users: ${users.length} in idp.static.users (${enabled} enabled, ${withEmail} with an email); nothing remote to test`);
  const dup = (key: (u: StaticUser) => string | null): string[] => {
    const seen = new Set<string>();
    const twice = new Set<string>();
    for (const u of users) {
      const k = key(u);
      if (k === null) continue;
      if (seen.has(k)) twice.add(k);
      seen.add(k);
    }
    return [...twice];
  };
  const names = dup((u) => u.username);
  const emails = dup((u) => u.email);
  if (names.length > 0 || emails.length > 0) {
    const which = [...names.map((n) => `username ${n}`), ...emails.map((e) => `email ${e}`)].join(", ");
    report.fail(`static users: listed more than once: ${which}`, "only the last entry of each is used: keep one entry per username and per email");
  }
  if (sendAttribute) {
    const n = users.filter((u) => Object.hasOwn(u.attributes, sendAttribute)).length;
    report.ok(`policy.send_allowed_attribute ${sendAttribute}: set on ${n} of ${users.length} static users (absent means sending is allowed)`);
  }
  return { usable: true, sample: users.find((u) => u.enabled && u.email !== null)?.email ?? null };
}
