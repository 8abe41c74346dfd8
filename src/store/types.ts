// The store's backend-neutral interface: what the daemon reads
// (StoreReader) and what the admins write (AdminStore: mailcloakctl,
// src/admin/service.ts, the web admin API). src/store/open.ts picks the
// backend; nothing outside src/store/ names one.
//
// A second backend (PostgreSQL) is one more folder under src/store/ that
// implements these two interfaces and throws only StoreError
// (src/store/errors.ts), plus its Backend object in open.ts (reader, admin,
// init, inspect), chosen by the location (a postgres:// URL). What every
// backend must hold:
//
// - StoreReader reads are SYNCHRONOUS: the handlers answer a cache hit in
//   the same event-loop turn. A backend whose driver is asynchronous keeps
//   an in-memory mirror of the tables, loaded before open resolves and kept
//   current (e.g. LISTEN/NOTIFY); while it cannot vouch for the mirror a
//   read throws StoreError "unavailable", which the daemon answers 451 / TEMP.
// - Freshness rule (every backend): a change committed before a request was
//   read is seen by that request's reads. Requests are handled in batches
//   (src/server/turn.ts) wrapped in within(); a backend may do its "has
//   anything changed?" check once per within(), at the first read in it.
// - AdminStore methods return Promises; each validates its arguments first
//   (StoreError "invalid", nothing written) and is one transaction.
// - Rows use the Go version's column names (its `--json` output).

import type { LimitName, LimitOverride } from "../quota/limits.js";
import type { AddressRows, AliasTarget } from "../rules/facts.js";
import type { PostgresSettings } from "../config/store.js";

// Rows -----------------------------------------------------------------------

export interface DomainRow {
  readonly domain_name: string;
  readonly enabled: boolean;
  readonly updated_at: number;
}
export interface AliasRow {
  readonly alias_email: string;
  readonly target_user: string;
  readonly alias_domain_name: string;
  readonly enabled: boolean;
  readonly updated_at: number;
}
export interface AppSenderRow {
  readonly from_addr: string;
  readonly enabled: boolean;
  readonly updated_at: number;
}
export interface AppRow {
  readonly app_id: string;
  readonly enabled: boolean;
  readonly updated_at: number;
  readonly senders: AppSenderRow[];
}
export interface DelegationRow {
  readonly from_addr: string;
  readonly login: string;
  readonly updated_at: number;
}
export interface QuotaLimitRow extends LimitOverride {
  readonly login: string;
  readonly updated_at: number;
}

// The shapes of what the reader returns are the facts the rules read
// (src/rules/facts.ts): the store produces them, the rules define them.
export type { AddressRows, AliasTarget };

// The daemon's reader -----------------------------------------------------------

export interface StoreEvents {
  onUnavailable?(reason: string): void;
  onRecovered?(): void;
}

/**
 * The daemon's read side. Every read is synchronous and throws only
 * StoreError "unavailable" (the daemon answers 451 / TEMP). Answers are
 * shared between callers: never modify them.
 */
export interface StoreReader {
  /** Where the data is, for log lines (a path or a redacted URL). */
  readonly location: string;
  /** null while serving, else why every read fails. */
  readonly problem: string | null;

  /** true: enabled; false: present but disabled; undefined: absent. */
  domainEnabled(domain: string): boolean | undefined;
  alias(aliasEmail: string): AliasTarget | undefined;
  /**
   * The domain row and the aliases `addr` (in `domain`) can match: exact,
   * without extension (`base`, null when none), catch-all "@domain".
   */
  addressRows(addr: string, base: string | null, domain: string): AddressRows;
  /** Is `aliasEmail` an enabled alias (in an enabled domain) of `username` (lower-cased)? */
  aliasOwnedBy(aliasEmail: string, username: string): boolean;
  /** true: enabled app; false: disabled app; undefined: not an app id. */
  appEnabled(appId: string): boolean | undefined;
  /** Is the app allowed (and enabled for) sending as `fromAddr`? */
  appAllowsSender(appId: string, fromAddr: string): boolean;
  /** Enabled apps allowed to send as `fromAddr`, by app id. */
  appsForSender(fromAddr: string): readonly string[];
  /** Limits set with mailcloakctl quota set, for a lower-cased login (all null when none). */
  quotaOverride(login: string): LimitOverride;
  /** Logins (lower-cased) delegated to send as `fromAddr`, sorted. */
  delegatedLogins(fromAddr: string): readonly string[];

