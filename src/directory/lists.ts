// Distribution lists from Keycloak groups: every direct subgroup of
// lists.parent_group with an address attribute is a list; its members are
// the enabled users with an email in it or in any of its subgroups.
//
// All lists are read together into one snapshot (paged group and member
// reads), kept for cache.ttl_seconds: one expansion per TTL, however many
// recipients. A read that fails anywhere fails the whole refresh, so an
// outage never shrinks a list: the last snapshot is served for
// cache.stale_seconds more, and after that the answer is `unavailable`.
// Concurrent refreshes share one read.

import type { Logger } from "pino";
import type { ListsSettings, Posting } from "../config/lists.js";
import { POSTINGS } from "../config/lists.js";
import { isValidAddress, normalize } from "../rules/address.js";
import { Failure } from "./failure.js";
import type { Maybe } from "../maybe.js";
import type { ListLookup, MailList } from "../rules/facts.js";
import { isRecord, lower } from "./user-json.js";

// A list and a list lookup are the plain facts the rules read (rules/facts.ts).
export type { ListLookup, MailList } from "../rules/facts.js";

export interface ListSnapshot {
  readonly byAddress: ReadonlyMap<string, MailList>;
  /** Keycloak requests the read took. */
  readonly requests: number;
  readonly ms: number;
}

/** GET under /admin/realms/{realm}: JSON, null on 404, rejects on failure (KeycloakSource.adminGet). */
export type AdminGet = (path: string) => Promise<unknown>;

interface Group {
  readonly id: string;
  readonly name: string;
  readonly path: string;
  readonly subGroupCount: number;
  readonly attributes: Readonly<Record<string, readonly string[]>>;
}

interface Member {
  readonly id: string;
  readonly username: string;
  readonly email: string | null;
  readonly enabled: boolean;
}

function asGroup(v: unknown): Group {
  if (!isRecord(v) || typeof v.id !== "string" || typeof v.path !== "string") throw new Failure("keycloak returned a malformed group");
  const attrs: Record<string, readonly string[]> = {};
  if (isRecord(v.attributes)) {
    for (const [k, vals] of Object.entries(v.attributes)) if (Array.isArray(vals)) attrs[k] = vals.filter((x): x is string => typeof x === "string");
  }
  return { id: v.id, name: typeof v.name === "string" ? v.name : "", path: v.path, subGroupCount: typeof v.subGroupCount === "number" ? v.subGroupCount : -1, attributes: attrs };
}

function asMember(v: unknown): Member {
  if (!isRecord(v) || typeof v.id !== "string") throw new Failure("keycloak returned a malformed member");
  return { id: v.id, username: lower(v.username) ?? "", email: lower(v.email), enabled: v.enabled === true };
}

/** Reads one snapshot of every list; `warn` is called once per problem (a malformed or foreign address, a collision). */
export class ListReader {
  readonly #get: AdminGet;
  readonly #settings: ListsSettings;
  readonly #isLocalDomain: (domain: string) => boolean;
  readonly #warnOnce: (key: string, fields: Record<string, unknown>, msg: string) => void;
  #requests = 0;

  constructor(get: AdminGet, settings: ListsSettings, isLocalDomain: (d: string) => boolean, warnOnce: (key: string, fields: Record<string, unknown>, msg: string) => void) {
    this.#get = get;
    this.#settings = settings;
    this.#isLocalDomain = isLocalDomain;
    this.#warnOnce = warnOnce;
  }

