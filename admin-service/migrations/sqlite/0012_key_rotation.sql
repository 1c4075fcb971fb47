-- Secrets a key rotation replaced, kept while their grace period runs. The edge
-- holds the key's record under each of these hashes too (same key_id, so limits,
-- budgets and usage stay the key's), expiring at the end of the grace; a periodic
-- clean-up deletes the rows and the edge records once the grace has ended.
CREATE TABLE key_grace_hashes (
    key_hash TEXT PRIMARY KEY,
    key_id TEXT NOT NULL REFERENCES virtual_keys(id) ON DELETE CASCADE,
    key_prefix TEXT NOT NULL,
    grace_ends_at_ms INTEGER NOT NULL
);
CREATE INDEX key_grace_hashes_key ON key_grace_hashes(key_id);
CREATE INDEX key_grace_hashes_end ON key_grace_hashes(grace_ends_at_ms);
