// `mailcloakctl init`: create the DB, or migrate an older one in place, and
// give it to the daemon's user so the unprivileged daemon can use it.

import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { DEFAULTS } from "../config/types.js";
import { initStore } from "../store/open.js";
import { isPostgresUrl } from "../config/store.js";
import type { Account } from "../system/accounts.js";
import { lookupUser } from "../system/accounts.js";
import { CliError, EXIT_CODES } from "./exit.js";
import type { Settings } from "./settings.js";

const DIR_MODE = 0o750;
const DB_MODE = 0o640;

export interface InitOptions {
  /** --owner, when given. */
  readonly owner: string | undefined;
}

/**
 * The user the DB is given to: --owner, else the config's daemon.user, else
 * (a config without daemon.user or allow_root) the user the daemon then
 * switches to, "mailcloak", when it exists. Checked before anything is created.
 */
function resolveOwner(s: Settings, opts: InitOptions): Account | null {
  const implied = s.config && !s.config.daemon.allowRoot && lookupUser(DEFAULTS.daemonUser) ? DEFAULTS.daemonUser : null;
  const name = opts.owner ?? s.config?.daemon.user ?? implied;
  if (name === null) return null;
  const from = opts.owner !== undefined ? "--owner" : `daemon.user in ${s.config?.file ?? "the config"}`;
  if (name.trim() === "") throw new CliError(EXIT_CODES.refused, `${from}: the user name is empty; nothing created`);
  const account = lookupUser(name.trim());
  if (account === null) throw new CliError(EXIT_CODES.refused, `${from}: no such user: ${name}; nothing created`);
  return account;
}

/**
 * A directory holding nothing but this DB and its companion files: safe to
 * give to the daemon's user. A shared directory (/tmp, /var/lib) is not.
 */
function isDedicatedDir(dir: string, dbFile: string): boolean {
  const own = new Set([dbFile, `${dbFile}-wal`, `${dbFile}-shm`, `${dbFile}-journal`]);
  return readdirSync(dir).every((name) => own.has(name));
}

/** init on a PostgreSQL URL: db-init.pgsql, nothing on the local disk. */
async function runInitPostgres(s: Settings): Promise<string[]> {
  const r = await initStore(s.dbPath, { busyTimeoutMs: s.busyTimeoutMs, postgres: s.postgres });
  const where = r.store.location;
  await r.store.close();
  if (r.created) return [`created the tables in ${where}`];
  if (r.schemaBefore !== r.schemaAfter) return [`updated ${where}: missing tables, indexes or triggers added`];
  return [`database ${where} is already current (tables, triggers and notifications checked)`];
}

/** Run init; returns the lines to print. */
export async function runInit(s: Settings, opts: InitOptions): Promise<string[]> {
  if (isPostgresUrl(s.dbPath)) return runInitPostgres(s);
  const owner = resolveOwner(s, opts);
  const isRoot = process.getuid?.() === 0;
  const dbPath = resolve(s.dbPath);
  const dir = dirname(dbPath);
  const lines: string[] = [];

  let dirCreated = false;
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: DIR_MODE });
    chmodSync(dir, DIR_MODE); // whatever the umask
    dirCreated = true;
    lines.push(`created directory ${dir} (mode 0750)`);
  }

  const oldMask = process.umask(0o027); // the new file is never world-readable, not even briefly
  let created: boolean;
  let steps: string[];
  let before: number | undefined;
  let after: number;
  try {
    const r = await initStore(dbPath, { busyTimeoutMs: s.busyTimeoutMs });
    created = r.created;
    steps = r.report.steps;
    before = r.schemaBefore;
    after = r.schemaAfter;
    await r.store.close();
  } finally {
    process.umask(oldMask);
  }
  // Modes and ownership are set on a new DB; an existing one keeps what the
  // admin gave it (e.g. group dovecot for Dovecot's passdb sql) unless
  // --owner asks for a change.
  if (created) chmodSync(dbPath, DB_MODE);

  if (created) {
    lines.push(`created database ${dbPath}`);
  } else if (steps.length > 0) {
    lines.push(`migrated database ${dbPath} in place:`);
    for (const step of steps) lines.push(`  ${step}`);
  } else if (before !== undefined && before !== after) {
    lines.push(`updated database ${dbPath}: missing tables, indexes or triggers added`);
  } else {
    lines.push(`database ${dbPath} is already current`);
  }

  if (owner !== null && (created || opts.owner !== undefined)) {
    if (isRoot) {
      const targets = [dbPath, `${dbPath}-wal`, `${dbPath}-shm`].filter((p) => existsSync(p));
      const dirOk = dirCreated || isDedicatedDir(dir, basename(dbPath));
      if (dirOk) targets.unshift(dir);
      for (const p of targets) chownSync(p, owner.uid, owner.gid);
      lines.push(`owner set to ${owner.name} (uid ${owner.uid}, gid ${owner.gid}): ${targets.join(", ")}`);
      if (!dirOk) {
        lines.push(`note: ${dir} holds other files, so its owner was left as is; ${owner.name} must be able to create files in it (SQLite's -wal and -shm)`);
      }
    } else if (opts.owner !== undefined) {
      lines.push(`owner left as is: only root can give the database to ${owner.name}`);
    }
  }
  return lines;
}
