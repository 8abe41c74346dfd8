// Socketmap request/reply payloads (socketmap_table(5)). Pure.

export interface SocketmapRequest {
  readonly map: string;
  readonly key: string;
}

export type SocketmapReply =
  | { readonly status: "OK"; readonly data: string }
  | { readonly status: "NOTFOUND" }
  | { readonly status: "TEMP" | "PERM"; readonly reason: string };

// Invalid UTF-8 becomes U+FFFD, so such a key simply matches nothing.
const utf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/**
 * "NAME KEY", split at the first space, after leading whitespace (the Go
 * mailcloak trims the payload; the key's own surrounding whitespace is the
 * handler's to trim). null for a payload that is not a request.
 */
export function parseSocketmapRequest(payload: Buffer): SocketmapRequest | null {
  const text = utf8.decode(payload).trimStart();
  const sp = text.indexOf(" ");
  if (sp <= 0 || sp === text.length - 1) return null;
  return { map: text.slice(0, sp), key: text.slice(sp + 1) };
}

/** A payload of nothing but whitespace: the Go mailcloak answers it NOTFOUND, not as malformed. */
export function isBlankRequest(payload: Buffer): boolean {
  return utf8.decode(payload).trim() === "";
}

/** Reason texts are logged by Postfix: printable, one line, bounded. */
function clean(text: string): string {
  const t = text.replace(/[\x00-\x1f\x7f]/g, "?").trim();
  return (t === "" ? "error" : t).slice(0, 200);
}

/**
 * The reply payload. NOTFOUND and a reasonless TEMP are sent bare, byte for
 * byte as the Go mailcloak sends them; Postfix splits the payload at the
 * first space, so "NOTFOUND" and "NOTFOUND " read the same
 * (dict_sockmap_lookup() in src/util/dict_sockmap.c).
 */
export function formatSocketmapReply(r: SocketmapReply): string {
  switch (r.status) {
    case "OK":
      // An empty OK value is a configuration error for Postfix: never send one.
      return r.data === "" ? "NOTFOUND" : `OK ${r.data}`;
    case "NOTFOUND":
      return "NOTFOUND";
    default:
      return r.reason === "" ? r.status : `${r.status} ${clean(r.reason)}`;
  }
}

export const NOTFOUND: SocketmapReply = Object.freeze({ status: "NOTFOUND" });
export const ok = (data: string): SocketmapReply => ({ status: "OK", data });
/** A temporary failure; `reason` "" sends a bare TEMP (the Go version's form). */
export const temp = (reason: string): SocketmapReply => ({ status: "TEMP", reason });
export const perm = (reason: string): SocketmapReply => ({ status: "PERM", reason });
