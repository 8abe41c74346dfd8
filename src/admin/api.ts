// The admin HTTP API: the Go version's routes (same paths, bodies, statuses),
// plus /api/me, /api/overview and the self-service routes under /api/self.
// Every handler is a thin call into the admin service; the rules are there.

import type { IncomingMessage, ServerResponse } from "node:http";
import { loadConfig } from "../config/load.js";
import type { Config } from "../config/types.js";
import { HttpError, readJson, sendJson, sendNoContent, str } from "./http-kit.js";
import { testIdentityProvider } from "./idp-check.js";
import { identityLoginCheck } from "./login-check.js";
import type { Actor, AdminService, SelfUser } from "./service.js";
import { applySetup, setupStatus, validateConfig } from "./setup.js";
import type { Role } from "./session.js";

/** Who is calling: the bearer token, a browser session, or nobody (--insecure-no-auth). */
export interface Caller {
  readonly actor: Actor;
  readonly role: Role;
  /** The signed-in user (sessions only). */
  readonly user: SelfUser | null;
  readonly csrf: string | null;
  readonly kind: "token" | "session" | "anonymous";
}

export interface ApiContext {
  readonly configPath: string;
  readonly dbPath: string;
  /** The service over the open DB; rejects with StoreError "missing" (503) until the DB exists. */
  service(): Promise<AdminService>;
  /** The daemon's readiness URL, when known. */
  readonly daemonReadyUrl: string | null;
  readonly oidcEnabled: boolean;
  /** An audit line for a change outside the service (the setup wizard). */
  audit(actor: Actor, action: string, target: string): void;
}

interface Request {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly caller: Caller;
  readonly params: readonly string[];
  readonly query: URLSearchParams;
  readonly ctx: ApiContext;
}

type Handler = (r: Request) => Promise<void> | void;
interface Route {
  readonly pattern: readonly string[];
  readonly methods: Partial<Record<string, Handler>>;
  /** Admins only (everything but /api/me and /api/self...). */
  readonly admin: boolean;
}

const enabledBody = async (r: Request): Promise<boolean> => {
  const body = await readJson(r.req, { enabled: "boolean" });
  if (typeof body.enabled !== "boolean") throw new HttpError(400, "missing enabled");
  return body.enabled;
};

function selfUser(r: Request): SelfUser {
  if (r.caller.user === null) throw new HttpError(403, "self-service needs a signed-in user (the bearer token is not a user)");
  return r.caller.user;
}

const configBody = async (r: Request): Promise<Record<string, unknown>> => {
  const body = await readJson(r.req, { config: "object" });
  return (body.config ?? {}) as Record<string, unknown>;
};

async function daemonReady(url: string | null): Promise<{ configured: boolean; ready: boolean; detail: string }> {
  if (url === null) return { configured: false, ready: false, detail: "not configured (set metrics.listen in the config, or --daemon-ready-url)" };
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
    const text = (await res.text()).trim().slice(0, 200);
    return { configured: true, ready: res.status === 200, detail: text || `HTTP ${res.status}` };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { configured: true, ready: false, detail: `unreachable: ${e.cause?.code ?? e.message}` };
  }
}

async function identityHealth(configPath: string): Promise<{ ok: boolean; provider: string | null; detail: string }> {
  let cfg: Config;
  try {
    cfg = loadConfig(configPath);
  } catch (err) {
    return { ok: false, provider: null, detail: (err as Error).message };
  }
  try {
    const r = await testIdentityProvider(cfg);
    return { ok: true, provider: r.provider, detail: "answers" };
  } catch (err) {
    return { ok: false, provider: cfg.idp.provider, detail: (err as Error).message };
  }
}

/** The config file, when it exists and loads (the setup wizard may not have written it yet). */
function configIfAny(path: string): Config | null {
  try {
    return loadConfig(path);
  } catch {
    return null;
  }
}

