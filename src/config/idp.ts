// The idp: section (keycloak, authentik, static) and the Go release's older
// top-level keycloak: section. Returns the identity settings and the cache
// TTL the active provider's section sets, for policy.ts's older key.

import { readFileSync } from "node:fs";
import { choice, int, nonEmpty, text } from "./fields.js";
import type { Section } from "./reader.js";
import { IDP, IDP_AUTHENTIK, IDP_KEYCLOAK, IDP_STATIC } from "./schema.js";
import type { Config, StaticUser } from "./types.js";

/** The provider section's cache_ttl_seconds, when one is set. */
export interface IdpTtl {
  readonly seconds: number;
  readonly key: string;
}

export interface IdpResult {
  readonly idp: Config["idp"];
  /** The TTL in effect (the default, or the static section's). */
  readonly cacheTtl: number;
  /** Set when the active provider's section sets its own TTL (Go's rule). */
  readonly idpTtl: IdpTtl | undefined;
}

const KC = IDP_KEYCLOAK.settings;
const AK = IDP_AUTHENTIK.settings;
const ST = IDP_STATIC.settings;

/**
 * A Go cache_ttl_seconds: a whole number; 0 or less means the default (120),
 * as the Go release has it. A fraction is truncated as yaml.v3 does for an int.
 */
export function goTtl(s: Section, name: string, max: number = KC.cache_ttl_seconds.max): number | undefined {
  const v = s.raw(name);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) throw s.error(s.key(name), `must be a whole number of seconds, got ${JSON.stringify(v)}`);
  const n = Math.trunc(v);
  if (n <= 0) return undefined;
  if (n > max) {
    s.warn(s.key(name), `${n} is more than ${max}; using ${max}`);
    return max;
  }
  return n;
}

/** The idp: section and the older top-level keycloak: one, as `top` holds them. */
export function buildIdp(top: Section, sections: { idp: Section | undefined; legacyKeycloak: Section | undefined }, env: NodeJS.ProcessEnv): IdpResult {
  const { idp, legacyKeycloak: legacyKc } = sections;
  const provider = idp ? choice(idp, IDP.settings.provider) : "keycloak";
  let cacheTtl: number = KC.cache_ttl_seconds.default;
  let idpTtl: IdpTtl | undefined;

  // Both layouts at once: as the Go release, idp.keycloak keys win and the
  // top-level keycloak section fills in the ones that are empty or absent.
  const idpKc = idp?.maybeSection("keycloak");
  const kcSection = idpKc && legacyKc ? idpKc.withFallback(legacyKc) : (idpKc ?? legacyKc);
  if (idpKc && legacyKc && idpKc.conflictsWith(legacyKc)) {
    top.warn("keycloak", "the older top-level section is set together with idp.keycloak; where both set a key, idp.keycloak's value is used");
  }
  let keycloak: Config["idp"]["keycloak"] = null;
  if (kcSection) {
    const active = provider === "keycloak";
    const secretKey = kcSection.key(KC.client_secret.name);
    const clientSecret = readSecret(kcSection, KC.client_secret.name, env[KC.client_secret.env]);
    // The Go release requires base_url and realm only; what it starts on
    // with the rest missing or malformed starts here too, with a warning
    // (every Keycloak lookup then fails and the failure mode applies).
    const kcBaseUrl = (active ? nonEmpty(kcSection, KC.base_url) : kcSection.string(KC.base_url.name, "")).replace(/\/+$/, "");
    const failing = "every Keycloak lookup will fail (policy.idp_failure_mode applies) until it is";
    if (active && !/^https?:\/\/[^/\s]+/i.test(kcBaseUrl)) {
      kcSection.warn(kcSection.key(KC.base_url.name), `should be an http:// or https:// URL, got ${JSON.stringify(kcBaseUrl)}; ${failing}`);
    }
    const clientId = text(kcSection, KC.client_id).trim();
    if (active && clientId === "") kcSection.warn(kcSection.key(KC.client_id.name), `is not set; ${failing}`);
    keycloak = {
      baseUrl: kcBaseUrl,
      realm: active ? nonEmpty(kcSection, KC.realm) : kcSection.string(KC.realm.name, ""),
      clientId,
      clientSecret,
      timeoutMs: int(kcSection, KC.timeout_ms),
    };
    if (provider !== "authentik") {
      const ttl = goTtl(kcSection, KC.cache_ttl_seconds.name);
      if (ttl !== undefined) {
        idpTtl = { seconds: ttl, key: kcSection.key(KC.cache_ttl_seconds.name) };
        cacheTtl = ttl;
      }
    } else kcSection.raw(KC.cache_ttl_seconds.name);
    kcSection.finish();
    if (active && clientSecret === "") {
      kcSection.warn(secretKey, `is not set (nor client_secret_file, nor ${KC.client_secret.env} in the environment); ${failing}`);
    }
  } else if (provider === "keycloak") {
    throw top.error(idp ? "idp.keycloak" : "idp", "is required: set idp.provider: static, or configure idp.keycloak");
  }

  // Authentik: read only when it is the provider (a leftover block is checked for typos, then ignored).
  const akSection = idp?.maybeSection("authentik");
  let authentik: Config["idp"]["authentik"] = null;
  if (akSection) {
    const active = provider === "authentik";
    const tokenKey = akSection.key(AK.api_token.name);
    const apiToken = readSecret(akSection, AK.api_token.name, env[AK.api_token.env]).trim();
    // It goes into an HTTP header; Authentik's keys are printable ASCII.
    if (apiToken !== "" && !/^[\x21-\x7e]+$/.test(apiToken)) {
      throw akSection.error(tokenKey, "must be printable ASCII without spaces (copy the token's key exactly)");
    }
    const settings = { baseUrl: baseUrl(akSection, active), apiToken, timeoutMs: int(akSection, AK.timeout_ms) };
    const akTtl = goTtl(akSection, AK.cache_ttl_seconds.name);
    if (akTtl !== undefined && active) {
      idpTtl = { seconds: akTtl, key: akSection.key(AK.cache_ttl_seconds.name) };
      cacheTtl = akTtl;
    }
    akSection.finish();
    if (active && apiToken === "") {
      throw akSection.error(tokenKey, `is required (or api_token_file, or ${AK.api_token.env} in the environment)`);
    }
    if (active) authentik = settings;
  } else if (provider === "authentik") {
    throw top.error("idp.authentik", "is required when idp.provider is authentik (base_url and api_token)");
  }

  let staticUsers: StaticUser[] = [];
  const staticSection = idp?.maybeSection("static");
  if (staticSection) {
    staticUsers = staticSection.list(ST.users.name).map((u, i) => parseStaticUser(staticSection, i, u));
    if (staticSection.has(ST.cache_ttl_seconds.name) && provider === "static") {
      cacheTtl = int(staticSection, ST.cache_ttl_seconds, cacheTtl);
    } else staticSection.raw(ST.cache_ttl_seconds.name);
    staticSection.finish();
  }
  if (provider === "static" && !staticSection) {
    throw idp!.error(ST.users.key, "is required when idp.provider is static");
  }
  idp?.finish();
  return { idp: { provider, keycloak, authentik, staticUsers }, cacheTtl, idpTtl };
}

