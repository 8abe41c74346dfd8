// The daemon's in-memory copy of the PostgreSQL tables, built from one
// consistent snapshot of their rows and never changed afterwards (a reload
// builds a new one). Answers the store's read questions synchronously, as
// the SQLite store answers them from its tables: same rules, no I/O.

import { NO_OVERRIDE, type LimitOverride } from "../quota/limits.js";
import type { AddressRows, AliasTarget } from "./types.js";

/** The rows a snapshot is read from (column names as in db-init.pgsql). */
export interface MirrorRows {
  readonly version: number;
  readonly domains: readonly { domain_name: string; enabled: number }[];
  readonly aliases: readonly { alias_email: string; target_user: string; alias_domain_name: string; enabled: number }[];
  readonly apps: readonly { app_id: string; enabled: number }[];
  readonly appFrom: readonly { app_id: string; from_addr: string; enabled: number }[];
  readonly quotaLimits: readonly { login: string; per_hour: number | null; per_day: number | null; recipients_per_hour: number | null }[];
  readonly delegations: readonly { from_addr: string; login: string }[];
}

const noAliases = (domainEnabled: boolean | undefined): AddressRows =>
  Object.freeze({ domainEnabled, exact: undefined, base: undefined, catchAll: undefined });
const NO_ALIASES = { absent: noAliases(undefined), enabled: noAliases(true), disabled: noAliases(false) } as const;
const NONE: readonly string[] = Object.freeze([]);

/** Byte order, as SQLite's and PostgreSQL's "C" collation sort. */
function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const l = m.get(k);
  if (l === undefined) m.set(k, [v]);
  else l.push(v);
}

function frozenLists(m: Map<string, string[]>): Map<string, readonly string[]> {
  const out = new Map<string, readonly string[]>();
  for (const [k, v] of m) out.set(k, Object.freeze(v.sort(byCodePoint)));
  return out;
}

export class Mirror {
  readonly version: number;
  readonly #domains = new Map<string, boolean>();
  readonly #aliases = new Map<string, AliasTarget>();
  /** Catch-alls ("@domain") by domain, so a lookup builds no key. */
  readonly #catchAll = new Map<string, AliasTarget>();
  readonly #apps = new Map<string, boolean>();
  /** app_id + "\n" + from_addr → enabled (neither can hold a newline: both are validated). */
  readonly #appFrom = new Map<string, boolean>();
  readonly #appsForSender: Map<string, readonly string[]>;
  readonly #quota = new Map<string, LimitOverride>();
  readonly #delegations: Map<string, readonly string[]>;

  constructor(rows: MirrorRows) {
    this.version = rows.version;
    for (const d of rows.domains) this.#domains.set(d.domain_name, d.enabled === 1);
    for (const a of rows.aliases) {
      const active = a.enabled === 1 && this.#domains.get(a.alias_domain_name) === true;
      const target: AliasTarget = Object.freeze({ targetUser: a.target_user, domain: a.alias_domain_name, active });
      this.#aliases.set(a.alias_email, target);
      if (a.alias_email.startsWith("@")) this.#catchAll.set(a.alias_email.slice(1), target);
    }
    for (const a of rows.apps) this.#apps.set(a.app_id, a.enabled === 1);
    const senders = new Map<string, string[]>();
    for (const f of rows.appFrom) {
      this.#appFrom.set(`${f.app_id}\n${f.from_addr}`, f.enabled === 1);
      if (f.enabled === 1 && this.#apps.get(f.app_id) === true) push(senders, f.from_addr, f.app_id);
    }
    this.#appsForSender = frozenLists(senders);
    for (const q of rows.quotaLimits) {
      this.#quota.set(q.login, Object.freeze({ per_hour: q.per_hour, per_day: q.per_day, recipients_per_hour: q.recipients_per_hour }));
    }
    const delegated = new Map<string, string[]>();
    for (const d of rows.delegations) push(delegated, d.from_addr, d.login);
    this.#delegations = frozenLists(delegated);
  }

  /** Rows held, for the log line of a reload. */
  get size(): number {
    return this.#domains.size + this.#aliases.size + this.#apps.size + this.#appFrom.size + this.#quota.size + this.#delegations.size;
  }

  domainEnabled(domain: string): boolean | undefined {
    return this.#domains.get(domain);
  }

  alias(aliasEmail: string): AliasTarget | undefined {
    return this.#aliases.get(aliasEmail);
  }

  addressRows(addr: string, base: string | null, domain: string): AddressRows {
    const domainEnabled = this.#domains.get(domain);
    const exact = this.#aliases.get(addr);
    const baseRow = base === null ? undefined : this.#aliases.get(base);
    const catchAll = this.#catchAll.get(domain);
    if (exact === undefined && baseRow === undefined && catchAll === undefined) {
      return NO_ALIASES[domainEnabled === undefined ? "absent" : domainEnabled ? "enabled" : "disabled"];
    }
    return { domainEnabled, exact, base: baseRow, catchAll };
  }

  appEnabled(appId: string): boolean | undefined {
    return this.#apps.get(appId);
  }

  appAllowsSender(appId: string, fromAddr: string): boolean {
    return this.#appFrom.get(`${appId}\n${fromAddr}`) === true;
  }

  appsForSender(fromAddr: string): readonly string[] {
    return this.#appsForSender.get(fromAddr) ?? NONE;
  }

  quotaOverride(login: string): LimitOverride {
    return this.#quota.get(login) ?? NO_OVERRIDE;
  }

  delegatedLogins(fromAddr: string): readonly string[] {
    return this.#delegations.get(fromAddr) ?? NONE;
  }
}
