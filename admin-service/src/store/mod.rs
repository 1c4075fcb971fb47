//! The admin database: connection, migrations and the write transaction, and one
//! module of SQL per resource (functions taking the pool or a connection and
//! returning row structs; nothing here knows the API, auth, billing or sync).

pub mod agents;
pub mod audit;
pub mod db;
pub mod invitations;
pub mod members;
pub mod orgs;
pub mod query;
pub mod sync;
pub mod teams;
pub mod tokens;
