-- What each usage event says beyond tokens and cost: the provider that served it,
-- the route group the client named, whether the edge's cache answered, and the
-- error code of a denied or failed request.
ALTER TABLE usage_events ADD COLUMN provider TEXT;
ALTER TABLE usage_events ADD COLUMN route_group TEXT;
ALTER TABLE usage_events ADD COLUMN cached INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_events ADD COLUMN code TEXT;
