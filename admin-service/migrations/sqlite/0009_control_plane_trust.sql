-- Control-plane trust: token lifecycle, team memberships.

-- Tokens show a recognisable prefix (never the secret), may expire, and the
-- bootstrap token from TOLLGATE_ADMIN_TOKEN is replaced, not added to, on change.
ALTER TABLE api_tokens ADD COLUMN token_prefix TEXT NOT NULL DEFAULT '';
ALTER TABLE api_tokens ADD COLUMN expires_at_ms INTEGER;
ALTER TABLE api_tokens ADD COLUMN bootstrap INTEGER NOT NULL DEFAULT 0;
UPDATE api_tokens SET bootstrap = 1 WHERE platform_admin = 1 AND name IN ('bootstrap', 'bootstrap (env)');
CREATE INDEX api_tokens_user ON api_tokens(user_id);

-- Last use lives apart from the token row: the extractor touches it on use, and a
-- refused request must not look like a write to the token itself.
CREATE TABLE api_token_usage (
    token_id TEXT PRIMARY KEY REFERENCES api_tokens(id) ON DELETE CASCADE,
    last_used_at_ms INTEGER NOT NULL
);

-- Who belongs to which team: members (not admins) create keys only in their teams.
CREATE TABLE team_members (
    team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members(user_id);

-- The audit log: every mutation of an audited table, written by triggers in the
-- writer's transaction (so it commits or rolls back with the change). The writer
-- stores who is acting in audit_context first. Secrets never reach it: token and
-- key hashes are left out and provider credentials become api_key_set.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    entity_id TEXT,
    org_id TEXT,
    before TEXT,
    after TEXT
);
CREATE INDEX audit_log_org ON audit_log(org_id, id);

-- One row: the actor of the write transaction in progress ('system' outside requests).
CREATE TABLE audit_context (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    actor TEXT NOT NULL
);
INSERT INTO audit_context (id, actor) VALUES (1, 'system');

CREATE TRIGGER audit_organizations_create AFTER INSERT ON organizations BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'org.create', NEW.id, NEW.id,
        NULL,
        json_object('id', NEW.id, 'name', NEW.name, 'slug', NEW.slug, 'contact_name', NEW.contact_name, 'contact_email', NEW.contact_email, 'description', NEW.description, 'billing_rate_minor', NEW.billing_rate_minor, 'currency', NEW.currency, 'active', NEW.active, 'is_internal', NEW.is_internal, 'config', json(CASE WHEN json_type(NEW.config, '$.providers') = 'array' THEN json_set(NEW.config, '$.providers', (SELECT json_group_array(json(CASE WHEN json_type(value, '$.api_key') IS NULL THEN value ELSE json_set(json_remove(value, '$.api_key'), '$.api_key_set', json('true')) END)) FROM json_each(NEW.config, '$.providers'))) ELSE json(NEW.config) END)));
END;

CREATE TRIGGER audit_organizations_update AFTER UPDATE ON organizations BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'org.update', NEW.id, NEW.id,
        json_object('id', OLD.id, 'name', OLD.name, 'slug', OLD.slug, 'contact_name', OLD.contact_name, 'contact_email', OLD.contact_email, 'description', OLD.description, 'billing_rate_minor', OLD.billing_rate_minor, 'currency', OLD.currency, 'active', OLD.active, 'is_internal', OLD.is_internal, 'config', json(CASE WHEN json_type(OLD.config, '$.providers') = 'array' THEN json_set(OLD.config, '$.providers', (SELECT json_group_array(json(CASE WHEN json_type(value, '$.api_key') IS NULL THEN value ELSE json_set(json_remove(value, '$.api_key'), '$.api_key_set', json('true')) END)) FROM json_each(OLD.config, '$.providers'))) ELSE json(OLD.config) END)),
        json_object('id', NEW.id, 'name', NEW.name, 'slug', NEW.slug, 'contact_name', NEW.contact_name, 'contact_email', NEW.contact_email, 'description', NEW.description, 'billing_rate_minor', NEW.billing_rate_minor, 'currency', NEW.currency, 'active', NEW.active, 'is_internal', NEW.is_internal, 'config', json(CASE WHEN json_type(NEW.config, '$.providers') = 'array' THEN json_set(NEW.config, '$.providers', (SELECT json_group_array(json(CASE WHEN json_type(value, '$.api_key') IS NULL THEN value ELSE json_set(json_remove(value, '$.api_key'), '$.api_key_set', json('true')) END)) FROM json_each(NEW.config, '$.providers'))) ELSE json(NEW.config) END)));
END;

