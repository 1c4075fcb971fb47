//! Tollgate's edge data plane: a WASI 0.2 HTTP component that authenticates a
//! virtual key against compiled records in the edge key-value store, applies the
//! policy engine, and forwards allowed requests to the organization's provider.
//!
//! The HTTP adapter (`http`) is thin glue; every concept lives in its own module
//! so that the pure parts are tested natively and the move to WASI 0.3 stays small.
//!
//! The component's exports (`wasi:http/incoming-handler`, `tollgate:gateway/policy`)
//! exist only on wasm32: their symbol names (`wasi:http/...#handle`) cannot be
//! linked into a native cdylib. Natively the code they reach is therefore unused,
//! so dead-code analysis is left to the wasm32 build (clippy `-D warnings` there).
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod auth;
mod bindings;
mod cache;
mod client_ip;
mod counters;
mod credential;
mod errors;
mod http;
mod models;
mod policy_export;
mod quota;
mod records;
mod request_body;
mod routes;
mod routing;
mod spool;
mod upstream;
mod usage;

pub use usage::Usage;

/// Current wall-clock time in Unix milliseconds (wasi:clocks on wasip2).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        // A clock before 1970 is a host bug: fail closed, every expiry is past.
        .map_or(u64::MAX, |d| {
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
        })
}
