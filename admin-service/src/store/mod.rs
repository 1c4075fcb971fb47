//! The admin database: connection, migrations and the write transaction.

pub mod catalog;
pub mod config;
pub mod credentials;
pub mod db;
pub mod keys;
pub mod query;
pub mod sync;
