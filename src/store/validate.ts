// The names the store keeps, checked and canonicalised the same way by
// every backend and by the admin service before slow work (hashing).
// Each refusal is StoreError "invalid" with a line that says what to give.

import { isCatchAll, isValidAddress, isValidDomain, normalize } from "../rules/address.js";
import type { LimitName, LimitOverride } from "../quota/limits.js";
import { StoreError } from "./errors.js";

/** An app id is an SMTP login name. */
export function validAppId(raw: string): string {
  const id = raw.trim();
  if (id === "" || /[\s,]/.test(id) || id.length > 255) {
    throw new StoreError("invalid", `invalid app id: ${JSON.stringify(raw)} (no spaces or commas; it is the SMTP login name)`);
  }
  return id;
}

/** SMTP logins are compared lower-cased (the daemon folds them the same way). */
export function normalizeLogin(raw: string): string {
  const login = raw.trim().toLowerCase();
  if (login === "" || /[\s\x00-\x1f]/.test(login) || login.length > 255) {
    throw new StoreError("invalid", `invalid login: ${JSON.stringify(raw)} (the SMTP login name, no spaces)`);
  }
  return login;
}

/** A sender address as stored (a delegation's, an app's): canonical, plain (no catch-all, no extension check). */
export function senderAddress(raw: string): string {
  const addr = normalize(raw);
  if (!isValidAddress(addr)) throw new StoreError("invalid", `invalid sender address: ${JSON.stringify(raw)} (expected local@domain)`);
  return addr;
}

/** A mail domain as stored. */
export function validDomain(raw: string): string {
  const d = normalize(raw);
  if (!isValidDomain(d)) throw new StoreError("invalid", `invalid domain name: ${JSON.stringify(raw)}`);
  return d;
}

/** A new alias: the address (or @domain catch-all), its owner and the domain it lives in. */
export function aliasArgs(rawAlias: string, rawUser: string): { alias: string; user: string; domain: string } {
  const alias = normalize(rawAlias);
  const user = rawUser.trim().toLowerCase();
  if (!isValidAddress(alias) && !isCatchAll(alias)) {
    throw new StoreError("invalid", `invalid alias address: ${JSON.stringify(rawAlias)} (expected local@domain, or @domain for a catch-all)`);
  }
  if (user === "" || /[\s,]/.test(user)) throw new StoreError("invalid", `invalid username: ${JSON.stringify(rawUser)}`);
  return { alias, user, domain: alias.slice(alias.lastIndexOf("@") + 1) };
}

/** A new app: its id and the (already hashed) secret. */
export function appArgs(rawId: string, secretHash: string): string {
  const id = validAppId(rawId);
  if (secretHash.trim() === "") throw new StoreError("invalid", "secret hash is empty");
  return id;
}

/** The refusal for an app id that is not there. */
export function unknownApp(id: string): StoreError {
  return new StoreError("not-found", `no such app: ${id} (see: mailcloakctl apps list)`);
}

/**
 * A login's limits after a quota set: each value given replaces the old one
 * (null clears it), the rest stay; null when none is left (the row goes).
 */
export function mergeQuotaLimits(old: LimitOverride, values: Partial<Record<LimitName, number | null>>): LimitOverride | null {
  const next: LimitOverride = {
    per_hour: values.per_hour !== undefined ? values.per_hour : old.per_hour,
    per_day: values.per_day !== undefined ? values.per_day : old.per_day,
    recipients_per_hour: values.recipients_per_hour !== undefined ? values.recipients_per_hour : old.recipients_per_hour,
  };
  return next.per_hour === null && next.per_day === null && next.recipients_per_hour === null ? null : next;
}
