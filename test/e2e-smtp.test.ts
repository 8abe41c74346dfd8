// The end-to-end SMTP specification (e2e-smtp.spec.ts) with users from the
// Keycloak emulator, which can also revoke tokens and go down in an instant.

import { EmulatorDirectory } from "./helpers/directory.js";
import { smtpSpec } from "./e2e-smtp.spec.js";

smtpSpec("SMTP end to end, Keycloak emulator", {
  directory: () => EmulatorDirectory.start(),
  directoryUnavailable: null,
  timeoutMs: 60_000,
  keycloakTimeoutMs: 2000,
  shortTokenLifespan: 2,
  renewalRunMs: 5000,
});
