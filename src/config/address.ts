// Listen addresses as the config writes them (sockets.*, metrics.listen):
// parsed into values and written back. No I/O.

import type { ListenAddress } from "./types.js";

/**
 * "inet:HOST:PORT", "HOST:PORT", "unix:PATH", or a path. A path may be
 * relative (to the daemon's working directory), as in the Go release; a
 * text with a colon that is not HOST:PORT is refused rather than taken for
 * a file name.
 */
export function parseListenAddress(t0: string): ListenAddress | null {
  const t = t0.trim();
  if (t === "") return null;
  if (t.startsWith("inet:")) {
    const hp = parseHostPort(t.slice(5));
    return hp ? { kind: "tcp", ...hp } : null;
  }
  if (t.startsWith("unix:")) return t.length > 5 ? { kind: "unix", path: t.slice(5) } : null;
  if (t.includes("/")) return { kind: "unix", path: t };
  const hp = parseHostPort(t);
  if (hp) return { kind: "tcp", ...hp };
  return t.includes(":") ? null : { kind: "unix", path: t };
}

export function parseHostPort(t: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(t.trim());
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: (m[1] ?? m[2])!, port };
}

/** An address as it is written in the config (and shown by check-config and the logs). */
export function describeAddress(a: ListenAddress): string {
  return a.kind === "unix" ? a.path : `inet:${describeHostPort(a)}`;
}

/** A HOST:PORT as written, IPv6 in brackets. */
export function describeHostPort(a: { readonly host: string; readonly port: number }): string {
  return `${a.host.includes(":") ? `[${a.host}]` : a.host}:${a.port}`;
}
