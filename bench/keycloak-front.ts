// An HTTP front for test/fake-keycloak.ts that adds a large, indexed user
// population ("bulk" users) for the cache-miss scenarios.
//
// Why: FakeKeycloak answers a users query by scanning all of its users (a
// copy of the whole map, then a filter), which costs ~9 ms per query with
// 100,000 users stored: the fake, not mailcloak, would be measured. So the
// bulk users are not stored anywhere: user N exists for every N below
// `count`, and its representation is generated on demand in FakeKeycloak's
// shape. Everything else (the token endpoint, the few named users, the
// counters' meaning) stays with the real FakeKeycloak: requests other than
// an exact bulk-user query are forwarded to it unchanged, and the tokens it
// issues are the only ones the bulk answers accept. The fake's `latencyMs`
// applies to bulk answers too.

import http from "node:http";
import type { AddressInfo } from "node:net";
import type { FakeKeycloak } from "../test/fake-keycloak.js";

export interface BulkUsers {
  /** Usernames are `${prefix}${n}`, emails `${prefix}${n}@${domain}`. */
  readonly prefix: string;
  readonly domain: string;
  readonly count: number;
}

export class KeycloakFront {
  readonly #fake: FakeKeycloak;
  readonly #bulk: BulkUsers;
  readonly #server: http.Server;
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  readonly #tokens = new Map<string, number>(); // access token -> expiry (epoch ms)
  readonly #fakePort: number;
  readonly #created = Date.now();
  readonly #usersPath: string;
  /** The bulk user's JSON around its variable parts (id hex, then n three times). */
  readonly #template: readonly [string, string, string, string, string];
  #port = 0;
  /** Exact bulk-user queries answered here (users queries the fake did not see). */
  bulkQueries = 0;

  private constructor(fake: FakeKeycloak, bulk: BulkUsers) {
    this.#fake = fake;
    this.#bulk = bulk;
    this.#fakePort = Number(new URL(fake.url).port);
    this.#usersPath = `/admin/realms/${fake.realm}/users`;
    this.#template = bulkTemplate(bulk, this.#created);
    this.#server = http.createServer((req, res) => this.#onRequest(req, res));
    this.#server.keepAliveTimeout = 60_000;
  }

  static async start(fake: FakeKeycloak, bulk: BulkUsers): Promise<KeycloakFront> {
    const f = new KeycloakFront(fake, bulk);
    await new Promise<void>((resolve, reject) => {
      f.#server.once("error", reject);
      f.#server.listen(0, "127.0.0.1", () => resolve());
    });
    f.#port = (f.#server.address() as AddressInfo).port;
    return f;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** Users queries of both kinds (the fake's own and the bulk ones). */
  get userQueries(): number {
    return this.#fake.userQueries + this.bulkQueries;
  }

  /** Token requests (all reach the fake). */
  get tokenRequests(): number {
    return this.#fake.tokenRequests;
  }

  async stop(): Promise<void> {
    this.#agent.destroy();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #bulkIndex(q: URLSearchParams): number | null {
    if (q.get("exact") !== "true") return null;
    const { prefix, domain, count } = this.#bulk;
    const email = q.get("email");
    const username = q.get("username");
    let m: string | null = null;
    if (email !== null && username === null && email.endsWith(`@${domain}`) && email.startsWith(prefix)) {
      m = email.slice(prefix.length, email.length - domain.length - 1);
    } else if (username !== null && email === null && username.startsWith(prefix)) {
      m = username.slice(prefix.length);
    }
    if (m === null || !/^(0|[1-9][0-9]{0,8})$/.test(m)) return null;
    const n = Number(m);
    return n < count ? n : null;
  }

  #onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    // Split by hand: new URL() per request was a tenth of the front's CPU, and the
    // front shares the 2 cores with the daemon it measures.
    const raw = req.url ?? "/";
    const q = raw.indexOf("?");
    const pathname = q < 0 ? raw : raw.slice(0, q);
    // The admin client asks for ".../users/?email=..." (trailing slash).
    if (req.method === "GET" && (pathname === this.#usersPath || pathname === `${this.#usersPath}/`)) {
      const n = this.#bulkIndex(new URLSearchParams(q < 0 ? "" : raw.slice(q + 1)));
      if (n !== null) {
        this.bulkQueries++;
        req.resume();
        const answer = (): void => this.#answerBulk(req, res, n);
        const latency = this.#fake.latencyMs;
        if (latency > 0) setTimeout(answer, latency);
        else answer();
        return;
      }
    }
    this.#forward(req, res, pathname.endsWith("/protocol/openid-connect/token"));
  }

  #answerBulk(req: http.IncomingMessage, res: http.ServerResponse, n: number): void {
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "");
    const expiry = bearer ? this.#tokens.get(bearer[1]!) : undefined;
    if (expiry === undefined || expiry <= Date.now()) return send(res, 401, '{"error":"HTTP 401 Unauthorized"}');
    const hex = n.toString(16).padStart(12, "0");
    // The text JSON.stringify([user]) gives for the object in #bulkTemplate, without building it.
    const [a, b, c, d, e] = this.#template;
    send(res, 200, `${a}${hex}${b}${n}${c}${n}${d}${n}${e}`);
  }

