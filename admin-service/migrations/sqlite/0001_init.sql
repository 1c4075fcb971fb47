-- Tollgate admin state. Money is integer: billing rates in minor units (cents),
-- budgets and prices in micros (millionths of the currency unit).

CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    contact_name TEXT,
    contact_email TEXT,
    description TEXT,
    billing_rate_minor INTEGER NOT NULL DEFAULT 0,
    currency TEXT NOT NULL DEFAULT 'USD',
    active INTEGER NOT NULL DEFAULT 1,
    is_internal INTEGER NOT NULL DEFAULT 0,
    -- The org config document (providers incl. credentials, limits, access, ...).
    config TEXT NOT NULL DEFAULT '{}',
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

-- Unassigned agents live here; it can be neither deleted nor renamed into a tenant.
INSERT INTO organizations (id, name, slug, is_internal, created_at_ms, updated_at_ms)
VALUES ('org_internal', 'Internal', 'internal', 1, 0, 0);

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations(id),
    billing_rate_minor INTEGER,
    active INTEGER NOT NULL DEFAULT 1,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE INDEX agents_org ON agents(org_id);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE memberships (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (user_id, org_id)
);
CREATE INDEX memberships_org ON memberships(org_id);

-- Bearer tokens of the admin API. Only the SHA-256 hash is stored.
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    platform_admin INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER
);

CREATE TABLE invitations (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at_ms INTEGER NOT NULL,
    accepted_at_ms INTEGER,
    revoked_at_ms INTEGER,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE teams (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    allowed_models TEXT,           -- JSON array, NULL = inherit the org's set
    limits TEXT NOT NULL DEFAULT '{}',
    budget TEXT,                   -- JSON {limit_micros, period, utc_offset_minutes}
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE catalog_models (
    name TEXT PRIMARY KEY,
    access_groups TEXT NOT NULL DEFAULT '[]',
    input_price_micros_per_1m INTEGER NOT NULL DEFAULT 0,
    output_price_micros_per_1m INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

CREATE TABLE route_groups (
    name TEXT PRIMARY KEY,
    models TEXT NOT NULL DEFAULT '[]',
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE virtual_keys (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    team_id TEXT REFERENCES teams(id) ON DELETE SET NULL,
    agent_id TEXT REFERENCES agents(id) ON DELETE SET NULL,
    name TEXT NOT NULL,
    key_prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    allowed_models TEXT,           -- JSON array, NULL = inherit
    ip_allow TEXT NOT NULL DEFAULT '[]',
    ip_deny TEXT NOT NULL DEFAULT '[]',
    limits TEXT NOT NULL DEFAULT '{}',
    budget TEXT,
    expires_at_ms INTEGER,
    status TEXT NOT NULL DEFAULT 'active',
    created_by TEXT,               -- user id, NULL for platform admins
    created_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER
);
CREATE INDEX virtual_keys_org ON virtual_keys(org_id);
CREATE INDEX virtual_keys_team ON virtual_keys(team_id);

-- Written in the same transaction as every mutation; drained in id order by the pusher.
-- kind: org | team | key | agent | all (recompile everything) | kvdel (delete entity_id, a KV key).
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);

-- Per-sink position in the outbox: everything <= position is acknowledged by the sink.
CREATE TABLE sink_positions (
    sink TEXT PRIMARY KEY,
    position INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_error_at_ms INTEGER,
    last_success_at_ms INTEGER
);

-- The internal org's record must reach every sink, including on a fresh install.
INSERT INTO outbox (kind, entity_id, created_at_ms) VALUES ('all', '*', 0);
