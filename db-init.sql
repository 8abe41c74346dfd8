-- mailcloak SQLite schema (user_version 1).
-- Compatible with the Go mailcloak's current database: same tables, columns,
-- keys, checks, cascades and triggers, so either program can open the other's DB.
-- Applied by `mailcloakctl init` (idempotent); older schemas are migrated first.

CREATE TABLE IF NOT EXISTS domains (
    domain_name TEXT PRIMARY KEY,
    enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0,1)),
    updated_at  INTEGER NOT NULL DEFAULT (strftime('%s','now'))
);

CREATE TRIGGER IF NOT EXISTS trg_domains_set_updated_at
AFTER UPDATE ON domains FOR EACH ROW
WHEN NEW.updated_at = OLD.updated_at
BEGIN
    UPDATE domains SET updated_at = strftime('%s','now') WHERE domain_name = NEW.domain_name;
END;

-- An alias maps alias_email to a login name; its domain must be a row of
-- domains, and deleting the domain deletes its aliases.
CREATE TABLE IF NOT EXISTS aliases (
    alias_email       TEXT PRIMARY KEY,
    target_user       TEXT NOT NULL,
    alias_domain_name TEXT NOT NULL,
    enabled           INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0,1)),
    updated_at        INTEGER NOT NULL DEFAULT (strftime('%s','now')),
    FOREIGN KEY (alias_domain_name) REFERENCES domains(domain_name) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS idx_aliases_target_user ON aliases(target_user);
CREATE INDEX IF NOT EXISTS idx_aliases_alias_domain ON aliases(alias_domain_name);

CREATE TRIGGER IF NOT EXISTS trg_aliases_domain_check_ins
BEFORE INSERT ON aliases FOR EACH ROW
BEGIN
    SELECT CASE WHEN instr(NEW.alias_email, '@') = 0
        THEN RAISE(ABORT, 'aliases.alias_email must contain @') END;
    SELECT CASE WHEN NEW.alias_domain_name <> substr(NEW.alias_email, instr(NEW.alias_email, '@') + 1)
        THEN RAISE(ABORT, 'aliases.alias_domain_name mismatch with alias_email domain') END;
END;

CREATE TRIGGER IF NOT EXISTS trg_aliases_domain_check_upd
BEFORE UPDATE ON aliases FOR EACH ROW
BEGIN
    SELECT CASE WHEN instr(NEW.alias_email, '@') = 0
        THEN RAISE(ABORT, 'aliases.alias_email must contain @') END;
    SELECT CASE WHEN NEW.alias_domain_name <> substr(NEW.alias_email, instr(NEW.alias_email, '@') + 1)
        THEN RAISE(ABORT, 'aliases.alias_domain_name mismatch with alias_email domain') END;
END;

CREATE TRIGGER IF NOT EXISTS trg_aliases_set_updated_at
AFTER UPDATE ON aliases FOR EACH ROW
WHEN NEW.updated_at = OLD.updated_at
BEGIN
    UPDATE aliases SET updated_at = strftime('%s','now') WHERE alias_email = NEW.alias_email;
END;

-- Application credentials: secret_hash is a Dovecot scheme-prefixed hash
-- ({ARGON2ID}$argon2id$...), verified by Dovecot's passdb sql.
CREATE TABLE IF NOT EXISTS apps (
    app_id      TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0,1)),
    updated_at  INTEGER NOT NULL DEFAULT (strftime('%s','now'))
);

CREATE TRIGGER IF NOT EXISTS trg_apps_set_updated_at
AFTER UPDATE ON apps FOR EACH ROW
WHEN NEW.updated_at = OLD.updated_at
BEGIN
    UPDATE apps SET updated_at = strftime('%s','now') WHERE app_id = NEW.app_id;
END;

-- The sender addresses an app may use.
CREATE TABLE IF NOT EXISTS app_from (
    app_id      TEXT NOT NULL,
    from_addr   TEXT NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0,1)),
    updated_at  INTEGER NOT NULL DEFAULT (strftime('%s','now')),
    PRIMARY KEY (app_id, from_addr),
    FOREIGN KEY (app_id) REFERENCES apps(app_id) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS idx_app_from_from_addr ON app_from(from_addr);

CREATE TRIGGER IF NOT EXISTS trg_app_from_set_updated_at
AFTER UPDATE ON app_from FOR EACH ROW
WHEN NEW.updated_at = OLD.updated_at
BEGIN
    UPDATE app_from SET updated_at = strftime('%s','now')
    WHERE app_id = NEW.app_id AND from_addr = NEW.from_addr;
END;

-- Outbound quotas per SMTP login, set with `mailcloakctl quota set` (a table
-- of this version only; the Go mailcloak does not read it). NULL: not set
-- here, the Keycloak attribute or the config's default applies; 0: unlimited.
CREATE TABLE IF NOT EXISTS quota_limits (
    login               TEXT PRIMARY KEY,
    per_hour            INTEGER CHECK (per_hour IS NULL OR per_hour >= 0),
    per_day             INTEGER CHECK (per_day IS NULL OR per_day >= 0),
    recipients_per_hour INTEGER CHECK (recipients_per_hour IS NULL OR recipients_per_hour >= 0),
    updated_at          INTEGER NOT NULL DEFAULT (strftime('%s','now'))
);

-- Delegated senders (send-as), set with `mailcloakctl senders allow` (a table
-- of this version only; the Go mailcloak does not read it): login may send as
-- from_addr, an address in a local domain it does not own.
CREATE TABLE IF NOT EXISTS sender_delegations (
    from_addr  TEXT NOT NULL,
    login      TEXT NOT NULL,
    updated_at INTEGER NOT NULL DEFAULT (strftime('%s','now')),
    PRIMARY KEY (from_addr, login)
);

PRAGMA user_version = 1;
