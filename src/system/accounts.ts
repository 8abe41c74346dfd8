// User and group lookup through NSS (getent), since Node has no getpwnam.

import { execFileSync } from "node:child_process";

export interface Account {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

function getent(db: "passwd" | "group", key: string): string[] | null {
  if (key === "" || /[\s:]/.test(key)) return null;
  try {
    const out = execFileSync("getent", [db, key], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const line = out.split("\n")[0];
    return line ? line.split(":") : null;
  } catch {
    return null; // exit 2: no such entry
  }
}

/** A user by name or numeric id, or null. */
export function lookupUser(nameOrId: string): Account | null {
  const f = getent("passwd", nameOrId);
  if (!f || f.length < 4) return null;
  return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]) };
}

/** A group's id by name or numeric id, or null. */
export function lookupGroup(nameOrId: string): number | null {
  const f = getent("group", nameOrId);
  if (!f || f.length < 3) return null;
  return Number(f[2]);
}
