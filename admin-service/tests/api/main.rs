//! Integration tests of the admin API over real HTTP on loopback, against a real
//! SQLite database and a real Spin-schema sink file. One test binary (modules below)
//! so the workspace links it once instead of once per file.

#[path = "../common/mod.rs"]
mod common;

mod agents;
mod auth;
mod config;
mod keys;
mod members;
mod orgs;
mod rbac;
mod sync;
mod teams_catalog;
