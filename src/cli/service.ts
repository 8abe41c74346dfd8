// What every mailcloakctl command group that changes the database shares:
// the resolved settings, the local account for the audit line, and the admin
// service over the open store (rules live in the service, shared with
// mailcloak-admin; the command files only parse arguments and print).

import type { Command } from "commander";
import { userInfo } from "node:os";
import { AdminService, type Actor } from "../admin/service.js";
import { asCliError } from "./exit.js";
import type { Io } from "./mailcloakctl.js";
import { openAdminStore, resolveSettings, type GlobalOptions, type Settings } from "./settings.js";

export function settingsOf(cmd: Command, io: Io): Settings {
  return resolveSettings(cmd.optsWithGlobals<GlobalOptions>(), io.err);
}

/** The local account running the command (for the service's audit). */
export function cliActor(): Actor {
  let name = "unknown";
  try {
    name = userInfo().username;
  } catch {
    // no passwd entry for this uid
  }
  return { name, via: "cli", from: null };
}

/**
 * Run `fn` with the admin service over the open DB (exit 3 when it cannot be
 * opened), closing it afterwards; every failure leaves as a CliError.
 */
export async function withService(cmd: Command, io: Io, fn: (svc: AdminService, actor: Actor, s: Settings) => void | Promise<void>): Promise<void> {
  const s = settingsOf(cmd, io);
  let svc: AdminService;
  try {
    svc = new AdminService(await openAdminStore(s));
  } catch (err) {
    throw asCliError(err);
  }
  try {
    await fn(svc, cliActor(), s);
  } catch (err) {
    throw asCliError(err);
  } finally {
    await svc.store.close();
  }
}
