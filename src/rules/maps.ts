// The socketmap maps (alias, domain, mailbox, senders) as pure functions of
// the key and plain facts: what each answers and in which lookup order.
// Postfix sends a socketmap only the complete key (no +extension stripping,
// no @domain fallback), so the alias map does that search itself. Each
// answer carries a reason code (for tests and the README tables) and, for a
// problem an admin should hear about once, a warning for the caller to log.

import { NOTFOUND, ok, temp, type SocketmapReply } from "../protocol/socketmap.js";
import { normalize, split, stripExtension, withExtension, type SplitAddress } from "./address.js";
import { isLocal, sendingDisabledBy, type AddressRows, type AliasTarget, type ListLookup, type MailList, type RuleSettings, type UserLookup } from "./facts.js";

export const MAP_NAMES = ["alias", "domain", "mailbox", "senders"] as const;
export type MapName = (typeof MAP_NAMES)[number];

/**
 * Postfix's socketmap_max_reply_size default: a longer reply is a lookup
 * error on its side. A list whose expansion does not fit gets this TEMP (mail
 * is deferred, never delivered to part of the list) and one error line.
 */
export const MAX_REPLY_BYTES = 100_000;

// A failing lookup of the identity provider has no Go counterpart (the Go
// socketmap reads only the DB) and keeps a reason for Postfix's log; a DB
// error is a bare TEMP, as the Go version answers it.
export const IDP_TEMP = temp("identity provider lookup failed");
export const DB_TEMP = temp("");
const LIST_TOO_LARGE = temp("list expansion exceeds socketmap_max_reply_size");

/** A problem worth one log line per `key` (the caller keeps the "once"). */
export interface MapWarning {
  readonly key: string;
  readonly level: "warn" | "error";
  readonly fields: Readonly<Record<string, unknown>>;
  readonly msg: string;
}

export interface MapAnswer {
  readonly reply: SocketmapReply;
  readonly reason: string;
  readonly warning?: MapWarning;
}

// Not frozen: OK answers are made per lookup, and freezing a fresh object costs more than the lookup's rule (measured).
const answer = (reply: SocketmapReply, reason: string): MapAnswer => ({ reply, reason });
const fixed = (reply: SocketmapReply, reason: string): MapAnswer => Object.freeze(answer(reply, reason));

/** Constant answers (shared: the hot path allocates none for them). */
export const ANSWERS = {
  noAddress: fixed(NOTFOUND, "no-address"),
  notLocal: fixed(NOTFOUND, "not-local"),
  aliasDisabled: fixed(NOTFOUND, "alias-disabled"),
  noAlias: fixed(NOTFOUND, "no-alias"),
  catchAllUser: fixed(NOTFOUND, "catch-all-user-exists"),
  listIsUser: fixed(NOTFOUND, "list-is-user"),
  listEmpty: fixed(NOTFOUND, "list-empty"),
  userDisabled: fixed(NOTFOUND, "user-disabled"),
  noSuchUser: fixed(NOTFOUND, "no-such-user"),
  noSenders: fixed(NOTFOUND, "no-senders"),
  idpTemp: fixed(IDP_TEMP, "idp-unavailable"),
  idpFailOpen: fixed(NOTFOUND, "idp-unavailable-fail-open"),
  unknownMap: fixed(NOTFOUND, "unknown-map"),
  dbError: fixed(DB_TEMP, "database-error"),
  internalError: fixed(DB_TEMP, "internal-error"),
} as const;
const A = ANSWERS;

/** The key as the maps read it: normalised and split once. */
export interface MapView {
  readonly map: string;
  /** The key as Postfix sent it (for the log line). */
  readonly rawKey: string;
  readonly key: string;
  /** null for a key without a local part and a domain (a bare domain, say). */
  readonly parts: SplitAddress | null;
  /** The key without its extension, and the extension ("+tag"). */
  readonly base: string | null;
  readonly ext: string;
}

export function mapView(map: string, rawKey: string, s: RuleSettings): MapView {
  const key = normalize(rawKey);
  const x = stripExtension(key, s.delimiter);
  return { map, rawKey, key, parts: split(key), base: x?.base ?? null, ext: x?.ext ?? "" };
}