  /** Pass the request to the real fake; remember the tokens it issues. */
  #forward(req: http.IncomingMessage, res: http.ServerResponse, isToken: boolean): void {
    const up = http.request({
      host: "127.0.0.1",
      port: this.#fakePort,
      method: req.method,
      path: req.url,
      headers: req.headers,
      agent: this.#agent,
    }, (ur) => {
      const chunks: Buffer[] = [];
      ur.on("data", (c: Buffer) => chunks.push(c));
      ur.on("end", () => {
        const body = Buffer.concat(chunks);
        if (isToken && ur.statusCode === 200) this.#remember(body.toString("utf8"));
        const headers = { ...ur.headers };
        delete headers["transfer-encoding"];
        delete headers.connection;
        delete headers["keep-alive"];
        headers["content-length"] = String(body.length);
        res.writeHead(ur.statusCode ?? 502, headers);
        res.end(body);
      });
    });
    up.on("error", (err) => {
      if (!res.headersSent) send(res, 502, JSON.stringify({ error: `front: ${err.message}` }));
      else res.destroy();
    });
    req.pipe(up);
  }

  #remember(text: string): void {
    try {
      const t = JSON.parse(text) as { access_token?: unknown; expires_in?: unknown };
      if (typeof t.access_token === "string" && typeof t.expires_in === "number") {
        this.#tokens.set(t.access_token, Date.now() + t.expires_in * 1000);
      }
    } catch {
      /* not a token response */
    }
  }
}

/** The full (briefRepresentation=false) shape FakeKeycloak returns, split where user N differs. */
function bulkTemplate(bulk: BulkUsers, created: number): [string, string, string, string, string] {
  const HEX = "\u0000H\u0000";
  const N = "\u0000N\u0000";
  const user = {
    id: `00000000-0000-4000-8000-${HEX}`,
    username: `${bulk.prefix}${N}`,
    firstName: "Bulk",
    lastName: `User ${N}`,
    email: `${bulk.prefix}${N}@${bulk.domain}`,
    emailVerified: true,
    createdTimestamp: created,
    enabled: true,
    attributes: { mailSendAllowed: ["true"] },
    totp: false,
    disableableCredentialTypes: [],
    requiredActions: [],
    notBefore: 0,
    access: { manage: false },
  };
  const json = JSON.stringify([user]);
  const [a, rest] = json.split(JSON.stringify(HEX).slice(1, -1)) as [string, string];
  const parts = rest.split(JSON.stringify(N).slice(1, -1));
  if (parts.length !== 4) throw new Error(`bulk user template: ${parts.length - 1} places for n, want 3`);
  return [a, ...(parts as [string, string, string, string])];
}

function send(res: http.ServerResponse, status: number, text: string): void {
  if (res.destroyed || res.writableEnded) return;
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}