const ROUTES: readonly Route[] = [
  {
    pattern: ["me"], admin: false, methods: {
      GET: async (r) => sendJson(r.res, 200, {
        kind: r.caller.kind, role: r.caller.role, name: r.caller.actor.name,
        email: r.caller.user?.email ?? null, csrf: r.caller.csrf, oidc: r.ctx.oidcEnabled,
      }),
    },
  },
  {
    pattern: ["overview"], admin: true, methods: {
      GET: async (r) => {
        const [daemon, idp] = await Promise.all([daemonReady(r.ctx.daemonReadyUrl), identityHealth(r.ctx.configPath)]);
        sendJson(r.res, 200, { setup: await setupStatus(r.ctx.configPath, r.ctx.dbPath), daemon, idp });
      },
    },
  },
  { pattern: ["setup", "status"], admin: true, methods: { GET: async (r) => sendJson(r.res, 200, await setupStatus(r.ctx.configPath, r.ctx.dbPath)) } },
  {
    pattern: ["setup", "validate"], admin: true, methods: {
      POST: async (r) => {
        validateConfig(await configBody(r), r.ctx.configPath, r.ctx.dbPath);
        sendJson(r.res, 200, { valid: true });
      },
    },
  },
  {
    pattern: ["setup", "apply"], admin: true, methods: {
      POST: async (r) => {
        const body = await readJson(r.req, { config: "object", overwrite: "boolean", init_db: "boolean", test_idp: "boolean" });
        const result = await applySetup(r.ctx.configPath, r.ctx.dbPath, {
          config: (body.config ?? {}) as Record<string, unknown>,
          overwrite: body.overwrite === true, initDb: body.init_db === true, testIdp: body.test_idp === true,
        });
        r.ctx.audit(r.caller.actor, "setup.apply", r.ctx.configPath);
        sendJson(r.res, 200, result);
      },
    },
  },
  {
    pattern: ["idp", "test"], admin: true, methods: {
      POST: async (r) => {
        const { config } = validateConfig(await configBody(r), r.ctx.configPath, r.ctx.dbPath);
        sendJson(r.res, 200, await testIdentityProvider(config));
      },
    },
  },
  {
    pattern: ["domains"], admin: true, methods: {
      GET: async (r) => sendJson(r.res, 200, await (await r.ctx.service()).listDomains()),
      POST: async (r) => {
        const body = await readJson(r.req, { domain_name: "string" });
        await (await r.ctx.service()).addDomain(r.caller.actor, str(body, "domain_name"));
        sendNoContent(r.res);
      },
    },
  },
  {
    pattern: ["domains", "*"], admin: true, methods: {
      PATCH: async (r) => {
        await (await r.ctx.service()).setDomainEnabled(r.caller.actor, r.params[0]!, await enabledBody(r));
        sendNoContent(r.res);
      },
      DELETE: async (r) => {
        await (await r.ctx.service()).deleteDomain(r.caller.actor, r.params[0]!);
        sendNoContent(r.res);
      },
    },
  },
  {
    pattern: ["aliases"], admin: true, methods: {
      GET: async (r) => sendJson(r.res, 200, await (await r.ctx.service()).listAliases(r.query.get("user") ?? undefined)),
      POST: async (r) => {
        const body = await readJson(r.req, { alias_email: "string", target_user: "string" });
        await (await r.ctx.service()).addAlias(r.caller.actor, str(body, "alias_email"), str(body, "target_user"));
        sendNoContent(r.res);
      },
    },
  },
  {
    pattern: ["aliases", "*"], admin: true, methods: {
      PATCH: async (r) => {
        await (await r.ctx.service()).setAliasEnabled(r.caller.actor, r.params[0]!, await enabledBody(r));
        sendNoContent(r.res);
      },
      DELETE: async (r) => {
        await (await r.ctx.service()).deleteAlias(r.caller.actor, r.params[0]!);
        sendNoContent(r.res);
      },
    },
  },
  {
    pattern: ["apps"], admin: true, methods: {
      GET: async (r) => sendJson(r.res, 200, await (await r.ctx.service()).listApps()),
      POST: async (r) => {
        const body = await readJson(r.req, { app_id: "string", password: "string" });
        await (await r.ctx.service()).setAppPassword(r.caller.actor, str(body, "app_id"), str(body, "password"));
        sendNoContent(r.res);
      },
    },
  },
  {
    pattern: ["apps", "*"], admin: true, methods: {
      PATCH: async (r) => {
        await (await r.ctx.service()).setAppEnabled(r.caller.actor, r.params[0]!, await enabledBody(r));
        sendNoContent(r.res);
      },
      DELETE: async (r) => {
        await (await r.ctx.service()).deleteApp(r.caller.actor, r.params[0]!);
        sendNoContent(r.res);
      },
    },
  },
  {
    pattern: ["apps", "*", "senders"], admin: true, methods: {
      POST: async (r) => {
        const body = await readJson(r.req, { from_addr: "string" });
        await (await r.ctx.service()).allowAppSender(r.caller.actor, r.params[0]!, str(body, "from_addr"));
        sendNoContent(r.res);
      },
    },
  },
  {
    pattern: ["apps", "*", "senders", "*"], admin: true, methods: {
      DELETE: async (r) => {
        await (await r.ctx.service()).disallowAppSender(r.caller.actor, r.params[0]!, r.params[1]!);
        sendNoContent(r.res);
      },
    },
  },
  // Delegated senders (send-as), as mailcloakctl senders.
  {
    pattern: ["senders"], admin: true, methods: {
      GET: async (r) => sendJson(r.res, 200, await (await r.ctx.service()).listSenders(r.query.get("login") ?? undefined)),
      POST: async (r) => {
        const body = await readJson(r.req, { from_addr: "string", login: "string" });
        const cfg = configIfAny(r.ctx.configPath);
        await (await r.ctx.service()).allowSender(r.caller.actor, str(body, "from_addr"), str(body, "login"), {
          configDomains: new Set(cfg?.policy.localDomains ?? []),
          loginCheck: cfg === null ? undefined : identityLoginCheck(cfg),
        });
        sendNoContent(r.res);
      },
    },
  },
  {
    pattern: ["senders", "*", "*"], admin: true, methods: {
      DELETE: async (r) => {
        await (await r.ctx.service()).denySender(r.caller.actor, r.params[0]!, r.params[1]!);
        sendNoContent(r.res);
      },
    },
  },
  // Self-service: the signed-in user's own addresses and app passwords.
  { pattern: ["self"], admin: false, methods: { GET: async (r) => sendJson(r.res, 200, await (await r.ctx.service()).selfView(selfUser(r))) } },
  {
    pattern: ["self", "apps"], admin: false, methods: {
      POST: async (r) => {
        const body = await readJson(r.req, { name: "string" });
        const created = await (await r.ctx.service()).createOwnApp(r.caller.actor, selfUser(r), str(body, "name"));
        sendJson(r.res, 201, created);
      },
    },
  },
  {
    pattern: ["self", "apps", "*"], admin: false, methods: {
      DELETE: async (r) => {
        await (await r.ctx.service()).revokeOwnApp(r.caller.actor, selfUser(r), r.params[0]!);
        sendNoContent(r.res);
      },
    },
  },
  {
    pattern: ["self", "apps", "*", "senders"], admin: false, methods: {
      POST: async (r) => {
        const body = await readJson(r.req, { from_addr: "string" });
        await (await r.ctx.service()).allowOwnSender(r.caller.actor, selfUser(r), r.params[0]!, str(body, "from_addr"));
        sendNoContent(r.res);
      },
    },
  },
  {
    pattern: ["self", "apps", "*", "senders", "*"], admin: false, methods: {
      DELETE: async (r) => {
        await (await r.ctx.service()).disallowOwnSender(r.caller.actor, selfUser(r), r.params[0]!, r.params[1]!);
        sendNoContent(r.res);
      },
    },
  },
];

