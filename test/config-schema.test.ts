// The settings schema (src/config/schema.ts) against everything that repeats
// it: the sample config, the README's configuration tables, the loader's
// defaults, bounds and key names, check-config's printout, and the keys a
// SIGHUP cannot apply. A key added to one and not the other fails here.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { parse as parseYaml, stringify } from "yaml";
import { README_BLOCKS, readmeBlocks, renderReadmeBlock, renderSample } from "../src/config/docs.js";
import { effectiveSettings, restartKeys } from "../src/config/effective.js";
import { ConfigError, keysRead, parseConfig } from "../src/config/load.js";
import { OLDER_KEYS, SECTIONS, SETTINGS, type Setting, type YamlValue } from "../src/config/schema.js";
import type { Config } from "../src/config/types.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SAMPLE_PATH = "configs/config.yaml.sample";
const SAMPLE = readFileSync(join(ROOT, SAMPLE_PATH), "utf8");
const README = readFileSync(join(ROOT, "README.md"), "utf8");
const FIX = "run `npm run config:docs` after editing src/config/schema.ts";

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === "object" && v !== null && !Array.isArray(v);

/** Leaves of a parsed YAML mapping by dotted path (lists are leaves). */
function flatten(v: unknown, prefix = "", out = new Map<string, unknown>()): Map<string, unknown> {
  if (!isPlain(v)) {
    out.set(prefix, v);
    return out;
  }
  for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  return out;
}

/** A deep copy of `obj` with `key` (dotted) set to `value`. */
function withKey(obj: Plain, key: string, value: unknown): Plain {
  const copy = structuredClone(obj);
  const parts = key.split(".");
  let at: Plain = copy;
  for (const p of parts.slice(0, -1)) {
    if (!isPlain(at[p])) at[p] = {};
    at = at[p] as Plain;
  }
  at[parts.at(-1)!] = value;
  return copy;
}

/** The sample with its commented-out keys and sections switched on (`# name: v` -> `name: v`, for the schema's names only: prose stays). */
const NAMES = [...new Set([...SETTINGS.map((r) => r.name), ...SECTIONS.map((s) => s.path.split(".").at(-1)!)])].join("|");
const SAMPLE_ALL = SAMPLE.replace(new RegExp(`^( *)# ( *(?:${NAMES}):(?: |$))`, "gm"), "$1$2");

const parse = (obj: Plain): Config => parseConfig(stringify(obj), "x.yaml");

// Small valid configs, one per place a row is in effect.
const KC: Plain = { idp: { provider: "keycloak", keycloak: { base_url: "https://sso.example.org", realm: "mail" } } };
const AK: Plain = { idp: { provider: "authentik", authentik: { base_url: "https://auth.example.org", api_token: "t0ken" } } };
const STATIC: Plain = { idp: { provider: "static", static: { users: [] } } };
const LISTS_ON: Plain = { ...KC, lists: { parent_group: "/lists" } };
const STORE_PG: Plain = { ...KC, store: { backend: "postgres", url: "postgres://mailcloak@127.0.0.1:5432/mailcloak" } };

/** The small config in which `row` is read and shown. */
function baseFor(row: Setting): Plain {
  if (row.key.startsWith("idp.authentik.")) return AK;
  if (row.key.startsWith("idp.static.")) return STATIC;
  if (row.key.startsWith("lists.") && row.name !== "parent_group") return LISTS_ON;
  if (row.key.startsWith("store.") && row.name !== "backend") return STORE_PG;
  return KC;
}

/** Rows check-config does not show: the secret files are read into the secret, which is shown. */
const NOT_SHOWN = new Set(["idp.keycloak.client_secret_file", "idp.authentik.api_token_file", "store.password_file"]);

describe("settings schema: the files written from it", () => {
  test("configs/config.yaml.sample is what the schema writes", () => {
    assert.equal(SAMPLE, renderSample(), FIX);
  });

  test("every README configuration block is present and is what the schema writes", () => {
    const blocks = readmeBlocks(README);
    assert.deepEqual([...blocks.keys()].sort(), [...README_BLOCKS].sort(), `README.md needs exactly the blocks ${README_BLOCKS.join(", ")}`);
    for (const name of README_BLOCKS) assert.equal(blocks.get(name), renderReadmeBlock(name), `README block ${name}: ${FIX}`);
  });
});

