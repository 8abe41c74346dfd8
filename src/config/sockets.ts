// The sockets: section: the two listeners, their owner and mode.

import { text } from "./fields.js";
import type { Section } from "./reader.js";
import { SOCKETS } from "./schema.js";
import { parseListenAddress } from "./address.js";
import type { Config, ListenAddress } from "./types.js";

const S = SOCKETS.settings;

export function buildSockets(sockets: Section): Config["sockets"] {
  const policy = parseListen(sockets, S.policy_socket.name, S.policy_socket.default);
  const socketmap = parseListen(sockets, S.socketmap_socket.name, S.socketmap_socket.default);
  const mode = parseSocketMode(sockets);
  const ownerUser = sockets.optionalString(S.socket_owner_user.name)?.trim();
  const ownerGroup = sockets.optionalString(S.socket_owner_group.name)?.trim();
  sockets.finish();
  if (sameAddress(policy, socketmap)) {
    throw sockets.error(S.socketmap_socket.key, `must differ from ${S.policy_socket.key}`);
  }
  return { policy, socketmap, ownerUser: ownerUser || null, ownerGroup: ownerGroup || null, mode };
}

/**
 * The socket mode, as the Go release reads it: octal digits (ParseUint base
 * 8), quoted or not. Unquoted 0660 is the number 660 in YAML 1.2 and 0o660
 * is 432, so the text as written is read, not the number; "0o" is accepted
 * too. Only the permission bits apply (Go's os.Chmod drops the rest).
 * World-accessible modes are accepted: Postfix's own private/ sockets are
 * 0666 in a 0700 directory; start.ts warns when the directory is open.
 */
function parseSocketMode(s: Section): number {
  const row = S.socket_mode;
  const raw = s.raw(row.name);
  const t = (raw === undefined || raw === null || raw === "" ? row.default : text(s, row)).trim();
  const digits = /^0o/i.test(t) ? t.slice(2) : t;
  if (!/^[0-7]{1,11}$/.test(digits)) {
    throw s.error(row.key, `must be an octal mode like "0660", got ${JSON.stringify(t)}`);
  }
  const mode = parseInt(digits, 8);
  if (mode > 0o777) s.warn(row.key, `${t}: only the permission bits (${(mode & 0o777).toString(8).padStart(4, "0")}) apply to a socket`);
  return mode & 0o777;
}

function parseListen(s: Section, name: string, fallback: string): ListenAddress {
  const t = s.string(name, fallback);
  const a = parseListenAddress(t);
  if (!a) {
    throw s.error(s.key(name), `must be a socket path, unix:PATH, inet:HOST:PORT or HOST:PORT, got ${JSON.stringify(t)}`);
  }
  return a;
}

function sameAddress(a: ListenAddress, b: ListenAddress): boolean {
  if (a.kind === "unix" && b.kind === "unix") return a.path === b.path;
  if (a.kind === "tcp" && b.kind === "tcp") return a.host === b.host && a.port === b.port;
  return false;
}
