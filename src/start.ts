// The one place that wires the daemon: config → store → identity source →
// cache → handlers → listeners. Returns handles to reload, flush and stop.

import { statSync } from "node:fs";
import { dirname } from "node:path";
import type { Logger } from "pino";
import type { Config } from "./config/types.js";
import { restartKeys } from "./config/effective.js";
import { openStore } from "./store/open.js";
import type { StoreReader } from "./store/types.js";
import { DirectoryCache } from "./directory/cache.js";
import type { IdentitySource } from "./directory/lookup.js";
import { StaticSource } from "./directory/static.js";
import { KeycloakSource } from "./directory/keycloak.js";
import { AuthentikSource } from "./directory/authentik.js";
import { ListDirectory, ListReader, type ListSnapshot } from "./directory/lists.js";
import { Facts, ruleSettings } from "./facts.js";
import { SocketmapHandler, socketmapProtocol } from "./handlers/socketmap.js";
import { PolicyHandler, policyProtocol } from "./handlers/policy.js";
import { Listener } from "./server/listener.js";
import { Turn } from "./server/turn.js";
import { batchLines, deferLines, linesHeld } from "./log.js";
import { exposedToOthers } from "./server/socket-reach.js";
import { lookupGroup, lookupUser } from "./system/accounts.js";
import type { Limits } from "./config/types.js";
import type { Metrics } from "./metrics.js";
import { QuotaCheck } from "./quota/check.js";
import { openCounters } from "./quota/open.js";
import { RedisCounters } from "./quota/redis-counters.js";
import { SqliteCounters } from "./store/sqlite/counters.js";

export interface Daemon {
  readonly config: Config;
  readonly listeners: { readonly policy: Listener<unknown>; readonly socketmap: Listener<unknown> };
  readonly store: StoreReader;
  readonly cache: DirectoryCache;
  /** Apply a new, already validated config (SIGHUP). Sockets and DB path are kept. */
  reload(next: Config): Promise<string[]>;
  /** Empty the directory cache (SIGUSR1, mailcloakctl cache flush). */
  flush(): void;
  stop(): Promise<void>;
}

export function createSource(cfg: Config, log: Logger, metrics?: Metrics): IdentitySource {
  if (cfg.idp.provider === "static") return new StaticSource(cfg.idp.staticUsers);
  // Cached users keep only the attributes the rules read.
  const attributes = readAttributes(cfg);
  if (cfg.idp.provider === "authentik") {
    const { baseUrl, apiToken, timeoutMs } = cfg.idp.authentik!;
    const logger = log.child({ component: "authentik" });
    return new AuthentikSource({ baseUrl, apiToken, timeoutMs, attributes, logger, events: metrics?.authentikEvents });
  }
  const { baseUrl, realm, clientId, clientSecret, timeoutMs } = cfg.idp.keycloak!;
  const logger = log.child({ component: "keycloak" });
  return new KeycloakSource({ baseUrl, realm, clientId, clientSecret, timeoutMs, attributes, logger, events: metrics?.keycloakEvents });
}

/** The user attributes the rules read: only these are kept in cached users. */
function readAttributes(cfg: Config): string[] {
  const a = cfg.quotas.attributes;
  return [cfg.policy.sendAllowedAttribute, a.per_hour, a.per_day, a.recipients_per_hour].filter((x): x is string => x !== null);
}

/**
 * Resolve socket owner/group names to ids; a missing one is a start-up error.
 * Unset, they default to postfix:postfix when running as root on a machine
 * that has that account (Postfix's daemons must connect), else the process's.
 */
export function socketOwnership(cfg: Config): { uid?: number; gid?: number } {
  const out: { uid?: number; gid?: number } = {};
  let { ownerUser, ownerGroup } = cfg.sockets;
  if (process.getuid?.() === 0) {
    if (ownerUser === null && lookupUser("postfix")) ownerUser = "postfix";
    if (ownerGroup === null && lookupGroup("postfix") !== null) ownerGroup = "postfix";
  }
  if (ownerUser) {
    const u = lookupUser(ownerUser);
    if (!u) throw new Error(`${cfg.file}: sockets.socket_owner_user: no such user ${JSON.stringify(ownerUser)}`);
    out.uid = u.uid;
  }
  if (ownerGroup) {
    const g = lookupGroup(ownerGroup);
    if (g === null) throw new Error(`${cfg.file}: sockets.socket_owner_group: no such group ${JSON.stringify(ownerGroup)}`);
    out.gid = g;
  }
  return out;
}

