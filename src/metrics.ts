// Prometheus metrics (prom-client) and the optional HTTP listener serving
// /metrics, /health and /ready. The servers report through event hooks, so
// nothing here sits in their code paths when metrics are off.

import http from "node:http";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { CacheEvents } from "./directory/cache.js";
import type { SocketmapEvents } from "./handlers/socketmap.js";
import type { PolicyEvents } from "./handlers/policy.js";
import type { ListenerEvents } from "./server/listener.js";
import type { KeycloakEvents } from "./directory/keycloak.js";
import type { AuthentikEvents } from "./directory/authentik.js";
import type { SourceEvents } from "./directory/guard.js";
import type { QuotaEvents } from "./quota/check.js";
import { RequestStats } from "./request-stats.js";

/** Logins named in the refusals metric; past this many, further ones are counted as "other" (bounded label values). */
const MAX_REFUSAL_LOGINS = 1000;

const LATENCY_BUCKETS = [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export class Metrics {
  readonly registry = new Registry();
  /** mailcloak_requests_total and mailcloak_request_duration_seconds, outside prom-client (request-stats.ts says why). */
  readonly requests = new RequestStats(LATENCY_BUCKETS);
  readonly cache = new Counter({ name: "mailcloak_cache_lookups_total", help: "Directory cache lookups by outcome (hit, miss, stale, coalesced)", labelNames: ["outcome"], registers: [this.registry] });
  readonly kcCalls = new Counter({ name: "mailcloak_keycloak_requests_total", help: "Keycloak HTTP requests by operation and outcome", labelNames: ["op", "outcome"], registers: [this.registry] });
  readonly kcLatency = new Histogram({ name: "mailcloak_keycloak_request_duration_seconds", help: "Keycloak HTTP request latency", labelNames: ["op"], buckets: LATENCY_BUCKETS, registers: [this.registry] });
  readonly kcRenewals = new Counter({ name: "mailcloak_keycloak_token_renewals_total", help: "Access tokens obtained (client_credentials grants)", registers: [this.registry] });
  readonly breakerOpen = new Counter({ name: "mailcloak_keycloak_circuit_open_total", help: "Times the Keycloak circuit breaker opened", registers: [this.registry] });
  readonly breakerReject = new Counter({ name: "mailcloak_keycloak_circuit_rejected_total", help: "Lookups answered without calling Keycloak because the circuit was open", registers: [this.registry] });
  readonly akCalls = new Counter({ name: "mailcloak_authentik_requests_total", help: "Authentik HTTP requests by operation and outcome", labelNames: ["op", "outcome"], registers: [this.registry] });
  readonly akLatency = new Histogram({ name: "mailcloak_authentik_request_duration_seconds", help: "Authentik HTTP request latency", labelNames: ["op"], buckets: LATENCY_BUCKETS, registers: [this.registry] });
  readonly akBreakerOpen = new Counter({ name: "mailcloak_authentik_circuit_open_total", help: "Times the Authentik circuit breaker opened", registers: [this.registry] });
  readonly akBreakerReject = new Counter({ name: "mailcloak_authentik_circuit_rejected_total", help: "Lookups answered without calling Authentik because the circuit was open", registers: [this.registry] });
  readonly open = new Gauge({ name: "mailcloak_open_connections", help: "Open client connections", labelNames: ["server"], registers: [this.registry] });
  readonly refused = new Counter({ name: "mailcloak_connections_refused_total", help: "Connections refused by a limit", labelNames: ["server", "reason"], registers: [this.registry] });
  readonly limits = new Counter({ name: "mailcloak_limit_closes_total", help: "Connections closed by a limit (idle_timeout, read_timeout, max_request_bytes, malformed)", labelNames: ["server", "reason"], registers: [this.registry] });

  readonly quotaChecks = new Counter({ name: "mailcloak_quota_checks_total", help: "Quota checks at the end of a message, by result (counted, over, unlimited, error)", labelNames: ["result"], registers: [this.registry] });
  readonly quotaRefusals = new Counter({ name: "mailcloak_quota_refusals_total", help: "Messages refused with 450 4.7.1 because a quota was exceeded, by login and limit (at most 1000 logins, then \"other\")", labelNames: ["login", "limit"], registers: [this.registry] });
  readonly quotaBackendErrors = new Counter({ name: "mailcloak_quota_backend_errors_total", help: "Quota checks the counter store could not answer (the quotas.failure_mode applied)", labelNames: ["backend"], registers: [this.registry] });
  readonly #refusalLogins = new Set<string>();

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "mailcloak_" });
  }

  /** Every metric in the Prometheus text format: what /metrics serves. */
  async text(): Promise<string> {
    return `${this.requests.text()}\n${await this.registry.metrics()}`;
  }

  readonly cacheEvents: CacheEvents = { onLookup: (o) => this.cache.inc({ outcome: o }) };

  readonly socketmapEvents: SocketmapEvents = {
    onRequest: (map, status, s) => {
      this.requests.count("socketmap", map.length <= 16 ? map : "other", status);
      this.requests.observe("socketmap", s);
    },
  };

  readonly policyEvents: PolicyEvents = {
    onDecision: (_state, action, _reason, s) => {
      this.requests.count("policy", "", action);
      this.requests.observe("policy", s);
    },
  };

  readonly quotaEvents: QuotaEvents = {
    onCheck: (result) => this.quotaChecks.inc({ result }),
    onRefusal: (login, limit) => {
      if (!this.#refusalLogins.has(login) && this.#refusalLogins.size < MAX_REFUSAL_LOGINS) this.#refusalLogins.add(login);
      this.quotaRefusals.inc({ login: this.#refusalLogins.has(login) ? login : "other", limit });
    },
    onBackendError: (backend) => this.quotaBackendErrors.inc({ backend }),
  };

  readonly listenerEvents: ListenerEvents = {
    onOpen: (server) => this.open.inc({ server }),
    onClose: (server) => this.open.dec({ server }),
    onRefused: (server, reason) => this.refused.inc({ server, reason }),
    onLimit: (server, reason) => this.limits.inc({ server, reason }),
  };

  readonly keycloakEvents: KeycloakEvents = {
    ...sourceEvents(this.kcCalls, this.kcLatency, this.breakerOpen, this.breakerReject),
    onTokenRenewal: () => this.kcRenewals.inc(),
  };

  readonly authentikEvents: AuthentikEvents = sourceEvents(this.akCalls, this.akLatency, this.akBreakerOpen, this.akBreakerReject);
}

/** The hooks of a remote identity source, counting into one IdP's metrics. */
function sourceEvents<Op extends string>(
  calls: Counter<"op" | "outcome">,
  latency: Histogram<"op">,
  opened: Counter,
  rejected: Counter,
): SourceEvents<Op> {
  return {
    onCall: (op, outcome, s) => {
      calls.inc({ op, outcome });
      latency.observe({ op }, s);
    },
    onBreakerOpen: () => opened.inc(),
    onBreakerReject: () => rejected.inc(),
  };
}

export interface Readiness {
  /** null when ready, else why not. */
  (): Promise<string | null>;
}

export function serveMetrics(metrics: Metrics, host: string, port: number, ready: Readiness): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/metrics") {
      metrics.text().then(
        (body) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(body),
        () => res.writeHead(500).end(),
      );
    } else if (path === "/health") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    } else if (path === "/ready") {
      ready().then(
        (why) => why === null
          ? res.writeHead(200, { "content-type": "text/plain" }).end("ready\n")
          : res.writeHead(503, { "content-type": "text/plain" }).end(`not ready: ${why}\n`),
        () => res.writeHead(503).end("not ready\n"),
      );
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics, /health, /ready\n");
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () => resolve(server));
  });
}
