// mailcloakctl quota: per-login outbound limits (set/del/list, in the main
// database) and the counters the daemon keeps (show/reset/top, in the
// quota counter store: SQLite beside the main database, or Redis).

import type { Command } from "commander";
import { defaultQuotaPath } from "../config/quotas.js";
import { DEFAULTS } from "../config/types.js";
import type { QuotaSettings } from "../config/types.js";
import type { Counters, LoginUsage } from "../quota/counters.js";
import { CounterError } from "../quota/counters.js";
import { effectiveLimits, LIMIT_NAMES, parseLimit, usedNow, windowsAt, type LimitName, type QuotaLimits } from "../quota/limits.js";
import { describeCounters, openCounters } from "../quota/open.js";
import { RedisCounters } from "../quota/redis-counters.js";
import type { AdminStore } from "../store/types.js";
import { normalizeLogin } from "../store/validate.js";
import { asCliError, CliError, EXIT_CODES } from "./exit.js";
import { formatJson, isoTime } from "./format.js";
import type { Io } from "./mailcloakctl.js";
import { openAdminStore, type Settings } from "./settings.js";
import { settingsOf } from "./service.js";

const PROG = "mailcloakctl";

/** The quotas settings mailcloakctl uses: the config file's, or the defaults beside --db. */
function quotaSettings(s: Settings): QuotaSettings {
  const c = s.config?.quotas;
  // A PostgreSQL store has no directory: the counters stay beside sqlite.path, as the daemon keeps them.
  const beside = defaultQuotaPath(s.postgres !== undefined ? (s.config?.sqlite.path ?? DEFAULTS.sqlitePath) : s.dbPath);
  if (!c) {
    return {
      defaults: { per_hour: 0, per_day: 0, recipients_per_hour: 0 },
      attributes: { per_hour: null, per_day: null, recipients_per_hour: null },
      message: "", failureMode: "open", backend: "sqlite", sqlitePath: beside,
      redis: { url: "", keyPrefix: "", timeoutMs: 500 },
    };
  }
  // --db elsewhere than the config's sqlite.path: the default counter file follows it.
  const derived = c.sqlitePath === defaultQuotaPath(s.config!.sqlite.path);
  return derived ? { ...c, sqlitePath: beside } : c;
}

function fail(err: unknown): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof CounterError) return new CliError(EXIT_CODES.unavailable, `quota counters unavailable: ${err.message}`);
  return asCliError(err);
}

async function withStore<T>(cmd: Command, io: Io, fn: (st: AdminStore, s: Settings) => T | Promise<T>): Promise<T> {
  const s = settingsOf(cmd, io);
  let st: AdminStore;
  try {
    st = await openAdminStore(s);
  } catch (err) {
    throw fail(err);
  }
  try {
    return await fn(st, s);
  } catch (err) {
    throw fail(err);
  } finally {
    await st.close();
  }
}

async function withCounters<T>(s: Settings, fn: (c: Counters, q: QuotaSettings) => Promise<T>): Promise<T> {
  const q = quotaSettings(s);
  const c = openCounters(q, { busyTimeoutMs: s.busyTimeoutMs, daemon: false });
  try {
    if (c instanceof RedisCounters) await c.connect();
    return await fn(c, q);
  } catch (err) {
    throw fail(err);
  } finally {
    await c.close();
  }
}

/** A --per-hour style value: a whole number (0 = unlimited) or "default" (unset here). */
function limitOption(flag: string): (v: string) => number | "default" {
  // "default" rather than null: commander turns a parser's null into "".
  return (v: string) => {
    if (v.trim().toLowerCase() === "default") return "default";
    const n = parseLimit(v);
    if (n === null) throw new CliError(EXIT_CODES.usage, `${flag}: must be a whole number >= 0 (0 = unlimited) or "default", got ${JSON.stringify(v)}`);
    return n;
  };
}

const show = (v: number | null): string => (v === null ? "default" : v === 0 ? "unlimited" : String(v));
const limitText = (v: number): string => (v === 0 ? "-" : String(v));
const round1 = (x: number): number => Math.round(x * 10) / 10;

