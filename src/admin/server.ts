// mailcloak-admin's HTTP handler: the web UI's static files, sign-in with
// the identity provider (/auth/*), and the API (/api/*) behind bearer-token
// or session authentication, CSRF checks and the admin/user split.

import type { IncomingMessage, ServerResponse } from "node:http";
import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import { matchRoute, runRoute, type ApiContext, type Caller } from "./api.js";
import { describeHttpError, sendError, sendJson } from "./http-kit.js";
import type { OidcClient } from "./oidc.js";
import { cookie, LOGIN_COOKIE, parseCookies, sameSecret, SESSION_COOKIE, Sessions, type Session } from "./session.js";

/** The UI's files, shipped in the package (no build step, no CDN). */
const UI_DIR = new URL("../../../admin-ui/", import.meta.url);
const UI_FILES: Record<string, { file: string; type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "/ui/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/ui/app.css": { file: "app.css", type: "text/css; charset=utf-8" },
};
const SECURITY_HEADERS = {
  "content-security-policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "x-frame-options": "DENY",
};

const STATE_CHANGING = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export interface AdminServerOptions {
  /** The bearer token, or null when none is configured. */
  readonly token: string | null;
  readonly insecureNoAuth: boolean;
  readonly oidc: OidcClient | null;
  readonly sessions: Sessions;
  /** Cookies get Secure (the public URL is https). */
  readonly secureCookies: boolean;
  /** Behind a reverse proxy on the Unix socket: the client is X-Forwarded-For's first address. */
  readonly behindProxy: boolean;
  readonly ctx: ApiContext;
  readonly log: Logger;
}

function clientAddress(req: IncomingMessage, behindProxy: boolean): string {
  if (behindProxy) {
    const xff = req.headers["x-forwarded-for"];
    const first = (Array.isArray(xff) ? xff[0] : xff)?.split(",")[0]?.trim();
    return first || "unix-socket";
  }
  return req.socket.remoteAddress ?? "unknown";
}