CREATE TRIGGER audit_organizations_delete AFTER DELETE ON organizations BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'org.delete', OLD.id, OLD.id,
        json_object('id', OLD.id, 'name', OLD.name, 'slug', OLD.slug, 'contact_name', OLD.contact_name, 'contact_email', OLD.contact_email, 'description', OLD.description, 'billing_rate_minor', OLD.billing_rate_minor, 'currency', OLD.currency, 'active', OLD.active, 'is_internal', OLD.is_internal, 'config', json(CASE WHEN json_type(OLD.config, '$.providers') = 'array' THEN json_set(OLD.config, '$.providers', (SELECT json_group_array(json(CASE WHEN json_type(value, '$.api_key') IS NULL THEN value ELSE json_set(json_remove(value, '$.api_key'), '$.api_key_set', json('true')) END)) FROM json_each(OLD.config, '$.providers'))) ELSE json(OLD.config) END)),
        NULL);
END;

CREATE TRIGGER audit_agents_create AFTER INSERT ON agents BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'agent.create', NEW.id, NEW.org_id,
        NULL,
        json_object('id', NEW.id, 'name', NEW.name, 'org_id', NEW.org_id, 'billing_rate_minor', NEW.billing_rate_minor, 'active', NEW.active));
END;

CREATE TRIGGER audit_agents_update AFTER UPDATE ON agents BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'agent.update', NEW.id, NEW.org_id,
        json_object('id', OLD.id, 'name', OLD.name, 'org_id', OLD.org_id, 'billing_rate_minor', OLD.billing_rate_minor, 'active', OLD.active),
        json_object('id', NEW.id, 'name', NEW.name, 'org_id', NEW.org_id, 'billing_rate_minor', NEW.billing_rate_minor, 'active', NEW.active));
END;

CREATE TRIGGER audit_agents_delete AFTER DELETE ON agents BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'agent.delete', OLD.id, OLD.org_id,
        json_object('id', OLD.id, 'name', OLD.name, 'org_id', OLD.org_id, 'billing_rate_minor', OLD.billing_rate_minor, 'active', OLD.active),
        NULL);
END;

CREATE TRIGGER audit_users_create AFTER INSERT ON users BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'user.create', NEW.id, NULL,
        NULL,
        json_object('id', NEW.id, 'email', NEW.email));
END;

CREATE TRIGGER audit_users_update AFTER UPDATE ON users BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'user.update', NEW.id, NULL,
        json_object('id', OLD.id, 'email', OLD.email),
        json_object('id', NEW.id, 'email', NEW.email));
END;

CREATE TRIGGER audit_users_delete AFTER DELETE ON users BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'user.delete', OLD.id, NULL,
        json_object('id', OLD.id, 'email', OLD.email),
        NULL);
END;

CREATE TRIGGER audit_memberships_create AFTER INSERT ON memberships BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'member.create', NEW.user_id, NEW.org_id,
        NULL,
        json_object('user_id', NEW.user_id, 'org_id', NEW.org_id, 'role', NEW.role));
END;

CREATE TRIGGER audit_memberships_update AFTER UPDATE ON memberships BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'member.update', NEW.user_id, NEW.org_id,
        json_object('user_id', OLD.user_id, 'org_id', OLD.org_id, 'role', OLD.role),
        json_object('user_id', NEW.user_id, 'org_id', NEW.org_id, 'role', NEW.role));
END;

CREATE TRIGGER audit_memberships_delete AFTER DELETE ON memberships BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'member.delete', OLD.user_id, OLD.org_id,
        json_object('user_id', OLD.user_id, 'org_id', OLD.org_id, 'role', OLD.role),
        NULL);
END;

CREATE TRIGGER audit_api_tokens_create AFTER INSERT ON api_tokens BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'token.create', NEW.id, NULL,
        NULL,
        json_object('id', NEW.id, 'name', NEW.name, 'token_prefix', NEW.token_prefix, 'user_id', NEW.user_id, 'platform_admin', NEW.platform_admin, 'bootstrap', NEW.bootstrap, 'expires_at_ms', NEW.expires_at_ms, 'revoked_at_ms', NEW.revoked_at_ms));
END;

CREATE TRIGGER audit_api_tokens_update AFTER UPDATE ON api_tokens BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'token.update', NEW.id, NULL,
        json_object('id', OLD.id, 'name', OLD.name, 'token_prefix', OLD.token_prefix, 'user_id', OLD.user_id, 'platform_admin', OLD.platform_admin, 'bootstrap', OLD.bootstrap, 'expires_at_ms', OLD.expires_at_ms, 'revoked_at_ms', OLD.revoked_at_ms),
        json_object('id', NEW.id, 'name', NEW.name, 'token_prefix', NEW.token_prefix, 'user_id', NEW.user_id, 'platform_admin', NEW.platform_admin, 'bootstrap', NEW.bootstrap, 'expires_at_ms', NEW.expires_at_ms, 'revoked_at_ms', NEW.revoked_at_ms));
