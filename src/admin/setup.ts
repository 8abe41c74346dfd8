// The setup wizard's back end (as the Go version's /api/setup/*): report the
// state of the config file and the DB, validate a config given as JSON (the
// YAML layout as a JSON object), and apply it: test the identity source,
// create or migrate the DB, write the config (mode 0640, never over an
// existing file without `overwrite`). Validation is the daemon's own loader,
// so the wizard accepts exactly what the daemon will.

import { accessSync, constants as fs, existsSync, linkSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import { stringify } from "yaml";
import { loadConfig, parseConfig } from "../config/load.js";
import { ConfigError } from "../config/reader.js";
import type { Config } from "../config/types.js";
import { initStore, inspectStore } from "../store/open.js";
import { HttpError } from "./http-kit.js";
import { testIdentityProvider, type IdpTestResult } from "./idp-check.js";

export const CONFIG_MODE = 0o640;

export interface SetupStatus {
  config_path: string;
  config_exists: boolean;
  config_valid: boolean;
  config_writable: boolean;
  config_error?: string;
  config_writable_error?: string;
  db_path: string;
  db_exists: boolean;
  db_initialized: boolean;
  db_writable: boolean;
  db_error?: string;
  db_writable_error?: string;
}

/** Drop what the Go version treats as unset ("" and null), and mappings left empty. */
export function pruneUnset(value: unknown): unknown {
  if (value === null || value === "") return undefined;
  if (typeof value !== "object" || Array.isArray(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const p = pruneUnset(v);
    if (p !== undefined) out[k] = p;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The config object as YAML, with sqlite.path filled in (the admin server's DB). */
export function configYaml(raw: Record<string, unknown>, dbPath: string): string {
  const tree = (pruneUnset(raw) ?? {}) as Record<string, unknown>;
  const sqlite = (tree.sqlite ?? {}) as Record<string, unknown>;
  if (sqlite.path === undefined) tree.sqlite = { ...sqlite, path: dbPath };
  return stringify(tree);
}

/**
 * Validate as the daemon would; throws ConfigError (a 400) with the loader's
 * one line. The daemon starts on a config with warnings (as the Go release
 * does: unknown keys, values it reads its own way); the wizard writes new
 * files, so it refuses them instead of writing a typo.
 */
export function validateConfig(raw: Record<string, unknown>, configPath: string, dbPath: string): { yaml: string; config: Config } {
  const yaml = configYaml(raw, dbPath);
  const config = parseConfig(yaml, configPath, process.env);
  const first = config.warnings[0];
  if (first !== undefined) throw new ConfigError(first);
  return { yaml, config };
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Can `path` be written, or created (its nearest existing directory writable)? */
function writableProblem(path: string): string | null {
  try {
    if (existsSync(path)) {
      if (statSync(path).isDirectory()) return `${path} is a directory`;
      accessSync(path, fs.W_OK);
      return null;
    }
    let dir = dirname(path);
    while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
    if (!statSync(dir).isDirectory()) return `${dir} is not a directory`;
    accessSync(dir, fs.W_OK | fs.X_OK);
    return null;
  } catch (err) {
    return errText(err);
  }
}

export async function setupStatus(configPath: string, dbPath: string): Promise<SetupStatus> {
  const s: SetupStatus = {
    config_path: configPath, config_exists: false, config_valid: false, config_writable: false,
    db_path: dbPath, db_exists: false, db_initialized: false, db_writable: false,
  };
  if (existsSync(configPath)) {
    s.config_exists = true;
    try {
      loadConfig(configPath);
      s.config_valid = true;
    } catch (err) {
      s.config_error = errText(err);
    }
  }
  const cw = writableProblem(configPath);
  if (cw === null) s.config_writable = true;
  else s.config_writable_error = cw;

  if (!existsSync(dbPath)) {
    const dw = writableProblem(dbPath);
    if (dw === null) s.db_writable = true;
    else s.db_writable_error = dw;
    return s;
  }
  s.db_exists = true;
  try {
    const look = await inspectStore(dbPath, { busyTimeoutMs: 1000 });
    s.db_initialized = look.schemaProblem === null;
    if (look.schemaProblem !== null) s.db_error = look.schemaProblem;
    if (look.writable === true) s.db_writable = true;
    else s.db_writable_error = look.writable;
  } catch (err) {
    s.db_error = errText(err);
  }
  return s;
}

/**
 * Write `text` at `path` with mode 0640, whole or not at all: a temp file in
 * the same directory, then link (refuses an existing file) or rename (overwrite).
 */
export function writeConfigFile(path: string, text: string, overwrite: boolean): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  if (!overwrite && existsSync(path)) throw new HttpError(400, `config already exists at ${path} (set overwrite to replace it)`);
  const tmp = join(dir, `.${randomBytes(6).toString("hex")}.mailcloak-config.tmp`);
  writeFileSync(tmp, text, { mode: CONFIG_MODE, flag: "wx" });
  try {
    if (overwrite) renameSync(tmp, path);
    else {
      try {
        linkSync(tmp, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new HttpError(400, `config already exists at ${path} (set overwrite to replace it)`);
        throw err;
      }
    }
  } finally {
    rmSync(tmp, { force: true });
  }
}

export interface ApplyRequest {
  readonly config: Record<string, unknown>;
  readonly overwrite: boolean;
  readonly initDb: boolean;
  readonly testIdp: boolean;
}

export interface ApplyResult {
  config_path: string;
  db_path: string;
  idp_test?: IdpTestResult;
}

/** Validate, test, initialise, then write: a failure before the write leaves the config file as it was. */
export async function applySetup(configPath: string, dbPath: string, req: ApplyRequest): Promise<ApplyResult> {
  const sqlite = req.config.sqlite as Record<string, unknown> | undefined;
  if (typeof sqlite?.path === "string" && sqlite.path !== "" && sqlite.path !== dbPath) {
    throw new HttpError(400, "config.sqlite.path must match the admin server db path");
  }
  const { yaml, config } = validateConfig(req.config, configPath, dbPath);
  if (!req.overwrite && existsSync(configPath)) throw new HttpError(400, `config already exists at ${configPath} (set overwrite to replace it)`);
  const result: ApplyResult = { config_path: configPath, db_path: dbPath };
  if (req.testIdp) result.idp_test = await testIdentityProvider(config);
  if (req.initDb) {
    const oldMask = process.umask(0o027);
    try {
      await (await initStore(dbPath, { busyTimeoutMs: config.sqlite.busyTimeoutMs })).store.close();
    } finally {
      process.umask(oldMask);
    }
  }
  writeConfigFile(configPath, yaml, req.overwrite);
  return result;
}