export function createHandler(o: AdminServerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const uiCache = new Map<string, Buffer>();
  const ui = (name: string): Buffer => {
    let b = uiCache.get(name);
    if (b === undefined) {
      b = readFileSync(new URL(name, UI_DIR));
      uiCache.set(name, b);
    }
    return b;
  };

  /** Who the request is from, or an error status and message. */
  const authenticate = (req: IncomingMessage, from: string): Caller | { status: number; message: string } => {
    const auth = req.headers.authorization;
    if (auth !== undefined) {
      if (o.token !== null && auth.startsWith("Bearer ") && sameSecret(auth.slice(7).trim(), o.token)) {
        return { kind: "token", role: "admin", user: null, csrf: null, actor: { name: "token", via: "api", from } };
      }
      return { status: 401, message: "unauthorized" };
    }
    const s = o.sessions.fromRequest(req);
    if (s !== null) {
      return {
        kind: "session", role: s.role, user: { username: s.username, email: s.email }, csrf: s.csrf,
        actor: { name: s.username, via: "web", from },
      };
    }
    if (o.insecureNoAuth) return { kind: "anonymous", role: "admin", user: null, csrf: null, actor: { name: "anonymous", via: "api", from } };
    return { status: 401, message: "unauthorized" };
  };

  const api = async (req: IncomingMessage, res: ServerResponse, url: URL, from: string): Promise<void> => {
    const method = req.method ?? "GET";
    if (url.pathname === "/api/health") {
      if (method !== "GET") return sendError(res, 405, "method not allowed");
      return sendJson(res, 200, { status: "ok" });
    }
    const caller = authenticate(req, from);
    if ("status" in caller) return sendError(res, caller.status, caller.message);
    const m = matchRoute(url.pathname, method);
    if (m === null) return sendError(res, 404, "not found");
    if (m.handler === null) return sendError(res, 405, "method not allowed");
    if (m.route.admin && caller.role !== "admin") return sendError(res, 403, "forbidden: this needs an admin (a member of the admin role or group)");
    if (STATE_CHANGING.has(method)) {
      if (caller.kind === "session" && !sameSecret(String(req.headers["x-csrf-token"] ?? ""), caller.csrf ?? "")) {
        return sendError(res, 403, "missing or wrong CSRF token (reload the page)");
      }
      // Without any credential a cross-site form could post here: insist on
      // JSON, which a form cannot send without a CORS preflight.
      if (caller.kind === "anonymous" && method !== "DELETE" && !/^application\/json\b/i.test(req.headers["content-type"] ?? "")) {
        return sendError(res, 400, "content-type must be application/json");
      }
    }
    await runRoute(m, req, res, caller, o.ctx, url.searchParams);
  };

  const signIn = async (res: ServerResponse): Promise<void> => {
    if (o.oidc === null) return sendError(res, 404, "sign-in is not configured (start mailcloak-admin with --oidc-client-id)");
    const { state, url } = await o.oidc.begin();
    res.writeHead(302, {
      location: url,
      "set-cookie": cookie(LOGIN_COOKIE, o.sessions.signer.sign(state), { secure: o.secureCookies, path: "/auth/", maxAgeSeconds: 600 }),
      "cache-control": "no-store",
    }).end();
  };

  const callback = async (req: IncomingMessage, res: ServerResponse, url: URL, from: string): Promise<void> => {
    if (o.oidc === null) return sendError(res, 404, "sign-in is not configured");
    const state = o.sessions.signer.verify(parseCookies(req).get(LOGIN_COOKIE));
    if (state === null || url.searchParams.get("state") !== state) return sendError(res, 400, "sign-in state missing or wrong; start again at /auth/login");
    let who;
    try {
      const callbackUrl = new URL(url.pathname + url.search, o.oidc.settings.publicUrl);
      who = await o.oidc.finish(callbackUrl, state);
    } catch (err) {
      o.log.warn({ from, err: (err as Error).message }, "sign-in failed");
      return sendError(res, 400, `sign-in failed: ${(err as Error).message}`);
    }
    const s = o.sessions.create(who);
    o.log.info({ audit: true, who: s.username, role: s.role, from, action: "session.signin" }, "audit");
    res.writeHead(303, {
      location: "/",
      "set-cookie": [o.sessions.cookieFor(s, o.secureCookies), cookie(LOGIN_COOKIE, "", { secure: o.secureCookies, path: "/auth/", maxAgeSeconds: 0 })],
      "cache-control": "no-store",
    }).end();
  };

  const logout = (req: IncomingMessage, res: ServerResponse, from: string): void => {
    const s: Session | null = o.sessions.fromRequest(req);
    if (s === null) return sendError(res, 401, "not signed in");
    if (!sameSecret(String(req.headers["x-csrf-token"] ?? ""), s.csrf)) return sendError(res, 403, "missing or wrong CSRF token (reload the page)");
    o.sessions.end(s.id);
    o.log.info({ audit: true, who: s.username, from, action: "session.logout" }, "audit");
    const redirect = o.oidc?.logoutUrl(s.idToken) ?? "/";
    sendJson(res, 200, { redirect }, { "set-cookie": cookie(SESSION_COOKIE, "", { secure: o.secureCookies, maxAgeSeconds: 0 }) });
  };

  return (req, res) => {
    const from = clientAddress(req, o.behindProxy);
    const method = req.method ?? "GET";
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://admin.invalid");
    } catch {
      return sendError(res, 400, "bad request URL");
    }
    const fail = (err: unknown): void => {
      const d = describeHttpError(err, (e) => o.log.error({ err: e instanceof Error ? e.message : String(e), path: url.pathname }, "internal error"));
      if (!res.headersSent) sendError(res, d.status, d.message);
      else res.destroy();
    };
    try {
      const file = UI_FILES[url.pathname];
      if (file !== undefined) {
        if (method !== "GET" && method !== "HEAD") return sendError(res, 405, "method not allowed");
        res.writeHead(200, { "content-type": file.type, "cache-control": "no-cache", ...SECURITY_HEADERS });
        return void res.end(method === "HEAD" ? undefined : ui(file.file));
      }
      if (url.pathname === "/auth/login" && method === "GET") return void signIn(res).catch(fail);
      if (url.pathname === "/auth/callback" && method === "GET") return void callback(req, res, url, from).catch(fail);
      if (url.pathname === "/auth/logout" && method === "POST") return logout(req, res, from);
      if (url.pathname.startsWith("/api/")) return void api(req, res, url, from).catch(fail);
      sendError(res, 404, "not found");
    } catch (err) {
      fail(err);
    }
  };
}

/** The audit sink: one log line per change (who, what, from where), never a secret. */
export function auditTo(log: Logger): (e: { who: string; via: string; from: string | null; action: string; target: string }) => void {
  return (e) => log.info({ audit: true, ...e }, "audit");
}

