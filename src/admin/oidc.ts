// Sign-in with the identity provider: OpenID Connect authorization code flow
// with PKCE (S256), state and nonce, through openid-client. The ID token
// says who signed in; admins are the members of a realm role or a group
// (claims the client's mappers put in the ID token). Logout ends the
// Keycloak session too (RP-initiated logout with id_token_hint).

import * as oidc from "openid-client";
import { randomBytes } from "node:crypto";
import type { Role } from "./session.js";

export interface OidcSettings {
  /** The realm's issuer, e.g. https://kc.example/realms/mail. */
  readonly issuer: string;
  readonly clientId: string;
  /** Empty for a public client (PKCE only). */
  readonly clientSecret: string;
  /** Members of this realm role are admins (claim realm_access.roles). */
  readonly adminRole: string | null;
  /** Members of this group are admins (claim groups; "/name" or "name"). */
  readonly adminGroup: string | null;
  /** Where the browser reaches mailcloak-admin, e.g. https://mail-admin.example. */
  readonly publicUrl: string;
}

export interface Identity {
  readonly username: string;
  readonly email: string | null;
  readonly role: Role;
  readonly idToken: string | null;
}

interface Pending {
  readonly verifier: string;
  readonly nonce: string;
  readonly created: number;
}

/** A sign-in must finish within this. */
const PENDING_MS = 10 * 60_000;

export class OidcClient {
  readonly settings: OidcSettings;
  readonly #config: oidc.Configuration;
  readonly #pending = new Map<string, Pending>();

  private constructor(settings: OidcSettings, config: oidc.Configuration) {
    this.settings = settings;
    this.#config = config;
  }

  static async discover(s: OidcSettings): Promise<OidcClient> {
    const insecure = s.issuer.startsWith("http://");
    const auth = s.clientSecret === "" ? oidc.None() : oidc.ClientSecretBasic(s.clientSecret);
    const config = await oidc.discovery(new URL(s.issuer), s.clientId, s.clientSecret === "" ? undefined : s.clientSecret, auth,
      insecure ? { execute: [oidc.allowInsecureRequests], timeout: 10 } : { timeout: 10 });
    return new OidcClient(s, config);
  }

  get redirectUri(): string {
    return new URL("/auth/callback", this.settings.publicUrl).href;
  }

  /** Start a sign-in: the state (bound to the browser by a cookie) and the URL to send it to. */
  async begin(): Promise<{ state: string; url: string }> {
    this.#sweep();
    const state = randomBytes(24).toString("base64url");
    const verifier = oidc.randomPKCECodeVerifier();
    const nonce = oidc.randomNonce();
    this.#pending.set(state, { verifier, nonce, created: Date.now() });
    const url = oidc.buildAuthorizationUrl(this.#config, {
      redirect_uri: this.redirectUri,
      scope: "openid email profile",
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      nonce,
    });
    return { state, url: url.href };
  }

  /** Finish a sign-in from the callback URL; `state` is the one the browser's cookie carries. */
  async finish(callbackUrl: URL, state: string): Promise<Identity> {
    const p = this.#pending.get(state);
    this.#pending.delete(state);
    if (p === undefined || Date.now() - p.created > PENDING_MS) throw new Error("sign-in expired or unknown; start again");
    const tokens = await oidc.authorizationCodeGrant(this.#config, callbackUrl, {
      pkceCodeVerifier: p.verifier,
      expectedState: state,
      expectedNonce: p.nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    if (claims === undefined) throw new Error("no ID token in the answer");
    const username = typeof claims.preferred_username === "string" ? claims.preferred_username.toLowerCase() : claims.sub;
    const email = typeof claims.email === "string" && claims.email !== "" ? claims.email.toLowerCase() : null;
    return { username, email, role: this.roleOf(claims), idToken: tokens.id_token ?? null };
  }

  roleOf(claims: Record<string, unknown>): Role {
    const { adminRole, adminGroup } = this.settings;
    const realmAccess = claims.realm_access as { roles?: unknown } | undefined;
    const roles = Array.isArray(realmAccess?.roles) ? realmAccess.roles : [];
    if (adminRole !== null && roles.includes(adminRole)) return "admin";
    const groups = Array.isArray(claims.groups) ? claims.groups : [];
    if (adminGroup !== null) {
      const want = adminGroup.replace(/^\//, "");
      if (groups.some((g) => typeof g === "string" && g.replace(/^\//, "") === want)) return "admin";
    }
    return "user";
  }

  /** Where to send the browser to end the provider's session. */
  logoutUrl(idToken: string | null): string {
    const params: Record<string, string> = {
      post_logout_redirect_uri: new URL("/", this.settings.publicUrl).href,
      client_id: this.settings.clientId,
    };
    if (idToken !== null) params.id_token_hint = idToken;
    return oidc.buildEndSessionUrl(this.#config, params).href;
  }

  #sweep(): void {
    const t = Date.now();
    for (const [k, p] of this.#pending) if (t - p.created > PENDING_MS) this.#pending.delete(k);
  }
}