/** Path segments after /api/, percent-decoded; null when one cannot be decoded. */
function segments(path: string): string[] | null {
  try {
    return path.slice("/api/".length).split("/").map((s) => decodeURIComponent(s));
  } catch {
    return null;
  }
}

export interface Match {
  readonly route: Route;
  readonly handler: Handler | null;
  readonly params: string[];
}

/** The route for a path (null: 404) and its handler for the method (null: 405). */
export function matchRoute(path: string, method: string): Match | null {
  const segs = segments(path);
  if (segs === null) return null;
  for (const route of ROUTES) {
    if (route.pattern.length !== segs.length) continue;
    const params: string[] = [];
    let ok = true;
    for (let i = 0; i < segs.length; i++) {
      const p = route.pattern[i]!;
      const s = segs[i]!;
      if (p === "*") {
        if (s === "") ok = false;
        else params.push(s);
      } else if (p !== s) ok = false;
      if (!ok) break;
    }
    if (ok) return { route, handler: route.methods[method] ?? null, params };
  }
  return null;
}

export async function runRoute(m: Match, req: IncomingMessage, res: ServerResponse, caller: Caller, ctx: ApiContext, query: URLSearchParams): Promise<void> {
  await m.handler!({ req, res, caller, params: m.params, query, ctx });
}
