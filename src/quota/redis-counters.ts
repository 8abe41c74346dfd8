// Quota counters in Redis, shared by several MX hosts. One Lua script per
// message reads the windows, decides and counts (a script runs atomically on
// the server, so daemons sharing a Redis never let more than the limit
// through between them). Its arithmetic is limits.ts's exceeded(), repeated
// in Lua; the tests compare the two.
//
// Keys, for login L under the prefix P (the login in braces is a Redis
// Cluster hash tag: one login's keys share a slot, as a script needs):
//   P{L}:h:<hour>  hash m (messages), r (recipients), x (refused); expires after 2 h
//   P{L}:d:<day>   hash m, r; expires after 2 days
//   P{L}:seen      hash h, d, r (the limits last applied), at; expires after 2 days
//
// Client: @redis/client (node-redis, maintained by Redis). Commands are not
// queued while disconnected (disableOfflineQueue) and each has a deadline, so
// a Redis outage turns into an immediate CounterError (the configured failure
// mode) instead of a stalled SMTP session; the client reconnects by itself.

import { createHash } from "node:crypto";
import { createClient } from "@redis/client";
import type { Logger } from "pino";
import { redactUrl } from "../redact-url.js";
import { COUNTED, CounterError, DAY_KEEP_S, HOUR_KEEP_S, type Counters, type LoginUsage, type TakeRequest, type TakeResult } from "./counters.js";
import { LIMIT_NAMES, windowsAt, type LimitName, type QuotaLimits, type WindowCount } from "./limits.js";

const TAKE_SCRIPT = `
local function n(key, field) return tonumber(redis.call('HGET', key, field) or '0') or 0 end
local fh, fd = tonumber(ARGV[1]), tonumber(ARGV[2])
local lim = { per_hour = tonumber(ARGV[3]), per_day = tonumber(ARGV[4]), recipients_per_hour = tonumber(ARGV[5]) }
local rcpts, now = tonumber(ARGV[6]), ARGV[7]
local used = {
  per_hour = n(KEYS[2], 'm') * (1 - fh) + n(KEYS[1], 'm'),
  recipients_per_hour = n(KEYS[2], 'r') * (1 - fh) + n(KEYS[1], 'r'),
  per_day = n(KEYS[4], 'm') * (1 - fd) + n(KEYS[3], 'm'),
}
local add = { per_hour = 1, recipients_per_hour = rcpts, per_day = 1 }
redis.call('HSET', KEYS[5], 'h', ARGV[3], 'd', ARGV[4], 'r', ARGV[5], 'at', now)
redis.call('EXPIRE', KEYS[5], ARGV[9])
for _, k in ipairs({ 'per_hour', 'recipients_per_hour', 'per_day' }) do
  if lim[k] > 0 and used[k] + add[k] > lim[k] then
    redis.call('HINCRBY', KEYS[1], 'x', 1)
    redis.call('EXPIRE', KEYS[1], ARGV[8])
    return { 'over', k, tostring(used[k]), tostring(lim[k]) }
  end
end
redis.call('HINCRBY', KEYS[1], 'm', 1)
redis.call('HINCRBY', KEYS[1], 'r', rcpts)
redis.call('EXPIRE', KEYS[1], ARGV[8])
redis.call('HINCRBY', KEYS[3], 'm', 1)
redis.call('HINCRBY', KEYS[3], 'r', rcpts)
redis.call('EXPIRE', KEYS[3], ARGV[9])
return { 'ok' }
`;
const TAKE_SHA = createHash("sha1").update(TAKE_SCRIPT).digest("hex");

export interface RedisCountersOptions {
  readonly url: string;
  readonly keyPrefix: string;
  readonly timeoutMs: number;
  readonly logger?: Logger;
  /** The CLI gives up at once instead of reconnecting. */
  readonly reconnect: boolean;
}

type Client = ReturnType<typeof createClient>;

export class RedisCounters implements Counters {
  readonly backend = "redis";
  readonly #opts: RedisCountersOptions;
  readonly #client: Client;
  #down: string | null = null;
  #connecting: Promise<void> | null = null;
  #closed = false;

