// The admin writer over a SQLite file, for mailcloakctl, the admin service
// and the web admin API. Every method validates, then writes in one
// transaction (IMMEDIATE where it reads before writing, so two admins never
// interleave). better-sqlite3 is synchronous: each method does its work
// before returning its (settled) Promise, and driver errors come back as
// StoreError (connection.ts).

import { normalize } from "../../rules/address.js";
import type { LimitName, LimitOverride } from "../../quota/limits.js";
import { NO_OVERRIDE } from "../../quota/limits.js";
import { StoreError } from "../errors.js";
import type { AdminStore, AliasRow, AppRow, DelegationRow, DomainRow, QuotaLimitRow } from "../types.js";
import { aliasArgs, appArgs, senderAddress, mergeQuotaLimits, normalizeLogin, unknownApp, validDomain } from "../validate.js";
import { hasTable, translate, type DB } from "./connection.js";
import { QUOTA_LIMITS_DDL, SENDER_DELEGATIONS_DDL } from "./schema.js";

function now(): number {
  return Math.floor(Date.now() / 1000);
}

const b = (v: number): boolean => v === 1;

type QuotaRow = { per_hour: number | null; per_day: number | null; recipients_per_hour: number | null };

export class SqliteAdmin implements AdminStore {
  readonly location: string;
  readonly #db: DB;

  constructor(db: DB, path: string) {
    this.#db = db;
    this.location = path;
  }

  /** The connection, for the SQLite backend's own code and tests. */
  get db(): DB {
    return this.#db;
  }

