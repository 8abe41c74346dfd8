// The daemon's read side on PostgreSQL. Reads are synchronous, from an
// in-memory copy of the tables (postgres-mirror.ts) loaded at start and
// rebuilt after every committed change, which the triggers of db-init.pgsql
// announce with NOTIFY on one dedicated connection.
//
// The copy is vouched for only while the server confirms it: every
// check_interval_ms the version row is compared (a notification that was
// lost is caught here), and a reload or a matching version renews the
// confirmation. A copy that has gone unconfirmed for max_stale_ms (the
// connection dropped, the server restarted or hangs), or was never loaded,
// answers nothing: every read throws StoreError "unavailable", which the
// handlers answer 451 4.3.0 / TEMP, never a "no such user" from old rows.
// Reconnection is automatic (LISTEN first, then a fresh snapshot), and an
// outage logs one line when it starts and one when it ends.
//
// Bound stated (docs/several-hosts.md): a change committed on any host is
// answered by every daemon within the notification delay plus one reload
// (milliseconds on a LAN), at worst check_interval_ms later when a
// notification is lost; a daemon that cannot confirm its copy for
// max_stale_ms (default 1 s) answers TEMP until it can.

import pg from "pg";
import type { PostgresSettings } from "../config/store.js";
import { describeStore } from "../config/store.js";
import type { LimitOverride } from "../quota/limits.js";
import { Mirror } from "./postgres-mirror.js";
import { CHANNEL, clientConfig, isPermanent, pgError, pgSchemaProblem, readSnapshot } from "./postgres-schema.js";
import { StoreError } from "./errors.js";
import type { AddressRows, AliasTarget, StoreEvents, StoreReader } from "./types.js";

export interface PostgresReaderEvents extends StoreEvents {
  /** A new copy is being served (for debug logs and tests). */
  onReload?(version: number, rows: number, ms: number): void;
}

/** Delay before reconnecting, doubled after each failure up to the maximum. */
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2000;

export class PostgresStore implements StoreReader {
  readonly location: string;
  readonly #settings: PostgresSettings;
  readonly #events: PostgresReaderEvents;
  #client: pg.Client | null = null;
  #connecting = false;
  #mirror: Mirror | null = null;
  /** When (performance.now) the server last confirmed the copy: the start of that query. */
  #confirmedAt = -Infinity;
  #down: string | null = "not loaded yet";
  /** Whether the outage line was logged (not for the start-up load). */
  #reported = false;
  #lastError = "not connected yet";
  #generation = 0;
  #reloading: Promise<void> | null = null;
  #reloadAgain = false;
  #checking = false;
  #retryMs = RETRY_MIN_MS;
  #retryAt = 0;
  #closed = false;
  #inRequest = false;
  #reloads = 0;
  readonly #timer: NodeJS.Timeout;

  private constructor(settings: PostgresSettings, events: PostgresReaderEvents) {
    this.#settings = settings;
    this.#events = events;
    this.location = describeStore({ backend: "postgres", postgres: settings }, "");
    this.#timer = setInterval(() => this.#tick(), settings.checkIntervalMs);
    this.#timer.unref();
  }

  /**
   * Connect and load the first copy. A wrong password, an unknown database
   * or missing tables are start-up errors (thrown); an unreachable server is
   * not: the store starts unavailable (451 / TEMP) and keeps trying.
   */
  static async open(settings: PostgresSettings, events: PostgresReaderEvents = {}): Promise<PostgresStore> {
    const s = new PostgresStore(settings, events);
    try {
      await s.#connect(true);
    } catch (err) {
      s.close();
      throw err;
    }
    if (s.#down !== null) {
      s.#reported = true;
      events.onUnavailable?.(`${s.location}: ${s.#lastError}`);
    }
    return s;
  }

  /** null when serving, else why not. */
  get problem(): string | null {
    return this.#down;
  }

  /** Copies loaded so far (the first one included). */
  get reloads(): number {
    return this.#reloads;
  }

  /** The version row of the copy being served, or -1 before the first load. */
  get version(): number {
    return this.#mirror?.version ?? -1;
  }

  /** Bumped whenever a new copy is served or the store goes down. */
  get generation(): number {
    return this.#generation;
  }

  unchangedSince(generation: number): boolean {
    this.#checkStale();
    return this.#down === null && generation === this.#generation;
  }

  /** Run request handling: the copy's age is checked once for all its reads. */
  within<T>(run: () => T): T {
    if (this.#inRequest) return run();
    this.#inRequest = true;
    try {
      this.#checkStale();
      return run();
    } finally {
      this.#inRequest = false;
    }
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#drop();
  }

  // -- connection, notifications, checks --

  #drop(): void {
    const c = this.#client;
    this.#client = null;
    if (c === null) return;
    c.removeAllListeners("notification");
    // end() waits for the server; a hung connection is cut at once.
    c.connection.stream.destroy();
    c.end().catch(() => undefined);
  }

