// The end-to-end list specification (e2e-lists.spec.ts) on the Keycloak
// emulator, which also holds a list too large for Postfix's reply limit.

import { EmulatorListGroups } from "./helpers/list-groups.js";
import { listsSpec } from "./e2e-lists.spec.js";

listsSpec("lists end to end, Keycloak emulator", {
  directory: () => EmulatorListGroups.start(),
  directoryUnavailable: null,
  timeoutMs: 120_000,
  keycloakTimeoutMs: 2000,
  // 1,500 members with 70-character addresses: about 106 kB of expansion, over Postfix's 100,000 bytes.
  oversizedList: async (dir) => {
    await dir.addGroup("huge", { mail: ["huge@d1.test"], mailPosting: ["anyone"] });
    for (let i = 0; i < 1500; i++) {
      const name = `h${String(i).padStart(4, "0")}-${"x".repeat(56)}`;
      dir.fake.addUser({ username: name, email: `${name}@d1.test`, enabled: true });
      await dir.addMember(name, "huge");
    }
    return "huge@d1.test";
  },
});
