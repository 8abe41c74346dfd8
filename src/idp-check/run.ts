// `mailcloak test-idp`: check the configured identity source by hand, one
// line per check. The provider-specific parts live beside this file and only
// make requests and report lines; the last check is provider-neutral: one
// user looked up by the daemon's own identity source.

import type { Config } from "../config/types.js";
import { checkAuthentik } from "./authentik.js";
import { checkKeycloak } from "./keycloak.js";
import { daemonLookup } from "./lookup.js";
import { Report, UNUSABLE, type Reached } from "./report.js";
import { checkStatic } from "./static.js";

export interface TestIdpOptions {
  /** An email or username to look up with the daemon's own code (default: a user the checks saw). */
  readonly user?: string;
}

/** Run the checks for cfg's identity source, writing lines with `write`; resolves to the exit status (0: all passed). */
export async function testIdp(cfg: Config, write: (line: string) => void, opts: TestIdpOptions = {}): Promise<number> {
  const report = new Report(write);
  const attr = cfg.policy.sendAllowedAttribute;
  let reached: Reached = UNUSABLE;
  switch (cfg.idp.provider) {
    case "keycloak":
      reached = await checkKeycloak(cfg.idp.keycloak!, attr, report);
      break;
    case "authentik":
      reached = await checkAuthentik(cfg.idp.authentik!, attr, report);
      break;
    case "static":
      reached = checkStatic(cfg.idp.staticUsers, attr, report);
      break;
  }
  const key = opts.user ?? reached.sample;
  if (key !== null && key.trim() !== "") {
    if (!reached.usable) report.skip(`the daemon's lookup of ${key.trim().toLowerCase()}`, "users cannot be looked up yet");
    else await daemonLookup(cfg, key, report);
  }
  write(report.summary());
  return report.failed === 0 ? 0 : 1;
}