  /**
   * Run one batch of request handling: every request handled in `run` was
   * read before within() was called, so the backend may check for changes
   * once, at the first read in it. Reads outside within() check every time.
   */
  within<T>(run: () => T): T;
  /** Bumped whenever remembered answers may be stale (a change was seen, a reopen). */
  readonly generation: number;
  /** Nothing changed since `generation` was read (checks as a read does; false while unavailable). */
  unchangedSince(generation: number): boolean;

  close(): void;
}

// The admin writer --------------------------------------------------------------

export interface MigrationReport {
  readonly migrated: boolean;
  readonly steps: string[];
}

/**
 * The admin side: validates, then writes in one transaction. Raw arguments
 * are normalised here (trimmed, lower-cased where the daemon compares
 * lower-cased), so every caller stores the same thing.
 */
export interface AdminStore {
  readonly location: string;

  /** Add an enabled domain; "conflict" when it exists. Returns the stored name. */
  addDomain(domain: string): Promise<string>;
  /** Delete a domain and its aliases; "not-found" when absent. */
  deleteDomain(domain: string): Promise<{ domain: string; aliases: number }>;
  setDomainEnabled(domain: string, enabled: boolean): Promise<string>;
  listDomains(): Promise<DomainRow[]>;

  /** Add an alias, or a catch-all when the address is "@domain" (its domain must exist). */
  addAlias(alias: string, user: string): Promise<AliasRow>;
  deleteAlias(alias: string): Promise<string>;
  setAliasEnabled(alias: string, enabled: boolean): Promise<string>;
  /** All aliases by user then address, or one user's. */
  listAliases(user?: string): Promise<AliasRow[]>;

  /** Create an app, or replace its secret hash (and re-enable it). */
  upsertApp(appId: string, secretHash: string): Promise<{ appId: string; created: boolean }>;
  deleteApp(appId: string): Promise<string>;
  setAppEnabled(appId: string, enabled: boolean): Promise<string>;
  allowAppSender(appId: string, fromAddr: string): Promise<{ appId: string; fromAddr: string }>;
  disallowAppSender(appId: string, fromAddr: string): Promise<{ appId: string; fromAddr: string }>;
  listApps(): Promise<AppRow[]>;

  /** The user who owns `appId` (made through self-service), or null. */
  appOwner(appId: string): Promise<string | null>;
  listOwnedApps(username: string): Promise<AppRow[]>;
  /** Create an app owned by `username`; "conflict" for an existing app id. */
  createOwnedApp(appId: string, secretHash: string, username: string): Promise<string>;

  /** Allow `login` to send as `fromAddr` (a canonical address); created: it was new. */
  allowDelegation(fromAddr: string, login: string): Promise<{ row: DelegationRow; created: boolean }>;
  /** "not-found" when there was no such delegation. */
  denyDelegation(fromAddr: string, login: string): Promise<{ fromAddr: string; login: string }>;
  listDelegations(login?: string): Promise<DelegationRow[]>;

  /** Set some limits of a login (null: back to the default); null when nothing is left set. */
  setQuotaLimits(login: string, values: Partial<Record<LimitName, number | null>>): Promise<QuotaLimitRow | null>;
  /** false when none was set. */
  deleteQuotaLimits(login: string): Promise<boolean>;
  listQuotaLimits(): Promise<QuotaLimitRow[]>;
  quotaLimitsOf(login: string): Promise<LimitOverride>;

  close(): Promise<void>;
}

// Opening ------------------------------------------------------------------------

export interface OpenOptions {
  /** How long a write waits for another writer's lock, in ms. */
  readonly busyTimeoutMs: number;
  /** PostgreSQL: password, pool and deadlines from the config's store: section (used when its URL is the location). */
  readonly postgres?: PostgresSettings | undefined;
}

/** What init did. */
export interface InitResult {
  readonly store: AdminStore;
  readonly report: MigrationReport;
  /** The database did not exist before. */
  readonly created: boolean;
  /** The schema cookie before (undefined when new) and after: they differ when init changed the layout. */
  readonly schemaBefore: number | undefined;
  readonly schemaAfter: number;
}

/** A look at a database without changing it (the setup wizard). */
export interface Inspection {
  /** null when the schema is current, else why not. */
  readonly schemaProblem: string | null;
  /** A write transaction could be started (and was rolled back); else why not. */
  readonly writable: true | string;
}
