// Fixtures several test files share, built in one place: a clock the test
// steps by hand, and a daemon serving both sockets with domains and apps
// already in its database.

import { Client, ctlOk, DaemonProcess, type DaemonOptions } from "./daemon.js";

/** Milliseconds that move only when the test says so (for injectable clocks). */
export interface ManualClock {
  readonly now: () => number;
  advance(ms: number): void;
}

export function manualClock(start = 1_000_000): ManualClock {
  let t = start;
  return {
    now: () => t,
    advance(ms: number): void {
      t += ms;
    },
  };
}

/** A running daemon with a client on each socket. */
export interface ServedDaemon {
  readonly daemon: DaemonProcess;
  /** Socketmap client. */
  readonly sm: Client;
  /** Policy client. */
  readonly pol: Client;
  close(): Promise<void>;
}

export interface ServedDaemonOptions extends DaemonOptions {
  /** Domains added with mailcloakctl before the clients connect (default d1.test). */
  readonly domains?: readonly string[];
  /** Apps added with mailcloakctl: [app_id, password]. */
  readonly apps?: readonly (readonly [string, string])[];
}

export async function servedDaemon(opts: ServedDaemonOptions = {}): Promise<ServedDaemon> {
  const { domains = ["d1.test"], apps = [], ...daemonOpts } = opts;
  const daemon = await DaemonProcess.start(daemonOpts);
  let sm: Client | undefined;
  let pol: Client | undefined;
  try {
    for (const d of domains) await ctlOk(daemon.db, "domains", "add", d);
    for (const [id, pw] of apps) await ctlOk(daemon.db, "apps", "add", id, pw);
    sm = await Client.connect(daemon.socketmapSocket);
    pol = await Client.connect(daemon.policySocket);
  } catch (err) {
    sm?.destroy(); // a half-built stack is not left running
    await daemon.cleanup();
    throw err;
  }
  return {
    daemon, sm, pol,
    async close(): Promise<void> {
      sm?.destroy();
      pol?.destroy();
      await daemon.cleanup();
    },
  };
}
