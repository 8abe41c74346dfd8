// mailcloak-admin entry: flags (the Go version's, plus sign-in and a Unix
// socket) → one HTTP server over the admin service. Refuses to start
// without authentication unless --insecure-no-auth, and then only on
// loopback; refuses to run as root unless --allow-root.

import { chmodSync, existsSync, lstatSync, readFileSync, unlinkSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { Command, CommanderError } from "commander";
import { ConfigError, DEFAULT_CONFIG_PATH, loadConfig } from "../config/load.js";
import type { Config, ListenAddress } from "../config/types.js";
import { DEFAULTS } from "../config/types.js";
import { createLogger } from "../log.js";
import { initStore, openAdmin, redact } from "../store/open.js";
import type { AdminStore } from "../store/types.js";
import type { ApiContext } from "./api.js";
import { OidcClient } from "./oidc.js";
import { auditTo, createHandler } from "./server.js";
import { AdminService } from "./service.js";
import { Sessions } from "./session.js";

const PROG = "mailcloak-admin";

class StartError extends Error {}

export interface AdminOptions {
  db?: string;
  config: string;
  listen: string;
  token?: string;
  tokenFile?: string;
  initDb?: boolean;
  insecureNoAuth?: boolean;
  socketMode: string;
  publicUrl?: string;
  oidcIssuer?: string;
  oidcClientId?: string;
  oidcClientSecretFile?: string;
  adminRole?: string;
  adminGroup?: string;
  sessionIdleMinutes: string;
  sessionMaxHours: string;
  daemonReadyUrl?: string;
  allowRoot?: boolean;
  logLevel: string;
}

function readSecret(what: string, path: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch (err) {
    throw new StartError(`${what}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
}

/** "unix:PATH", or "HOST:PORT" / "[v6]:PORT" (port 0: any free port). */
export function parseListen(text: string): ListenAddress | null {
  const t = text.trim();
  if (t.startsWith("unix:")) return t.length > 5 && t.slice(5).startsWith("/") ? { kind: "unix", path: t.slice(5) } : null;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(t);
  if (!m || Number(m[3]) > 65535) return null;
  return { kind: "tcp", host: (m[1] ?? m[2])!, port: Number(m[3]) };
}

function isLoopback(a: ListenAddress): boolean {
  return a.kind === "tcp" && (a.host === "localhost" || a.host === "::1" || /^127\./.test(a.host));
}

function positive(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new StartError(`${flag}: must be a positive number, got ${JSON.stringify(text)}`);
  return n;
}

export interface RunningAdmin {
  readonly server: Server;
  /** "http://127.0.0.1:PORT" or "unix:PATH". */
  readonly address: string;
  stop(): Promise<void>;
}

export async function startAdmin(o: AdminOptions): Promise<RunningAdmin> {
  const log = createLogger(o.logLevel, process.stderr);
  if (process.getuid?.() === 0 && !o.allowRoot) {
    throw new StartError("refusing to run as root: run as an unprivileged user that may write the database (see configs/mailcloak-admin.service), or pass --allow-root");
  }
  const listen = parseListen(o.listen);
  if (listen === null) throw new StartError(`--listen: must be HOST:PORT or unix:PATH, got ${JSON.stringify(o.listen)} (a Unix socket path must be absolute)`);

  let config: Config | null = null;
  if (existsSync(o.config)) {
    try {
      config = loadConfig(o.config);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      log.warn({ err: err.message }, "config file not usable (the setup wizard can replace it)");
    }
  }
  // store: backend postgres shares the hosts' PostgreSQL (docs/several-hosts.md); its password stays in `postgres`.
  const postgres = config?.store?.backend === "postgres" ? config.store.postgres : undefined;
  const dbPath = o.db ?? postgres?.url ?? config?.sqlite.path ?? DEFAULTS.sqlitePath;
  const busyMs = config?.sqlite.busyTimeoutMs ?? DEFAULTS.busyTimeoutMs;

  const token = (o.token?.trim() || (o.tokenFile ? readSecret("--token-file", o.tokenFile) : "") || process.env.MAILCLOAK_ADMIN_TOKEN?.trim() || "") || null;

  // Sign-in with the identity provider.
  let oidc: OidcClient | null = null;
  if (o.oidcClientId) {
    const kc = config?.idp.keycloak;
    const issuer = o.oidcIssuer ?? (kc ? `${kc.baseUrl}/realms/${encodeURIComponent(kc.realm)}` : null);
    if (issuer === null) throw new StartError("--oidc-client-id: no issuer: pass --oidc-issuer, or a config with idp.keycloak");
    const publicUrl = o.publicUrl ?? (listen.kind === "tcp" ? `http://${listen.host.includes(":") ? `[${listen.host}]` : listen.host}:${listen.port}` : null);
    if (publicUrl === null) throw new StartError("--public-url is required with a Unix socket (the URL the browser uses, for the sign-in redirect)");
    const secret = o.oidcClientSecretFile ? readSecret("--oidc-client-secret-file", o.oidcClientSecretFile)
      : process.env.MAILCLOAK_ADMIN_OIDC_CLIENT_SECRET?.trim() ?? "";
    try {
      oidc = await OidcClient.discover({
        issuer, clientId: o.oidcClientId, clientSecret: secret, publicUrl,
        adminRole: o.adminRole ?? (o.adminGroup ? null : "mailcloak-admin"), adminGroup: o.adminGroup ?? null,
      });
    } catch (err) {
      throw new StartError(`sign-in: OpenID discovery at ${issuer} failed: ${(err as Error).message}`);
    }
  }

  if (token === null && oidc === null && !o.insecureNoAuth) {
    throw new StartError("missing admin token: set --token, --token-file or MAILCLOAK_ADMIN_TOKEN, configure sign-in (--oidc-client-id), or --insecure-no-auth for local development");
  }
  if (o.insecureNoAuth && !isLoopback(listen)) {
    throw new StartError(`--insecure-no-auth: only on a loopback address (127.0.0.1:PORT), not ${o.listen}`);
  }
  if (o.insecureNoAuth) log.warn({ listen: o.listen }, "admin API authentication disabled by --insecure-no-auth");

  // The DB: created with --init-db, else opened when first needed (the setup wizard may create it).
  let store: AdminStore | null = null;
  if (o.initDb) {
    const oldMask = process.umask(0o027);
    try {
      store = (await initStore(dbPath, { busyTimeoutMs: busyMs, postgres })).store;
    } finally {
      process.umask(oldMask);
    }
  }
  const audit = auditTo(log);
  let svc: Promise<AdminService> | null = store ? Promise.resolve(new AdminService(store, audit)) : null;
  const ctx: ApiContext = {
    configPath: o.config,
    dbPath,
    // Opened at the first request that needs it (the setup wizard may create the DB first), once.
    service: () => {
      if (svc !== null) return svc;
      const opening = openAdmin(dbPath, { busyTimeoutMs: busyMs, postgres }).then((st) => new AdminService(st, audit));
      svc = opening;
      opening.catch(() => {
        if (svc === opening) svc = null; // missing or unusable: tried again at the next request
      });
      return opening;
    },
    daemonReadyUrl: o.daemonReadyUrl ?? (config?.metrics.listen ? `http://${config.metrics.listen.host}:${config.metrics.listen.port}/ready` : null),
    oidcEnabled: oidc !== null,
    audit: (actor, action, target) => audit({ who: actor.name, via: actor.via, from: actor.from, action, target }),
  };

  const sessions = new Sessions(positive("--session-idle-minutes", o.sessionIdleMinutes) * 60_000, positive("--session-max-hours", o.sessionMaxHours) * 3_600_000);
  const server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, createHandler({
    token, insecureNoAuth: o.insecureNoAuth === true, oidc, sessions,
    secureCookies: (oidc?.settings.publicUrl ?? o.publicUrl ?? "").startsWith("https://"),
    behindProxy: listen.kind === "unix", ctx, log,
  }));

  let address: string;
  if (listen.kind === "unix") {
    if (existsSync(listen.path) && lstatSync(listen.path).isSocket()) unlinkSync(listen.path);
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen(listen.path, () => resolve()));
    const mode = parseInt(o.socketMode, 8);
    if (!/^0?[0-7]{3}$/.test(o.socketMode) || mode & 0o007) throw new StartError(`--socket-mode: an octal mode without access for others, like 0660, got ${o.socketMode}`);
    chmodSync(listen.path, mode);
    address = `unix:${listen.path}`;
  } else {
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen(listen.port, listen.host, () => resolve()));
    const a = server.address();
    const port = typeof a === "object" && a !== null ? a.port : listen.port;
    address = `http://${listen.host.includes(":") ? `[${listen.host}]` : listen.host}:${port}`;
  }
  log.info({ address, db: redact(dbPath), config: o.config, auth: [token ? "token" : null, oidc ? "oidc" : null].filter(Boolean) }, "mailcloak admin listening");

  return {
    server,
    address,
    stop: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      if (svc !== null) await svc.then((s) => s.store.close(), () => undefined);
      log.flush?.();
    },
  };
}