  constructor(opts: RedisCountersOptions) {
    this.#opts = opts;
    this.#client = createClient({
      url: opts.url,
      disableOfflineQueue: true,
      commandOptions: { timeout: opts.timeoutMs },
      socket: {
        connectTimeout: opts.timeoutMs,
        // Every 100 ms at first, then once a second, for ever (the daemon); never (the CLI).
        reconnectStrategy: opts.reconnect ? (retries: number) => Math.min(100 * (retries + 1), 1000) : false,
      },
    });
    // Without a listener an 'error' event would end the process.
    this.#client.on("error", (err: unknown) => this.#markDown(err instanceof Error ? err.message : String(err)));
    this.#client.on("ready", () => {
      if (this.#down !== null) opts.logger?.info({ url: redactUrl(opts.url) }, "quota counters: redis available again");
      this.#down = null;
    });
  }

  #markDown(reason: string): void {
    if (this.#down === null && !this.#closed) this.#opts.logger?.warn({ url: redactUrl(this.#opts.url), reason }, "quota counters: redis unavailable");
    this.#down = reason || "redis unavailable";
  }

  /** Start connecting; resolves when connected, rejects with CounterError when the first attempt fails (the daemon does not wait). */
  connect(): Promise<void> {
    this.#connecting ??= this.#client.connect().then(() => undefined, (err: unknown) => {
      this.#connecting = null;
      throw new CounterError(`redis ${redactUrl(this.#opts.url)}: ${err instanceof Error ? err.message : String(err)}`);
    });
    return this.#connecting;
  }

  #key(login: string, suffix: string): string {
    return `${this.#opts.keyPrefix}{${login}}:${suffix}`;
  }

  async #send(args: readonly string[]): Promise<unknown> {
    if (this.#closed) throw new CounterError("redis client closed");
    if (!this.#client.isReady) {
      this.connect().catch(() => undefined);
      throw new CounterError(`redis ${redactUrl(this.#opts.url)} not connected${this.#down ? `: ${this.#down}` : ""}`);
    }
    try {
      return await this.#client.sendCommand([...args]);
    } catch (err) {
      throw new CounterError(`redis: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  async take(req: TakeRequest): Promise<TakeResult> {
    const w = windowsAt(req.nowMs);
    const l = req.limits;
    const keys = [this.#key(req.login, `h:${w.hour}`), this.#key(req.login, `h:${w.hour - 1}`), this.#key(req.login, `d:${w.day}`), this.#key(req.login, `d:${w.day - 1}`), this.#key(req.login, "seen")];
    const argv = [String(w.hourElapsed), String(w.dayElapsed), String(l.per_hour), String(l.per_day), String(l.recipients_per_hour),
      String(req.recipients), String(Math.floor(req.nowMs / 1000)), String(HOUR_KEEP_S), String(DAY_KEEP_S)];
    let reply: unknown;
    try {
      reply = await this.#send(["EVALSHA", TAKE_SHA, String(keys.length), ...keys, ...argv]);
    } catch (err) {
      if (!(err instanceof CounterError) || !err.message.includes("NOSCRIPT")) throw err;
      reply = await this.#send(["EVAL", TAKE_SCRIPT, String(keys.length), ...keys, ...argv]);
    }
    return parseTake(reply);
  }

  async usage(login: string, nowMs: number): Promise<LoginUsage> {
    const w = windowsAt(nowMs);
    const hget = async (suffix: string): Promise<{ m: number; r: number; x: number }> => {
      const v = await this.#send(["HMGET", this.#key(login, suffix), "m", "r", "x"]);
      const a = Array.isArray(v) ? v : [];
      return { m: num(a[0]), r: num(a[1]), x: num(a[2]) };
    };
    const [hc, hp, dc, dp] = await Promise.all([hget(`h:${w.hour}`), hget(`h:${w.hour - 1}`), hget(`d:${w.day}`), hget(`d:${w.day - 1}`)]);
    const seen = await this.#send(["HMGET", this.#key(login, "seen"), "h", "d", "r", "at"]);
    const s = Array.isArray(seen) ? seen : [];
    const applied: QuotaLimits | null = s[3] === null || s[3] === undefined ? null : { per_hour: num(s[0]), per_day: num(s[1]), recipients_per_hour: num(s[2]) };
    const win = (cur: number, prev: number): WindowCount => ({ cur, prev });
    return {
      login,
      usage: { messagesHour: win(hc.m, hp.m), recipientsHour: win(hc.r, hp.r), messagesDay: win(dc.m, dp.m) },
      refusedHour: hc.x,
      applied,
      lastAt: applied ? num(s[3]) : null,
    };
  }

  async reset(login: string): Promise<boolean> {
    const keys = await this.#scan(`${globEscape(this.#opts.keyPrefix)}{${globEscape(login)}}:*`);
    if (keys.length === 0) return false;
    await this.#send(["DEL", ...keys]);
    return true;
  }

  async all(nowMs: number): Promise<LoginUsage[]> {
    const keys = await this.#scan(`${globEscape(this.#opts.keyPrefix)}{*}:seen`);
    const logins = keys.map((k) => k.slice(this.#opts.keyPrefix.length + 1, -"}:seen".length)).sort();
    const out: LoginUsage[] = [];
    for (const l of logins) out.push(await this.usage(l, nowMs));
    return out;
  }

  async #scan(pattern: string): Promise<string[]> {
    const keys: string[] = [];
    let cursor = "0";
    do {
      const r = await this.#send(["SCAN", cursor, "MATCH", pattern, "COUNT", "1000"]);
      if (!Array.isArray(r) || r.length !== 2 || !Array.isArray(r[1])) throw new CounterError("redis: unexpected SCAN reply");
      cursor = String(r[0]);
      for (const k of r[1] as unknown[]) keys.push(String(k));
    } while (cursor !== "0");
    return keys;
  }

  async close(): Promise<void> {
    this.#closed = true;
    try {
      if (this.#client.isOpen) await this.#client.close();
      else this.#client.destroy();
    } catch {
      this.#client.destroy();
    }
  }
}

function num(v: unknown): number {
  const n = Number(typeof v === "string" || typeof v === "number" ? v : 0);
  return Number.isFinite(n) ? n : 0;
}

function parseTake(reply: unknown): TakeResult {
  if (!Array.isArray(reply) || reply.length === 0) throw new CounterError("redis: unexpected reply from the quota script");
  const kind = String(reply[0]);
  if (kind === "ok") return COUNTED;
  const limit = String(reply[1]) as LimitName;
  if (kind !== "over" || !LIMIT_NAMES.includes(limit)) throw new CounterError("redis: unexpected reply from the quota script");
  return { kind: "over", exceeded: { limit, used: num(reply[2]), max: num(reply[3]) } };
}

function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, "\\$&");
}

/** A Redis URL without its password, for logs (src/redact-url.ts). */
export { redactUrl };
