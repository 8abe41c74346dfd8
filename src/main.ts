// Daemon entry: argv → config → startDaemon(); privileges, signals, pid
// file. The only place that calls process.exit. Importing it runs nothing:
// bin/mailcloak calls main().

import { readFileSync, unlinkSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { Command, CommanderError } from "commander";
import { ConfigError, DEFAULT_CONFIG_PATH, loadConfig } from "./config/load.js";
import { effectiveSettings } from "./config/effective.js";
import { DEFAULTS, type Config } from "./config/types.js";
import { createLogger, exitAfterFlush, onFatal } from "./log.js";
import { startDaemon, type Daemon } from "./start.js";
import { heapFit } from "./system/heap.js";
import { testIdp } from "./idp-check/run.js";
import { lookupUser } from "./system/accounts.js";
import type { Metrics } from "./metrics.js";
import { StoreError } from "./store/errors.js";

export const VERSION: string = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

function fail(message: string, code: number): never {
  process.stderr.write(`mailcloak: ${message}\n`);
  process.exit(code);
}

function load(path: string): Config {
  try {
    return loadConfig(path);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, 2);
    throw err;
  }
}

function checkConfig(path: string): void {
  const cfg = load(path);
  // Warnings do not fail the check: the service runs it before every start.
  for (const w of cfg.warnings) process.stderr.write(`mailcloak: warning: ${w}\n`);
  process.stdout.write(`# ${path}: valid\n` + effectiveSettings(cfg));
}

type Privileges =
  | { readonly kind: "keep" }
  | { readonly kind: "drop"; readonly to: { uid: number; gid: number; name: string } }
  | { readonly kind: "root"; readonly why: string };

/**
 * What to run as, decided before anything is bound. As the Go release: an
 * unset daemon.user means "mailcloak", and daemon.user: root runs as root
 * (here with one warning). daemon.allow_root: true with daemon.user unset
 * stays root instead of looking for "mailcloak". Not started as root:
 * nothing changes.
 */
function privileges(cfg: Config): Privileges {
  if (process.getuid?.() !== 0) return { kind: "keep" };
  const name = cfg.daemon.user ?? (cfg.daemon.allowRoot ? null : DEFAULTS.daemonUser);
  if (name === null) return { kind: "root", why: "daemon.allow_root is true and daemon.user is unset" };
  const u = lookupUser(name);
  if (!u) {
    if (cfg.daemon.user === null) {
      fail(`${cfg.file}: daemon.user: not set, and there is no user ${JSON.stringify(DEFAULTS.daemonUser)} (the Go mailcloak's default); create that user, set daemon.user, or set daemon.user: root to run as root`, 2);
    }
    fail(`${cfg.file}: daemon.user: no such user ${JSON.stringify(name)}`, 2);
  }
  if (u.uid === 0) return { kind: "root", why: `daemon.user is ${JSON.stringify(name)}` };
  return { kind: "drop", to: u };
}

async function testIdpCommand(path: string, user: string | undefined): Promise<void> {
  const cfg = load(path);
  const code = await testIdp(cfg, (line) => process.stdout.write(`${line}\n`), user !== undefined ? { user } : {});
  // Exit now: a server that never answered may still hold a socket open.
  process.exit(code);
}

