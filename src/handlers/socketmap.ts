// The socketmap maps: what each answers and in which lookup order. Postfix
// sends a socketmap only the complete key (no +extension stripping, no
// @domain fallback), so the alias map does that search itself.

import type { Logger } from "pino";
import type { Facts } from "../facts.js";
import { StoreError } from "../store/errors.js";
import type { AliasTarget } from "../store/types.js";
import type { CachedLookup } from "../directory/cache.js";
import { normalize, split, withExtension } from "../rules/address.js";
import {
  NOTFOUND, ok, temp, formatSocketmapReply, isBlankRequest, parseSocketmapRequest,
  type SocketmapReply,
} from "../protocol/socketmap.js";
import { encodeNetstring, netstring, NetstringDecoder } from "../protocol/netstring.js";
import type { Framing, Protocol } from "../server/listener.js";
import { then } from "./maybe.js";
import type { ListLookup } from "../directory/lists.js";

export const MAP_NAMES = ["alias", "domain", "mailbox", "senders"] as const;
export type MapName = (typeof MAP_NAMES)[number];

type Answer = SocketmapReply | Promise<SocketmapReply>;

export interface SocketmapEvents {
  onRequest?(map: string, status: SocketmapReply["status"], seconds: number): void;
}

// A failing lookup of the identity provider has no Go counterpart (the Go
// socketmap reads only the DB) and keeps a reason for Postfix's log; a DB
// error is a bare TEMP, as the Go version answers it.
const IDP_TEMP = temp("identity provider lookup failed");
const DB_TEMP = temp("");
/** Distinct unknown map names warned about; more are not (a misconfigured map is one name). */
const MAX_UNKNOWN_MAPS_WARNED = 16;
/**
 * Postfix's socketmap_max_reply_size default: a longer reply is a lookup
 * error on its side. A list whose expansion does not fit gets this TEMP (mail
 * is deferred, never delivered to part of the list) and one error line.
 */
export const MAX_REPLY_BYTES = 100_000;
const LIST_TOO_LARGE = temp("list expansion exceeds socketmap_max_reply_size");

export class SocketmapHandler {
  readonly #facts: Facts;
  readonly #log: Logger;
  readonly #events: SocketmapEvents;
  readonly #unknownMaps = new Set<string>();
  readonly #warned = new Set<string>();

  constructor(facts: Facts, log: Logger, events: SocketmapEvents = {}) {
    this.#facts = facts;
    this.#log = log;
    this.#events = events;
  }

  /** Answer one lookup; never throws. */
  answer(map: string, rawKey: string): Answer {
    const timed = this.#events.onRequest !== undefined || this.#log.isLevelEnabled("debug");
    const started = timed ? performance.now() : 0;
    let result: Answer;
    try {
      result = this.#facts.store.within(() => this.#dispatch(map, normalize(rawKey)));
    } catch (err) {
      result = this.#failed(err);
    }
    if (result instanceof Promise) {
      const settled = result.catch((err: unknown) => this.#failed(err));
      return timed ? settled.then((r) => this.#report(map, rawKey, r, started)) : settled;
    }
    return timed ? this.#report(map, rawKey, result, started) : result;
  }

  #report(map: string, rawKey: string, r: SocketmapReply, started: number): SocketmapReply {
    const seconds = (performance.now() - started) / 1000;
    this.#events.onRequest?.(map, r.status, seconds);
    if (this.#log.isLevelEnabled("debug")) this.#log.debug({ map, key: rawKey, status: r.status, ms: seconds * 1000 }, "socketmap lookup");
    return r;
  }

  #failed(err: unknown): SocketmapReply {
    // An outage the store has announced (one line) is not logged again per request.
    if (err instanceof StoreError && err.kind === "unavailable" && this.#facts.store.problem !== null) return DB_TEMP;
    const sqlite = err instanceof StoreError;
    this.#log.error({ err: err instanceof Error ? err.message : String(err) }, sqlite ? "database error during socketmap lookup" : "internal error during socketmap lookup");
    return DB_TEMP;
  }

  #dispatch(map: string, key: string): Answer {
    switch (map) {
      case "alias":
        return this.alias(key);
      case "domain":
        return this.#facts.isLocalDomain(key) ? ok(key) : NOTFOUND;
      case "mailbox":
        return this.mailbox(key);
      case "senders":
        return this.senders(key);
      default:
        return this.#unknownMap(map);
    }
  }

  /** NOTFOUND, as the Go version answers a map it does not serve; the first lookup of each name is logged. */
  #unknownMap(map: string): SocketmapReply {
    const name = map.slice(0, 40);
    if (!this.#unknownMaps.has(name) && this.#unknownMaps.size < MAX_UNKNOWN_MAPS_WARNED) {
      this.#unknownMaps.add(name);
      this.#log.warn({ map: name }, `socketmap lookup in unknown map ${JSON.stringify(name)} answered NOTFOUND; mailcloak serves ${MAP_NAMES.join(", ")} (check the map name in main.cf)`);
    }
    return NOTFOUND;
  }

