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

/** "NAME KEY", split at the first space. null for a payload that is not a request. */
export function parseSocketmapRequest(payload: Buffer): SocketmapRequest | null {
  const text = utf8.decode(payload);
  const sp = text.indexOf(" ");
  if (sp <= 0 || sp === text.length - 1) return null;
  return { map: text.slice(0, sp), key: text.slice(sp + 1) };
}

/** Reason texts are logged by Postfix: printable, one line, bounded. */
function clean(text: string): string {
  // eslint-disable-next-line no-control-regex
  const t = text.replace(/[\x00-\x1f\x7f]/g, "?").trim();
  return (t === "" ? "error" : t).slice(0, 200);
}

export function formatSocketmapReply(r: SocketmapReply): string {
  switch (r.status) {
    case "OK":
      // An empty OK value is a configuration error for Postfix: never send one.
      return r.data === "" ? "NOTFOUND " : `OK ${r.data}`;
    case "NOTFOUND":
      return "NOTFOUND ";
    default:
      return `${r.status} ${clean(r.reason)}`;
  }
}

export const NOTFOUND: SocketmapReply = Object.freeze({ status: "NOTFOUND" });
export const ok = (data: string): SocketmapReply => ({ status: "OK", data });
export const temp = (reason: string): SocketmapReply => ({ status: "TEMP", reason });
export const perm = (reason: string): SocketmapReply => ({ status: "PERM", reason });
