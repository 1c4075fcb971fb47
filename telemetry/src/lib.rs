//! Observability plumbing shared by Tollgate's binaries: how logs are written
//! (text or one JSON object per line) and how a Prometheus registry is exposed.
//! No metric label or log field written through here carries a secret: callers
//! label by ids, status and error codes only.

use tracing_subscriber::EnvFilter;

pub use prometheus;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`).
    Json,
}

/// Installs the global subscriber writing to stderr; `RUST_LOG` overrides
/// `default_filter`.
pub fn init_logs(format: LogFormat, default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The registry's metrics in the Prometheus text format.
pub fn render(registry: &prometheus::Registry) -> String {
    let mut out = String::new();
    // Encoding into a String only fails on families the registry would not hold.
    if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&registry.gather(), &mut out) {
        out = format!("# metrics could not be encoded: {e}\n");
    }
    out
}

/// Content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Latency buckets in seconds, from 100 µs (edge policy work) to 60 s (streams).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];
