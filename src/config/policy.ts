// The policy: section, with the Go release's older names
// (keycloak_failure_mode, cache_ttl_seconds, domain).

import { optional, text } from "./fields.js";
import { goTtl, type IdpResult } from "./idp.js";
import type { Section } from "./reader.js";
import { POLICY } from "./schema.js";
import type { Config, FailureMode } from "./types.js";

const P = POLICY.settings;

/**
 * The Go failure mode: anything but "dunno" means tempfail there. The case
 * of the two names is ignored here; any other value is read as tempfail,
 * with a warning.
 */
function failureModeOf(s: Section, name: string): FailureMode | undefined {
  const t = s.optionalString(name)?.trim().toLowerCase();
  if (t === undefined || t === "") return undefined;
  if (t === "dunno" || t === "tempfail") return t;
  s.warn(s.key(name), `${JSON.stringify(t)} is not tempfail or dunno; using tempfail (as the Go mailcloak does)`);
  return "tempfail";
}

/** The policy settings, and the cache TTL once the older policy.cache_ttl_seconds is weighed in. */
export function buildPolicy(policy: Section, idp: IdpResult): { policy: Config["policy"]; cacheTtl: number } {
  // As the Go release: the current name wins when both are set, the older one is used otherwise.
  const currentMode = failureModeOf(policy, P.idp_failure_mode.name);
  const olderMode = failureModeOf(policy, "keycloak_failure_mode");
  if (currentMode !== undefined && olderMode !== undefined && currentMode !== olderMode) {
    policy.warn("policy.keycloak_failure_mode", `is the older name of ${P.idp_failure_mode.key}, which is also set; using idp_failure_mode: ${currentMode}`);
  }
  const failureMode: FailureMode = currentMode ?? olderMode ?? P.idp_failure_mode.default;
  // The older layout's TTL; the current Go release ignores it, so the
  // provider section's own TTL wins when both are set.
  let cacheTtl = idp.cacheTtl;
  const olderTtl = goTtl(policy, "cache_ttl_seconds");
  if (olderTtl !== undefined) {
    if (idp.idpTtl !== undefined) {
      if (olderTtl !== idp.idpTtl.seconds) {
        policy.warn("policy.cache_ttl_seconds", `is the older name of ${idp.idpTtl.key}, which is also set; using ${cacheTtl}`);
      }
    } else cacheTtl = olderTtl;
  }
  const localDomains: string[] = [];
  const legacyDomain = policy.optionalString("domain");
  if (legacyDomain !== undefined) localDomains.push(legacyDomain.trim().toLowerCase());
  const delimiter = text(policy, P.recipient_delimiter);
  if (/[\s@]/.test(delimiter)) {
    throw policy.error(P.recipient_delimiter.key, "must not contain whitespace or @ (use \"\" to disable extensions)");
  }
  const sendAttr = optional(policy, P.send_allowed_attribute)?.trim() || null;
  policy.finish();
  return { policy: { failureMode, recipientDelimiter: delimiter, sendAllowedAttribute: sendAttr, localDomains }, cacheTtl };
}