  async #call(path: string): Promise<unknown> {
    this.#requests++;
    return this.#get(path);
  }

  /** Every page of a paged collection. */
  async #paged<T>(path: string, map: (v: unknown) => T): Promise<T[]> {
    const max = this.#settings.pageSize;
    const out: T[] = [];
    for (let first = 0; ; first += max) {
      const sep = path.includes("?") ? "&" : "?";
      const page = await this.#call(`${path}${sep}first=${first}&max=${max}`);
      if (page === null) throw new Failure(`keycloak group vanished during the read (${path})`);
      if (!Array.isArray(page)) throw new Failure("keycloak returned a malformed page");
      out.push(...page.map(map));
      if (page.length < max) return out;
    }
  }

  #children(g: Group): Promise<Group[]> {
    if (g.subGroupCount === 0) return Promise.resolve([]);
    return this.#paged(`/groups/${encodeURIComponent(g.id)}/children?briefRepresentation=false`, asGroup);
  }

  /** Enabled members with an email, of `g` and its subgroups (depth first), each once. */
  async #expand(g: Group, seen: Set<string>, out: Member[], depth = 0): Promise<void> {
    if (depth > 32) return; // Keycloak forbids cycles; a bound all the same
    for (const m of await this.#paged(`/groups/${encodeURIComponent(g.id)}/members?briefRepresentation=true`, asMember)) {
      if (seen.has(m.id)) continue;
      seen.add(m.id);
      out.push(m);
    }
    for (const c of await this.#children(g)) await this.#expand(c, seen, out, depth + 1);
  }

  async #groupByPath(path: string): Promise<Group | null> {
    const enc = path.split("/").slice(1).map(encodeURIComponent).join("/");
    const g = await this.#call(`/group-by-path/${enc}`);
    return g === null ? null : asGroup(g);
  }

  async read(): Promise<ListSnapshot> {
    const started = performance.now();
    this.#requests = 0;
    const s = this.#settings;
    const byAddress = new Map<string, MailList>();
    const parent = await this.#groupByPath(s.parentGroup!);
    if (parent === null) {
      this.#warnOnce(`parent:${s.parentGroup}`, { group: s.parentGroup }, "lists.parent_group does not exist in Keycloak: no lists");
      return { byAddress, requests: this.#requests, ms: performance.now() - started };
    }
    const sendAsGroups = new Map<string, ReadonlySet<string>>();
    for (const g of await this.#children(parent)) {
      const raw = g.attributes[s.addressAttribute]?.[0];
      if (raw === undefined) continue; // a subgroup without an address is no list
      const address = normalize(raw);
      if (!isValidAddress(address)) {
        this.#warnOnce(`bad:${g.path}:${raw}`, { group: g.path, value: raw.slice(0, 100) }, `list ignored: its ${s.addressAttribute} attribute is not an address`);
        continue;
      }
      if (!this.#isLocalDomain(address.slice(address.lastIndexOf("@") + 1))) {
        this.#warnOnce(`foreign:${g.path}:${address}`, { group: g.path, address }, "list ignored: its address is not in a local domain");
        continue;
      }
      const other = byAddress.get(address);
      if (other) {
        this.#warnOnce(`dup:${address}`, { address, kept: other.path, ignored: g.path }, "two list groups have the same address; the first (by name) is used");
        continue;
      }
      const members: Member[] = [];
      await this.#expand(g, new Set(), members);
      const usable = members.filter((m) => m.enabled && m.email !== null);
      const emails = [...new Set(usable.map((m) => m.email!))];
      const logins = new Set(usable.map((m) => m.username));
      const p = g.attributes[s.postingAttribute]?.[0]?.trim().toLowerCase();
      let posting = s.defaultPosting;
      if (p !== undefined && p !== "") {
        if ((POSTINGS as readonly string[]).includes(p)) posting = p as Posting;
        else this.#warnOnce(`posting:${g.path}:${p}`, { group: g.path, value: p.slice(0, 40) }, `list ${s.postingAttribute} is not one of ${POSTINGS.join(", ")}; using ${s.defaultPosting}`);
      }
      const sa = g.attributes[s.sendAsAttribute]?.[0]?.trim();
      let sendAs: ReadonlySet<string> = new Set();
      if (sa === "members") sendAs = logins;
      else if (sa !== undefined && sa !== "" && sa !== "nobody") {
        let set = sendAsGroups.get(sa);
        if (set === undefined) {
          const sg = sa.startsWith("/") ? await this.#groupByPath(sa) : null;
          if (sg === null) {
            this.#warnOnce(`sendas:${g.path}:${sa}`, { group: g.path, value: sa.slice(0, 100) }, `list ${s.sendAsAttribute} is neither "members" nor an existing group path: nobody may send as it`);
            set = new Set();
          } else {
            const ms: Member[] = [];
            await this.#expand(sg, new Set(), ms);
            set = new Set(ms.filter((m) => m.enabled).map((m) => m.username));
          }
          sendAsGroups.set(sa, set);
        }
        sendAs = set;
      }
      byAddress.set(address, { address, path: g.path, members: emails, logins, posting, sendAs });
    }
    return { byAddress, requests: this.#requests, ms: performance.now() - started };
  }
}

const NONE: ListLookup = Object.freeze({ kind: "none" });

export interface ListCacheSettings {
  readonly ttlSeconds: number;
  readonly staleSeconds: number;
}

/** The snapshot cache: fresh snapshots answer synchronously; one refresh at a time. */
export class ListDirectory {
  readonly #read: () => Promise<ListSnapshot>;
  #settings: ListCacheSettings;
  readonly #log: Logger;
  #snap: { readonly snap: ListSnapshot; readonly at: number } | null = null;
  #inflight: Promise<ListSnapshot | string> | null = null;
  #generation = 0;
  /** Refreshes done (for the benchmark and tests). */
  refreshes = 0;

  constructor(read: () => Promise<ListSnapshot>, settings: ListCacheSettings, log: Logger) {
    this.#read = read;
    this.#settings = settings;
    this.#log = log;
  }

  reconfigure(settings: ListCacheSettings): void {
    this.#settings = settings;
  }

  clear(): void {
    this.#generation++;
    this.#snap = null;
  }

  #answer(snap: ListSnapshot | string, addr: string): ListLookup {
    if (typeof snap === "string") return { kind: "unavailable", reason: snap };
    const l = snap.byAddress.get(addr);
    return l === undefined ? NONE : { kind: "list", list: l };
  }

  lookup(addr: string): Maybe<ListLookup> {
    const now = Date.now();
    const cur = this.#snap;
    if (cur && now < cur.at + this.#settings.ttlSeconds * 1000) return this.#answer(cur.snap, addr);
    return this.#refresh().then((s) => this.#answer(s, addr));
  }

  #refresh(): Promise<ListSnapshot | string> {
    if (this.#inflight) return this.#inflight;
    const gen = this.#generation;
    const p = this.#read().then(
      (snap): ListSnapshot => {
        this.refreshes++;
        if (gen === this.#generation) this.#snap = { snap, at: Date.now() };
        this.#log.info({ lists: snap.byAddress.size, members: [...snap.byAddress.values()].reduce((n, l) => n + l.members.length, 0), requests: snap.requests, ms: Math.round(snap.ms) }, "lists read from Keycloak");
        return snap;
      },
      (err: unknown): ListSnapshot | string => {
        const reason = err instanceof Error ? err.message : String(err);
        const cur = this.#snap;
        const s = this.#settings;
        if (cur && Date.now() < cur.at + (s.ttlSeconds + s.staleSeconds) * 1000) {
          this.#log.warn({ reason }, "lists cannot be read from Keycloak; serving the last ones read");
          return cur.snap;
        }
        this.#log.warn({ reason }, "lists cannot be read from Keycloak");
        return reason;
      },
    ).finally(() => {
      this.#inflight = null;
    });
    this.#inflight = p;
    return p;
  }
}
