// Address helpers shared by the rules, the store and the CLI. Pure functions.

/** Trim and lower-case: the one canonical form used for lookups and storage. */
export function normalize(addr: string): string {
  return addr.trim().toLowerCase();
}

export interface SplitAddress {
  readonly local: string;
  readonly domain: string;
}

/** Split at the last "@" (a quoted local part may contain "@"). */
export function split(addr: string): SplitAddress | null {
  const at = addr.lastIndexOf("@");
  if (at <= 0 || at === addr.length - 1) return null;
  return { local: addr.slice(0, at), domain: addr.slice(at + 1) };
}

export function domainOf(addr: string): string | null {
  const at = addr.lastIndexOf("@");
  return at < 0 || at === addr.length - 1 ? null : addr.slice(at + 1);
}

const DOMAIN_RE = /^(?=.{1,253}$)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
const LOCAL_RE = /^[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$/;

/** A DNS-style domain name, lower-case ASCII (IDNs in their xn-- form). */
export function isValidDomain(domain: string): boolean {
  return DOMAIN_RE.test(domain);
}

/** A plain (unquoted) address in canonical form, as an admin would store it. */
export function isValidAddress(addr: string): boolean {
  const s = split(addr);
  return s !== null && LOCAL_RE.test(s.local) && !s.local.startsWith(".") && !s.local.endsWith(".") &&
    !s.local.includes("..") && isValidDomain(s.domain);
}

/** A catch-all key: "@domain". */
export function isCatchAll(addr: string): boolean {
  return addr.startsWith("@") && isValidDomain(addr.slice(1));
}

/** Local parts Postfix never splits (split_addr() in Postfix's source). */
const UNSPLIT = new Set(["postmaster", "mailer-daemon", "double-bounce"]);

export interface Extension {
  /** The address without its extension. */
  readonly base: string;
  /** The delimiter and extension, e.g. "+tag"; "" when there is none. */
  readonly ext: string;
}

/**
 * Strip an address extension as Postfix does: the first occurrence, in the
 * local part, of any character of `delimiters`. Returns null when the
 * address has no extension to strip.
 */
export function stripExtension(addr: string, delimiters: string): Extension | null {
  if (delimiters === "" || !hasDelimiter(addr, delimiters)) return null;
  const s = split(addr);
  if (!s || UNSPLIT.has(s.local)) return null;
  // owner_request_special (default yes): owner-list and list-request keep
  // their "-" when "-" is a delimiter.
  if (delimiters.includes("-") && (s.local.startsWith("owner-") || s.local.endsWith("-request"))) return null;
  let cut = -1;
  for (let i = 0; i < s.local.length; i++) {
    if (delimiters.includes(s.local[i]!)) {
      cut = i;
      break;
    }
  }
  if (cut <= 0) return null; // "+foo@d" keeps its local part whole
  return { base: `${s.local.slice(0, cut)}@${s.domain}`, ext: s.local.slice(cut) };
}

/**
 * Some delimiter occurs before the last "@": without one there is nothing
 * to strip. The hot path's usual address has none, and this answers it
 * without splitting the address (stripExtension runs twice per policy request).
 */
function hasDelimiter(addr: string, delimiters: string): boolean {
  const at = addr.lastIndexOf("@");
  for (let i = 0; i < delimiters.length; i++) {
    const d = addr.indexOf(delimiters[i]!);
    if (d >= 0 && d < at) return true;
  }
  return false;
}

/** Re-attach an extension to the local part of `addr`. */
export function withExtension(addr: string, ext: string): string {
  if (ext === "") return addr;
  const s = split(addr);
  return s ? `${s.local}${ext}@${s.domain}` : addr;
}