  /** Outage handling for IdP-dependent answers: TEMP, or the fail-open answer. */
  #outage(failOpen: SocketmapReply): SocketmapReply {
    return this.#facts.settings.failureMode === "tempfail" ? IDP_TEMP : failOpen;
  }

  /**
   * alias: exact address, then without its extension (the extension is put
   * back on the result), then the domain's catch-all, which never captures
   * the address of an existing user. Bare domains are never aliases.
   */
  alias(key: string): Answer {
    const f = this.#facts;
    const parts = split(key);
    if (!parts) return NOTFOUND;
    const ext = f.strip(key);
    const rows = f.store.addressRows(key, ext ? ext.base : null, parts.domain);
    if (!f.isLocal(parts.domain, rows.domainEnabled)) return NOTFOUND;
    const exact = rows.exact;
    if (exact) return exact.active ? ok(`${exact.targetUser}@${exact.domain}`) : NOTFOUND;
    if (ext && rows.base) {
      const base = rows.base;
      return base.active ? ok(withExtension(`${base.targetUser}@${base.domain}`, ext.ext)) : NOTFOUND;
    }
    if (f.lists !== null) return then(f.list(key), (l: ListLookup): Answer => (l.kind === "none" ? this.#catchAll(key, ext ? ext.base : null, rows.catchAll) : this.#list(key, ext ? ext.base : key, l)));
    return this.#catchAll(key, ext ? ext.base : null, rows.catchAll);
  }

  #warnOnce(key: string, fields: Record<string, unknown>, msg: string, level: "warn" | "error" = "warn"): void {
    if (this.#warned.has(key) || this.#warned.size > 1000) return;
    this.#warned.add(key);
    this.#log[level](fields, msg);
  }

  /**
   * A list's members, comma-separated (virtual_alias_maps' form). A user whose
   * primary email is the list address wins (the list is ignored, one warning);
   * an outage is the failure mode, never a shorter list.
   */
  #list(key: string, base: string, l: ListLookup): Answer {
    if (l.kind === "unavailable") return this.#outage(NOTFOUND);
    if (l.kind !== "list") return NOTFOUND;
    const list = l.list;
    return then(this.#facts.userByEmail(base), (u: CachedLookup): SocketmapReply => {
      if (u.lookup.kind === "unavailable") return this.#outage(NOTFOUND);
      if (u.lookup.kind === "found") {
        this.#warnOnce(`user:${list.address}`, { address: list.address, group: list.path, user: u.lookup.value.username }, "list address is also a user's email: the user's mailbox wins, the list is ignored");
        return NOTFOUND;
      }
      if (list.members.length === 0) return NOTFOUND;
      const value = list.members.join(",");
      if (value.length + 3 > MAX_REPLY_BYTES) {
        this.#warnOnce(`large:${list.address}`, { address: list.address, group: list.path, members: list.members.length, bytes: value.length + 3, max: MAX_REPLY_BYTES },
          "list expansion is larger than Postfix's socketmap_max_reply_size: answered TEMP (mail to it is deferred); split the list into subgroup lists", "error");
        return LIST_TOO_LARGE;
      }
      void key;
      return ok(value);
    });
  }

  #catchAll(key: string, base: string | null, catchAll: AliasTarget | undefined): Answer {
    const f = this.#facts;
    if (!catchAll || !catchAll.active) return NOTFOUND;
    return then(f.userByEmail(base ?? key), (u: CachedLookup): SocketmapReply => {
      if (u.lookup.kind === "unavailable") return this.#outage(NOTFOUND);
      if (u.lookup.kind === "found") return NOTFOUND; // a real mailbox
      return ok(`${catchAll.targetUser}@${catchAll.domain}`);
    });
  }

  /**
   * mailbox: an enabled user's primary email (with or without extension) in a
   * local domain. The value is "domain/local/" (a maildir path in
   * virtual_mailbox_base's convention); Postfix uses the answer for
   * recipient validation, and virtual(8) refuses socketmap tables, so
   * delivery goes to Dovecot over LMTP (configs/postfix-main.cf).
   */
  mailbox(key: string): Answer {
    const f = this.#facts;
    const parts = split(key);
    if (!parts || !f.isLocalDomain(parts.domain)) return NOTFOUND;
    const ext = f.strip(key);
    const path = (addr: string): string => {
      const p = split(addr)!;
      return `${p.domain}/${p.local}/`;
    };
    return then(f.userByEmail(key), (u: CachedLookup): Answer => {
      if (u.lookup.kind === "found") return u.lookup.value.enabled ? ok(path(key)) : NOTFOUND;
      if (u.lookup.kind === "unavailable") return this.#outage(ok(path(ext ? ext.base : key)));
      if (!ext) return NOTFOUND;
      return then(f.userByEmail(ext.base), (b: CachedLookup): SocketmapReply => {
        if (b.lookup.kind === "found") return b.lookup.value.enabled ? ok(path(ext.base)) : NOTFOUND;
        if (b.lookup.kind === "unavailable") return this.#outage(ok(path(ext.base)));
        return NOTFOUND;
      });
    });
  }

  /**
   * senders (smtpd_sender_login_maps): the logins that may use this sender
   * address: the user whose primary email it is (unless sending is disabled
   * for them), the owner of the alias, the logins delegated to send as it
   * (or as it without its extension), and the enabled apps allowed it.
   */
  senders(key: string): Answer {
    const f = this.#facts;
    if (!split(key)) return NOTFOUND;
    const ext = f.strip(key);
    const logins: string[] = [];
    const add = (login: string): void => {
      if (!logins.includes(login)) logins.push(login);
    };
    const addUser = (u: CachedLookup): boolean => {
      if (u.lookup.kind === "unavailable") return false;
      if (u.lookup.kind === "found" && u.lookup.value.enabled && !f.sendingDisabled(u.lookup.value.attributes)) add(u.lookup.value.username);
      return true;
    };
    const finish = (idpOk: boolean): SocketmapReply => {
      if (!idpOk && f.settings.failureMode === "tempfail") return IDP_TEMP;
      for (const k of ext ? [key, ext.base] : [key]) {
        const a = f.alias(k);
        if (a?.active) add(a.targetUser);
        if (a) break;
      }
      for (const k of ext ? [key, ext.base] : [key]) for (const login of f.delegatedLogins(k)) add(login);
      for (const app of f.store.appsForSender(key)) add(app);
      return logins.length > 0 ? ok(logins.join(",")) : NOTFOUND;
    };
    const users = (): Answer => then(f.userByEmail(key), (u: CachedLookup): Answer => {
      if (u.lookup.kind !== "notfound" || !ext) return finish(addUser(u));
      return then(f.userByEmail(ext.base), (b: CachedLookup) => finish(addUser(b)));
    });
    if (f.lists === null) return users();
    // Logins a list lets send as its address come first; an outage of the lists is the failure mode.
    return then(f.list(key), (l: ListLookup): Answer => {
      if (l.kind === "unavailable" && f.settings.failureMode === "tempfail") return IDP_TEMP;
      if (l.kind === "list") for (const login of l.list.sendAs) add(login);
      return users();
    });
  }
}

