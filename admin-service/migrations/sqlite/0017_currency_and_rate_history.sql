-- Money in the right currency, and billing rates with a history.
--
-- Catalog prices are in a currency of their own; an org whose currency differs
-- is charged at the platform's exchange rate, converted when its record is compiled.
ALTER TABLE catalog_models ADD COLUMN currency TEXT NOT NULL DEFAULT 'USD';

-- Units of `to_currency` per unit of `from_currency`, in millionths.
CREATE TABLE fx_rates (
    from_currency TEXT NOT NULL,
    to_currency TEXT NOT NULL,
    rate_micros INTEGER NOT NULL CHECK (rate_micros > 0),
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (from_currency, to_currency),
    CHECK (from_currency <> to_currency)
);

-- Billing rates per UTC day: a change applies from `effective_day` on, so months
-- already billed keep the rates they were billed at.
CREATE TABLE org_rate_history (
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    effective_day TEXT NOT NULL,
    rate_minor INTEGER NOT NULL,
    PRIMARY KEY (org_id, effective_day)
);
-- A NULL rate: the agent follows its org's default rate from that day on.
CREATE TABLE agent_rate_history (
    agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    effective_day TEXT NOT NULL,
    rate_minor INTEGER,
    PRIMARY KEY (agent_id, effective_day)
);

-- Today's rates have always applied: past months bill as they did before.
INSERT INTO org_rate_history (org_id, effective_day, rate_minor)
    SELECT id, '0000-01-01', billing_rate_minor FROM organizations;
INSERT INTO agent_rate_history (agent_id, effective_day, rate_minor)
    SELECT id, '0000-01-01', billing_rate_minor FROM agents;

-- The audit log shows a price's currency and every exchange-rate change.
DROP TRIGGER audit_catalog_models_create;
DROP TRIGGER audit_catalog_models_update;
DROP TRIGGER audit_catalog_models_delete;

CREATE TRIGGER audit_catalog_models_create AFTER INSERT ON catalog_models BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'model.create', NEW.name, NULL,
        NULL,
        json_object('name', NEW.name, 'access_groups', NEW.access_groups, 'input_price_micros_per_1m', NEW.input_price_micros_per_1m, 'output_price_micros_per_1m', NEW.output_price_micros_per_1m, 'currency', NEW.currency));
END;

CREATE TRIGGER audit_catalog_models_update AFTER UPDATE ON catalog_models BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'model.update', NEW.name, NULL,
        json_object('name', OLD.name, 'access_groups', OLD.access_groups, 'input_price_micros_per_1m', OLD.input_price_micros_per_1m, 'output_price_micros_per_1m', OLD.output_price_micros_per_1m, 'currency', OLD.currency),
        json_object('name', NEW.name, 'access_groups', NEW.access_groups, 'input_price_micros_per_1m', NEW.input_price_micros_per_1m, 'output_price_micros_per_1m', NEW.output_price_micros_per_1m, 'currency', NEW.currency));
END;

CREATE TRIGGER audit_catalog_models_delete AFTER DELETE ON catalog_models BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'model.delete', OLD.name, NULL,
        json_object('name', OLD.name, 'access_groups', OLD.access_groups, 'input_price_micros_per_1m', OLD.input_price_micros_per_1m, 'output_price_micros_per_1m', OLD.output_price_micros_per_1m, 'currency', OLD.currency),
        NULL);
END;

CREATE TRIGGER audit_fx_rates_create AFTER INSERT ON fx_rates BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'fx_rate.create', NEW.from_currency || '/' || NEW.to_currency, NULL,
        NULL,
        json_object('from_currency', NEW.from_currency, 'to_currency', NEW.to_currency, 'rate_micros', NEW.rate_micros));
END;

CREATE TRIGGER audit_fx_rates_update AFTER UPDATE ON fx_rates BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'fx_rate.update', NEW.from_currency || '/' || NEW.to_currency, NULL,
        json_object('from_currency', OLD.from_currency, 'to_currency', OLD.to_currency, 'rate_micros', OLD.rate_micros),
        json_object('from_currency', NEW.from_currency, 'to_currency', NEW.to_currency, 'rate_micros', NEW.rate_micros));
END;

CREATE TRIGGER audit_fx_rates_delete AFTER DELETE ON fx_rates BEGIN
    INSERT INTO audit_log (at_ms, actor, action, entity_id, org_id, before, after)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), (SELECT actor FROM audit_context WHERE id = 1),
        'fx_rate.delete', OLD.from_currency || '/' || OLD.to_currency, NULL,
        json_object('from_currency', OLD.from_currency, 'to_currency', OLD.to_currency, 'rate_micros', OLD.rate_micros),
        NULL);
END;