/** One warning line for the world-writable Unix sockets whose directory lets other users reach them. */
function warnExposedSockets(cfg: Config, log: Logger): void {
  const exposed: string[] = [];
  for (const a of [cfg.sockets.policy, cfg.sockets.socketmap]) {
    if (a.kind !== "unix") continue;
    try {
      const dir = statSync(dirname(a.path));
      if (exposedToOthers(cfg.sockets.mode, statSync(a.path).gid, { mode: dir.mode, gid: dir.gid })) exposed.push(a.path);
    } catch {
      /* gone already: nothing to warn about */
    }
  }
  if (exposed.length === 0) return;
  const mode = cfg.sockets.mode.toString(8).padStart(4, "0");
  log.warn({ sockets: exposed, mode },
    `sockets.socket_mode ${mode} lets any local user connect to ${exposed.join(" and ")}: their directory lets in users outside the sockets' group. ` +
    "Put the sockets in a directory only Postfix can enter (as Postfix's private/, mode 0700) or use socket_mode 0660");
}

/** The list directory (directory/lists.ts) when lists.parent_group is set and the IdP is Keycloak. */
function createLists(cfg: Config, cache: DirectoryCache, facts: Facts, log: Logger): ListDirectory | null {
  const settings = cfg.lists;
  if (!settings || settings.parentGroup === null) return null;
  const lg = log.child({ component: "lists" });
  if (cfg.idp.provider !== "keycloak") {
    lg.warn({ provider: cfg.idp.provider }, "lists.parent_group is set but lists come from Keycloak groups only: lists are off");
    return null;
  }
  const warned = new Set<string>();
  const warnOnce = (key: string, fields: Record<string, unknown>, msg: string): void => {
    if (warned.has(key) || warned.size > 1000) return;
    warned.add(key);
    lg.warn(fields, msg);
  };
  const get = (path: string): Promise<unknown> => {
    const src = cache.source; // the current one (SIGHUP may replace it)
    if (!(src instanceof KeycloakSource)) return Promise.reject(new Error("the identity source is not Keycloak"));
    return src.adminGet(path);
  };
  const reader = new ListReader(get, settings, (d) => facts.isLocalDomain(d), (key, fields, msg) => warnOnce(key, fields, msg));
  const read = async (): Promise<ListSnapshot> => {
    const snap = await reader.read();
    for (const l of snap.byAddress.values()) {
      if (facts.store.alias(l.address) !== undefined) {
        warnOnce(`alias:${l.address}`, { address: l.address, group: l.path }, "list address is also an SQLite alias: the alias wins, the list is ignored");
      }
    }
    return snap;
  };
  return new ListDirectory(read, cfg.cache, lg);
}

/** The daemon's store: SQLite at sqlite.path, or the shared PostgreSQL of store: (one log line per outage and per recovery). */
async function openReader(cfg: Config, log: Logger): Promise<StoreReader> {
  const pg = cfg.store?.backend === "postgres" ? cfg.store.postgres : undefined;
  const location = pg?.url ?? cfg.sqlite.path;
  const store = await openStore(location, {
    busyTimeoutMs: cfg.sqlite.busyTimeoutMs,
    postgres: pg,
    events: {
      onUnavailable: (reason) => log.error({ reason }, "database unavailable: answering 451 4.3.0 / TEMP until it is back"),
      onRecovered: () => log.info({ db: location }, "database available again"),
    },
  });
  if (pg !== undefined) log.info({ db: store.location }, store.problem === null ? "PostgreSQL store loaded" : "PostgreSQL store not reachable yet");
  return store;
}

export interface StartOptions {
  /** The account the daemon will drop to: files it creates (the quota counters) are given to it. */
  readonly fileOwner?: { readonly uid: number; readonly gid: number } | null;
}