  /** Do the work now; its outcome as a settled Promise (never a synchronous throw). */
  #run<T>(fn: (db: DB) => T): Promise<T> {
    try {
      return Promise.resolve(fn(this.#db));
    } catch (err) {
      return Promise.reject(translate(err, this.location));
    }
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }

  // Domains -----------------------------------------------------------------

  addDomain(raw: string): Promise<string> {
    return this.#run((db) => {
      const d = validDomain(raw);
      const r = db.prepare("INSERT INTO domains(domain_name, enabled, updated_at) VALUES(?, 1, ?) ON CONFLICT(domain_name) DO NOTHING").run(d, now());
      if (r.changes === 0) throw new StoreError("conflict", `domain already exists: ${d}`);
      return d;
    });
  }

  deleteDomain(raw: string): Promise<{ domain: string; aliases: number }> {
    return this.#run((db) => {
      const d = normalize(raw);
      return db.transaction(() => {
        const n = (db.prepare("SELECT count(*) AS n FROM aliases WHERE alias_domain_name = ?").get(d) as { n: number }).n;
        if (db.prepare("DELETE FROM domains WHERE domain_name = ?").run(d).changes === 0) throw new StoreError("not-found", `no such domain: ${d}`);
        return { domain: d, aliases: n };
      }).immediate();
    });
  }

  setDomainEnabled(raw: string, enabled: boolean): Promise<string> {
    return this.#run((db) => {
      const d = normalize(raw);
      const r = db.prepare("UPDATE domains SET enabled = ?, updated_at = ? WHERE domain_name = ?").run(enabled ? 1 : 0, now(), d);
      if (r.changes === 0) throw new StoreError("not-found", `no such domain: ${d} (add it with: mailcloakctl domains add ${d})`);
      return d;
    });
  }

  listDomains(): Promise<DomainRow[]> {
    return this.#run((db) => {
      const rows = db.prepare("SELECT domain_name, enabled, updated_at FROM domains ORDER BY domain_name").all() as { domain_name: string; enabled: number; updated_at: number }[];
      return rows.map((r) => ({ ...r, enabled: b(r.enabled) }));
    });
  }

  // Aliases -----------------------------------------------------------------

  addAlias(rawAlias: string, rawUser: string): Promise<AliasRow> {
    return this.#run((db) => {
      const { alias, user, domain } = aliasArgs(rawAlias, rawUser);
      return db.transaction(() => {
        if (db.prepare("SELECT 1 FROM domains WHERE domain_name = ?").get(domain) === undefined) {
          throw new StoreError("invalid", `domain ${domain} is not a mailcloak domain; add it first with: mailcloakctl domains add ${domain}`);
        }
        const t = now();
        const r = db.prepare(`INSERT INTO aliases(alias_email, target_user, alias_domain_name, enabled, updated_at)
          VALUES(?, ?, ?, 1, ?) ON CONFLICT(alias_email) DO NOTHING`).run(alias, user, domain, t);
        if (r.changes === 0) throw new StoreError("conflict", `alias already exists: ${alias} (delete it first to change its owner)`);
        return { alias_email: alias, target_user: user, alias_domain_name: domain, enabled: true, updated_at: t };
      }).immediate();
    });
  }

  deleteAlias(raw: string): Promise<string> {
    return this.#run((db) => {
      const a = normalize(raw);
      if (db.prepare("DELETE FROM aliases WHERE alias_email = ?").run(a).changes === 0) throw new StoreError("not-found", `no such alias: ${a}`);
      return a;
    });
  }

  setAliasEnabled(raw: string, enabled: boolean): Promise<string> {
    return this.#run((db) => {
      const a = normalize(raw);
      const r = db.prepare("UPDATE aliases SET enabled = ?, updated_at = ? WHERE alias_email = ?").run(enabled ? 1 : 0, now(), a);
      if (r.changes === 0) throw new StoreError("not-found", `no such alias: ${a}`);
      return a;
    });
  }

  listAliases(user?: string): Promise<AliasRow[]> {
    return this.#run((db) => {
      type Raw = Omit<AliasRow, "enabled"> & { enabled: number };
      const cols = "SELECT alias_email, target_user, alias_domain_name, enabled, updated_at FROM aliases";
      const rows = (user === undefined
        ? db.prepare(`${cols} ORDER BY target_user, alias_email`).all()
        : db.prepare(`${cols} WHERE target_user = ? ORDER BY alias_email`).all(user.trim().toLowerCase())) as Raw[];
      return rows.map((r) => ({ ...r, enabled: b(r.enabled) }));
    });
  }

  // Apps --------------------------------------------------------------------

  upsertApp(rawId: string, secretHash: string): Promise<{ appId: string; created: boolean }> {
    return this.#run((db) => {
      const id = appArgs(rawId, secretHash);
      return db.transaction(() => {
        const existed = db.prepare("SELECT 1 FROM apps WHERE app_id = ?").get(id) !== undefined;
        db.prepare(`INSERT INTO apps(app_id, secret_hash, enabled, updated_at) VALUES(?, ?, 1, ?)
          ON CONFLICT(app_id) DO UPDATE SET secret_hash = excluded.secret_hash, enabled = 1, updated_at = excluded.updated_at`).run(id, secretHash, now());
        return { appId: id, created: !existed };
      }).immediate();
    });
  }

  deleteApp(rawId: string): Promise<string> {
    return this.#run((db) => {
      const id = rawId.trim();
      if (db.prepare("DELETE FROM apps WHERE app_id = ?").run(id).changes === 0) throw unknownApp(id);
      return id;
    });
  }

  setAppEnabled(rawId: string, enabled: boolean): Promise<string> {
    return this.#run((db) => {
      const id = rawId.trim();
      if (db.prepare("UPDATE apps SET enabled = ?, updated_at = ? WHERE app_id = ?").run(enabled ? 1 : 0, now(), id).changes === 0) throw unknownApp(id);
      return id;
    });
  }

  allowAppSender(rawId: string, rawAddr: string): Promise<{ appId: string; fromAddr: string }> {
    return this.#run((db) => {
      const id = rawId.trim();
      const addr = senderAddress(rawAddr);
      return db.transaction(() => {
        if (db.prepare("SELECT 1 FROM apps WHERE app_id = ?").get(id) === undefined) throw unknownApp(id);
        db.prepare(`INSERT INTO app_from(app_id, from_addr, enabled, updated_at) VALUES(?, ?, 1, ?)
          ON CONFLICT(app_id, from_addr) DO UPDATE SET enabled = 1, updated_at = excluded.updated_at`).run(id, addr, now());
        return { appId: id, fromAddr: addr };
      }).immediate();
    });
  }

  disallowAppSender(rawId: string, rawAddr: string): Promise<{ appId: string; fromAddr: string }> {
    return this.#run((db) => {
      const id = rawId.trim();
      const addr = normalize(rawAddr);
      return db.transaction(() => {
        if (db.prepare("SELECT 1 FROM apps WHERE app_id = ?").get(id) === undefined) throw unknownApp(id);
        if (db.prepare("DELETE FROM app_from WHERE app_id = ? AND from_addr = ?").run(id, addr).changes === 0) {
          throw new StoreError("not-found", `app ${id} is not allowed to send as ${addr}`);
        }
        return { appId: id, fromAddr: addr };
      }).immediate();
    });
  }

  listApps(): Promise<AppRow[]> {
    return this.#run((db) => listApps(db));
  }

  // App owners (self-service) ----------------------------------------------
  // An extra table the Go version does not have (and ignores): which user
  // created an app through mailcloak-admin. Created on first use, so a DB
  // made by the Go version or an older mailcloakctl needs no migration.

  appOwner(rawId: string): Promise<string | null> {
    return this.#run((db) => {
      if (!hasTable(db, "app_owners")) return null;
      const r = db.prepare("SELECT username FROM app_owners WHERE app_id = ?").get(rawId.trim()) as { username: string } | undefined;
      return r?.username ?? null;
    });
  }

  listOwnedApps(username: string): Promise<AppRow[]> {
    return this.#run((db) => {
      if (!hasTable(db, "app_owners")) return [];
      const owned = new Set((db.prepare("SELECT app_id FROM app_owners WHERE username = ?").all(username) as { app_id: string }[]).map((r) => r.app_id));
      return listApps(db).filter((a) => owned.has(a.app_id));
    });
  }

  createOwnedApp(rawId: string, secretHash: string, username: string): Promise<string> {
    return this.#run((db) => {
      const id = appArgs(rawId, secretHash);
      return db.transaction(() => {
        db.exec(`CREATE TABLE IF NOT EXISTS app_owners (
          app_id   TEXT PRIMARY KEY REFERENCES apps(app_id) ON DELETE CASCADE,
          username TEXT NOT NULL)`);
        if (db.prepare("SELECT 1 FROM apps WHERE app_id = ?").get(id) !== undefined) throw new StoreError("conflict", `app already exists: ${id}`);
        db.prepare("INSERT INTO apps(app_id, secret_hash, enabled, updated_at) VALUES(?, ?, 1, ?)").run(id, secretHash, now());
        db.prepare("INSERT INTO app_owners(app_id, username) VALUES(?, ?)").run(id, username);
        return id;
      }).immediate();
    });
  }

  // Delegated senders (send-as) ----------------------------------------------
  // Table sender_delegations of db-init.sql, of this version only: the Go
  // mailcloak neither reads nor contradicts it. A database without it has no
  // delegations until the first allow creates it.

  allowDelegation(fromAddr: string, rawLogin: string): Promise<{ row: DelegationRow; created: boolean }> {
    return this.#run((db) => {
      const login = normalizeLogin(rawLogin);
      return db.transaction(() => {
        db.exec(SENDER_DELEGATIONS_DDL);
        const t = now();
        const created = db.prepare("INSERT INTO sender_delegations(from_addr, login, updated_at) VALUES(?, ?, ?) ON CONFLICT DO NOTHING")
          .run(fromAddr, login, t).changes > 0;
        const row = db.prepare("SELECT from_addr, login, updated_at FROM sender_delegations WHERE from_addr = ? AND login = ?").get(fromAddr, login) as DelegationRow;
        return { row, created };
      }).immediate();
    });
  }

  denyDelegation(rawAddr: string, rawLogin: string): Promise<{ fromAddr: string; login: string }> {
    return this.#run((db) => {
      const fromAddr = normalize(rawAddr);
      const login = normalizeLogin(rawLogin);
      const gone = hasTable(db, "sender_delegations") && db.prepare("DELETE FROM sender_delegations WHERE from_addr = ? AND login = ?").run(fromAddr, login).changes > 0;
      if (!gone) throw new StoreError("not-found", `${login} has no delegation to send as ${fromAddr} (see: mailcloakctl senders list)`);
      return { fromAddr, login };
    });
  }

  listDelegations(rawLogin?: string): Promise<DelegationRow[]> {
    return this.#run((db) => {
      if (!hasTable(db, "sender_delegations")) return [];
      const cols = "SELECT from_addr, login, updated_at FROM sender_delegations";
      if (rawLogin === undefined) return db.prepare(`${cols} ORDER BY from_addr, login`).all() as DelegationRow[];
      return db.prepare(`${cols} WHERE login = ? ORDER BY from_addr`).all(normalizeLogin(rawLogin)) as DelegationRow[];
    });
  }

  // Quota limits -------------------------------------------------------------
  // Table quota_limits of db-init.sql, created by the first quota set (a Go-made
  // file has none: nothing set).

  setQuotaLimits(rawLogin: string, values: Partial<Record<LimitName, number | null>>): Promise<QuotaLimitRow | null> {
    return this.#run((db) => {
      const login = normalizeLogin(rawLogin);
      db.exec(QUOTA_LIMITS_DDL);
      return db.transaction(() => {
        const next = mergeQuotaLimits(quotaRow(db, login), values);
        if (next === null) {
          db.prepare("DELETE FROM quota_limits WHERE login = ?").run(login);
          return null;
        }
        const t = now();
        db.prepare(`INSERT INTO quota_limits(login, per_hour, per_day, recipients_per_hour, updated_at) VALUES(?, ?, ?, ?, ?)
          ON CONFLICT(login) DO UPDATE SET per_hour = excluded.per_hour, per_day = excluded.per_day,
            recipients_per_hour = excluded.recipients_per_hour, updated_at = excluded.updated_at`)
          .run(login, next.per_hour, next.per_day, next.recipients_per_hour, t);
        return { login, ...next, updated_at: t };
      }).immediate();
    });
  }

  deleteQuotaLimits(rawLogin: string): Promise<boolean> {
    return this.#run((db) => {
      const login = normalizeLogin(rawLogin);
      if (!hasTable(db, "quota_limits")) return false;
      return db.prepare("DELETE FROM quota_limits WHERE login = ?").run(login).changes > 0;
    });
  }

  listQuotaLimits(): Promise<QuotaLimitRow[]> {
    return this.#run((db) => {
      if (!hasTable(db, "quota_limits")) return [];
      return db.prepare("SELECT login, per_hour, per_day, recipients_per_hour, updated_at FROM quota_limits ORDER BY login").all() as QuotaLimitRow[];
    });
  }

  quotaLimitsOf(rawLogin: string): Promise<LimitOverride> {
    return this.#run((db) => quotaRow(db, normalizeLogin(rawLogin)));
  }
}

function listApps(db: DB): AppRow[] {
  const apps = db.prepare("SELECT app_id, enabled, updated_at FROM apps ORDER BY app_id").all() as { app_id: string; enabled: number; updated_at: number }[];
  const senders = db.prepare("SELECT from_addr, enabled, updated_at FROM app_from WHERE app_id = ? ORDER BY from_addr");
  return apps.map((a) => ({
    app_id: a.app_id,
    enabled: b(a.enabled),
    updated_at: a.updated_at,
    senders: (senders.all(a.app_id) as { from_addr: string; enabled: number; updated_at: number }[]).map((s) => ({ ...s, enabled: b(s.enabled) })),
  }));
}

function quotaRow(db: DB, login: string): LimitOverride {
  if (!hasTable(db, "quota_limits")) return NO_OVERRIDE;
  const r = db.prepare("SELECT per_hour, per_day, recipients_per_hour FROM quota_limits WHERE login = ?").get(login) as QuotaRow | undefined;
  if (r === undefined) return NO_OVERRIDE;
  return Object.freeze({ per_hour: r.per_hour, per_day: r.per_day, recipients_per_hour: r.recipients_per_hour });
}
