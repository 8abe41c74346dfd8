// The admin service: every change to domains, aliases and apps, with its
// rules, for both mailcloakctl and mailcloak-admin (HTTP API and web UI).
// The store validates and writes in one transaction per action; this layer
// adds what is not SQL (hashing, who may touch what) and one audit line per
// change. Secrets never reach the audit sink.

import { randomBytes } from "node:crypto";
import { normalize } from "../rules/address.js";
import { StoreError } from "../store/errors.js";
import type { AdminStore, AliasRow, AppRow, DelegationRow, DomainRow } from "../store/types.js";
import { senderAddress, normalizeLogin, validAppId } from "../store/validate.js";

/** Who asked for a change, and from where. */
export interface Actor {
  /** A login name, "token" for the bearer token, or the local OS user for the CLI. */
  readonly name: string;
  readonly via: "cli" | "api" | "web";
  /** The client address (HTTP), or null. */
  readonly from: string | null;
}

export interface AuditEntry {
  readonly who: string;
  readonly via: Actor["via"];
  readonly from: string | null;
  readonly action: string;
  readonly target: string;
}

export type AuditSink = (entry: AuditEntry) => void;

/** A signed-in user as the identity provider describes them. */
export interface SelfUser {
  readonly username: string;
  /** Primary address (lower-cased), or null when the user has none. */
  readonly email: string | null;
}

export interface SelfView {
  readonly username: string;
  readonly email: string | null;
  readonly aliases: AliasRow[];
  readonly apps: AppRow[];
}

/** What the identity source says about a login (admin/login-check.ts). */
export type LoginStatus = { kind: "enabled" | "disabled" | "notfound" } | { kind: "unavailable"; reason: string };
export type LoginCheck = (login: string) => Promise<LoginStatus>;

/** What a delegation is checked against before it is written. */
export interface DelegationChecks {
  /** policy.domain of the config (local besides the domains table). */
  readonly configDomains?: ReadonlySet<string> | undefined;
  /** The identity source; without it the login is not checked (the caller says so). */
  readonly loginCheck?: LoginCheck | undefined;
}

/** hash-wasm is loaded on first use: most mailcloakctl commands never hash. */
async function hash(password: string): Promise<string> {
  const { hashAppPassword } = await import("../store/password.js");
  return hashAppPassword(password);
}

/** The password is refused before anything is hashed or written. */
function checkPassword(password: string): void {
  if (password === "") throw new StoreError("invalid", "password is empty; nothing written");
}

/** Self-service app labels: short, and safe in an SMTP login name. */
const LABEL = /^[a-z0-9][a-z0-9_-]{0,31}$/;
/**
 * A generated app password: 24 random bytes, base64url (32 characters),
 * never starting with "-" (mail clients and CLIs such as swaks would read
 * it as an option).
 */
export function generatedPassword(): string {
  for (;;) {
    const p = randomBytes(GENERATED_PASSWORD_BYTES).toString("base64url");
    if (!p.startsWith("-")) return p;
  }
}

/** Generated app passwords: 24 random bytes, base64url (32 characters). */
const GENERATED_PASSWORD_BYTES = 24;

export class AdminService {
  readonly store: AdminStore;
  readonly #audit: AuditSink;

  constructor(store: AdminStore, audit: AuditSink = () => undefined) {
    this.store = store;
    this.#audit = audit;
  }