function program(): Command {
  return new Command(PROG)
    .description("HTTP admin API, web UI and self-service for mailcloak")
    .option("--db <path>", `SQLite database path (default: sqlite.path of the config, else ${DEFAULTS.sqlitePath})`)
    .option("--config <path>", "mailcloak config path", DEFAULT_CONFIG_PATH)
    .option("--listen <addr>", "HOST:PORT, or unix:PATH for a reverse proxy", "127.0.0.1:8080")
    .option("--socket-mode <mode>", "mode of the Unix socket", "0660")
    .option("--token <token>", "bearer token required for API requests (prefer --token-file or MAILCLOAK_ADMIN_TOKEN)")
    .option("--token-file <path>", "read the bearer token from this file")
    .option("--init-db", "create or migrate the SQLite database before serving")
    .option("--insecure-no-auth", "serve the admin API without authentication (loopback only, for local development)")
    .option("--public-url <url>", "the URL browsers use (sign-in redirect; https gives Secure cookies)")
    .option("--oidc-client-id <id>", "enable sign-in with this OpenID Connect client of the realm")
    .option("--oidc-issuer <url>", "the realm's issuer URL (default: from idp.keycloak of the config)")
    .option("--oidc-client-secret-file <path>", "the client's secret (or MAILCLOAK_ADMIN_OIDC_CLIENT_SECRET; none for a public client)")
    .option("--admin-role <role>", "realm role whose members are admins (default: mailcloak-admin, unless --admin-group)")
    .option("--admin-group <group>", "group whose members are admins")
    .option("--session-idle-minutes <n>", "sign out after this long without a request", "30")
    .option("--session-max-hours <n>", "sign out this long after signing in", "8")
    .option("--daemon-ready-url <url>", "the daemon's /ready (default: from metrics.listen of the config)")
    .option("--allow-root", "run even as root")
    .option("--log-level <level>", "trace, debug, info, warn, error", "info")
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(`${PROG}: ${str.replace(/^error: /, "").trim()}\n`) });
}

export async function main(argv: readonly string[]): Promise<void> {
  const cmd = program();
  try {
    cmd.parse([...argv]);
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
    throw err;
  }
  let running: RunningAdmin;
  try {
    running = await startAdmin(cmd.opts<AdminOptions>());
  } catch (err) {
    const known = err instanceof StartError || err instanceof ConfigError || (err as NodeJS.ErrnoException).code !== undefined || err instanceof Error;
    process.stderr.write(`${PROG}: ${known ? (err as Error).message : String(err)}\n`);
    process.exit(err instanceof StartError ? 2 : 1);
  }
  const stop = (): void => {
    void running.stop().then(() => process.exit(0));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
