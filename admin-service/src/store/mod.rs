//! The admin database: connection, migrations and the write transaction, and all SQL,
//! one module per resource (functions taking the pool or a connection and returning
//! row structs; nothing here knows the API, auth, billing or sync), portable between
//! SQLite and PostgreSQL.

pub mod agents;
pub mod audit;
pub mod billing;
pub mod catalog;
pub mod config;
pub mod credentials;
pub mod db;
pub mod fx;
pub mod invitations;
pub mod keys;
pub mod logs;
pub mod members;
pub mod orgs;
pub mod query;
pub mod sign_in_links;
pub mod sync;
pub mod teams;
pub mod tokens;
pub mod ui_sessions;
pub mod usage;
