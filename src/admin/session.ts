// Browser sessions for mailcloak-admin: a random id in a signed, HttpOnly,
// SameSite=Lax cookie; the session itself (who, role, CSRF token, ID token
// for logout) stays in memory, so a restart signs everyone out. Each session
// ends after `idleMs` without a request or `maxMs` after sign-in, whichever
// comes first.

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";

export type Role = "admin" | "user";

export interface Session {
  readonly id: string;
  readonly username: string;
  readonly email: string | null;
  readonly role: Role;
  /** Sent back by the UI in X-CSRF-Token on every state-changing request. */
  readonly csrf: string;
  /** For RP-initiated logout (id_token_hint); never sent to the browser. */
  readonly idToken: string | null;
  readonly created: number;
  lastSeen: number;
}

export const SESSION_COOKIE = "mailcloak_admin";
export const LOGIN_COOKIE = "mailcloak_admin_login";

export function parseCookies(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return out;
}

/** Constant-time string comparison (lengths may leak; contents do not). */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class Signer {
  readonly #key: Buffer;

  constructor(key: Buffer = randomBytes(32)) {
    this.#key = key;
  }

  sign(value: string): string {
    return `${value}.${createHmac("sha256", this.#key).update(value).digest("base64url")}`;
  }

  /** The value when the signature is right, else null. */
  verify(signed: string | undefined): string | null {
    if (signed === undefined) return null;
    const dot = signed.lastIndexOf(".");
    if (dot <= 0) return null;
    const value = signed.slice(0, dot);
    return sameSecret(this.sign(value), signed) ? value : null;
  }
}

export interface CookieOptions {
  readonly secure: boolean;
  readonly path?: string;
  readonly maxAgeSeconds?: number;
}

export function cookie(name: string, value: string, o: CookieOptions): string {
  const parts = [`${name}=${value}`, `Path=${o.path ?? "/"}`, "HttpOnly", "SameSite=Lax"];
  if (o.secure) parts.push("Secure");
  if (o.maxAgeSeconds !== undefined) parts.push(`Max-Age=${o.maxAgeSeconds}`);
  return parts.join("; ");
}

export class Sessions {
  readonly #all = new Map<string, Session>();
  readonly signer = new Signer();
  readonly idleMs: number;
  readonly maxMs: number;
  readonly #now: () => number;

  constructor(idleMs: number, maxMs: number, now: () => number = Date.now) {
    this.idleMs = idleMs;
    this.maxMs = maxMs;
    this.#now = now;
  }

  create(who: Omit<Session, "id" | "csrf" | "created" | "lastSeen">): Session {
    this.#sweep();
    const t = this.#now();
    const s: Session = { ...who, id: randomBytes(32).toString("base64url"), csrf: randomBytes(32).toString("base64url"), created: t, lastSeen: t };
    this.#all.set(s.id, s);
    return s;
  }

  /** The live session a request's cookie names (touching it), or null. */
  fromRequest(req: IncomingMessage): Session | null {
    const id = this.signer.verify(parseCookies(req).get(SESSION_COOKIE));
    if (id === null) return null;
    const s = this.#all.get(id);
    if (s === undefined) return null;
    const t = this.#now();
    if (t - s.lastSeen > this.idleMs || t - s.created > this.maxMs) {
      this.#all.delete(id);
      return null;
    }
    s.lastSeen = t;
    return s;
  }

  end(id: string): void {
    this.#all.delete(id);
  }

  cookieFor(s: Session, secure: boolean): string {
    return cookie(SESSION_COOKIE, this.signer.sign(s.id), { secure, maxAgeSeconds: Math.floor(this.maxMs / 1000) });
  }

  #sweep(): void {
    const t = this.#now();
    for (const [id, s] of this.#all) {
      if (t - s.lastSeen > this.idleMs || t - s.created > this.maxMs) this.#all.delete(id);
    }
  }
}
