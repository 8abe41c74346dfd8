// The policy.send_allowed_attribute check both remote providers share: is the
// attribute on some of the users looked at, or under another spelling? What
// "on nobody" means differs per provider, so that part is theirs.

import { isRecord } from "./http.js";
import type { Report } from "./report.js";

/**
 * Reports ok when some user carries `name`, FAIL when users carry it only in
 * another letter case; otherwise leaves the line to `none` (given the line's
 * subject and the "N users looked at" phrase).
 */
export async function checkAttribute(name: string, users: readonly Record<string, unknown>[], report: Report,
  none: (what: string, of: string) => void | Promise<void>): Promise<void> {
  const what = `policy.send_allowed_attribute ${name}`;
  const of = `${users.length} user${users.length === 1 ? "" : "s"} looked at`;
  const carriers = users.filter((u) => isRecord(u.attributes) && Object.hasOwn(u.attributes, name));
  if (carriers.length > 0) {
    report.ok(`${what} is visible: set on ${carriers.length} of ${of} (e.g. ${String(carriers[0]!.username)})`);
    return;
  }
  const near = new Set<string>();
  for (const u of users) {
    if (!isRecord(u.attributes)) continue;
    for (const k of Object.keys(u.attributes)) if (k.toLowerCase() === name.toLowerCase()) near.add(k);
  }
  if (near.size > 0) {
    report.fail(`${what} is on none of ${of}, but ${[...near].join(", ")} is`,
      "attribute names are case-sensitive: set policy.send_allowed_attribute to the name users carry");
    return;
  }
  await none(what, of);
}