describe("settings schema: the sample config, read as a file", () => {
  test("the sample loads without a warning: it has no key the loader does not know", () => {
    const cfg = parseConfig(SAMPLE, SAMPLE_PATH);
    assert.deepEqual(cfg.warnings, []);
  });

  test("the sample holds every schema key and no other, each with the schema's default or example", () => {
    const inSample = flatten(parseYaml(SAMPLE_ALL));
    assert.deepEqual([...inSample.keys()].sort(), SETTINGS.map((r) => r.key).sort());
    for (const row of SETTINGS) {
      const want = row.example ?? ("default" in row ? row.default : undefined);
      assert.deepEqual(inSample.get(row.key), want, `${SAMPLE_PATH}: ${row.key}`);
    }
  });

  test("the sample writes the defaults where it gives no example", () => {
    const got = parseConfig(SAMPLE, SAMPLE_PATH);
    assert.deepEqual(got.cache, { ttlSeconds: 120, negativeTtlSeconds: 30, maxEntries: 50_000, staleSeconds: 300 });
    assert.equal(got.log.level, "info");
  });

  test("the dev config loads without a warning", () => {
    assert.deepEqual(parseConfig(readFileSync(join(ROOT, "configs/dev.yaml"), "utf8"), "configs/dev.yaml").warnings, []);
  });
});

describe("settings schema: the README tables, read as text", () => {
  const rows = new Map<string, string[]>();
  for (const [name, block] of readmeBlocks(README)) {
    if (name === "sighup") continue; // by section, not by key
    for (const m of block.matchAll(/^\| `([a-z_.]+)` \| (.*) \|$/gm)) rows.set(m[1]!, m[2]!.split(/ (?<!\\)\| /));
  }
  const olderKeys = new Set(OLDER_KEYS.map((k) => k.key));

  test("the SIGHUP table names each section's restart-only keys, as the schema marks them", () => {
    const table = readmeBlocks(README).get("sighup") ?? "";
    for (const top of new Set(SECTIONS.map((s) => s.path.split(".")[0]!))) {
      const line = table.split("\n").find((l) => l.split(" | ")[0]!.includes(`\`${top}\``));
      assert.ok(line, `the SIGHUP table has a row for ${top}`);
      const restartCell = line.split(" | ").at(-1)!.replace(/ \|$/, "");
      const restart = SETTINGS.filter((r) => r.key.startsWith(`${top}.`) && r.reload === "restart").map((r) => r.key.slice(top.length + 1));
      const all = SETTINGS.filter((r) => r.key.startsWith(`${top}.`)).length;
      const want = restart.length === 0 ? "—" : restart.length === all ? "all" : restart.map((k) => `\`${k}\``).join(", ");
      assert.equal(restartCell, want, top);
    }
  });

  test("the tables list every schema key once, and no other key", () => {
    const keys = [...rows.keys()].filter((k) => !olderKeys.has(k));
    assert.deepEqual(keys.sort(), SETTINGS.map((r) => r.key).sort());
  });

  test("each row's default cell is the schema's", () => {
    for (const row of SETTINGS) {
      const [, dflt] = rows.get(row.key)!;
      if (row.defaultText === undefined && "default" in row && row.default !== undefined) {
        const want = typeof row.default === "string" && row.default !== "" ? row.default : JSON.stringify(row.default);
        assert.equal(dflt, `\`${want}\``, row.key);
      }
    }
  });
});