/**
 * A secret from `name` in the file, or `name_file` (trimmed), or the
 * environment variable (which wins when non-empty); "" when none is set.
 */
function readSecret(s: Section, name: string, fromEnv: string | undefined): string {
  const inline = s.optionalString(name);
  const file = s.optionalString(`${name}_file`);
  if (inline !== undefined && file !== undefined) {
    throw s.error(s.key(name), `set ${name} or ${name}_file, not both`);
  }
  let secret = inline ?? "";
  if (file !== undefined) {
    try {
      secret = readFileSync(file, "utf8").trim();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      throw s.error(s.key(`${name}_file`), `cannot read ${file} (${code})`);
    }
  }
  if (fromEnv !== undefined && fromEnv !== "") secret = fromEnv;
  return secret;
}

/** Authentik's base_url without trailing slashes; required and checked only for the active provider. */
function baseUrl(s: Section, required: boolean): string {
  const url = (required ? nonEmpty(s, AK.base_url) : s.string(AK.base_url.name, "")).replace(/\/+$/, "");
  if (required && !/^https?:\/\/[^/\s]+/i.test(url)) {
    throw s.error(s.key(AK.base_url.name), `must be an http:// or https:// URL, got ${JSON.stringify(url)}`);
  }
  return url;
}

function parseStaticUser(s: Section, i: number, raw: unknown): StaticUser {
  const sec = s.child(`${s.key(ST.users.name)}[${i}]`, raw);
  const username = sec.nonEmpty("username").toLowerCase();
  const emailRaw = sec.optionalString("email");
  const email = emailRaw ? emailRaw.trim().toLowerCase() : null;
  if (email !== null && !/^[^@\s]+@[^@\s]+$/.test(email)) {
    throw sec.error(sec.key("email"), `must be an email address, got ${JSON.stringify(emailRaw)}`);
  }
  const enabled = sec.bool("enabled", true);
  const attrs: Record<string, string[]> = {};
  const rawAttrs = sec.raw("attributes");
  if (rawAttrs !== undefined && rawAttrs !== null) {
    if (typeof rawAttrs !== "object" || Array.isArray(rawAttrs)) {
      throw sec.error(sec.key("attributes"), "must be a mapping of name to value or list of values");
    }
    for (const [k, v] of Object.entries(rawAttrs as Record<string, unknown>)) {
      const list = Array.isArray(v) ? v : [v];
      attrs[k] = list.filter((x) => x !== null && x !== undefined).map((x) => String(x));
    }
  }
  sec.finish();
  return { username, email, enabled, attributes: attrs };
}
