//! The `tollgate-edge` command line, in the library so that any binary (the
//! shipped one, a test's own) runs exactly the same edge.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::{EdgeConfig, EdgeLimits, EdgeServer, KvConfig};
use anyhow::Context as _;
use clap::{Parser, Subcommand};
use policy::sealed::KeyRing;

/// Tollgate's local edge runtime.
#[derive(Parser)]
#[command(name = "tollgate-edge", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gateway component over HTTP.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787", env = "TOLLGATE_EDGE_LISTEN")]
    listen: SocketAddr,
    /// Key-value store: `memory`, `sqlite:<path>` or `redis://host:port[/db]`
    /// (Redis: shared by many edge nodes, so limits and budgets hold across them).
    #[arg(
        long,
        default_value = "sqlite:.tollgate/edge-kv.db",
        env = "TOLLGATE_EDGE_KV"
    )]
    kv: KvConfig,
    /// JSON records file (orgs, teams, agents, keys) loaded at startup.
    #[arg(long)]
    records: Option<PathBuf>,
    /// Upstream the component may call, `host` or `host:port`; repeatable.
    #[arg(long = "allow-outbound", value_name = "HOST[:PORT]")]
    allow_outbound: Vec<String>,
    /// Proxy (CIDR or address) whose forwarding header (the one an org names,
    /// e.g. X-Forwarded-For) is honoured; repeatable. Without any, client
    /// addresses are the TCP peer's, whatever headers say.
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    trusted_proxy: Vec<String>,
    /// Keys opening the provider credentials in org records: `id:<base64>`
    /// entries, comma-separated, the admin service's current key first during a
    /// rotation (both open). Prefer `--edge-key-file`: arguments are visible to
    /// other local users.
    #[arg(long, env = "TOLLGATE_EDGE_KEYS", hide_env_values = true)]
    edge_keys: Option<String>,
    /// File holding the edge key ring (same format; `tollgate up` writes
    /// `.tollgate/edge.key`).
    #[arg(long, env = "TOLLGATE_EDGE_KEY_FILE", conflicts_with = "edge_keys")]
    edge_key_file: Option<PathBuf>,
    /// Serve this component instead of the embedded one.
    #[arg(long)]
    component: Option<PathBuf>,
    /// Address of `/metrics`, `/healthz` and `/readyz` (kept off the public port);
    /// not served without it.
    #[arg(long, env = "TOLLGATE_EDGE_OPS_LISTEN")]
    ops_listen: Option<SocketAddr>,
    /// Log lines as `text` or `json` (one object per line).
    #[arg(long, env = "TOLLGATE_LOG_FORMAT", value_enum, default_value_t)]
    log_format: telemetry::LogFormat,
    #[command(flatten)]
    limits: LimitArgs,
}

/// What one client or tenant may hold of the edge.
#[derive(clap::Args)]
struct LimitArgs {
    /// Open client connections; more wait in the listen backlog.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Guest instances alive at once (each in-flight request holds one).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_instances: u32,
    /// Threads serving connections (each a single-threaded runtime); default: one
    /// per core.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    serving_threads: Option<u16>,
    /// Seconds for a request head to arrive (408 after; also the keep-alive idle time).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_read_timeout_secs: u64,
    /// Seconds for a whole request body to arrive (408 after).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    body_read_timeout_secs: u64,
    /// In-flight requests per org whose config sets no `max_in_flight` (429 beyond).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    org_max_in_flight: u32,
    /// In-flight requests, together, that present no known key.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    anonymous_max_in_flight: u32,
    /// Milliseconds of CPU a request's guest may use (interrupted after: 504).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    guest_cpu_limit_ms: u64,
    /// Seconds a guest may take to answer with a response head (504 after).
    #[arg(long, default_value_t = 330, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    guest_response_deadline_secs: u64,
}

impl LimitArgs {
    fn limits(&self) -> EdgeLimits {
        EdgeLimits {
            max_connections: self.max_connections as usize,
            max_instances: self.max_instances,
            serving_threads: self
                .serving_threads
                .map_or(EdgeLimits::default().serving_threads, usize::from),
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs),
            body_read_timeout: Duration::from_secs(self.body_read_timeout_secs),
            org_max_in_flight: self.org_max_in_flight,
            anonymous_max_in_flight: self.anonymous_max_in_flight,
            guest_cpu_limit: Duration::from_millis(self.guest_cpu_limit_ms),
            guest_response_deadline: Duration::from_secs(self.guest_response_deadline_secs),
        }
    }
}

/// Parses the command line and runs it to the end (ctrl-c for `serve`).
pub fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let Command::Serve(args) = Cli::parse().command;
    telemetry::init_logs(args.log_format, "info,wasmtime=warn,cranelift=warn");
    let edge_keys = match (&args.edge_keys, &args.edge_key_file) {
        (Some(text), _) => KeyRing::parse(text).context("--edge-keys")?,
        (None, Some(path)) => KeyRing::parse(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("edge key file {}", path.display()))?,
        (None, None) => KeyRing::default(),
    };
    if edge_keys.is_empty() {
        tracing::warn!(
            "no edge keys (--edge-keys / --edge-key-file): requests to providers with a credential are refused"
        );
    }
    let config = EdgeConfig {
        listen: args.listen,
        kv: args.kv,
        component: args.component,
        records: args.records,
        allowed_outbound: args.allow_outbound,
        limits: args.limits.limits(),
        trusted_proxies: args.trusted_proxy,
        ops_listen: args.ops_listen,
        edge_keys,
        ..EdgeConfig::default()
    };
    let server = EdgeServer::start(config)
        .await
        .context("starting the edge")?;
    println!("{}", server.url());

    tokio::signal::ctrl_c()
        .await
        .context("waiting for ctrl-c")?;
    eprintln!("shutting down");
    server.shutdown().await;
    Ok(())
}
