// The end-to-end SMTP specification (e2e-smtp.spec.ts) with users from a real
// Keycloak this file starts for itself (never the run's shared one: the outage
// tests stop it and start it again, which takes tens of seconds).

import { RealDirectory } from "./helpers/directory.js";
import { realKeycloakUnavailable } from "./helpers/keycloak-real.js";
import { smtpSpec } from "./e2e-smtp.spec.js";

smtpSpec("SMTP end to end, real Keycloak", {
  directory: () => RealDirectory.start(),
  directoryUnavailable: realKeycloakUnavailable(),
  // A restart re-imports the realm: 20-35 s on an idle machine, 150 s seen on a busy one.
  timeoutMs: 420_000,
  // The fixture's 60 s lifespan, shortened on this file's own server so the test sees several tokens.
  keycloakTimeoutMs: 10_000,
  shortTokenLifespan: 3,
  renewalRunMs: 8000,
});
