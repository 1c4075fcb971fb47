-- Emailed one-time dashboard sign-in links. Only the SHA-256 of the link's secret is
-- stored; a link is used at most once (used_at_ms) and before expires_at_ms. The
-- API token a link mints for its session is remembered so signing out revokes it.
CREATE TABLE ui_sign_in_links (
    secret_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    used_at_ms INTEGER,
    api_token_id TEXT REFERENCES api_tokens(id) ON DELETE SET NULL
);
CREATE INDEX ui_sign_in_links_token ON ui_sign_in_links(api_token_id);
CREATE INDEX ui_sign_in_links_expiry ON ui_sign_in_links(expires_at_ms);
