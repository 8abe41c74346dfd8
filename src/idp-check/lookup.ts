// The last check of `mailcloak test-idp`: one user looked up by the daemon's
// own identity source, the code that answers Postfix, rather than by the
// requests above. Shows what the daemon would conclude about that user.

import type { Config } from "../config/types.js";
import { sendingDisabledBy } from "../rules/facts.js";
import { createLogger } from "../log.js";
import { createSource } from "../start.js";
import type { Report } from "./report.js";

export async function daemonLookup(cfg: Config, key: string, report: Report): Promise<void> {
  const wanted = key.trim().toLowerCase();
  const by = wanted.includes("@") ? "email" : "username";
  const what = `the daemon's lookup of ${wanted} by ${by}`;
  const source = createSource(cfg, createLogger("silent"));
  try {
    const r = by === "email" ? await source.userByEmail(wanted) : await source.userByUsername(wanted);
    if (r.kind === "notfound") {
      report.fail(`${what}: not found`, by === "email"
        ? "mailcloak treats this address as unknown: it must be a user's email in the IdP, whole and exact (aliases live in mailcloakctl)"
        : "mailcloak treats this login as unknown: check the user's username in the IdP");
      return;
    }
    if (r.kind === "unavailable") {
      report.fail(`${what}: unavailable (${r.reason})`, "the daemon's client failed: the lines above say where; for more, run the daemon with log.level: debug");
      return;
    }
    const u = r.value;
    const parts = [`found ${u.username}`, u.email ? `email ${u.email}` : "no email", u.enabled ? "enabled" : "disabled (mailcloak refuses its mail and logins)"];
    const attr = cfg.policy.sendAllowedAttribute;
    if (attr) {
      const v = u.attributes[attr];
      const shown = v === undefined ? `${attr} not set` : `${attr}=${v.join(",").replace(/[^\x20-\x7e]/g, "?").slice(0, 60)}`;
      parts.push(sendingDisabledBy(attr, u.attributes) ? `${shown} (sending disabled)` : shown);
    }
    report.ok(`${what}: ${parts.join(", ")}`);
  } finally {
    await source.close();
  }
}
