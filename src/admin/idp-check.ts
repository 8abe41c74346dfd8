// A one-shot check that the configured identity source answers: for
// Keycloak, a client_credentials token and a one-user query (as the Go
// version's TestIdentityProvider). Kept behind one function so a fuller
// check (mailcloak test-idp) can replace it.

import type { Config } from "../config/types.js";

export interface IdpTestResult {
  readonly provider: string;
  readonly ok: true;
}

/** Thrown with a one-line reason; never contains the client secret or a token. */
export class IdpCheckError extends Error {
  override readonly name = "IdpCheckError";
}

async function call(what: string, url: string, init: RequestInit, timeoutMs: number): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const why = e.name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.message);
    throw new IdpCheckError(`${what}: ${why}`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    const hint = res.status === 401 ? " (wrong client_id or client_secret?)"
      : res.status === 403 ? " (give the service account realm-management view-users or query-users)"
      : res.status === 404 ? " (wrong base_url or realm?)" : "";
    throw new IdpCheckError(`${what}: HTTP ${res.status}${hint}`);
  }
  return res;
}

export async function testIdentityProvider(cfg: Config): Promise<IdpTestResult> {
  const kc = cfg.idp.keycloak;
  if (cfg.idp.provider !== "keycloak" || kc === null) return { provider: cfg.idp.provider, ok: true };
  const timeoutMs = Math.max(kc.timeoutMs, 5000);
  const realm = `${kc.baseUrl}/realms/${encodeURIComponent(kc.realm)}`;
  const tokenRes = await call("keycloak token request", `${realm}/protocol/openid-connect/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials", client_id: kc.clientId, client_secret: kc.clientSecret }),
  }, timeoutMs);
  const token = ((await tokenRes.json()) as { access_token?: unknown }).access_token;
  if (typeof token !== "string") throw new IdpCheckError("keycloak token request: no access_token in the answer");
  const users = await call("keycloak admin users request", `${kc.baseUrl}/admin/realms/${encodeURIComponent(kc.realm)}/users?max=1`, {
    headers: { authorization: `Bearer ${token}` },
  }, timeoutMs);
  if (!Array.isArray(await users.json())) throw new IdpCheckError("keycloak admin users request: the answer is not a list of users");
  return { provider: "keycloak", ok: true };
}