/** What the maps may need; names not yet set are asked for (see src/rules/facts.ts). */
export interface MapFacts {
  readonly settings: RuleSettings;
  readonly listsOn: boolean;
  /** A store read failed (its message): the answer is then a bare TEMP. */
  storeError?: string | undefined;
  /** The `domains` row of the key's domain (the key itself for the domain map): enabled, or null when absent. */
  domainRow?: boolean | null | undefined;
  rows?: AddressRows | undefined;
  /** The list at the key (exact, then without extension). */
  list?: ListLookup | undefined;
  /** The user whose primary email is the key. */
  user?: UserLookup | undefined;
  /** The user whose primary email is the key without its extension. */
  baseUser?: UserLookup | undefined;
  alias?: AliasTarget | null | undefined;
  baseAlias?: AliasTarget | null | undefined;
  delegates?: readonly string[] | undefined;
  baseDelegates?: readonly string[] | undefined;
  /** Enabled apps allowed to send as the key. */
  apps?: readonly string[] | undefined;
}

export type MapNeed = Exclude<keyof MapFacts, "settings" | "listsOn" | "storeError">;

/** Answer one lookup, or name the next fact it needs. */
export function answerMap(v: MapView, f: MapFacts): MapAnswer | MapNeed {
  if (f.storeError !== undefined) return A.dbError;
  switch (v.map) {
    case "alias":
      return alias(v, f);
    case "domain": {
      const local = localDomain(v.key, f);
      return typeof local === "string" ? local : local ? answer(ok(v.key), "domain-local") : A.notLocal;
    }
    case "mailbox":
      return mailbox(v, f);
    case "senders":
      return senders(v, f);
    default:
      return A.unknownMap; // as the Go version answers a map it does not serve
  }
}

function localDomain(domain: string, f: MapFacts): boolean | "domainRow" {
  if (f.settings.configDomains.has(domain)) return true;
  return f.domainRow === undefined ? "domainRow" : f.domainRow === true;
}

/** Outage handling for IdP-dependent answers: TEMP, or the fail-open answer. */
function outage(f: MapFacts, failOpen: MapAnswer): MapAnswer {
  return f.settings.failureMode === "tempfail" ? A.idpTemp : failOpen;
}

/** The user at the key without its extension (the key itself when it has none). */
function addressUser(v: MapView, f: MapFacts): UserLookup | "user" | "baseUser" {
  if (v.base === null) return f.user ?? "user";
  return f.baseUser ?? "baseUser";
}

/**
 * alias: exact address, then without its extension (the extension is put
 * back on the result), then a list, then the domain's catch-all, which never
 * captures the address of an existing user. Bare domains are never aliases.
 */
function alias(v: MapView, f: MapFacts): MapAnswer | MapNeed {
  const parts = v.parts;
  if (!parts) return A.noAddress;
  const rows = f.rows;
  if (rows === undefined) return "rows";
  if (!isLocal(f.settings, parts.domain, rows.domainEnabled)) return A.notLocal;
  const exact = rows.exact;
  if (exact) return exact.active ? answer(ok(`${exact.targetUser}@${exact.domain}`), "alias") : A.aliasDisabled;
  if (v.base !== null && rows.base) {
    const base = rows.base;
    return base.active ? answer(ok(withExtension(`${base.targetUser}@${base.domain}`, v.ext)), "alias-without-extension") : A.aliasDisabled;
  }
  if (f.listsOn) {
    const l = f.list;
    if (l === undefined) return "list";
    if (l.kind === "unavailable") return outage(f, A.idpFailOpen);
    if (l.kind === "list") return list(v, f, l.list);
  }
  const c = rows.catchAll;
  if (!c || !c.active) return A.noAlias;
  const u = addressUser(v, f);
  if (typeof u === "string") return u;
  if (u.kind === "unavailable") return outage(f, A.idpFailOpen);
  if (u.kind === "found") return A.catchAllUser; // a real mailbox
  return answer(ok(`${c.targetUser}@${c.domain}`), "catch-all");
}

/**
 * A list's members, comma-separated (virtual_alias_maps' form). A user whose
 * primary email is the list address wins (the list is ignored, one warning);
 * an outage is the failure mode, never a shorter list.
 */
function list(v: MapView, f: MapFacts, l: MailList): MapAnswer | MapNeed {
  const u = addressUser(v, f);
  if (typeof u === "string") return u;
  if (u.kind === "unavailable") return outage(f, A.idpFailOpen);
  if (u.kind === "found") {
    return {
      ...A.listIsUser,
      warning: { key: `user:${l.address}`, level: "warn", fields: { address: l.address, group: l.path, user: u.value.username }, msg: "list address is also a user's email: the user's mailbox wins, the list is ignored" },
    };
  }
  if (l.members.length === 0) return A.listEmpty;
  const value = l.members.join(",");
  // Postfix limits the reply in bytes ("OK " + value), not in UTF-16 units.
  const bytes = Buffer.byteLength(value, "utf8") + 3;
  if (bytes > MAX_REPLY_BYTES) {
    return {
      reply: LIST_TOO_LARGE, reason: "list-too-large",
      warning: {
        key: `large:${l.address}`, level: "error",
        fields: { address: l.address, group: l.path, members: l.members.length, bytes, max: MAX_REPLY_BYTES },
        msg: "list expansion is larger than Postfix's socketmap_max_reply_size: answered TEMP (mail to it is deferred); split the list into subgroup lists",
      },
    };
  }
  return answer(ok(value), "list");
}