/** Wire protocol glue: netstrings in, netstrings out, one request at a time. */
export function socketmapProtocol(handler: SocketmapHandler): Protocol<Buffer> {
  // As the Go version: a blank payload is NOTFOUND, one without "name key" a bare TEMP.
  const blank = encodeNetstring(formatSocketmapReply(NOTFOUND));
  const malformed = encodeNetstring(formatSocketmapReply(temp("")));
  const cache = new Map<SocketmapReply, Buffer>();
  const encode = (r: SocketmapReply): string | Buffer => {
    // Constant replies (NOTFOUND, TEMP) are encoded once.
    if (r.status === "OK") return netstring(formatSocketmapReply(r));
    let b = cache.get(r);
    if (!b) {
      b = encodeNetstring(formatSocketmapReply(r));
      if (cache.size < 64) cache.set(r, b);
    }
    return b;
  };
  return {
    name: "socketmap",
    newFraming(max: number): Framing<Buffer> {
      const d = new NetstringDecoder(max);
      return {
        push: (chunk) => {
          const r = d.push(chunk);
          return { items: r.frames, error: r.error };
        },
        get midRequest() {
          return d.pending > 0;
        },
      };
    },
    handle(payload: Buffer) {
      const req = parseSocketmapRequest(payload);
      if (!req) return isBlankRequest(payload) ? blank : malformed;
      const r = handler.answer(req.map, req.key);
      return r instanceof Promise ? r.then(encode) : encode(r);
    },
  };
}
