// The harness itself: the shared real Keycloak answers with the fixture realm,
// and the daemon can look a user up in it over its real sockets.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Client, DaemonProcess, ctlOk, socketmapQuery } from "./helpers/daemon.js";
import { FIXTURE, releaseKeycloak, sharedKeycloak, type RealKeycloak } from "./helpers/keycloak-real.js";

let kc: RealKeycloak | { skip: string };
let d: DaemonProcess | null = null;

before(async () => {
  kc = await sharedKeycloak();
});

after(async () => {
  await d?.cleanup();
  await releaseKeycloak();
});

test("the fixture realm answers and the daemon finds its users", async (t) => {
  if ("skip" in kc) return t.skip(kc.skip);
  const r = await fetch(`${kc.baseUrl}/realms/${FIXTURE.realm}`);
  assert.equal(r.status, 200);
  d = await DaemonProcess.start({
    config: {
      idp: {
        provider: "keycloak",
        static: null,
        keycloak: { base_url: kc.baseUrl, realm: FIXTURE.realm, client_id: FIXTURE.client.id, client_secret: FIXTURE.client.secret },
      },
    },
  });
  await ctlOk(d.db, "domains", "add", "d1.test");
  const c = await Client.connect(d.socketmapSocket);
  try {
    assert.match(await socketmapQuery(c, "mailbox", "alice@d1.test"), /^OK /);
    assert.equal(await socketmapQuery(c, "mailbox", "nobody@d1.test"), "NOTFOUND");
  } finally {
    c.destroy();
  }
});
