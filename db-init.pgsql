-- mailcloak PostgreSQL schema: the tables, keys, checks and cascades of
-- db-init.sql (the SQLite schema), so `mailcloakctl migrate-store` copies rows
-- unchanged and Dovecot's passdb sql runs the same password_query on either.
-- Applied by `mailcloakctl --db postgres://... init` (idempotent: run it again
-- after an upgrade). enabled stays an integer 0/1 and updated_at Unix seconds,
-- as in SQLite.
--
-- Change feed: every statement that changes a table bumps the one row of
-- mailcloak_version and sends NOTIFY mailcloak_changed (delivered at commit).
-- Each daemon LISTENs and reloads its in-memory copy; it also compares the
-- version every few hundred milliseconds, which covers a lost notification.

CREATE TABLE IF NOT EXISTS domains (
    domain_name TEXT PRIMARY KEY,
    enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0,1)),
    updated_at  BIGINT NOT NULL DEFAULT extract(epoch FROM now())::bigint
);

-- An alias maps alias_email to a login name; its domain must be a row of
-- domains, and deleting the domain deletes its aliases. The two CHECKs are
-- SQLite's trg_aliases_domain_check_* triggers.
CREATE TABLE IF NOT EXISTS aliases (
    alias_email       TEXT PRIMARY KEY,
    target_user       TEXT NOT NULL,
    alias_domain_name TEXT NOT NULL REFERENCES domains(domain_name) ON DELETE CASCADE,
    enabled           INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0,1)),
    updated_at        BIGINT NOT NULL DEFAULT extract(epoch FROM now())::bigint,
    CONSTRAINT aliases_alias_email_has_at CHECK (strpos(alias_email, '@') > 0),
    CONSTRAINT aliases_domain_matches CHECK (alias_domain_name = substr(alias_email, strpos(alias_email, '@') + 1))
);

CREATE INDEX IF NOT EXISTS idx_aliases_target_user ON aliases(target_user);
CREATE INDEX IF NOT EXISTS idx_aliases_alias_domain ON aliases(alias_domain_name);

-- Application credentials: secret_hash is a Dovecot scheme-prefixed hash
-- ({ARGON2ID}$argon2id$...), verified by Dovecot's passdb sql.
CREATE TABLE IF NOT EXISTS apps (
    app_id      TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0,1)),
    updated_at  BIGINT NOT NULL DEFAULT extract(epoch FROM now())::bigint
);

-- The sender addresses an app may use.
CREATE TABLE IF NOT EXISTS app_from (
    app_id      TEXT NOT NULL REFERENCES apps(app_id) ON DELETE CASCADE,
    from_addr   TEXT NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0,1)),
    updated_at  BIGINT NOT NULL DEFAULT extract(epoch FROM now())::bigint,
    PRIMARY KEY (app_id, from_addr)
);

CREATE INDEX IF NOT EXISTS idx_app_from_from_addr ON app_from(from_addr);

-- Which user created an app through mailcloak-admin (self-service).
CREATE TABLE IF NOT EXISTS app_owners (
    app_id   TEXT PRIMARY KEY REFERENCES apps(app_id) ON DELETE CASCADE,
    username TEXT NOT NULL
);

-- Outbound quotas per SMTP login (mailcloakctl quota set). NULL: not set here;
-- 0: unlimited.
CREATE TABLE IF NOT EXISTS quota_limits (
    login               TEXT PRIMARY KEY,
    per_hour            INTEGER CHECK (per_hour IS NULL OR per_hour >= 0),
    per_day             INTEGER CHECK (per_day IS NULL OR per_day >= 0),
    recipients_per_hour INTEGER CHECK (recipients_per_hour IS NULL OR recipients_per_hour >= 0),
    updated_at          BIGINT NOT NULL DEFAULT extract(epoch FROM now())::bigint
);

-- Delegated senders (send-as): login may send as from_addr (mailcloakctl senders allow).
CREATE TABLE IF NOT EXISTS sender_delegations (
    from_addr  TEXT NOT NULL,
    login      TEXT NOT NULL,
    updated_at BIGINT NOT NULL DEFAULT extract(epoch FROM now())::bigint,
    PRIMARY KEY (from_addr, login)
);

-- updated_at follows an UPDATE that did not set it (SQLite's trg_*_set_updated_at).
CREATE OR REPLACE FUNCTION mailcloak_set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at = OLD.updated_at THEN
        NEW.updated_at := extract(epoch FROM now())::bigint;
    END IF;
    RETURN NEW;
END $$;

-- One row: bumped by every change to the tables above (see the header).
CREATE TABLE IF NOT EXISTS mailcloak_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO mailcloak_version(id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;

CREATE OR REPLACE FUNCTION mailcloak_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE mailcloak_version SET version = version + 1 WHERE id = 1;
    PERFORM pg_notify('mailcloak_changed', TG_TABLE_NAME);
    RETURN NULL;
END $$;

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['domains', 'aliases', 'apps', 'app_from'] LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER trg_%1$s_set_updated_at BEFORE UPDATE ON %1$I
            FOR EACH ROW EXECUTE FUNCTION mailcloak_set_updated_at()', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['domains', 'aliases', 'apps', 'app_from', 'app_owners', 'quota_limits', 'sender_delegations'] LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER trg_%1$s_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %1$I
            FOR EACH STATEMENT EXECUTE FUNCTION mailcloak_changed()', t);
    END LOOP;
END $$;
