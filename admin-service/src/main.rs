//! `tollgate-admin`: the Tollgate control plane binary.

use std::net::SocketAddr;
use std::sync::Arc;

use admin_service::mail::MailSettings;

use admin_service::sync::sinks::SinkTarget;
use admin_service::vault::KeySettings;
use anyhow::Context;
use clap::Parser;

/// Tollgate admin service: REST API and pusher of compiled records to the edge KV.
#[derive(Parser, Debug)]
#[command(name = "tollgate-admin", version)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "TOLLGATE_LISTEN", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// The admin database: `sqlite://<path>` (one replica) or
    /// `postgres://user:password@host:port/database` (one or more replicas).
    #[arg(long, env = "DATABASE_URL", default_value = admin_service::store::db::DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Edge key-value store to push records to and drain usage from:
    /// `sqlite:<path>` (or a path) or `redis://host:port[/db]`; repeatable.
    #[arg(long = "edge-kv", env = "TOLLGATE_EDGE_KV", value_delimiter = ',')]
    edge_kv: Vec<SinkTarget>,
    #[command(flatten)]
    mail: MailSettings,
    /// Log lines as `text` or `json` (one object per line).
    #[arg(long, env = "TOLLGATE_LOG_FORMAT", value_enum, default_value_t)]
    log_format: telemetry::LogFormat,
    #[command(flatten)]
    keys: KeySettings,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init_logs(cli.log_format, "info");
    admin_service::store::db::backend_of_url(&cli.database_url)?;
    for target in &cli.edge_kv {
        let SinkTarget::Sqlite(path) = target else {
            continue;
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    let config = admin_service::Config {
        database_url: cli.database_url.clone(),
        edge_kv: cli.edge_kv.clone(),
        admin_token: std::env::var("TOLLGATE_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
        master_key: cli.keys.master(),
        edge_keys: cli.keys.edge(),
    };
    let mailer = cli.mail.mailer(cli.listen)?;
    let mut started = admin_service::start(&config)
        .await
        .context("starting the admin service")?;
    started.state.mailer = Arc::new(mailer);
    if let Some(token) = &started.generated_admin_token {
        // Shown once: only its hash is stored.
        println!("Platform admin token (shown once, store it now): {token}");
    }
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("binding {}", cli.listen))?;
    tracing::info!(listen = %cli.listen, database = %admin_service::store::db::redacted_url(&cli.database_url), sinks = cli.edge_kv.len(), "tollgate-admin listening");
    admin_service::serve(listener, started.state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .context("serving")?;
    Ok(())
}
