-- Proof of an address: set when a secret sent to it by email is used. Memberships
-- reached through an email address go only to accounts that proved it; accounts
-- from before this migration (possibly created by whoever held an invitation
-- token) start unproven.
ALTER TABLE users ADD COLUMN email_verified_at_ms INTEGER;
