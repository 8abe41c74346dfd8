// Delegated senders (send-as): a login allowed to send as an address it does
// not own, set with mailcloakctl senders allow (table sender_delegations of
// db-init.sql). A table of this version only: the Go mailcloak neither reads
// nor contradicts it (no key or trigger of its tables mentions it). A
// database without the table has no delegations until the first allow
// creates it.

import type Database from "better-sqlite3";
import { isValidAddress, normalize } from "../rules/address.js";
import { normalizeLogin } from "./quota-limits.js";
import { NotFoundError, StoreError } from "./sqlite.js";

type DB = Database.Database;

/** The same statements as in db-init.sql (a test checks they agree). */
export const SENDER_DELEGATIONS_DDL = `CREATE TABLE IF NOT EXISTS sender_delegations (
    from_addr  TEXT NOT NULL,
    login      TEXT NOT NULL,
    updated_at INTEGER NOT NULL DEFAULT (strftime('%s','now')),
    PRIMARY KEY (from_addr, login)
);`;

export interface DelegationRow {
  readonly from_addr: string;
  readonly login: string;
  readonly updated_at: number;
}

const READ = "SELECT login FROM sender_delegations WHERE from_addr = ? ORDER BY login";
const statements = new WeakMap<DB, Database.Statement<[string], { login: string }>>();

function hasTable(db: DB): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sender_delegations'").get() !== undefined;
}

/** The logins (lower-cased) delegated to send as `fromAddr`; none while there is no table. */
export function readDelegatedLogins(db: DB, fromAddr: string): readonly string[] {
  let st = statements.get(db);
  if (st === undefined) {
    if (!hasTable(db)) return []; // asked again after the next commit (the store's memo is dropped then)
    st = db.prepare(READ) as Database.Statement<[string], { login: string }>;
    statements.set(db, st);
  }
  try {
    return Object.freeze(st.all(fromAddr).map((r) => r.login));
  } catch (err) {
    // Dropped since (a restore of an older file, an admin's DROP TABLE): no delegations, not a DB failure.
    if (!hasTable(db)) {
      statements.delete(db);
      return [];
    }
    throw err;
  }
}

/** A sender address as stored: canonical, plain (no catch-all, no extension check). */
export function delegationAddress(raw: string): string {
  const addr = normalize(raw);
  if (!isValidAddress(addr)) throw new StoreError(`invalid sender address: ${JSON.stringify(raw)} (expected local@domain)`);
  return addr;
}

/** Allow `login` to send as `fromAddr` (validated by the caller); true when it was new. */
export function allowDelegation(db: DB, fromAddr: string, rawLogin: string): { row: DelegationRow; created: boolean } {
  const login = normalizeLogin(rawLogin);
  return db.transaction(() => {
    db.exec(SENDER_DELEGATIONS_DDL);
    const t = Math.floor(Date.now() / 1000);
    const created = db.prepare("INSERT INTO sender_delegations(from_addr, login, updated_at) VALUES(?, ?, ?) ON CONFLICT DO NOTHING")
      .run(fromAddr, login, t).changes > 0;
    const row = db.prepare("SELECT from_addr, login, updated_at FROM sender_delegations WHERE from_addr = ? AND login = ?").get(fromAddr, login) as DelegationRow;
    return { row, created };
  }).immediate();
}

export function denyDelegation(db: DB, rawAddr: string, rawLogin: string): { fromAddr: string; login: string } {
  const fromAddr = normalize(rawAddr);
  const login = normalizeLogin(rawLogin);
  const gone = hasTable(db) && db.prepare("DELETE FROM sender_delegations WHERE from_addr = ? AND login = ?").run(fromAddr, login).changes > 0;
  if (!gone) throw new NotFoundError(`${login} has no delegation to send as ${fromAddr} (see: mailcloakctl senders list)`);
  return { fromAddr, login };
}

export function listDelegations(db: DB, rawLogin?: string): DelegationRow[] {
  if (!hasTable(db)) return [];
  if (rawLogin === undefined) return db.prepare("SELECT from_addr, login, updated_at FROM sender_delegations ORDER BY from_addr, login").all() as DelegationRow[];
  return db.prepare("SELECT from_addr, login, updated_at FROM sender_delegations WHERE login = ? ORDER BY from_addr").all(normalizeLogin(rawLogin)) as DelegationRow[];
}
