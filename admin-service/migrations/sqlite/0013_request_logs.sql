-- Request logs: usage events now include requests the edge denied after the key
-- resolved (no provider call, no tokens, no cost). Usage totals and billing leave
-- them out; the logs endpoint lists every event newest first.
ALTER TABLE usage_events ADD COLUMN denied INTEGER NOT NULL DEFAULT 0;
CREATE INDEX usage_events_org_at ON usage_events(org_id, at_ms, event_id);
