// Netstring framing (socketmap_table(5)): "<len>:<payload>," with len the
// decimal byte count. Incremental decoder with a payload cap; no I/O here.

export type NetstringError = "FORMAT" | "SIZE";

export interface DecodeResult {
  readonly frames: Buffer[];
  /** Set when the stream is broken; the decoder then stays dead. */
  readonly error: NetstringError | null;
}

const COLON = 0x3a;
const COMMA = 0x2c;
/** Nothing left over: one shared empty buffer (a Buffer.alloc(0) per push was 7 % of a socketmap hit in process); never written to. */
const EMPTY = Buffer.alloc(0);
/** Length prefixes longer than this cannot be valid under any sane cap. */
const MAX_DIGITS = 10;

export class NetstringDecoder {
  readonly #max: number;
  #buf: Buffer = EMPTY;
  #error: NetstringError | null = null;

  constructor(maxPayload: number) {
    this.#max = maxPayload;
  }

  /** Bytes received but not yet part of a complete frame. */
  get pending(): number {
    return this.#buf.length;
  }

  push(chunk: Buffer): DecodeResult {
    if (this.#error) return { frames: [], error: this.#error };
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const frames: Buffer[] = [];
    let pos = 0;
    const buf = this.#buf;
    while (pos < buf.length) {
      // Length prefix: ASCII digits up to ":".
      let len = 0;
      let i = pos;
      for (; i < buf.length && i - pos <= MAX_DIGITS; i++) {
        const c = buf[i]!;
        if (c === COLON) break;
        if (c < 0x30 || c > 0x39) return this.#fail("FORMAT", frames);
        len = len * 10 + (c - 0x30);
      }
      if (i - pos > MAX_DIGITS) return this.#fail("FORMAT", frames);
      if (i === buf.length) break; // prefix incomplete
      if (i === pos) return this.#fail("FORMAT", frames); // ":" without digits
      if (len > this.#max) return this.#fail("SIZE", frames);
      const start = i + 1;
      const end = start + len;
      if (end >= buf.length) break; // payload or comma not here yet
      if (buf[end] !== COMMA) return this.#fail("FORMAT", frames);
      frames.push(buf.subarray(start, end));
      pos = end + 1;
    }
    this.#buf = pos === buf.length ? EMPTY : buf.subarray(pos);
    return { frames, error: null };
  }

  #fail(error: NetstringError, frames: Buffer[]): DecodeResult {
    this.#error = error;
    this.#buf = EMPTY;
    return { frames, error };
  }
}

/** The netstring as text, for a socket write that encodes it once (UTF-8). */
export function netstring(payload: string): string {
  return `${Buffer.byteLength(payload, "utf8")}:${payload},`;
}

export function encodeNetstring(payload: string): Buffer {
  return Buffer.from(netstring(payload), "utf8");
}
