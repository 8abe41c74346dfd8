// Is a login a user of the identity source? Asked before a delegation is
// written (mailcloakctl senders allow, POST /api/senders), with the daemon's
// own lookup code, so that a typo is refused rather than stored.

import type { Config } from "../config/types.js";
import { createLogger } from "../log.js";
import { createSource } from "../start.js";
import type { LoginCheck } from "./service.js";

export function identityLoginCheck(cfg: Config): LoginCheck {
  return async (login) => {
    const source = createSource(cfg, createLogger("silent"));
    try {
      const r = await source.userByUsername(login);
      if (r.kind === "unavailable") return { kind: "unavailable", reason: r.reason };
      if (r.kind === "notfound") return { kind: "notfound" };
      return { kind: r.value.enabled ? "enabled" : "disabled" };
    } finally {
      await source.close();
    }
  };
}
