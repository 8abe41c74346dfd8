// The end-to-end list specification (e2e-lists.spec.ts) on the Keycloak emulator.

import { EmulatorListGroups } from "./helpers/list-groups.js";
import { listsSpec } from "./e2e-lists.spec.js";

listsSpec("lists end to end, Keycloak emulator", {
  directory: () => EmulatorListGroups.start(),
  directoryUnavailable: null,
  timeoutMs: 120_000,
  keycloakTimeoutMs: 2000,
});