async function run(path: string): Promise<void> {
  const cfg = load(path);
  const log = createLogger(cfg.log.level);
  onFatal(log);
  for (const w of cfg.warnings) log.warn(w);
  const priv = privileges(cfg);

  // prom-client is loaded only when metrics are on (it adds ~10 MB of RSS).
  const metricsModule = cfg.metrics.listen ? await import("./metrics.js") : null;
  const metrics: Metrics | undefined = metricsModule ? new metricsModule.Metrics() : undefined;
  let daemon: Daemon;
  try {
    daemon = await startDaemon(cfg, log, metrics, { fileOwner: priv.kind === "drop" ? priv.to : null });
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    log.flush?.();
    fail(err instanceof StoreError || err instanceof Error ? msg : String(err), 1);
  }
  let httpServer: Server | null = null;
  if (metricsModule && metrics && cfg.metrics.listen) {
    try {
      httpServer = await metricsModule.serveMetrics(metrics, cfg.metrics.listen.host, cfg.metrics.listen.port, async () => {
        if (daemon.store.problem) return daemon.store.problem;
        return daemon.cache.source.health?.(cfg.cache.staleSeconds * 1000) ?? null;
      });
    } catch (err) {
      await daemon.stop();
      fail(`metrics.listen: cannot listen on ${cfg.metrics.listen.host}:${cfg.metrics.listen.port}: ${(err as Error).message}`, 1);
    }
  }

  if (cfg.daemon.pidFile) {
    try {
      writeFileSync(cfg.daemon.pidFile, `${process.pid}\n`, { mode: 0o644 });
    } catch (err) {
      log.warn({ file: cfg.daemon.pidFile, err: (err as Error).message }, "cannot write pid file");
    }
  }

  if (priv.kind === "drop") {
    // Sockets are bound and the DB is open: give up root for good. The
    // user's supplementary groups are kept, as the Go release sets them
    // (e.g. a group that may read the database's directory).
    const to = priv.to;
    (process as NodeJS.Process & { initgroups?: (user: string, extraGroup: number) => void }).initgroups?.(to.name, to.gid);
    process.setgid?.(to.gid);
    process.setuid?.(to.uid);
    log.info({ user: to.name, uid: to.uid, gid: to.gid, groups: process.getgroups?.() }, "dropped privileges");
  } else if (priv.kind === "root") {
    log.warn(`running as root (${priv.why}); set daemon.user to an unprivileged account unless that is intended`);
  }

  const heap = heapFit(cfg.cache.maxEntries);
  if (!heap.fits) {
    log.warn({ maxEntries: cfg.cache.maxEntries, neededMb: heap.neededMb, heapLimitMb: heap.limitMb },
      `cache.max_entries ${cfg.cache.maxEntries} needs about ${heap.neededMb} MB of heap when full but the V8 heap limit is ${heap.limitMb} MB: ` +
      `raise --max-old-space-size in NODE_OPTIONS (service file) or lower cache.max_entries`);
  }

  let current = cfg;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping: finishing in-flight requests");
    httpServer?.close();
    daemon.stop().then(() => {
      if (cfg.daemon.pidFile) {
        try {
          unlinkSync(cfg.daemon.pidFile);
        } catch {
          /* not ours any more, or gone */
        }
      }
      log.info("stopped");
      exitAfterFlush(log, 0);
    }, (err: unknown) => {
      log.error({ err: String(err) }, "error while stopping");
      exitAfterFlush(log, 1);
    });
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGUSR1", () => {
    daemon.flush();
    log.info("cache flushed (SIGUSR1)");
  });
  process.on("SIGHUP", () => {
    let next: Config;
    try {
      next = loadConfig(current.file);
    } catch (err) {
      log.error({ err: err instanceof Error ? err.message : String(err) }, "reload refused: the new config is invalid; keeping the running one");
      return;
    }
    for (const w of next.warnings) log.warn(w);
    daemon.reload(next).then((changed) => {
      current = next;
      log.info({ changed }, "config reloaded (SIGHUP)");
    }, (err: unknown) => log.error({ err: String(err) }, "reload failed; keeping the running config"));
  });

  // Last: whoever waits for this line (a service manager, a test) may signal
  // at once, so every handler above must be in place before it is written.
  log.info({
    version: VERSION, config: cfg.file, idp: cfg.idp.provider, db: cfg.sqlite.path,
    policy: daemon.listeners.policy.description, socketmap: daemon.listeners.socketmap.description,
    failureMode: cfg.policy.failureMode,
  }, "mailcloak started");
}

export function buildProgram(): Command {
  const program = new Command("mailcloak")
    .description("Postfix policy and socketmap daemon backed by Keycloak or Authentik")
    .version(VERSION, "-V, --version")
    .option("-c, --config <path>", "config file", undefined)
    .argument("[config]", `config file (default ${DEFAULT_CONFIG_PATH})`)
    .action(async (positional: string | undefined, opts: { config?: string }) => {
      await run(opts.config ?? positional ?? DEFAULT_CONFIG_PATH);
    });
  program
    .command("check-config")
    .description("validate a config file and print the effective settings (secrets redacted)")
    .argument("[config]", "config file")
    .action((p: string | undefined) => checkConfig(p ?? program.opts<{ config?: string }>().config ?? DEFAULT_CONFIG_PATH));
  program
    .command("test-idp")
    .description("check the identity source as the daemon uses it: token, user queries, permissions, the send-allowed attribute; one line per check, exit 0 only if all pass")
    .argument("[config]", "config file")
    .option("-u, --user <email-or-username>", "also look this user up with the daemon's own code and show what it finds")
    .action(async (p: string | undefined, opts: { user?: string }) =>
      testIdpCommand(p ?? program.opts<{ config?: string }>().config ?? DEFAULT_CONFIG_PATH, opts.user));
  program.exitOverride();
  program.configureOutput({ writeErr: (s) => process.stderr.write(s.startsWith("error:") ? `mailcloak: ${s.slice(7)}` : s) });
  return program;
}

export async function main(argv: readonly string[] = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync([...argv]);
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
    fail(err instanceof Error ? err.message : String(err), 1);
  }
}
