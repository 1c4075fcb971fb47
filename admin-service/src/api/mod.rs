//! The REST API: one module per resource, the router and its OpenAPI document.

pub mod agents;
pub mod audit;
pub mod billing;
pub mod catalog;
pub mod config;
pub mod docs;
pub mod explain;
pub mod extract;
pub mod fx;
pub mod invitations;
pub mod keys;
pub mod logs;
pub mod members;
pub mod openapi;
pub mod orgs;
pub mod paging;
pub mod platform_owned;
pub mod rotation;
pub mod routes;
pub mod team_members;
pub mod teams;
pub mod tokens;
pub mod usage;
