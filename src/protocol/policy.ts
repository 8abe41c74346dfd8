// Postfix policy delegation framing (SMTPD_POLICY_README): "name=value" lines
// ended by an empty line; reply "action=...\n\n". Pure, incremental.

/** The attributes mailcloak reads; every other attribute is ignored. */
export interface PolicyRequest {
  request: string;
  protocol_state: string;
  sender: string;
  recipient: string;
  sasl_username: string;
  sasl_method: string;
  policy_context: string;
  instance: string;
  client_address: string;
  queue_id: string;
  /** Accepted recipients so far: the message's real count at END-OF-MESSAGE (and DATA). */
  recipient_count: string;
}

const KNOWN: readonly (keyof PolicyRequest)[] = [
  "request", "protocol_state", "sender", "recipient", "sasl_username", "sasl_method",
  "policy_context", "instance", "client_address", "queue_id", "recipient_count",
];

/**
 * Known names by length, as bytes: a name is matched in the buffer without
 * making a string of it (Postfix sends ~30 attributes, most of them unread).
 */
const BY_LENGTH: { readonly bytes: Buffer; readonly name: keyof PolicyRequest }[][] = [];
for (const name of KNOWN) (BY_LENGTH[name.length] ??= []).push({ bytes: Buffer.from(name, "latin1"), name });

function knownName(buf: Buffer, start: number, end: number): keyof PolicyRequest | null {
  const candidates = BY_LENGTH[end - start];
  if (candidates === undefined) return null;
  for (const c of candidates) {
    const b = c.bytes;
    let k = 0;
    while (k < b.length && buf[start + k] === b[k]) k++;
    if (k === b.length) return c.name;
  }
  return null;
}

export function emptyPolicyRequest(): PolicyRequest {
  return {
    request: "", protocol_state: "", sender: "", recipient: "", sasl_username: "", sasl_method: "",
    policy_context: "", instance: "", client_address: "", queue_id: "", recipient_count: "",
  };
}

export type PolicyDecodeError = "FORMAT" | "SIZE";

export interface PolicyDecodeResult {
  readonly requests: PolicyRequest[];
  readonly error: PolicyDecodeError | null;
}

const LF = 0x0a;
const CR = 0x0d;
/** Nothing left over: one shared empty buffer, never written to (see netstring.ts). */
const EMPTY = Buffer.alloc(0);
const EQ = 0x3d;

export class PolicyDecoder {
  readonly #max: number;
  /** Unconsumed bytes: at most one partial line. */
  #buf: Buffer = EMPTY;
  /** Scan state of that partial line: bytes already scanned, its "=" and known name, a non-ASCII value byte seen. */
  #scanFrom = 0;
  #eq = -1;
  #name: keyof PolicyRequest | null = null;
  #high = false;
  #current: PolicyRequest | null = null;
  #currentBytes = 0;
  #error: PolicyDecodeError | null = null;

  constructor(maxRequestBytes: number) {
    this.#max = maxRequestBytes;
  }

  /** True while part of a request has been received. */
  get midRequest(): boolean {
    return this.#current !== null || this.#buf.length > 0;
  }

  push(chunk: Buffer): PolicyDecodeResult {
    if (this.#error) return { requests: [], error: this.#error };
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const buf = this.#buf;
    const n = buf.length;
    const out: PolicyRequest[] = [];
    // Byte loops in JS (a Buffer.indexOf per line and per "=" is a native call
    // each, ~60 per request): a line's name is scanned up to "=", its value
    // up to LF, and only a known attribute's value is looked at closely.
    // ASCII values are cut from one latin1 decoding of the buffer, non-ASCII
    // ones decoded as UTF-8. State is kept across pushes for a partial line.
    let text: string | null = null;
    let lineStart = 0;
    let i = this.#scanFrom;
    let eq = this.#eq;
    let name = this.#name;
    let high = this.#high;
    while (i < n) {
      if (eq < 0) {
        let c = buf[i]!;
        while (c !== EQ && c !== LF) {
          if (++i === n) break;
          c = buf[i]!;
        }
        if (i === n) break;
        if (c === EQ) {
          eq = i;
          name = eq === lineStart ? null : knownName(buf, lineStart, eq);
          i++;
          continue;
        }
        // LF before any "=": the empty line that ends a request (CRLF
        // tolerated for hand-typed tests), or a line that is no attribute.
        this.#currentBytes += i + 1 - lineStart;
        if (this.#currentBytes > this.#max) return this.#fail("SIZE", out);
        const end = i > lineStart && buf[i - 1] === CR ? i - 1 : i;
        if (end !== lineStart) return this.#fail("FORMAT", out);
        // A stray empty line before any attribute is ignored.
        if (this.#current) out.push(this.#current);
        this.#current = null;
        this.#currentBytes = 0;
        lineStart = ++i;
        continue;
      }
      if (name === null) {
        while (i < n && buf[i] !== LF) i++;
      } else {
        while (i < n) {
          const c = buf[i]!;
          if (c === LF) break;
          if (c >= 0x80) high = true;
          i++;
        }
      }
      if (i === n) break;
      this.#currentBytes += i + 1 - lineStart;
      if (this.#currentBytes > this.#max) return this.#fail("SIZE", out);
      if (eq === lineStart) return this.#fail("FORMAT", out); // "=value": no name
      const req = (this.#current ??= emptyPolicyRequest());
      if (name !== null) {
        const end = buf[i - 1] === CR && i - 1 > eq ? i - 1 : i;
        req[name] = high ? buf.toString("utf8", eq + 1, end) : (text ??= buf.toString("latin1")).slice(eq + 1, end);
      }
      lineStart = ++i;
      eq = -1;
      name = null;
      high = false;
    }
    const rest = n - lineStart;
    if (this.#currentBytes + rest > this.#max) return this.#fail("SIZE", out);
    this.#buf = rest === 0 ? EMPTY : buf.subarray(lineStart);
    this.#scanFrom = rest;
    this.#eq = eq < 0 ? -1 : eq - lineStart;
    this.#name = name;
    this.#high = high;
    return { requests: out, error: null };
  }

  #fail(error: PolicyDecodeError, requests: PolicyRequest[]): PolicyDecodeResult {
    this.#error = error;
    this.#buf = EMPTY;
    this.#current = null;
    return { requests, error };
  }
}

/** Reply framing. The action text must be one line (Postfix reads up to ~8 KiB). */
export function formatPolicyReply(action: string): string {
  return `action=${action.replace(/[\x00-\x1f\x7f]/g, " ").slice(0, 4000)}\n\n`;
}
