// The SQLite schema: db-init.sql (the Go version's tables, which the Go
// daemon keeps reading, plus tables of this version only that the Go one
// ignores), the check that a file can be served as is, and the in-place
// migration of older layouts.

import { readFileSync } from "node:fs";
import { StoreError } from "../errors.js";
import type { MigrationReport } from "../types.js";
import { columns, hasTable, type DB } from "./connection.js";

const SCHEMA_URL = new URL("../../../../db-init.sql", import.meta.url);

export function schemaSql(): string {
  return readFileSync(SCHEMA_URL, "utf8");
}

/** The same statement as in db-init.sql (a test checks they agree). */
export const QUOTA_LIMITS_DDL = `CREATE TABLE IF NOT EXISTS quota_limits (
    login               TEXT PRIMARY KEY,
    per_hour            INTEGER CHECK (per_hour IS NULL OR per_hour >= 0),
    per_day             INTEGER CHECK (per_day IS NULL OR per_day >= 0),
    recipients_per_hour INTEGER CHECK (recipients_per_hour IS NULL OR recipients_per_hour >= 0),
    updated_at          INTEGER NOT NULL DEFAULT (strftime('%s','now'))
);`;

/** The same statements as in db-init.sql (a test checks they agree). */
export const SENDER_DELEGATIONS_DDL = `CREATE TABLE IF NOT EXISTS sender_delegations (
    from_addr  TEXT NOT NULL,
    login      TEXT NOT NULL,
    updated_at INTEGER NOT NULL DEFAULT (strftime('%s','now')),
    PRIMARY KEY (from_addr, login)
);`;

/** Why the DB cannot be served as is, or null when its schema is current. */
export function schemaProblem(db: DB): string | null {
  for (const t of ["domains", "aliases", "apps", "app_from"]) {
    if (!hasTable(db, t)) return `table ${t} is missing`;
  }
  if (!columns(db, "aliases").has("target_user")) return "table aliases has the older layout (username column)";
  return null;
}

/**
 * Bring a DB to the current schema in one transaction. Older layouts (aliases
 * keyed by a username column, apps with created_at, app_from without
 * updated_at, no domains table) are rebuilt with every row kept.
 */
export function migrate(db: DB): MigrationReport {
  const steps: string[] = [];
  db.pragma("foreign_keys = OFF"); // table rebuilds; checked again below
  // Renaming a table must not rewrite the REFERENCES of other tables (apps
  // renamed while app_from is kept would point app_from at the dropped copy).
  db.pragma("legacy_alter_table = ON");
  try {
    db.transaction(() => {
      const oldAliases = hasTable(db, "aliases") && !columns(db, "aliases").has("target_user");
      const oldApps = hasTable(db, "apps") && !columns(db, "apps").has("updated_at");
      const oldAppFrom = hasTable(db, "app_from") && !columns(db, "app_from").has("updated_at");
      if (oldAliases) {
        const bad = db.prepare("SELECT alias_email FROM aliases WHERE instr(alias_email, '@') = 0 LIMIT 3").all() as { alias_email: string }[];
        if (bad.length > 0) {
          throw new StoreError("invalid", `cannot migrate: aliases without a domain: ${bad.map((b) => b.alias_email).join(", ")}; fix or delete them first`);
        }
        db.exec("ALTER TABLE aliases RENAME TO aliases_pre_migration");
        db.exec("DROP INDEX IF EXISTS idx_aliases_username");
        steps.push("aliases: username column renamed to target_user, alias_domain_name added");
      }
      if (oldApps) {
        db.exec("ALTER TABLE apps RENAME TO apps_pre_migration");
        steps.push("apps: created_at carried over to updated_at");
      }
      if (oldAppFrom) {
        db.exec("ALTER TABLE app_from RENAME TO app_from_pre_migration");
        steps.push("app_from: updated_at added");
      }
      db.exec(schemaSql());
      if (oldAliases) {
        const n = db.prepare(`INSERT OR IGNORE INTO domains(domain_name, enabled)
          SELECT DISTINCT lower(substr(alias_email, instr(alias_email, '@') + 1)), 1 FROM aliases_pre_migration`).run().changes;
        if (n > 0) steps.push(`domains: ${n} created from the aliases' domains`);
        db.exec(`INSERT INTO aliases(alias_email, target_user, alias_domain_name, enabled, updated_at)
          SELECT lower(alias_email), username, lower(substr(alias_email, instr(alias_email, '@') + 1)), enabled, updated_at
          FROM aliases_pre_migration`);
        db.exec("DROP TABLE aliases_pre_migration");
      }
      if (oldApps) {
        db.exec(`INSERT INTO apps(app_id, secret_hash, enabled, updated_at)
          SELECT app_id, secret_hash, enabled, created_at FROM apps_pre_migration`);
        db.exec("DROP TABLE apps_pre_migration");
      }
      if (oldAppFrom) {
        db.exec(`INSERT INTO app_from(app_id, from_addr, enabled)
          SELECT app_id, from_addr, enabled FROM app_from_pre_migration`);
        db.exec("DROP TABLE app_from_pre_migration");
      }
      const broken = db.pragma("foreign_key_check") as unknown[];
      if (broken.length > 0) throw new StoreError("invalid", `cannot migrate: ${broken.length} rows violate foreign keys`);
    }).immediate();
  } finally {
    db.pragma("legacy_alter_table = OFF");
    db.pragma("foreign_keys = ON");
  }
  return { migrated: steps.length > 0, steps };
}