END;

CREATE TRIGGER audit_api_tokens_delete AFTER DELETE ON api_tokens BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'token.delete', OLD.id, NULL,
        json_object('id', OLD.id, 'name', OLD.name, 'token_prefix', OLD.token_prefix, 'user_id', OLD.user_id, 'platform_admin', OLD.platform_admin, 'bootstrap', OLD.bootstrap, 'expires_at_ms', OLD.expires_at_ms, 'revoked_at_ms', OLD.revoked_at_ms),
        NULL);
END;

CREATE TRIGGER audit_invitations_create AFTER INSERT ON invitations BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'invitation.create', NEW.id, NEW.org_id,
        NULL,
        json_object('id', NEW.id, 'org_id', NEW.org_id, 'email', NEW.email, 'role', NEW.role, 'expires_at_ms', NEW.expires_at_ms, 'accepted_at_ms', NEW.accepted_at_ms, 'revoked_at_ms', NEW.revoked_at_ms));
END;

CREATE TRIGGER audit_invitations_update AFTER UPDATE ON invitations BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'invitation.update', NEW.id, NEW.org_id,
        json_object('id', OLD.id, 'org_id', OLD.org_id, 'email', OLD.email, 'role', OLD.role, 'expires_at_ms', OLD.expires_at_ms, 'accepted_at_ms', OLD.accepted_at_ms, 'revoked_at_ms', OLD.revoked_at_ms),
        json_object('id', NEW.id, 'org_id', NEW.org_id, 'email', NEW.email, 'role', NEW.role, 'expires_at_ms', NEW.expires_at_ms, 'accepted_at_ms', NEW.accepted_at_ms, 'revoked_at_ms', NEW.revoked_at_ms));
END;

CREATE TRIGGER audit_invitations_delete AFTER DELETE ON invitations BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'invitation.delete', OLD.id, OLD.org_id,
        json_object('id', OLD.id, 'org_id', OLD.org_id, 'email', OLD.email, 'role', OLD.role, 'expires_at_ms', OLD.expires_at_ms, 'accepted_at_ms', OLD.accepted_at_ms, 'revoked_at_ms', OLD.revoked_at_ms),
        NULL);
END;

CREATE TRIGGER audit_teams_create AFTER INSERT ON teams BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'team.create', NEW.id, NEW.org_id,
        NULL,
        json_object('id', NEW.id, 'org_id', NEW.org_id, 'name', NEW.name, 'allowed_models', NEW.allowed_models, 'limits', NEW.limits, 'budget', NEW.budget));
END;

CREATE TRIGGER audit_teams_update AFTER UPDATE ON teams BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'team.update', NEW.id, NEW.org_id,
        json_object('id', OLD.id, 'org_id', OLD.org_id, 'name', OLD.name, 'allowed_models', OLD.allowed_models, 'limits', OLD.limits, 'budget', OLD.budget),
        json_object('id', NEW.id, 'org_id', NEW.org_id, 'name', NEW.name, 'allowed_models', NEW.allowed_models, 'limits', NEW.limits, 'budget', NEW.budget));
END;

CREATE TRIGGER audit_teams_delete AFTER DELETE ON teams BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'team.delete', OLD.id, OLD.org_id,
        json_object('id', OLD.id, 'org_id', OLD.org_id, 'name', OLD.name, 'allowed_models', OLD.allowed_models, 'limits', OLD.limits, 'budget', OLD.budget),
        NULL);
END;

CREATE TRIGGER audit_team_members_create AFTER INSERT ON team_members BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'team_member.create', NEW.team_id, (SELECT org_id FROM teams WHERE id = NEW.team_id),
        NULL,
        json_object('team_id', NEW.team_id, 'user_id', NEW.user_id));
END;

CREATE TRIGGER audit_team_members_update AFTER UPDATE ON team_members BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'team_member.update', NEW.team_id, (SELECT org_id FROM teams WHERE id = NEW.team_id),
        json_object('team_id', OLD.team_id, 'user_id', OLD.user_id),
        json_object('team_id', NEW.team_id, 'user_id', NEW.user_id));
END;

CREATE TRIGGER audit_team_members_delete AFTER DELETE ON team_members BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'team_member.delete', OLD.team_id, (SELECT org_id FROM teams WHERE id = OLD.team_id),
        json_object('team_id', OLD.team_id, 'user_id', OLD.user_id),
        NULL);
END;

