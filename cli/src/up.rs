//! `tollgate up`: runs the admin API and the local edge runtime in one process on the
//! embedded defaults (SQLite files under `.tollgate/`): the admin service pushes
//! compiled records into the key-value file the edge serves from.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use admin_service::mail::MailSettings;
use admin_service::sync::sinks::SinkTarget;
use admin_service::vault::{KeySettings, generate_key_file};
use anyhow::Context;
use clap::Args;
use edge_host::{EdgeConfig, EdgeServer, KvConfig};

/// Providers the edge may call out of the box; `--allow-outbound` adds more.
const DEFAULT_PROVIDERS: &[&str] = &[
    "api.openai.com:443",
    "api.anthropic.com:443",
    "generativelanguage.googleapis.com:443",
    "api.mistral.ai:443",
    "api.groq.com:443",
    "api.together.xyz:443",
    "openrouter.ai:443",
];

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Directory of the admin database and the edge key-value file.
    #[arg(long, env = "TOLLGATE_DATA_DIR", default_value = ".tollgate")]
    data_dir: PathBuf,
    /// The admin database instead of `<data-dir>/admin.db`: `sqlite://<path>` or
    /// `postgres://user:password@host:port/database`.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Address of the admin API.
    #[arg(long, env = "TOLLGATE_ADMIN_LISTEN", default_value = "127.0.0.1:8081")]
    admin_listen: SocketAddr,
    /// Address of the OpenAI-compatible edge.
    #[arg(long, env = "TOLLGATE_EDGE_LISTEN", default_value = "127.0.0.1:8787")]
    edge_listen: SocketAddr,
    /// Another upstream the edge may call, `host` or `host:port`; repeatable
    /// (added to the well-known providers).
    #[arg(long = "allow-outbound", value_name = "HOST[:PORT]")]
    allow_outbound: Vec<String>,
    /// Address of the edge's `/metrics`, `/healthz` and `/readyz` (the admin
    /// API serves its own beside `/api`).
    #[arg(
        long,
        env = "TOLLGATE_EDGE_OPS_LISTEN",
        default_value = "127.0.0.1:8788"
    )]
    edge_ops_listen: SocketAddr,
    #[command(flatten)]
    mail: MailSettings,
    /// Log lines as `text` or `json` (one object per line).
    #[arg(long, env = "TOLLGATE_LOG_FORMAT", value_enum, default_value_t)]
    pub log_format: telemetry::LogFormat,
    #[command(flatten)]
    keys: KeySettings,
}

/// `dir/name`, holding a key generated on the first start (mode 0600).
fn key_file(dir: &std::path::Path, name: &str, prefix: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    if !path.exists() {
        generate_key_file(&path, prefix).with_context(|| format!("creating {}", path.display()))?;
        println!("created {} (mode 0600): back it up", path.display());
    }
    Ok(path)
}

/// Runs until ctrl-c.
pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let kv_path = args.data_dir.join("edge-kv.db");
    let mut keys = args.keys;
    if keys.master_key.is_none() && keys.master_key_file.is_none() {
        keys.master_key_file = Some(key_file(&args.data_dir, "master.key", "m")?);
    }
    if keys.edge_keys.is_none() && keys.edge_key_file.is_none() {
        keys.edge_key_file = Some(key_file(&args.data_dir, "edge.key", "e")?);
    }
    // The local edge opens what the admin service seals: the same ring.
    let edge_keys = keys.edge().edge_ring().context("edge keys")?;
    let database_url = match args.database_url {
        Some(url) => {
            admin_service::store::db::backend_of_url(&url)?;
            url
        }
        None => format!("sqlite://{}", args.data_dir.join("admin.db").display()),
    };
    let config = admin_service::Config {
        database_url,
        edge_kv: vec![SinkTarget::Sqlite(kv_path.clone())],
        admin_token: std::env::var("TOLLGATE_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
        master_key: keys.master(),
        edge_keys: keys.edge(),
    };
    let mut started = admin_service::start(&config)
        .await
        .context("starting the admin service")?;
    let listener = tokio::net::TcpListener::bind(args.admin_listen)
        .await
        .with_context(|| format!("binding the admin API to {}", args.admin_listen))?;
    let admin_addr = listener.local_addr()?;
    let mailer = args.mail.mailer(admin_addr)?;
    started.state.mailer = Arc::new(mailer);

    let mut allowed: Vec<String> = DEFAULT_PROVIDERS.iter().map(|h| h.to_string()).collect();
    allowed.extend(args.allow_outbound);
    let edge = EdgeServer::start(EdgeConfig {
        listen: args.edge_listen,
        kv: KvConfig::Sqlite(kv_path),
        allowed_outbound: allowed,
        ops_listen: Some(args.edge_ops_listen),
        edge_keys,
        ..EdgeConfig::default()
    })
    .await
    .context("starting the edge")?;

    println!("Tollgate is up.");
    println!("  admin API:  http://{admin_addr}/api  (OpenAPI: /api/openapi.json)");
    println!("  edge:       {}/v1  (OpenAI-compatible)", edge.url());
    if let Some(ops) = edge.ops_addr() {
        println!("  edge ops:   http://{ops}  (/metrics, /healthz, /readyz)");
    }
    match &started.generated_admin_token {
        // Shown once: only its hash is stored.
        Some(token) => println!("  admin token (shown once, store it now): {token}"),
        None => println!(
            "  admin token: created on the first start (or TOLLGATE_ADMIN_TOKEN); not shown again"
        ),
    }

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let admin = tokio::spawn(admin_service::serve(listener, started.state, async {
        let _ = stop_rx.await;
    }));
    tokio::signal::ctrl_c()
        .await
        .context("waiting for ctrl-c")?;
    eprintln!("shutting down");
    let _ = stop_tx.send(());
    edge.shutdown().await;
    admin.await?.context("admin API")?;
    Ok(())
}