interface UsageView {
  readonly login: string;
  readonly limits: QuotaLimits;
  readonly used: Record<LimitName, number>;
  /** Highest used/limit over the limits that are set, in percent (null: all unlimited). */
  readonly percent: number | null;
  readonly refused_this_hour: number;
  readonly last_checked: string | null;
}

function view(u: LoginUsage, fallback: QuotaLimits, nowMs: number): UsageView {
  const limits = u.applied ?? fallback;
  const e = usedNow(u.usage, windowsAt(nowMs));
  const used = { per_hour: round1(e.per_hour), per_day: round1(e.per_day), recipients_per_hour: round1(e.recipients_per_hour) };
  let percent: number | null = null;
  for (const k of LIMIT_NAMES) if (limits[k] > 0) percent = Math.max(percent ?? 0, Math.round((used[k] / limits[k]) * 100));
  return { login: u.login, limits, used, percent, refused_this_hour: u.refusedHour, last_checked: u.lastAt === null ? null : new Date(u.lastAt * 1000).toISOString() };
}

export function addQuotaCommands(program: Command, io: Io): void {
  const quota = program.command("quota").description("outbound quotas per SMTP login: limits, and what each login has sent")
    .usage("<command> [options]");
  quota.argument("[command]").action((sub: string | undefined) => {
    const names = quota.commands.map((c) => c.name()).join(", ");
    const help = `see: ${PROG} quota --help`;
    throw new CliError(EXIT_CODES.usage, sub === undefined ? `quota: missing command (one of: ${names}); ${help}` : `quota: unknown command '${sub}' (one of: ${names}); ${help}`);
  });

  quota.command("set").description("set a login's limits (0 = unlimited, \"default\" = the Keycloak attribute or config default); takes effect at once")
    .argument("<login>")
    .option("--per-hour <n>", "messages per hour", limitOption("--per-hour"))
    .option("--per-day <n>", "messages per day", limitOption("--per-day"))
    .option("--recipients-per-hour <n>", "recipients per hour, over all messages", limitOption("--recipients-per-hour"))
    .option("--json", "the row as JSON")
    .action((login: string, o: { perHour?: number | "default"; perDay?: number | "default"; recipientsPerHour?: number | "default"; json?: boolean }, cmd: Command) => withStore(cmd, io, async (st) => {
      const values: Partial<Record<LimitName, number | null>> = {};
      const value = (v: number | "default"): number | null => (v === "default" ? null : v);
      if (o.perHour !== undefined) values.per_hour = value(o.perHour);
      if (o.perDay !== undefined) values.per_day = value(o.perDay);
      if (o.recipientsPerHour !== undefined) values.recipients_per_hour = value(o.recipientsPerHour);
      if (Object.keys(values).length === 0) throw new CliError(EXIT_CODES.usage, "quota set: give at least one of --per-hour, --per-day, --recipients-per-hour");
      const row = await st.setQuotaLimits(login, values);
      const name = normalizeLogin(login);
      if (o.json) for (const line of formatJson([row ?? { login: name, per_hour: null, per_day: null, recipients_per_hour: null }])) io.out(line);
      else io.out(row === null ? `quota ${name}: back to the defaults` : `quota ${name}: per_hour ${show(row.per_hour)}, per_day ${show(row.per_day)}, recipients_per_hour ${show(row.recipients_per_hour)}`);
    }));

  quota.command("del").description("remove every limit set for a login (the Keycloak attribute or config default applies)").argument("<login>")
    .action((login: string, _o: unknown, cmd: Command) => withStore(cmd, io, async (st) => {
      const name = normalizeLogin(login);
      if (!(await st.deleteQuotaLimits(login))) throw new CliError(EXIT_CODES.refused, `no quota is set for ${name} (see: ${PROG} quota list)`);
      io.out(`quota ${name}: deleted; the defaults apply`);
    }));

  quota.command("list").description("the logins with limits set here: login, per_hour, per_day, recipients_per_hour, updated_at (UTC, ISO 8601)")
    .option("--json", "a JSON array")
    .action((o: { json?: boolean }, cmd: Command) => withStore(cmd, io, async (st) => {
      const rows = await st.listQuotaLimits();
      if (o.json) for (const line of formatJson(rows)) io.out(line);
      else for (const r of rows) io.out(`${r.login}\t${show(r.per_hour)}\t${show(r.per_day)}\t${show(r.recipients_per_hour)}\t${isoTime(r.updated_at)}`);
    }));

  quota.command("show").description("a login's limits (set here, config default, last applied by the daemon) and what it sent in the last hour and day")
    .argument("<login>").option("--json", "a JSON object")
    .action((login: string, o: { json?: boolean }, cmd: Command) => withStore(cmd, io, async (st, s) => {
      const name = normalizeLogin(login);
      const set = await st.quotaLimitsOf(name);
      await withCounters(s, async (c, q) => {
        const now = Date.now();
        const v = view(await c.usage(name, now), effectiveLimits(q.defaults, set), now);
        const limits = Object.fromEntries(LIMIT_NAMES.map((k) => [k, { set: set[k], default: q.defaults[k], applied: v.limits[k], used: v.used[k] }]));
        if (o.json) {
          io.out(JSON.stringify({ login: name, limits, refused_this_hour: v.refused_this_hour, last_checked: v.last_checked, counters: describeCounters(q) }, null, 2));
          return;
        }
        io.out("limit\tset\tdefault\tapplied\tused");
        for (const k of LIMIT_NAMES) io.out(`${k}\t${show(set[k])}\t${show(q.defaults[k])}\t${show(v.limits[k])}\t${v.used[k]}`);
        io.out(`refused this hour: ${v.refused_this_hour}; last checked: ${v.last_checked ?? "never"}`);
      });
    }));

  quota.command("reset").description("forget what a login has sent (its counters start again from zero)").argument("<login>")
    .action((login: string, _o: unknown, cmd: Command) => {
      const s = settingsOf(cmd, io);
      const name = normalizeLogin(login);
      return withCounters(s, async (c) => {
        const had = await c.reset(name);
        io.out(had ? `quota ${name}: counters reset` : `quota ${name}: nothing counted`);
      });
    });

  quota.command("top").description("the logins nearest to (or over) a limit: login, used/limit per hour, recipients/hour, per day, % of the closest limit, refused this hour")
    .option("--limit <n>", "show at most this many logins (default 20)", (v) => {
      const n = parseLimit(v);
      if (n === null || n === 0) throw new CliError(EXIT_CODES.usage, `--limit: must be a whole number > 0, got ${JSON.stringify(v)}`);
      return n;
    })
    .option("--json", "a JSON array")
    .action((o: { limit?: number; json?: boolean }, cmd: Command) => withStore(cmd, io, async (st, s) => {
      await withCounters(s, async (c, q) => {
        const now = Date.now();
        const views = [];
        for (const u of await c.all(now)) views.push(view(u, effectiveLimits(q.defaults, await st.quotaLimitsOf(u.login)), now));
        views.sort((a, b) => (b.percent ?? -1) - (a.percent ?? -1) || b.refused_this_hour - a.refused_this_hour || b.used.per_hour - a.used.per_hour || a.login.localeCompare(b.login));
        const top = views.slice(0, o.limit ?? 20);
        if (o.json) {
          for (const line of formatJson(top)) io.out(line);
          return;
        }
        io.out("login\tper_hour\trecipients_per_hour\tper_day\t%\trefused");
        for (const v of top) {
          const cell = (k: LimitName): string => `${v.used[k]}/${limitText(v.limits[k])}`;
          io.out(`${v.login}\t${cell("per_hour")}\t${cell("recipients_per_hour")}\t${cell("per_day")}\t${v.percent === null ? "-" : `${v.percent}%`}\t${v.refused_this_hour}`);
        }
      });
    }));
}
