//! The documents behind the API, validated: the org config and the model catalog,
//! and keys' and teams' stored settings decoded. The API accepts them; the compiler
//! in `sync` reads them. Nothing here knows handlers or sync.

pub mod catalog;
pub mod config;
pub mod keys;
pub mod schemas;
pub mod teams;
