// mailcloak-admin, mailcloakctl and the daemon on one DB at once: the admin
// API and the CLI write while the daemon serves socketmap and policy load;
// no request gets an error reply, no write fails, and the daemon sees every
// committed change. Also: the overview reports the daemon's /ready.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { Client, ctl, DaemonProcess, freePort, policyQuery, socketmapQuery } from "./helpers/daemon.js";
import { AdminProcess } from "./helpers/admin.js";

const TOKEN = "concurrency-token-0123";
let d: DaemonProcess | null = null;
let admin: AdminProcess | null = null;

after(async () => {
  await admin?.stop();
  await d?.cleanup();
});

test("admin API and mailcloakctl write while the daemon serves load: no error replies", async () => {
  const metricsPort = await freePort();
  d = await DaemonProcess.start({ config: { metrics: { listen: `127.0.0.1:${metricsPort}` } } });
  admin = await AdminProcess.start(["--config", d.configPath, "--listen", "127.0.0.1:0", "--token", TOKEN]);
  admin.token = TOKEN;
  assert.equal((await admin.request("POST", "/api/domains", { json: { domain_name: "d1.test" } })).status, 204);
  assert.equal((await admin.request("POST", "/api/aliases", { json: { alias_email: "stable@d1.test", target_user: "alice" } })).status, 204);

  const ov = await admin.request("GET", "/api/overview");
  assert.deepEqual((ov.body as { daemon: unknown }).daemon, { configured: true, ready: true, detail: "ready" });

  let stop = false;
  const replies = { socketmap: 0, policy: 0, bad: [] as string[] };
  const load = async (): Promise<void> => {
    const sm = await Client.connect(d!.socketmapSocket);
    const pol = await Client.connect(d!.policySocket);
    try {
      while (!stop) {
        const a = await socketmapQuery(sm, "alias", "stable@d1.test");
        replies.socketmap++;
        if (!a.startsWith("OK alice")) replies.bad.push(`alias: ${a}`);
        const m = await socketmapQuery(sm, "mailbox", "alice@d1.test");
        if (!m.startsWith("OK")) replies.bad.push(`mailbox: ${m}`);
        const p = await policyQuery(pol, {
          request: "smtpd_access_policy", protocol_state: "RCPT", sasl_username: "alice", sender: "stable@d1.test", recipient: "x@ext.test",
        });
        replies.policy++;
        if (!/^(DUNNO|OK)\b/.test(p)) replies.bad.push(`policy: ${p}`);
      }
    } finally {
      sm.destroy();
      pol.destroy();
    }
  };
  const loaders = Array.from({ length: 4 }, load);

  const writes: string[] = [];
  const apiWriter = async (): Promise<void> => {
    for (let i = 0; i < 40; i++) {
      const alias = `w${i}@d1.test`;
      for (const [m, p, body] of [
        ["POST", "/api/aliases", { alias_email: alias, target_user: "bob" }],
        ["PATCH", `/api/aliases/${alias}`, { enabled: false }],
        ["DELETE", `/api/aliases/${alias}`, undefined],
      ] as const) {
        const r = await admin!.request(m, p, body === undefined ? {} : { json: body });
        if (r.status !== 204) writes.push(`${m} ${p}: ${r.status} ${r.text}`);
      }
    }
  };
  const cliWriter = async (): Promise<void> => {
    for (let i = 0; i < 8; i++) {
      for (const args of [["aliases", "add", `c${i}@d1.test`, "carol"], ["aliases", "del", `c${i}@d1.test`]]) {
        const r = await ctl(d!.db, ...args);
        if (r.code !== 0) writes.push(`mailcloakctl ${args.join(" ")}: ${r.code} ${r.stderr}`);
      }
    }
  };
  await Promise.all([apiWriter(), cliWriter()]);
  // The daemon sees a change committed through the API at once.
  assert.equal((await admin.request("POST", "/api/aliases", { json: { alias_email: "late@d1.test", target_user: "dave" } })).status, 204);
  const c = await Client.connect(d.socketmapSocket);
  try {
    assert.match(await socketmapQuery(c, "alias", "late@d1.test"), /^OK dave/);
  } finally {
    c.destroy();
    stop = true;
    await Promise.all(loaders);
  }

  assert.deepEqual(writes, [], "every write succeeded");
  assert.deepEqual(replies.bad, [], "no error replies under writes");
  assert.ok(replies.socketmap > 100 && replies.policy > 100, `load was served (${replies.socketmap} socketmap, ${replies.policy} policy)`);
  process.stderr.write(`${replies.socketmap} alias (and as many mailbox) socketmap and ${replies.policy} policy requests during ${40 * 3 + 16} writes\n`);
});