describe("settings schema: the loader", () => {
  test("every default the loader fills in is the schema's", () => {
    // Defaults the loader computes from another key.
    const computed: Record<string, YamlValue> = { "quotas.sqlite_path": "/var/lib/mailcloak/quota.db" };
    for (const row of SETTINGS) {
      if (NOT_SHOWN.has(row.key) || !("default" in row) || row.default === undefined) continue;
      const got = row.show(parse(baseFor(row)));
      assert.notEqual(got, undefined, `${row.key} is shown in its base config`);
      assert.deepEqual(got, computed[row.key] ?? row.default, row.key);
    }
  });

  test("whole numbers: the schema's bounds are accepted, one past them is a one-line error naming the key", () => {
    for (const row of SETTINGS) {
      if (row.type !== "int") continue;
      const base = baseFor(row);
      assert.equal(row.show(parse(withKey(base, row.key, row.min))), row.min, `${row.key}: ${row.min}`);
      assert.equal(row.show(parse(withKey(base, row.key, row.max))), row.max, `${row.key}: ${row.max}`);
      const goTtl = row.name === "cache_ttl_seconds" && row.key !== "idp.static.cache_ttl_seconds";
      if (goTtl) {
        // The Go release's rule: 0 or less is the default; too large is cut down with a warning.
        assert.equal(row.show(parse(withKey(base, row.key, row.min - 1))), row.default, row.key);
        const big = parse(withKey(base, row.key, row.max + 1));
        assert.equal(row.show(big), row.max);
        assert.ok(big.warnings.some((w) => w.includes(row.key)), row.key);
        continue;
      }
      for (const bad of [row.min - 1, row.max + 1]) {
        assert.throws(() => parse(withKey(base, row.key, bad)), (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.match(err.message, new RegExp(`^x\\.yaml: ${row.key.replace(/\./g, "\\.")}: must be between ${row.min} and ${row.max}, got ${bad}$`));
          return true;
        }, `${row.key}: ${bad}`);
      }
    }
  });

  test("choices: each listed value is accepted, another is an error naming the key (a warning for the Go failure mode)", () => {
    for (const row of SETTINGS) {
      if (row.type !== "enum") continue;
      // store.backend: postgres needs a URL, which the PostgreSQL base config has.
      const base = row.key === "store.backend" ? STORE_PG : baseFor(row);
      for (const v of row.values) {
        // Only the provider whose section the base config has can be chosen in it.
        if (row.key === "idp.provider") continue;
        assert.equal(row.show(parse(withKey(base, row.key, v))), v, `${row.key}: ${v}`);
      }
      if (row.key === "policy.idp_failure_mode") {
        const got = parse(withKey(base, row.key, "bogus"));
        assert.equal(row.show(got), "tempfail");
        assert.ok(got.warnings.some((w) => w.includes(row.key)));
        continue;
      }
      assert.throws(() => parse(withKey(base, row.key, "bogus")), (err: unknown) => err instanceof ConfigError && err.message.includes(`${row.key}: must be one of ${row.values.join(", ")}`), row.key);
    }
  });

  test("the loader reads every schema key, and no key that is not in the schema", () => {
    // The sample with everything on, less the three secret files (each excludes its inline secret).
    const all = SAMPLE_ALL.replace(/^ *(client_secret|api_token|password)_file:.*\n/gm, "").replace('parent_group: ""', 'parent_group: "/lists"');
    const read = new Set(keysRead(all, SAMPLE_PATH).map((k) => k.replace(/\[\d+\].*$/, "")));
    const known = new Set([...SETTINGS.map((r) => r.key), ...SECTIONS.map((s) => s.path), ...OLDER_KEYS.map((k) => k.key)]);
    for (const k of read) {
      const canonical = k === "keycloak" || k.startsWith("keycloak.") ? "keycloak.*" : k;
      assert.ok(known.has(canonical), `the loader reads ${k}, which schema.ts does not list`);
    }
    for (const row of SETTINGS) assert.ok(read.has(row.key), `schema.ts lists ${row.key}, which the loader does not read`);
  });
});

