//! The `tollgate-edge` command line, in the library so that any binary (the
//! shipped one, a test's own) runs exactly the same edge.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::{EdgeConfig, EdgeServer, KvConfig};
use anyhow::Context as _;
use clap::{Parser, Subcommand};

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
    /// Serve this component instead of the embedded one.
    #[arg(long)]
    component: Option<PathBuf>,
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,wasmtime=warn,cranelift=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let Command::Serve(args) = Cli::parse().command;
    let config = EdgeConfig {
        listen: args.listen,
        kv: args.kv,
        component: args.component,
        records: args.records,
        allowed_outbound: args.allow_outbound,
        trusted_proxies: args.trusted_proxy,
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
