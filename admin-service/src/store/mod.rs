//! The admin database: connection, migrations and the write transaction.

pub mod billing;
pub mod db;
pub mod fx;
pub mod logs;
pub mod query;
pub mod sync;
pub mod usage;
