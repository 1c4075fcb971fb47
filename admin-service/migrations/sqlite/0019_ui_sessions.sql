-- Dashboard sessions (issue 13). The cookie holds a random id; only its SHA-256 is
-- stored, next to the API token it stands for (never the token itself) and the
-- session's CSRF secret. Deleting or revoking the token ends its sessions.
CREATE TABLE ui_sessions (
    id_hash TEXT PRIMARY KEY,
    token_id TEXT NOT NULL REFERENCES api_tokens(id) ON DELETE CASCADE,
    csrf_secret TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
CREATE INDEX ui_sessions_token ON ui_sessions(token_id);
CREATE INDEX ui_sessions_expiry ON ui_sessions(expires_at_ms);
