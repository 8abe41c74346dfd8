// `mailcloak test-idp`: check the configured identity source by hand, one
// line per check. The provider-specific parts live beside this file; they
// only make requests and report lines.

import type { Config } from "../config/types.js";
import { checkKeycloak } from "./keycloak.js";
import { Report } from "./report.js";
import { checkStatic } from "./static.js";

/** Run the checks for cfg's identity source, writing lines with `write`; resolves to the exit status (0: all passed). */
export async function testIdp(cfg: Config, write: (line: string) => void): Promise<number> {
  const report = new Report(write);
  const attr = cfg.policy.sendAllowedAttribute;
  switch (cfg.idp.provider) {
    case "keycloak":
      await checkKeycloak(cfg.idp.keycloak!, attr, report);
      break;
    case "static":
      checkStatic(cfg.idp.staticUsers, attr, report);
      break;
  }
  write(report.summary());
  return report.failed === 0 ? 0 : 1;
}