/**
 * mailbox: an enabled user's primary email (with or without extension) in a
 * local domain. The value is "domain/local/" (a maildir path in
 * virtual_mailbox_base's convention); Postfix uses the answer for
 * recipient validation, and virtual(8) refuses socketmap tables, so
 * delivery goes to Dovecot over LMTP (configs/postfix-main.cf).
 */
function mailbox(v: MapView, f: MapFacts): MapAnswer | MapNeed {
  const parts = v.parts;
  if (!parts) return A.noAddress;
  const local = localDomain(parts.domain, f);
  if (typeof local === "string") return local;
  if (!local) return A.notLocal;
  const path = (addr: string, reason: string): MapAnswer => {
    const p = split(addr)!;
    return answer(ok(`${p.domain}/${p.local}/`), reason);
  };
  const u = f.user;
  if (u === undefined) return "user";
  if (u.kind === "found") return u.value.enabled ? path(v.key, "mailbox") : A.userDisabled;
  if (u.kind === "unavailable") return outage(f, path(v.base ?? v.key, "idp-unavailable-fail-open"));
  if (v.base === null) return A.noSuchUser;
  const b = f.baseUser;
  if (b === undefined) return "baseUser";
  if (b.kind === "found") return b.value.enabled ? path(v.base, "mailbox-without-extension") : A.userDisabled;
  if (b.kind === "unavailable") return outage(f, path(v.base, "idp-unavailable-fail-open"));
  return A.noSuchUser;
}

/**
 * senders (smtpd_sender_login_maps): the logins that may use this sender
 * address: those a list lets send as it, the user whose primary email it is
 * (unless sending is disabled for them), the owner of the alias, the logins
 * delegated to send as it (or as it without its extension, in a local
 * domain), and the enabled apps allowed it.
 */
function senders(v: MapView, f: MapFacts): MapAnswer | MapNeed {
  if (!v.parts) return A.noAddress;
  const tempfail = f.settings.failureMode === "tempfail";
  const logins: string[] = [];
  const add = (login: string): void => {
    if (!logins.includes(login)) logins.push(login);
  };
  let failedOpen = false;
  if (f.listsOn) {
    const l = f.list;
    if (l === undefined) return "list";
    if (l.kind === "unavailable") {
      if (tempfail) return A.idpTemp;
      failedOpen = true;
    }
    if (l.kind === "list") for (const login of l.list.sendAs) add(login);
  }
  let u = f.user;
  if (u === undefined) return "user";
  if (u.kind === "notfound" && v.base !== null) {
    u = f.baseUser;
    if (u === undefined) return "baseUser";
  }
  if (u.kind === "unavailable") {
    if (tempfail) return A.idpTemp;
    failedOpen = true;
  } else if (u.kind === "found" && u.value.enabled && !sendingDisabledBy(f.settings.sendAllowedAttribute, u.value.attributes)) add(u.value.username);
  // The alias of the key, else of the key without its extension.
  const a = f.alias;
  if (a === undefined) return "alias";
  if (a !== null) {
    if (a.active) add(a.targetUser);
  } else if (v.base !== null) {
    const b = f.baseAlias;
    if (b === undefined) return "baseAlias";
    if (b?.active) add(b.targetUser);
  }
  const local = localDomain(v.parts.domain, f);
  if (typeof local === "string") return local;
  if (local) {
    const d = f.delegates;
    if (d === undefined) return "delegates";
    for (const login of d) add(login);
    if (v.base !== null) {
      const bd = f.baseDelegates;
      if (bd === undefined) return "baseDelegates";
      for (const login of bd) add(login);
    }
  }
  const apps = f.apps;
  if (apps === undefined) return "apps";
  for (const app of apps) add(app);
  if (logins.length > 0) return answer(ok(logins.join(",")), failedOpen ? "idp-unavailable-fail-open" : "senders");
  return failedOpen ? A.idpFailOpen : A.noSenders;
}
