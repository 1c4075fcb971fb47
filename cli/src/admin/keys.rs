//! `tollgate keys`: virtual keys.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use super::client::CliError;
use super::{Conn, clearable, csv, fields, output, seg};

/// Key commands.
#[derive(Subcommand, Debug)]
pub enum Keys {
    /// The key inventory of an organization: names and prefixes, never keys.
    List {
        /// Organization id.
        #[arg(long)]
        org: String,
    },
    /// Show one key (never its secret).
    Get {
        /// Key id.
        key_id: String,
    },
    /// Create a key; the full key is printed once.
    Create {
        /// Organization id.
        #[arg(long)]
        org: String,
        /// Display name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        settings: KeySettings,
    },
    /// Change a key; `none` clears a limit, budget, team or expiry.
    Update {
        /// Key id.
        key_id: String,
        /// New display name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        settings: KeySettings,
    },
    /// A new secret, printed once; the old one keeps working `--grace-seconds`.
    Rotate {
        /// Key id.
        key_id: String,
        /// Seconds the old secret keeps working (0-604800).
        #[arg(long)]
        grace_seconds: Option<u64>,
    },
    /// Revoke a key.
    Revoke {
        /// Key id.
        key_id: String,
    },
}

/// A key's settings, as flags.
#[derive(Args, Debug)]
pub struct KeySettings {
    /// Requests per minute (`none` clears).
    #[arg(long)]
    rpm: Option<String>,
    /// Tokens per minute.
    #[arg(long)]
    tpm: Option<String>,
    /// Requests per hour.
    #[arg(long)]
    rph: Option<String>,
    /// Requests per day.
    #[arg(long)]
    rpd: Option<String>,
    /// Tokens per day.
    #[arg(long)]
    tpd: Option<String>,
    /// Allowed models, comma-separated (`none`: inherit the team's or org's).
    #[arg(long)]
    models: Option<String>,
    /// Allowed client CIDRs, comma-separated.
    #[arg(long)]
    ip_allow: Option<String>,
    /// Denied client CIDRs, comma-separated.
    #[arg(long)]
    ip_deny: Option<String>,
    /// Budget amount, e.g. 50.00 (`none` clears).
    #[arg(long)]
    budget: Option<String>,
    /// Budget period: daily, weekly or monthly.
    #[arg(long, default_value = "monthly")]
    budget_period: String,
    /// Expiry, RFC 3339 (`none` clears).
    #[arg(long)]
    expires_at: Option<String>,
    /// Team id (`none` clears).
    #[arg(long)]
    team: Option<String>,
    /// Agent id (`none` clears).
    #[arg(long)]
    agent: Option<String>,
}

impl KeySettings {
    fn body(&self, name: Option<&str>) -> Value {
        let c = |v: &Option<String>| v.as_deref().map(clearable);
        let list = |v: &Option<String>| {
            v.as_deref()
                .map(|s| if s == "none" { Value::Null } else { csv(s) })
        };
        let budget = self.budget.as_deref().map(|b| match b {
            "none" | "null" => Value::Null,
            amount => json!({"limit": amount, "period": self.budget_period}),
        });
        fields([
            ("name", name.map(|n| json!(n))),
            ("rate_limit_rpm", c(&self.rpm)),
            ("rate_limit_tpm", c(&self.tpm)),
            ("rate_limit_rph", c(&self.rph)),
            ("rate_limit_rpd", c(&self.rpd)),
            ("rate_limit_tpd", c(&self.tpd)),
            ("allowed_models", list(&self.models)),
            ("ip_allow", self.ip_allow.as_deref().map(csv)),
            ("ip_deny", self.ip_deny.as_deref().map(csv)),
            ("budget", budget),
            ("expires_at", c(&self.expires_at)),
            ("team_id", c(&self.team)),
            ("agent_id", c(&self.agent)),
        ])
    }
}

const COLUMNS: &[&str] = &[
    "id",
    "name",
    "key_prefix",
    "status",
    "team_id",
    "rate_limit_rpm",
    "expires_at",
];

impl Keys {
    /// Runs the command.
    pub async fn run(self, conn: &Conn) -> Result<(), CliError> {
        let api = conn.api()?;
        match self {
            Keys::List { org } => {
                let items = api
                    .list_all(&format!("/api/organizations/{}/keys", seg(&org)), &[])
                    .await?;
                output::list(&items, COLUMNS, conn.json);
            }
            Keys::Get { key_id } => {
                let v = api
                    .call(
                        Method::GET,
                        &format!("/api/keys/{}", seg(&key_id)),
                        &[],
                        None,
                    )
                    .await?;
                output::one(&v, conn.json);
            }
            Keys::Create {
                org,
                name,
                settings,
            } => {
                let body = settings.body(Some(&name));
                let v = api
                    .call(
                        Method::POST,
                        &format!("/api/organizations/{}/keys", seg(&org)),
                        &[],
                        Some(&body),
                    )
                    .await?;
                output::with_secret(&v, "key", conn.json);
            }
            Keys::Update {
                key_id,
                name,
                settings,
            } => {
                let body = settings.body(name.as_deref());
                let v = api
                    .call(
                        Method::PATCH,
                        &format!("/api/keys/{}", seg(&key_id)),
                        &[],
                        Some(&body),
                    )
                    .await?;
                output::one(&v, conn.json);
            }
            Keys::Rotate {
                key_id,
                grace_seconds,
            } => {
                let body = fields([("grace_seconds", grace_seconds.map(|g| json!(g)))]);
                let v = api
                    .call(
                        Method::POST,
                        &format!("/api/keys/{}/rotate", seg(&key_id)),
                        &[],
                        Some(&body),
                    )
                    .await?;
                output::with_secret(&v, "key", conn.json);
            }
            Keys::Revoke { key_id } => {
                let v = api
                    .call(
                        Method::DELETE,
                        &format!("/api/keys/{}", seg(&key_id)),
                        &[],
                        None,
                    )
                    .await?;
                output::one(&v, conn.json);
            }
        }
        Ok(())
    }
}
