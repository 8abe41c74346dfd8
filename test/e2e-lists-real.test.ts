// The end-to-end list specification (e2e-lists.spec.ts) on the real Keycloak:
// the run's shared server (test/run.ts), or one this file starts when run
// alone. The suite's groups and memberships live under a parent group of its
// own, made and deleted through the admin REST API, so the other files sharing
// the realm never see them.

import { RealListGroups } from "./helpers/list-groups.js";
import { realKeycloakUnavailable } from "./helpers/keycloak-real.js";
import { listsSpec } from "./e2e-lists.spec.js";

listsSpec("lists end to end, real Keycloak", {
  directory: () => RealListGroups.start(),
  directoryUnavailable: realKeycloakUnavailable(),
  // A busy shared machine: Keycloak's first answers and the daemon's restart take seconds.
  timeoutMs: 240_000,
  keycloakTimeoutMs: 10_000,
});
