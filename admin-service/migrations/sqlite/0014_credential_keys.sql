-- Provider credentials at rest (issue 16): each organization's credentials are
-- sealed under its own data key, stored here wrapped by the master key (the
-- wrapped blob names the master key id, so a rotation finds what to re-wrap).
CREATE TABLE org_data_keys (
    org_id TEXT PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    wrapped TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    rewrapped_at_ms INTEGER
);

-- Which edge key the credentials in the pushed org records are sealed under: on
-- start or on a rotation, a different current edge key re-seals and re-pushes them.
CREATE TABLE edge_sealing (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    key_id TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
