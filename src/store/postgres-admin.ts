// The admin side on PostgreSQL (mailcloakctl, mailcloak-admin): the SQLite
// AdminStore's methods with the same validation, messages and results, each
// returning a Promise. A pg Pool of pool_size connections; every query has
// the deadline query_timeout_ms (statement_timeout on the server, and the
// driver's own). Each write commits at once; the triggers of db-init.pgsql
// tell every daemon.

import pg from "pg";
import type { PostgresSettings } from "../config/store.js";
import { describeStore } from "../config/store.js";
import { normalize } from "../rules/address.js";
import type { LimitName, LimitOverride } from "../quota/limits.js";
import { NO_OVERRIDE } from "../quota/limits.js";
import { applyPgSchema, clientConfig, pgError, pgSchemaProblem, sqlState } from "./postgres-schema.js";
import { aliasArgs, appArgs, senderAddress, mergeQuotaLimits, normalizeLogin, unknownApp, validDomain } from "./validate.js";
import { StoreError } from "./errors.js";
import type { AdminStore, AliasRow, AppRow, DelegationRow, DomainRow, QuotaLimitRow } from "./types.js";

const now = (): number => Math.floor(Date.now() / 1000);
const b = (v: number): boolean => v === 1;
/** Byte order, as SQLite sorts TEXT (the default collation may not). */
const C = 'COLLATE "C"';

type Q = pg.ClientBase | pg.Pool;

export class PostgresAdminStore implements AdminStore {
  readonly location: string;
  readonly #pool: pg.Pool;

  private constructor(settings: PostgresSettings) {
    this.location = describeStore({ backend: "postgres", postgres: settings }, "");
    this.#pool = new pg.Pool({ ...clientConfig(settings, "mailcloakctl"), max: settings.poolSize, idleTimeoutMillis: 10_000 });
    // An idle connection the server dropped: the pool replaces it; nothing to report.
    this.#pool.on("error", () => undefined);
  }

  /** Create the tables (db-init.pgsql, idempotent). */
  static async init(settings: PostgresSettings): Promise<{ store: PostgresAdminStore; created: boolean }> {
    const s = new PostgresAdminStore(settings);
    try {
      const c = await s.#connect();
      try {
        const { created } = await applyPgSchema(c);
        return { store: s, created };
      } finally {
        c.release();
      }
    } catch (err) {
      await s.close();
      throw s.#wrap(err);
    }
  }

  /** Open a database that has the tables (else: run init). */
  static async open(settings: PostgresSettings): Promise<PostgresAdminStore> {
    const s = new PostgresAdminStore(settings);
    try {
      const c = await s.#connect();
      try {
        const problem = await pgSchemaProblem(c);
        if (problem !== null) throw new StoreError("schema", `database ${s.location}: ${problem}; run: mailcloakctl --db ${s.location} init`);
      } finally {
        c.release();
      }
      return s;
    } catch (err) {
      await s.close();
      throw s.#wrap(err);
    }
  }

  async close(): Promise<void> {
    await this.#pool.end().catch(() => undefined);
  }

