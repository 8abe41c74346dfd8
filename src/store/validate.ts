// The names the store keeps, checked and canonicalised the same way by
// every backend and by the admin service before slow work (hashing).
// Each refusal is StoreError "invalid" with a line that says what to give.

import { isValidAddress, normalize } from "../rules/address.js";
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

/** A delegated sender address as stored: canonical, plain (no catch-all, no extension check). */
export function delegationAddress(raw: string): string {
  const addr = normalize(raw);
  if (!isValidAddress(addr)) throw new StoreError("invalid", `invalid sender address: ${JSON.stringify(raw)} (expected local@domain)`);
  return addr;
}