CREATE TRIGGER audit_virtual_keys_create AFTER INSERT ON virtual_keys BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'key.create', NEW.id, NEW.org_id,
        NULL,
        json_object('id', NEW.id, 'org_id', NEW.org_id, 'team_id', NEW.team_id, 'agent_id', NEW.agent_id, 'name', NEW.name, 'key_prefix', NEW.key_prefix, 'allowed_models', NEW.allowed_models, 'ip_allow', NEW.ip_allow, 'ip_deny', NEW.ip_deny, 'limits', NEW.limits, 'budget', NEW.budget, 'expires_at_ms', NEW.expires_at_ms, 'status', NEW.status, 'created_by', NEW.created_by, 'revoked_at_ms', NEW.revoked_at_ms));
END;

CREATE TRIGGER audit_virtual_keys_update AFTER UPDATE ON virtual_keys BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'key.update', NEW.id, NEW.org_id,
        json_object('id', OLD.id, 'org_id', OLD.org_id, 'team_id', OLD.team_id, 'agent_id', OLD.agent_id, 'name', OLD.name, 'key_prefix', OLD.key_prefix, 'allowed_models', OLD.allowed_models, 'ip_allow', OLD.ip_allow, 'ip_deny', OLD.ip_deny, 'limits', OLD.limits, 'budget', OLD.budget, 'expires_at_ms', OLD.expires_at_ms, 'status', OLD.status, 'created_by', OLD.created_by, 'revoked_at_ms', OLD.revoked_at_ms),
        json_object('id', NEW.id, 'org_id', NEW.org_id, 'team_id', NEW.team_id, 'agent_id', NEW.agent_id, 'name', NEW.name, 'key_prefix', NEW.key_prefix, 'allowed_models', NEW.allowed_models, 'ip_allow', NEW.ip_allow, 'ip_deny', NEW.ip_deny, 'limits', NEW.limits, 'budget', NEW.budget, 'expires_at_ms', NEW.expires_at_ms, 'status', NEW.status, 'created_by', NEW.created_by, 'revoked_at_ms', NEW.revoked_at_ms));
END;

CREATE TRIGGER audit_virtual_keys_delete AFTER DELETE ON virtual_keys BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'key.delete', OLD.id, OLD.org_id,
        json_object('id', OLD.id, 'org_id', OLD.org_id, 'team_id', OLD.team_id, 'agent_id', OLD.agent_id, 'name', OLD.name, 'key_prefix', OLD.key_prefix, 'allowed_models', OLD.allowed_models, 'ip_allow', OLD.ip_allow, 'ip_deny', OLD.ip_deny, 'limits', OLD.limits, 'budget', OLD.budget, 'expires_at_ms', OLD.expires_at_ms, 'status', OLD.status, 'created_by', OLD.created_by, 'revoked_at_ms', OLD.revoked_at_ms),
        NULL);
END;

CREATE TRIGGER audit_catalog_models_create AFTER INSERT ON catalog_models BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'model.create', NEW.name, NULL,
        NULL,
        json_object('name', NEW.name, 'access_groups', NEW.access_groups, 'input_price_micros_per_1m', NEW.input_price_micros_per_1m, 'output_price_micros_per_1m', NEW.output_price_micros_per_1m));
END;

CREATE TRIGGER audit_catalog_models_update AFTER UPDATE ON catalog_models BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'model.update', NEW.name, NULL,
        json_object('name', OLD.name, 'access_groups', OLD.access_groups, 'input_price_micros_per_1m', OLD.input_price_micros_per_1m, 'output_price_micros_per_1m', OLD.output_price_micros_per_1m),
        json_object('name', NEW.name, 'access_groups', NEW.access_groups, 'input_price_micros_per_1m', NEW.input_price_micros_per_1m, 'output_price_micros_per_1m', NEW.output_price_micros_per_1m));
END;

CREATE TRIGGER audit_catalog_models_delete AFTER DELETE ON catalog_models BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'model.delete', OLD.name, NULL,
        json_object('name', OLD.name, 'access_groups', OLD.access_groups, 'input_price_micros_per_1m', OLD.input_price_micros_per_1m, 'output_price_micros_per_1m', OLD.output_price_micros_per_1m),
        NULL);
END;

CREATE TRIGGER audit_route_groups_create AFTER INSERT ON route_groups BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'route_group.create', NEW.name, NULL,
        NULL,
        json_object('name', NEW.name, 'models', NEW.models));
END;

CREATE TRIGGER audit_route_groups_update AFTER UPDATE ON route_groups BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'route_group.update', NEW.name, NULL,
        json_object('name', OLD.name, 'models', OLD.models),
        json_object('name', NEW.name, 'models', NEW.models));
END;

CREATE TRIGGER audit_route_groups_delete AFTER DELETE ON route_groups BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'route_group.delete', OLD.name, NULL,
        json_object('name', OLD.name, 'models', OLD.models),
        NULL);
END;
