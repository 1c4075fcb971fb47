//! Tollgate's local edge runtime: wasmtime + wasi-http serving the gateway
//! component, with the `wasi:keyvalue` store it imports (in memory, a SQLite
//! file or Redis, in Spin's layouts), the `wasi:config` settings Spin serves as
//! variables (`trusted_proxies`) and an outbound allow-list.
//!
//! ```no_run
//! # async fn run() -> Result<(), edge_host::EdgeError> {
//! let server = edge_host::EdgeServer::start(edge_host::EdgeConfig::default()).await?;
//! println!("serving on {}", server.url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

/// Every binary embedding the edge allocates with mimalloc: the request path
/// allocates and frees many small buffers across threads, where glibc's malloc
/// showed up in the profile (README "Performance").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod admission;
pub mod cli;
pub mod clock;
mod error_response;
mod guest_deadline;
mod intake;
pub mod keyvalue;
pub mod kv;
pub mod metrics;
mod ops;
pub mod outbound;
mod record_cache;
pub mod records;
mod server;
mod serving;
pub mod settings;

pub use admission::EdgeLimits;
pub use clock::GuestClock;
pub use keyvalue::{Decision, KeyRef, RequestFacts};
pub use kv::{Kv, KvBackend, KvConfig, KvError, MemoryKv, RedisKv, SqliteKv};
pub use outbound::OutboundPolicy;
pub use records::RecordsError;
pub use server::{CLIENT_ADDR_HEADER, EdgeConfig, EdgeError, EdgeServer, PolicyProbe};

/// The gateway component this binary ships (built by `build.rs` with the `edge`
/// feature: counters moved through `tollgate:gateway/counters`).
pub fn component_wasm() -> &'static [u8] {
    include_bytes!(env!("TOLLGATE_COMPONENT_WASM"))
}

/// Where `build.rs` left the same component built for plain `wasi:keyvalue`: the
/// file `spin.toml` deploys, which this host runs as well (`EdgeConfig::component`).
pub const PORTABLE_COMPONENT: &str = env!("TOLLGATE_PORTABLE_COMPONENT_WASM");