  #failed(err: unknown): void {
    this.#lastError = err instanceof Error ? err.message : String(err);
    this.#drop();
    this.#retryAt = performance.now() + this.#retryMs;
    this.#retryMs = Math.min(this.#retryMs * 2, RETRY_MAX_MS);
  }

  async #connect(first = false): Promise<void> {
    if (this.#connecting || this.#closed) return;
    this.#connecting = true;
    const c = new pg.Client(clientConfig(this.#settings, "mailcloak"));
    // A dropped connection: no event of its own is needed, the copy simply stops being confirmed.
    c.on("error", (err) => {
      if (this.#client === c) this.#failed(err);
    });
    c.on("end", () => {
      if (this.#client === c) this.#failed(new Error("connection closed by the server"));
    });
    try {
      await c.connect();
      const problem = await pgSchemaProblem(c);
      if (problem !== null) throw new StoreError("schema", `database ${this.location}: ${problem}; run: mailcloakctl --db ${this.location} init`);
      c.on("notification", (n) => {
        if (n.channel === CHANNEL && this.#client === c) void this.#reload();
      });
      // LISTEN before the snapshot: nothing committed after the snapshot can go unannounced.
      await c.query(`LISTEN ${CHANNEL}`);
      if (this.#closed) throw new Error("closed");
      this.#client = c;
      this.#retryMs = RETRY_MIN_MS;
      await this.#reload();
    } catch (err) {
      c.removeAllListeners("notification");
      c.end().catch(() => undefined);
      if (this.#client === c) this.#client = null;
      if (first && (isPermanent(err) || err instanceof StoreError)) {
        throw err instanceof StoreError ? err : pgError(this.location, err, "unavailable");
      }
      this.#failed(err);
    } finally {
      this.#connecting = false;
    }
  }

  /** Build a new copy from a snapshot; concurrent requests for one coalesce into one more. */
  #reload(): Promise<void> {
    if (this.#reloading !== null) {
      this.#reloadAgain = true;
      return this.#reloading;
    }
    this.#reloading = (async () => {
      do {
        this.#reloadAgain = false;
        const c = this.#client;
        if (c === null) return;
        const started = performance.now();
        try {
          const rows = await readSnapshot(c);
          if (this.#client !== c) return;
          this.#mirror = new Mirror(rows);
          this.#generation++;
          this.#reloads++;
          this.#confirm(started);
          this.#events.onReload?.(rows.version, this.#mirror.size, performance.now() - started);
        } catch (err) {
          if (this.#client === c) this.#failed(err);
          return;
        }
      } while (this.#reloadAgain);
    })().finally(() => {
      this.#reloading = null;
    });
    return this.#reloading;
  }

  /** The cheap check: the version row, compared with the copy's. */
  async #check(): Promise<void> {
    const c = this.#client;
    if (c === null || this.#checking || this.#reloading !== null) return;
    this.#checking = true;
    const started = performance.now();
    try {
      const r = await c.query<{ version: string }>("SELECT version FROM mailcloak_version WHERE id = 1");
      if (this.#client !== c) return;
      const version = Number(r.rows[0]?.version ?? 0);
      if (this.#mirror !== null && version === this.#mirror.version) this.#confirm(started);
      else await this.#reload();
    } catch (err) {
      if (this.#client === c) this.#failed(err);
    } finally {
      this.#checking = false;
    }
  }

  #confirm(at: number): void {
    this.#confirmedAt = Math.max(this.#confirmedAt, at);
    if (this.#down !== null && this.#mirror !== null) {
      this.#down = null;
      if (this.#reported) this.#events.onRecovered?.();
      this.#reported = false;
    }
  }

  #tick(): void {
    if (this.#closed) return;
    this.#checkStale();
    if (this.#client === null) {
      if (!this.#connecting && performance.now() >= this.#retryAt) void this.#connect();
      return;
    }
    void this.#check();
  }

  /** Stop answering from a copy the server has not confirmed for max_stale_ms. */
  #checkStale(): void {
    if (this.#down !== null || performance.now() - this.#confirmedAt <= this.#settings.maxStaleMs) return;
    this.#down = `${this.location}: no confirmation from the server for over ${this.#settings.maxStaleMs} ms (${this.#lastError})`;
    this.#generation++;
    if (!this.#reported) {
      this.#reported = true;
      this.#events.onUnavailable?.(this.#down);
    }
  }

  #m(): Mirror {
    if (this.#down !== null || this.#mirror === null) throw new StoreError("unavailable", this.#down ?? "not loaded");
    return this.#mirror;
  }

  // -- the read questions (same answers as the SQLite store's) --

  domainEnabled(domain: string): boolean | undefined {
    return this.#m().domainEnabled(domain);
  }

  alias(aliasEmail: string): AliasTarget | undefined {
    return this.#m().alias(aliasEmail);
  }

  addressRows(addr: string, base: string | null, domain: string): AddressRows {
    return this.#m().addressRows(addr, base, domain);
  }

  aliasOwnedBy(aliasEmail: string, username: string): boolean {
    const a = this.#m().alias(aliasEmail);
    return a !== undefined && a.active && a.targetUser.toLowerCase() === username;
  }

  appEnabled(appId: string): boolean | undefined {
    return this.#m().appEnabled(appId);
  }

  appAllowsSender(appId: string, fromAddr: string): boolean {
    return this.#m().appAllowsSender(appId, fromAddr);
  }

  quotaOverride(login: string): LimitOverride {
    return this.#m().quotaOverride(login);
  }

  delegatedLogins(fromAddr: string): readonly string[] {
    return this.#m().delegatedLogins(fromAddr);
  }

  appsForSender(fromAddr: string): readonly string[] {
    return this.#m().appsForSender(fromAddr);
  }
}