describe("settings schema: check-config and SIGHUP", () => {
  test("check-config prints each setting in effect once, under its YAML key, secrets redacted", () => {
    const cfg = parseConfig(SAMPLE, SAMPLE_PATH);
    const lines = effectiveSettings(cfg).trimEnd().split("\n");
    const keys = lines.map((l) => l.slice(0, l.indexOf(": ")));
    const shown = SETTINGS.filter((r) => r.show(cfg) !== undefined).map((r) => r.key);
    assert.deepEqual(keys, shown);
    assert.ok(shown.includes("idp.keycloak.cache_ttl_seconds") && shown.includes("quotas.redis.timeout_ms"));
    assert.ok(lines.includes('idp.keycloak.client_secret: "[redacted]"'), lines.join("\n"));
    assert.ok(!lines.join("\n").includes("change-me"));
    const withPassword = parse(withKey(KC, "quotas.redis.url", "redis://u:pw-42@127.0.0.1:6379/0"));
    assert.ok(effectiveSettings(withPassword).includes('quotas.redis.url: "redis://u:[redacted]@127.0.0.1:6379/0"'));
    assert.ok(!effectiveSettings(withPassword).includes("pw-42"));
    // The store's URL: the password in it is taken out; one in a query parameter is redacted.
    const pg = parse(withKey(withKey(STORE_PG, "store.url", "postgres://mc:pg-pw-7@127.0.0.1:5432/mail?sslmode=disable&password=pg-pw-8"), "store.password", "pg-pw-9"));
    const shownPg = effectiveSettings(pg);
    assert.ok(shownPg.includes('store.url: "postgres://mc@127.0.0.1:5432/mail?sslmode=disable&password=[redacted]"'), shownPg);
    assert.ok(shownPg.includes('store.password: "[redacted]"'), shownPg);
    for (const pw of ["pg-pw-7", "pg-pw-8", "pg-pw-9"]) assert.ok(!shownPg.includes(pw), pw);
  });

  test("a reload names exactly the changed settings the schema marks restart", () => {
    // A different valid value for each text setting; numbers, booleans and choices are varied below.
    const other: Record<string, YamlValue> = {
      "idp.keycloak.base_url": "https://other.example.org", "idp.keycloak.realm": "other", "idp.keycloak.client_id": "other",
      "idp.keycloak.client_secret": "other", "idp.authentik.base_url": "https://other.example.org", "idp.authentik.api_token": "other",
      "idp.static.users": [{ username: "zed" }], "sqlite.path": "/tmp/other.db", "policy.recipient_delimiter": "-",
      "policy.send_allowed_attribute": "other", "sockets.policy_socket": "/tmp/other.sock", "sockets.socketmap_socket": "/tmp/other-map.sock",
      "sockets.socket_owner_user": "other", "sockets.socket_owner_group": "other", "sockets.socket_mode": "0600",
      "daemon.user": "other", "daemon.pid_file": "/tmp/other.pid", "metrics.listen": "127.0.0.1:9999",
      "quotas.per_hour_attribute": "other", "quotas.per_day_attribute": "other", "quotas.recipients_per_hour_attribute": "other",
      "quotas.message": "Slow down", "quotas.sqlite_path": "/tmp/other-quota.db", "quotas.redis.url": "redis://127.0.0.1:6380/0",
      "quotas.redis.key_prefix": "other:", "lists.parent_group": "/other", "lists.address_attribute": "other",
      "lists.posting_attribute": "other", "lists.send_as_attribute": "other",
      "store.url": "postgres://mailcloak@127.0.0.1:5433/other", "store.password": "other",
    };
    // Keys whose default follows the one changed (quota.db sits beside the database).
    // Leaving PostgreSQL: its settings are no longer in effect.
    const pgKeys = SETTINGS.filter((r) => r.key.startsWith("store.") && r.name !== "backend" && !NOT_SHOWN.has(r.key)).map((r) => r.key);
    const dependents: Record<string, string[]> = { "sqlite.path": ["quotas.sqlite_path"], "store.backend": pgKeys };
    for (const row of SETTINGS) {
      if (NOT_SHOWN.has(row.key)) continue;
      // Lists on from the start: turning them on would change every lists key at once.
      const base = row.key.startsWith("lists.") ? LISTS_ON : row.key === "store.backend" ? STORE_PG : baseFor(row);
      const before = parse(base);
      const now = row.show(before);
      let alt: YamlValue | undefined;
      if (row.type === "int") alt = now === row.min ? row.min + 1 : row.min;
      else if (row.type === "bool") alt = now !== true;
      else if (row.type === "enum") alt = row.values.find((v) => v !== now && !(row.key === "idp.provider"));
      else alt = other[row.key];
      if (row.key === "idp.provider") continue; // switching provider needs the other section: covered by config.test.ts
      assert.notEqual(alt, undefined, `the test needs another value for ${row.key}`);
      const after = parse(withKey(base, row.key, alt));
      assert.notDeepEqual(row.show(after), now, `${row.key} changed`);
      assert.deepEqual(restartKeys(after, before), row.reload === "restart" ? [row.key, ...(dependents[row.key] ?? [])] : [], row.key);
    }
  });
});
