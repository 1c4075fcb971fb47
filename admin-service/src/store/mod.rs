//! The admin database: connection, migrations and the write transaction.

pub mod db;
pub mod query;
pub mod sync;
pub mod ui_sessions;