  #log(actor: Actor, action: string, target: string): void {
    this.#audit({ who: actor.name, via: actor.via, from: actor.from, action, target });
  }

  // Domains -----------------------------------------------------------------

  async listDomains(): Promise<DomainRow[]> {
    return this.store.listDomains();
  }

  async addDomain(actor: Actor, domain: string): Promise<string> {
    const d = await this.store.addDomain(domain);
    this.#log(actor, "domain.add", d);
    return d;
  }

  async deleteDomain(actor: Actor, domain: string): Promise<{ domain: string; aliases: number }> {
    const r = await this.store.deleteDomain(domain);
    this.#log(actor, "domain.delete", r.domain);
    return r;
  }

  async setDomainEnabled(actor: Actor, domain: string, enabled: boolean): Promise<string> {
    const d = await this.store.setDomainEnabled(domain, enabled);
    this.#log(actor, enabled ? "domain.enable" : "domain.disable", d);
    return d;
  }

  // Aliases -----------------------------------------------------------------

  async listAliases(user?: string): Promise<AliasRow[]> {
    return this.store.listAliases(user === undefined || user.trim() === "" ? undefined : user);
  }

  async addAlias(actor: Actor, alias: string, user: string): Promise<AliasRow> {
    const r = await this.store.addAlias(alias, user);
    this.#log(actor, "alias.add", `${r.alias_email} -> ${r.target_user}`);
    return r;
  }

  async deleteAlias(actor: Actor, alias: string): Promise<string> {
    const a = await this.store.deleteAlias(alias);
    this.#log(actor, "alias.delete", a);
    return a;
  }

  async setAliasEnabled(actor: Actor, alias: string, enabled: boolean): Promise<string> {
    const a = await this.store.setAliasEnabled(alias, enabled);
    this.#log(actor, enabled ? "alias.enable" : "alias.disable", a);
    return a;
  }

  // Apps --------------------------------------------------------------------

  async listApps(): Promise<AppRow[]> {
    return this.store.listApps();
  }

  /** Create an app or replace its password (and enable it). */
  async setAppPassword(actor: Actor, appId: string, password: string): Promise<{ appId: string; created: boolean }> {
    validAppId(appId); // before the (deliberately slow) hash
    checkPassword(password);
    const r = await this.store.upsertApp(appId, await hash(password));
    this.#log(actor, r.created ? "app.add" : "app.password", r.appId);
    return r;
  }

  async deleteApp(actor: Actor, appId: string): Promise<string> {
    const id = await this.store.deleteApp(appId);
    this.#log(actor, "app.delete", id);
    return id;
  }

  async setAppEnabled(actor: Actor, appId: string, enabled: boolean): Promise<string> {
    const id = await this.store.setAppEnabled(appId, enabled);
    this.#log(actor, enabled ? "app.enable" : "app.disable", id);
    return id;
  }

  async allowAppSender(actor: Actor, appId: string, fromAddr: string): Promise<{ appId: string; fromAddr: string }> {
    const r = await this.store.allowAppSender(appId, fromAddr);
    this.#log(actor, "app.allow", `${r.appId} as ${r.fromAddr}`);
    return r;
  }

  async disallowAppSender(actor: Actor, appId: string, fromAddr: string): Promise<{ appId: string; fromAddr: string }> {
    const r = await this.store.disallowAppSender(appId, fromAddr);
    this.#log(actor, "app.disallow", `${r.appId} as ${r.fromAddr}`);
    return r;
  }

  // Delegated senders (send-as) ---------------------------------------------
  // A login may send as an address it does not own once an admin allows it.
  // Refused, with nothing written: an invalid address, an address outside the
  // local domains, an app id (apps have apps allow), a login the identity
  // source does not know or cannot be asked about.

  async listSenders(login?: string): Promise<DelegationRow[]> {
    return this.store.listDelegations(login === undefined || login.trim() === "" ? undefined : login);
  }

  async allowSender(actor: Actor, address: string, login: string, checks: DelegationChecks = {}): Promise<{ row: DelegationRow; created: boolean }> {
    const addr = senderAddress(address);
    const who = normalizeLogin(login);
    const domain = addr.slice(addr.lastIndexOf("@") + 1);
    const local = checks.configDomains?.has(domain) === true || (await this.store.listDomains()).some((d) => d.domain_name === domain);
    if (!local) {
      throw new StoreError("invalid", `domain ${domain} is not a local domain; a delegation is only for local addresses (add the domain with: mailcloakctl domains add ${domain}); nothing written`);
    }
    if ((await this.store.listApps()).some((a) => a.app_id.toLowerCase() === who)) {
      throw new StoreError("invalid", `${who} is an app; let it send as ${addr} with: mailcloakctl apps allow ${who} ${addr}; nothing written`);
    }
    if (checks.loginCheck !== undefined) {
      const st = await checks.loginCheck(who);
      if (st.kind === "notfound") throw new StoreError("invalid", `unknown login ${who}: no such user in the identity source (check the username); nothing written`);
      if (st.kind === "unavailable") throw new StoreError("invalid", `cannot check login ${who}: identity source unavailable (${st.reason}); nothing written, try again`);
    }
    const r = await this.store.allowDelegation(addr, who);
    if (r.created) this.#log(actor, "sender.allow", `${r.row.login} as ${r.row.from_addr}`);
    return r;
  }

  async denySender(actor: Actor, address: string, login: string): Promise<{ fromAddr: string; login: string }> {
    const r = await this.store.denyDelegation(address, login);
    this.#log(actor, "sender.deny", `${r.login} as ${r.fromAddr}`);
    return r;
  }

  // Self-service --------------------------------------------------------------
  // A user sees their primary address and aliases, and manages the apps they
  // created: an app is theirs when app_owners says so, and it may send only as
  // an address that is theirs (primary address, or an enabled alias of theirs).

  async selfView(user: SelfUser): Promise<SelfView> {
    return {
      username: user.username,
      email: user.email,
      aliases: await this.store.listAliases(user.username),
      apps: await this.store.listOwnedApps(user.username),
    };
  }

  /** The SMTP login of a user's app: "<username>.<label>". */
  static ownAppId(user: SelfUser, label: string): string {
    return `${user.username}.${label}`;
  }

  /** Create an app password for `user`; the password is returned once and never stored in clear. */
  async createOwnApp(actor: Actor, user: SelfUser, rawLabel: string): Promise<{ app_id: string; password: string }> {
    const label = rawLabel.trim().toLowerCase();
    if (!LABEL.test(label)) {
      throw new StoreError("invalid", `invalid app name: ${JSON.stringify(rawLabel)} (1 to 32 of a-z, 0-9, - and _, starting with a letter or digit)`);
    }
    const appId = validAppId(AdminService.ownAppId(user, label));
    const password = generatedPassword();
    await this.store.createOwnedApp(appId, await hash(password), user.username);
    this.#log(actor, "self.app.add", appId);
    return { app_id: appId, password };
  }

  async revokeOwnApp(actor: Actor, user: SelfUser, appId: string): Promise<string> {
    const id = await this.#own(user, appId);
    await this.store.deleteApp(id);
    this.#log(actor, "self.app.delete", id);
    return id;
  }

  async allowOwnSender(actor: Actor, user: SelfUser, appId: string, fromAddr: string): Promise<{ appId: string; fromAddr: string }> {
    const id = await this.#own(user, appId);
    const addr = senderAddress(fromAddr);
    if (!(await this.ownsAddress(user, addr))) {
      throw new StoreError("forbidden", `${addr} is not one of your addresses (your primary address or one of your enabled aliases)`);
    }
    const r = await this.store.allowAppSender(id, addr);
    this.#log(actor, "self.app.allow", `${r.appId} as ${r.fromAddr}`);
    return r;
  }

  async disallowOwnSender(actor: Actor, user: SelfUser, appId: string, fromAddr: string): Promise<{ appId: string; fromAddr: string }> {
    const id = await this.#own(user, appId);
    const r = await this.store.disallowAppSender(id, fromAddr);
    this.#log(actor, "self.app.disallow", `${r.appId} as ${r.fromAddr}`);
    return r;
  }

  /** Is `addr` the user's primary address or one of their enabled aliases (in an enabled domain)? */
  async ownsAddress(user: SelfUser, addr: string): Promise<boolean> {
    if (user.email !== null && normalize(user.email) === addr) return true;
    const enabledDomains = new Set((await this.store.listDomains()).filter((d) => d.enabled).map((d) => d.domain_name));
    return (await this.store.listAliases(user.username))
      .some((a) => a.enabled && a.alias_email === addr && enabledDomains.has(a.alias_domain_name));
  }

  /** The app id when `user` owns it; an app of someone else's reads as absent. */
  async #own(user: SelfUser, appId: string): Promise<string> {
    const id = appId.trim();
    if ((await this.store.appOwner(id)) !== user.username) throw new StoreError("not-found", `no such app of yours: ${id}`);
    return id;
  }
}