export async function startDaemon(cfg: Config, log: Logger, metrics?: Metrics, opts: StartOptions = {}): Promise<Daemon> {
  const owner = socketOwnership(cfg);
  const store = await openReader(cfg, log);
  let current = cfg;
  const source = createSource(cfg, log, metrics);
  const cache = new DirectoryCache(source, cfg.cache, metrics?.cacheEvents);
  const facts = new Facts(store, cache, ruleSettings(cfg));
  facts.lists = createLists(cfg, cache, facts, log);
  const limits = (): Limits => current.limits;

  const smHandler = new SocketmapHandler(facts, log.child({ server: "socketmap" }), metrics?.socketmapEvents);
  const quotaLog = log.child({ component: "quota" });
  const counters = openCounters(cfg.quotas, { busyTimeoutMs: cfg.sqlite.busyTimeoutMs, daemon: true, logger: quotaLog, owner: opts.fileOwner ?? null });
  // Neither a bad counter file nor a Redis that is down stops the daemon: the failure mode applies until they work.
  if (counters instanceof SqliteCounters && !counters.tryOpen()) quotaLog.warn({ reason: counters.lastError }, "quota counters cannot be opened; retrying at each message");
  if (counters instanceof RedisCounters) counters.connect().catch(() => undefined);
  const quota = new QuotaCheck({
    facts, counters, settings: cfg.quotas, warnTtlMs: cfg.cache.ttlSeconds * 1000, log: quotaLog,
    ...(metrics ? { events: metrics.quotaEvents } : {}),
  });
  const policyHandler = new PolicyHandler(facts, log.child({ server: "policy" }), metrics?.policyEvents, quota);

  // One batch per event-loop turn for both servers: one look at the DB and
  // one log write for all the requests read in it (server/turn.ts).
  const turn = new Turn((run) => batchLines(() => store.within(run)), (err) => log.error({ err: err instanceof Error ? err.message : String(err) }, "internal error handling requests"), linesHeld);
  deferLines(() => turn.wake());
  const common = { turn, limits, uid: owner.uid, gid: owner.gid, mode: cfg.sockets.mode, ...(metrics ? { events: metrics.listenerEvents } : {}) };
  let socketmap: Listener<Buffer> | null = null;
  let policy: Listener<unknown> | null = null;
  try {
    socketmap = await Listener.open({ ...common, address: cfg.sockets.socketmap, protocol: socketmapProtocol(smHandler), logger: log.child({ server: "socketmap" }) });
    policy = (await Listener.open({ ...common, address: cfg.sockets.policy, protocol: policyProtocol(policyHandler), logger: log.child({ server: "policy" }) })) as Listener<unknown>;
  } catch (err) {
    await socketmap?.close(0);
    await counters.close();
    store.close();
    await source.close();
    throw err;
  }

  warnExposedSockets(cfg, log);
  const listeners = { policy, socketmap: socketmap as Listener<unknown> };
  let stopping: Promise<void> | null = null;

  return {
    config: cfg,
    listeners,
    store,
    cache,
    async reload(next: Config): Promise<string[]> {
      const changed: string[] = [];
      const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
      // Settings bound at start (schema.ts marks them "restart"): compared with
      // what the daemon started with, so every reload keeps warning until the
      // daemon is restarted.
      const restartNeeded = restartKeys(next, cfg);
      // Cached users keep only the attribute the rules read: a new one needs fresh users.
      if (!same(next.idp, current.idp) || !same(readAttributes(next), readAttributes(current))) {
        const old = cache.source;
        cache.reconfigure(next.cache, createSource(next, log, metrics));
        await old.close();
        if (!same(next.idp, current.idp)) changed.push("idp");
      } else if (!same(next.cache, current.cache)) {
        cache.reconfigure(next.cache);
      }
      if (!same(next.cache, current.cache)) changed.push("cache");
      facts.lists?.reconfigure(next.cache);
      if (!same(next.policy, current.policy)) changed.push("policy");
      if (!same(next.limits, current.limits)) changed.push("limits");
      if (!same(next.quotas, current.quotas)) changed.push("quotas");
      quota.settings = next.quotas;
      quota.warnTtlMs = next.cache.ttlSeconds * 1000;
      if (next.log.level !== current.log.level) {
        log.level = next.log.level;
        changed.push("log.level");
      }
      facts.settings = ruleSettings(next);
      current = next;
      if (restartNeeded.length > 0) log.warn({ keys: restartNeeded }, "these settings change only on restart");
      return changed;
    },
    flush(): void {
      cache.clear();
      facts.lists?.clear();
    },
    stop(): Promise<void> {
      stopping ??= (async () => {
        const grace = current.daemon.shutdownGraceMs;
        await Promise.all([policy!.close(grace), socketmap!.close(grace)]);
        await cache.source.close();
        await counters.close();
        store.close();
      })();
      return stopping;
    },
  };
}
