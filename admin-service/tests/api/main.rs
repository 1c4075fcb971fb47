//! Integration tests of the admin API over real HTTP on loopback, against a real
//! SQLite database and a real Spin-schema sink file. One test binary (modules below)
//! so the workspace links it once instead of once per file.

#[path = "../common/mod.rs"]
mod common;

mod access_group_grants;
mod agents;
mod audit;
mod auth;
mod config;
mod currency;
mod email_verification;
mod invitation_attempts;
mod key_changes;
mod keys;
mod lost_updates;
mod member_removal;
mod members;
mod openapi;
mod orgs;
mod paging;
mod platform_owned;
mod rbac;
mod sign_in_links;
mod sync;
mod team_members;
mod teams_catalog;
mod tokens;
