//! Tollgate policy: the compiled records the admin service writes to the edge
//! key-value store, and the pure decision engine the edge runs on them.
//!
//! Nothing here does I/O or reads a clock: the caller passes the time in, so the
//! same code runs natively (admin compiler, tests, benchmarks) and inside the
//! WASI component.

pub mod acl;
pub mod cache;
pub mod credentials;
pub mod decision;
pub mod kv;
pub mod limits;
pub mod models;
pub mod pricing;
pub mod records;
pub mod routing;
pub mod sealed;
pub mod upstream;
pub mod usage;

pub use acl::IpAcl;
pub use decision::{Denial, Facts, Subject, authorize};
pub use limits::{
    Budget, BudgetPeriod, Estimate, Headroom, Limits, Meter, Metric, RateHeaders, Scope,
};
pub use models::{MAX_MODEL_LEN, ModelPattern, ModelSet};
pub use pricing::ModelPrice;
pub use records::{
    AgentRecord, KeyRecord, KeyStatus, OrgRecord, ProviderRoute, SCHEMA_VERSION, TeamRecord,
};
pub use routing::{Candidate, Cooldown, RouteGroup, Routing, Strategy};
pub use usage::UsageEvent;
