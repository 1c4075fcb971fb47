//! The admin database: connection, migrations and the write transaction, and all SQL,
//! one module per resource, portable between SQLite and PostgreSQL.

pub mod billing;
pub mod catalog;
pub mod config;
pub mod credentials;
pub mod db;
pub mod fx;
pub mod keys;
pub mod logs;
pub mod query;
pub mod sync;
pub mod usage;