  async #connect(): Promise<pg.PoolClient> {
    return this.#pool.connect();
  }

  /** Driver errors as store errors: constraint violations refuse, the rest is "unavailable". */
  #wrap(err: unknown): unknown {
    if (err instanceof StoreError) return err;
    const code = sqlState(err);
    if (code === "23505") return new StoreError("conflict", `database ${this.location}: refused: ${(err as Error).message}`, { cause: err });
    if (code !== undefined && code.startsWith("23")) return new StoreError("invalid", `database ${this.location}: refused: ${(err as Error).message}`, { cause: err });
    return pgError(this.location, err, "unavailable");
  }

  async #q<R extends pg.QueryResultRow>(text: string, values: readonly unknown[] = [], on: Q = this.#pool): Promise<pg.QueryResult<R>> {
    try {
      return await on.query<R>(text, values as unknown[]);
    } catch (err) {
      throw this.#wrap(err);
    }
  }

  /** Run `fn` in one transaction on one connection. */
  async #tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let c: pg.PoolClient;
    try {
      c = await this.#connect();
    } catch (err) {
      throw this.#wrap(err);
    }
    try {
      await this.#q("BEGIN", [], c);
      const r = await fn(c);
      await this.#q("COMMIT", [], c);
      return r;
    } catch (err) {
      await c.query("ROLLBACK").catch(() => undefined);
      throw this.#wrap(err);
    } finally {
      c.release();
    }
  }

  /** Rows as a plain table, for migrate-store and the tests. */
  async rows(table: string): Promise<Record<string, unknown>[]> {
    if (!/^[a-z_]+$/.test(table)) throw new StoreError("invalid", `bad table name ${table}`);
    return (await this.#q(`SELECT * FROM ${table}`)).rows;
  }

  /** Run `fn` in one transaction (migrate-store's copy). */
  transaction<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.#tx(fn);
  }

  // Domains -----------------------------------------------------------------

  async addDomain(raw: string): Promise<string> {
    const d = validDomain(raw);
    const r = await this.#q("INSERT INTO domains(domain_name, enabled, updated_at) VALUES($1, 1, $2) ON CONFLICT (domain_name) DO NOTHING", [d, now()]);
    if (r.rowCount === 0) throw new StoreError("conflict", `domain already exists: ${d}`);
    return d;
  }

  async deleteDomain(raw: string): Promise<{ domain: string; aliases: number }> {
    const d = normalize(raw);
    return this.#tx(async (c) => {
      const n = Number((await this.#q<{ n: string }>("SELECT count(*) AS n FROM aliases WHERE alias_domain_name = $1", [d], c)).rows[0]!.n);
      const r = await this.#q("DELETE FROM domains WHERE domain_name = $1", [d], c);
      if (r.rowCount === 0) throw new StoreError("not-found", `no such domain: ${d}`);
      return { domain: d, aliases: n };
    });
  }

  async setDomainEnabled(raw: string, enabled: boolean): Promise<string> {
    const d = normalize(raw);
    const r = await this.#q("UPDATE domains SET enabled = $1, updated_at = $2 WHERE domain_name = $3", [enabled ? 1 : 0, now(), d]);
    if (r.rowCount === 0) throw new StoreError("not-found", `no such domain: ${d} (add it with: mailcloakctl domains add ${d})`);
    return d;
  }

  async listDomains(): Promise<DomainRow[]> {
    const r = await this.#q<{ domain_name: string; enabled: number; updated_at: string }>(`SELECT domain_name, enabled, updated_at FROM domains ORDER BY domain_name ${C}`);
    return r.rows.map((x) => ({ domain_name: x.domain_name, enabled: b(x.enabled), updated_at: Number(x.updated_at) }));
  }

  // Aliases -----------------------------------------------------------------

  async addAlias(rawAlias: string, rawUser: string): Promise<AliasRow> {
    const { alias, user, domain } = aliasArgs(rawAlias, rawUser);
    return this.#tx(async (c) => {
      if ((await this.#q("SELECT 1 FROM domains WHERE domain_name = $1", [domain], c)).rowCount === 0) {
        throw new StoreError("invalid", `domain ${domain} is not a mailcloak domain; add it first with: mailcloakctl domains add ${domain}`);
      }
      const t = now();
      const r = await this.#q(`INSERT INTO aliases(alias_email, target_user, alias_domain_name, enabled, updated_at)
        VALUES($1, $2, $3, 1, $4) ON CONFLICT (alias_email) DO NOTHING`, [alias, user, domain, t], c);
      if (r.rowCount === 0) throw new StoreError("conflict", `alias already exists: ${alias} (delete it first to change its owner)`);
      return { alias_email: alias, target_user: user, alias_domain_name: domain, enabled: true, updated_at: t };
    });
  }

  async deleteAlias(raw: string): Promise<string> {
    const a = normalize(raw);
    if ((await this.#q("DELETE FROM aliases WHERE alias_email = $1", [a])).rowCount === 0) throw new StoreError("not-found", `no such alias: ${a}`);
    return a;
  }

  async setAliasEnabled(raw: string, enabled: boolean): Promise<string> {
    const a = normalize(raw);
    const r = await this.#q("UPDATE aliases SET enabled = $1, updated_at = $2 WHERE alias_email = $3", [enabled ? 1 : 0, now(), a]);
    if (r.rowCount === 0) throw new StoreError("not-found", `no such alias: ${a}`);
    return a;
  }

  async listAliases(user?: string): Promise<AliasRow[]> {
    type Raw = { alias_email: string; target_user: string; alias_domain_name: string; enabled: number; updated_at: string };
    const cols = "SELECT alias_email, target_user, alias_domain_name, enabled, updated_at FROM aliases";
    const r = user === undefined
      ? await this.#q<Raw>(`${cols} ORDER BY target_user ${C}, alias_email ${C}`)
      : await this.#q<Raw>(`${cols} WHERE target_user = $1 ORDER BY alias_email ${C}`, [user.trim().toLowerCase()]);
    return r.rows.map((x) => ({ ...x, enabled: b(x.enabled), updated_at: Number(x.updated_at) }));
  }

  // Apps --------------------------------------------------------------------

  async upsertApp(rawId: string, secretHash: string): Promise<{ appId: string; created: boolean }> {
    const id = appArgs(rawId, secretHash);
    return this.#tx(async (c) => {
      const existed = ((await this.#q("SELECT 1 FROM apps WHERE app_id = $1 FOR UPDATE", [id], c)).rowCount ?? 0) > 0;
      await this.#q(`INSERT INTO apps(app_id, secret_hash, enabled, updated_at) VALUES($1, $2, 1, $3)
        ON CONFLICT (app_id) DO UPDATE SET secret_hash = excluded.secret_hash, enabled = 1, updated_at = excluded.updated_at`, [id, secretHash, now()], c);
      return { appId: id, created: !existed };
    });
  }

  async deleteApp(rawId: string): Promise<string> {
    const id = rawId.trim();
    if ((await this.#q("DELETE FROM apps WHERE app_id = $1", [id])).rowCount === 0) throw unknownApp(id);
    return id;
  }

  async setAppEnabled(rawId: string, enabled: boolean): Promise<string> {
    const id = rawId.trim();
    if ((await this.#q("UPDATE apps SET enabled = $1, updated_at = $2 WHERE app_id = $3", [enabled ? 1 : 0, now(), id])).rowCount === 0) throw unknownApp(id);
    return id;
  }

  async allowAppSender(rawId: string, rawAddr: string): Promise<{ appId: string; fromAddr: string }> {
    const id = rawId.trim();
    const addr = senderAddress(rawAddr);
    return this.#tx(async (c) => {
      if ((await this.#q("SELECT 1 FROM apps WHERE app_id = $1", [id], c)).rowCount === 0) throw unknownApp(id);
      await this.#q(`INSERT INTO app_from(app_id, from_addr, enabled, updated_at) VALUES($1, $2, 1, $3)
        ON CONFLICT (app_id, from_addr) DO UPDATE SET enabled = 1, updated_at = excluded.updated_at`, [id, addr, now()], c);
      return { appId: id, fromAddr: addr };
    });
  }

  async disallowAppSender(rawId: string, rawAddr: string): Promise<{ appId: string; fromAddr: string }> {
    const id = rawId.trim();
    const addr = normalize(rawAddr);
    return this.#tx(async (c) => {
      if ((await this.#q("SELECT 1 FROM apps WHERE app_id = $1", [id], c)).rowCount === 0) throw unknownApp(id);
      if ((await this.#q("DELETE FROM app_from WHERE app_id = $1 AND from_addr = $2", [id, addr], c)).rowCount === 0) {
        throw new StoreError("not-found", `app ${id} is not allowed to send as ${addr}`);
      }
      return { appId: id, fromAddr: addr };
    });
  }

  async listApps(): Promise<AppRow[]> {
    const apps = await this.#q<{ app_id: string; enabled: number; updated_at: string }>(`SELECT app_id, enabled, updated_at FROM apps ORDER BY app_id ${C}`);
    const senders = await this.#q<{ app_id: string; from_addr: string; enabled: number; updated_at: string }>(
      `SELECT app_id, from_addr, enabled, updated_at FROM app_from ORDER BY from_addr ${C}`);
    return apps.rows.map((a) => ({
      app_id: a.app_id,
      enabled: b(a.enabled),
      updated_at: Number(a.updated_at),
      senders: senders.rows.filter((s) => s.app_id === a.app_id)
        .map((s) => ({ from_addr: s.from_addr, enabled: b(s.enabled), updated_at: Number(s.updated_at) })),
    }));
  }

  // App owners (self-service) -------------------------------------------------

  async appOwner(rawId: string): Promise<string | null> {
    const r = await this.#q<{ username: string }>("SELECT username FROM app_owners WHERE app_id = $1", [rawId.trim()]);
    return r.rows[0]?.username ?? null;
  }

  async listOwnedApps(username: string): Promise<AppRow[]> {
    const owned = new Set((await this.#q<{ app_id: string }>("SELECT app_id FROM app_owners WHERE username = $1", [username])).rows.map((r) => r.app_id));
    return (await this.listApps()).filter((a) => owned.has(a.app_id));
  }

  async createOwnedApp(rawId: string, secretHash: string, username: string): Promise<string> {
    const id = appArgs(rawId, secretHash);
    return this.#tx(async (c) => {
      const r = await this.#q("INSERT INTO apps(app_id, secret_hash, enabled, updated_at) VALUES($1, $2, 1, $3) ON CONFLICT (app_id) DO NOTHING", [id, secretHash, now()], c);
      if (r.rowCount === 0) throw new StoreError("conflict", `app already exists: ${id}`);
      await this.#q("INSERT INTO app_owners(app_id, username) VALUES($1, $2)", [id, username], c);
      return id;
    });
  }

  // Quota limits ------------------------------------------------------------

  async quotaLimitsOf(rawLogin: string): Promise<LimitOverride> {
    const login = normalizeLogin(rawLogin);
    const r = await this.#q<LimitOverride>("SELECT per_hour, per_day, recipients_per_hour FROM quota_limits WHERE login = $1", [login]);
    const row = r.rows[0];
    return row === undefined ? NO_OVERRIDE : { per_hour: row.per_hour, per_day: row.per_day, recipients_per_hour: row.recipients_per_hour };
  }

  async setQuotaLimits(rawLogin: string, values: Partial<Record<LimitName, number | null>>): Promise<QuotaLimitRow | null> {
    const login = normalizeLogin(rawLogin);
    return this.#tx(async (c) => {
      const r = await this.#q<LimitOverride>("SELECT per_hour, per_day, recipients_per_hour FROM quota_limits WHERE login = $1 FOR UPDATE", [login], c);
      const next = mergeQuotaLimits(r.rows[0] ?? NO_OVERRIDE, values);
      if (next === null) {
        await this.#q("DELETE FROM quota_limits WHERE login = $1", [login], c);
        return null;
      }
      const t = now();
      await this.#q(`INSERT INTO quota_limits(login, per_hour, per_day, recipients_per_hour, updated_at) VALUES($1, $2, $3, $4, $5)
        ON CONFLICT (login) DO UPDATE SET per_hour = excluded.per_hour, per_day = excluded.per_day,
          recipients_per_hour = excluded.recipients_per_hour, updated_at = excluded.updated_at`,
      [login, next.per_hour, next.per_day, next.recipients_per_hour, t], c);
      return { login, ...next, updated_at: t };
    });
  }

  async deleteQuotaLimits(rawLogin: string): Promise<boolean> {
    const login = normalizeLogin(rawLogin);
    return ((await this.#q("DELETE FROM quota_limits WHERE login = $1", [login])).rowCount ?? 0) > 0;
  }

  async listQuotaLimits(): Promise<QuotaLimitRow[]> {
    const r = await this.#q<Omit<QuotaLimitRow, "updated_at"> & { updated_at: string }>(
      `SELECT login, per_hour, per_day, recipients_per_hour, updated_at FROM quota_limits ORDER BY login ${C}`);
    return r.rows.map((x) => ({ ...x, updated_at: Number(x.updated_at) }));
  }

  // Delegated senders ---------------------------------------------------------

  /** `fromAddr` already validated (validate.ts senderAddress). */
  async allowDelegation(fromAddr: string, rawLogin: string): Promise<{ row: DelegationRow; created: boolean }> {
    const login = normalizeLogin(rawLogin);
    return this.#tx(async (c) => {
      const created = ((await this.#q("INSERT INTO sender_delegations(from_addr, login, updated_at) VALUES($1, $2, $3) ON CONFLICT DO NOTHING",
        [fromAddr, login, now()], c)).rowCount ?? 0) > 0;
      const r = await this.#q<{ from_addr: string; login: string; updated_at: string }>(
        "SELECT from_addr, login, updated_at FROM sender_delegations WHERE from_addr = $1 AND login = $2", [fromAddr, login], c);
      const row = r.rows[0]!;
      return { row: { from_addr: row.from_addr, login: row.login, updated_at: Number(row.updated_at) }, created };
    });
  }

  async denyDelegation(rawAddr: string, rawLogin: string): Promise<{ fromAddr: string; login: string }> {
    const fromAddr = normalize(rawAddr);
    const login = normalizeLogin(rawLogin);
    const gone = ((await this.#q("DELETE FROM sender_delegations WHERE from_addr = $1 AND login = $2", [fromAddr, login])).rowCount ?? 0) > 0;
    if (!gone) throw new StoreError("not-found", `${login} has no delegation to send as ${fromAddr} (see: mailcloakctl senders list)`);
    return { fromAddr, login };
  }

  async listDelegations(rawLogin?: string): Promise<DelegationRow[]> {
    type Raw = { from_addr: string; login: string; updated_at: string };
    const r = rawLogin === undefined
      ? await this.#q<Raw>(`SELECT from_addr, login, updated_at FROM sender_delegations ORDER BY from_addr ${C}, login ${C}`)
      : await this.#q<Raw>(`SELECT from_addr, login, updated_at FROM sender_delegations WHERE login = $1 ORDER BY from_addr ${C}`, [normalizeLogin(rawLogin)]);
    return r.rows.map((x) => ({ ...x, updated_at: Number(x.updated_at) }));
  }
}
