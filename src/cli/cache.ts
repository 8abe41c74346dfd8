// mailcloakctl cache flush: ask the running daemon to empty its cache
// (SIGUSR1), found through its pid file.

import { readFileSync } from "node:fs";
import { CliError, EXIT_CODES } from "./exit.js";

/** The pid in `pidFile`, checked to be a live mailcloak process. */
export function daemonPid(pidFile: string): number {
  let text: string;
  try {
    text = readFileSync(pidFile, "utf8");
  } catch {
    throw new CliError(EXIT_CODES.refused, `cannot read pid file ${pidFile}: is mailcloak running?`);
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new CliError(EXIT_CODES.refused, `pid file ${pidFile} does not hold a pid`);
  // A stale pid file may name an unrelated process: never signal that.
  let cmdline = "";
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    throw new CliError(EXIT_CODES.refused, `mailcloak is not running (stale pid file ${pidFile}, pid ${pid})`);
  }
  if (!cmdline.includes("mailcloak")) {
    throw new CliError(EXIT_CODES.refused, `pid ${pid} from ${pidFile} is not a mailcloak process; not signalling it`);
  }
  return pid;
}

export function flushCache(pidFile: string): number {
  const pid = daemonPid(pidFile);
  try {
    process.kill(pid, "SIGUSR1");
  } catch (err) {
    throw new CliError(EXIT_CODES.refused, `cannot signal mailcloak (pid ${pid}): ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return pid;
}
