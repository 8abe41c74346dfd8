// One HTTP request of the IdP test, with a deadline that covers the body too.
// A reply is either what the server said (status, parsed JSON if it was JSON)
// or why no answer came, with what an admin checks for that.

export type Reply =
  | { readonly kind: "http"; readonly status: number; readonly json: unknown; readonly location: string | null }
  | { readonly kind: "network"; readonly reason: string; readonly hint: string };

export interface ProbeRequest {
  readonly url: string;
  readonly method?: "GET" | "POST";
  readonly headers?: Record<string, string>;
  readonly body?: string;
  readonly timeoutMs: number;
  /** The config key that sets the deadline, for the timeout hint. */
  readonly timeoutKey: string;
}

export async function probe(req: ProbeRequest): Promise<Reply> {
  try {
    const res = await fetch(req.url, {
      method: req.method ?? "GET",
      headers: { accept: "application/json", ...req.headers },
      ...(req.body !== undefined ? { body: req.body } : {}),
      redirect: "manual",
      signal: AbortSignal.timeout(req.timeoutMs),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { kind: "http", status: res.status, json, location: res.headers.get("location") };
  } catch (err) {
    return network(err, req);
  }
}

const TLS_TRUST = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT", "CERT_UNTRUSTED", "UNABLE_TO_GET_ISSUER_CERT",
]);

function network(err: unknown, req: ProbeRequest): Reply {
  const e = err instanceof Error ? err : new Error(String(err));
  if (e.name === "TimeoutError" || e.name === "AbortError") {
    return {
      kind: "network",
      reason: `no answer within ${req.timeoutMs} ms`,
      hint: `the server accepted nothing or answered too slowly: check it is up and that no firewall or proxy holds the connection; ${req.timeoutKey} sets this deadline`,
    };
  }
  const cause: unknown = e.cause;
  const code = typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string" ? cause.code : "";
  const host = hostOf(req.url);
  if (code === "ECONNREFUSED") {
    return { kind: "network", reason: `connection refused by ${host}`, hint: "nothing listens there: check the host and port of the base URL and that the server runs" };
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") {
    return { kind: "network", reason: `cannot resolve ${host} (${code})`, hint: "the host name in the base URL does not resolve on this machine: check it and /etc/resolv.conf" };
  }
  if (code === "CERT_HAS_EXPIRED") {
    return { kind: "network", reason: `the TLS certificate of ${host} has expired`, hint: "renew the server's certificate" };
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    return { kind: "network", reason: `the TLS certificate of ${host} is not for that name`, hint: "use the host name the certificate was issued for in the base URL" };
  }
  if (TLS_TRUST.has(code)) {
    return {
      kind: "network",
      reason: `the TLS certificate of ${host} is not trusted (${code})`,
      hint: "give Node the issuing CA: NODE_EXTRA_CA_CERTS=/path/ca.pem in the service environment",
    };
  }
  if (code === "ERR_SSL_WRONG_VERSION_NUMBER") {
    return { kind: "network", reason: `${host} does not speak TLS on that port`, hint: "use http:// in the base URL, or the server's https port" };
  }
  const message = typeof cause === "object" && cause !== null && "message" in cause && typeof cause.message === "string" ? cause.message : "";
  if (message === "bad port") {
    return { kind: "network", reason: `Node's fetch refuses port ${new URL(req.url).port} (a port browsers block)`, hint: "serve the IdP on another port" };
  }
  if (code === "ECONNRESET" || code === "EPROTO" || code === "UND_ERR_SOCKET") {
    return {
      kind: "network",
      reason: `${host} closed the connection (${code})`,
      hint: "check http:// against https:// in the base URL, and any proxy in between",
    };
  }
  const detail = code || (message ? message.replace(/[^\x20-\x7e]/g, "?").slice(0, 100) : e.name);
  return { kind: "network", reason: `request to ${host} failed (${detail})`, hint: "check the base URL and the network path to the server" };
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/**
 * A server-supplied string (an OAuth error code or description), made safe
 * to print: printable ASCII only, bounded length, quoted.
 */
export function quoted(v: unknown): string | null {
  if (typeof v !== "string" || v === "") return null;
  const clean = v.replace(/[^\x20-\x7e]/g, "?");
  return JSON.stringify(clean.length > 120 ? `${clean.slice(0, 117)}...` : clean);
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** What to say about a status the caller has no specific advice for. */
export function otherStatus(r: { status: number; location: string | null }, server: string): { what: string; hint: string } {
  if (r.status >= 300 && r.status < 400) {
    const to = r.location ? ` to ${quoted(r.location)}` : "";
    return { what: `HTTP ${r.status} redirect${to}`, hint: `${server} redirects this URL: put the URL it redirects to (often https://) in the base URL` };
  }
  if (r.status >= 500) return { what: `HTTP ${r.status}`, hint: `${server} failed on its side: see its server log` };
  return { what: `HTTP ${r.status}`, hint: `unexpected answer from ${server}: check the base URL` };
}

/**
 * The base URL without trailing slashes, or null when it carries a user name
 * or password (fetch refuses those, and they must not be printed); `shown`
 * is the URL with them removed, for the line that says so.
 */
export function baseUrl(raw: string): { url: string | null; shown: string } {
  const url = raw.replace(/\/+$/, "");
  try {
    const u = new URL(url);
    if (u.username === "" && u.password === "") return { url, shown: url };
    u.username = "";
    u.password = "";
    return { url: null, shown: u.toString().replace(/\/+$/, "") };
  } catch {
    return { url, shown: url };
  }
}
