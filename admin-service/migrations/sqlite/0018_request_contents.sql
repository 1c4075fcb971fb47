-- Request and response bodies of orgs with `audit.store_content`, kept apart from
-- the usage rows (which every report scans) and deleted once `expires_at_ms`
-- (the org's retention from the request's time) has passed.
CREATE TABLE request_contents (
    event_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    truncated INTEGER NOT NULL
);
CREATE INDEX request_contents_expiry ON request_contents(expires_at_ms);
