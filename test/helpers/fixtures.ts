// Fixtures several test files share, built in one place: a clock the test
// steps by hand, and a daemon serving both sockets with domains and apps
// already in its database (and, for list tests, its lists already read).

import { after, before } from "node:test";
import { Client, ctlOk, DaemonProcess, netstring, netstringLength, type DaemonOptions } from "./daemon.js";

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

/** A served daemon whose config has lists: on, with a count of its reads of them. */
export interface ServedListsDaemon extends ServedDaemon {
  /** How many times the daemon has read the lists from Keycloak so far. */
  reads(): number;
}

/**
 * servedDaemon, then the first read of the lists, through an alias lookup of
 * `probe` (a list address): on a fresh server or a busy machine it takes
 * seconds, so it is waited for here with a deadline of its own rather than
 * inside a test whose lookup would time out. reads() counts it as the first.
 */
export async function servedListsDaemon(opts: ServedDaemonOptions, probe: string): Promise<ServedListsDaemon> {
  const served = await servedDaemon(opts);
  try {
    served.sm.write(netstring(`alias ${probe}`));
    await served.sm.read(netstringLength, 60_000);
  } catch (err) {
    await served.close();
    throw err;
  }
  return {
    ...served,
    reads: () => served.daemon.records().filter((r) => r.msg === "lists read from Keycloak").length,
  };
}

/** What a suite's before() set up: the source and the daemon on it, or why the suite is skipped. */
export interface SuiteFixture<S, D extends ServedDaemon> {
  /** Why the tests skip; "" once the source opened. */
  readonly skip: string;
  /** The identity source the daemon asks (null while skipped). */
  readonly source: S | null;
  readonly served: D | null;
  /** The served daemon's parts (only once the source opened: a test checks `source` first). */
  readonly daemon: DaemonProcess;
  readonly sm: Client;
  readonly pol: Client;
}

/**
 * In the current describe(): before the tests, open the source (it may say
 * why the suite must skip, e.g. no real Keycloak here) and serve a daemon on
 * it; after them, close the daemon, then dispose of the source. A failed
 * serve disposes of the source before the error is reported.
 */
export function suiteFixture<S, D extends ServedDaemon>(opts: {
  open: () => Promise<S | { skip: string }>;
  serve: (source: S) => Promise<D>;
  dispose: (source: S) => Promise<void>;
}): SuiteFixture<S, D> {
  const f = {
    skip: "",
    source: null as S | null,
    served: null as D | null,
    get daemon(): DaemonProcess {
      return served().daemon;
    },
    get sm(): Client {
      return served().sm;
    },
    get pol(): Client {
      return served().pol;
    },
  };
  const served = (): D => {
    if (f.served === null) throw new Error(`suite not served${f.skip === "" ? "" : ` (skipped: ${f.skip})`}`);
    return f.served;
  };
  before(async () => {
    const s = await opts.open();
    if (typeof s === "object" && s !== null && "skip" in s) {
      f.skip = s.skip;
      return;
    }
    try {
      f.served = await opts.serve(s);
    } catch (err) {
      await opts.dispose(s);
      throw err;
    }
    f.source = s;
  });
  after(async () => {
    await f.served?.close();
    if (f.source !== null) await opts.dispose(f.source);
  });
  return f;
}
