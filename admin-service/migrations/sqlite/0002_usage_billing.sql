-- Usage drained from the edge spools, and the agent assignment history billing
-- pro-rates by. Money stays integer: cost in micros of the org's currency.

-- One row per forwarded request; event_id makes a repeated drain a no-op.
CREATE TABLE usage_events (
    event_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    team_id TEXT,
    key_id TEXT NOT NULL,
    agent_id TEXT,
    model TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_micros INTEGER NOT NULL,
    status INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    -- UTC calendar day (YYYY-MM-DD) of at_ms, for per-day queries.
    day TEXT NOT NULL
);
CREATE INDEX usage_events_org_day ON usage_events(org_id, day);
CREATE INDEX usage_events_org_agent ON usage_events(org_id, agent_id, at_ms);

-- Spooled entries that could not be decoded: kept for inspection, never dropped silently.
CREATE TABLE usage_rejects (
    sink TEXT NOT NULL,
    kv_key TEXT NOT NULL,
    raw BLOB NOT NULL,
    reason TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (sink, kv_key)
);

-- Which org held an agent when: [from_ms, to_ms), to_ms NULL while current.
CREATE TABLE agent_assignments (
    agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    org_id TEXT NOT NULL,
    from_ms INTEGER NOT NULL,
    to_ms INTEGER
);
CREATE INDEX agent_assignments_org ON agent_assignments(org_id, from_ms);
CREATE INDEX agent_assignments_agent ON agent_assignments(agent_id, to_ms);

INSERT INTO agent_assignments (agent_id, org_id, from_ms, to_ms)
SELECT id, org_id, created_at_ms, NULL FROM agents;
