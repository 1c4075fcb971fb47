//! `tollgate agents`: AI agents and the organizations they bill to.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::CliError;
use super::{Conn, fields, output, seg};

/// Agent commands.
#[derive(Subcommand, Debug)]
pub enum Agents {
    /// Agents you may see.
    List {
        /// Only this organization's.
        #[arg(long)]
        org: Option<String>,
    },
    /// Show one agent.
    Get {
        /// Agent id.
        agent_id: String,
    },
    /// Create an agent.
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Organization to assign it to (default: the internal one).
        #[arg(long)]
        org: Option<String>,
        /// Its own billing rate per month, e.g. 49.00.
        #[arg(long)]
        billing_rate: Option<String>,
    },
    /// Change an agent.
    Update {
        /// Agent id.
        agent_id: String,
        /// New display name.
        #[arg(long)]
        name: Option<String>,
        /// Active or not.
        #[arg(long)]
        active: Option<bool>,
        /// New billing rate (owners), from `--effective-from` (YYYY-MM-DD).
        #[arg(long, requires = "effective_from")]
        billing_rate: Option<String>,
        /// First day the new billing rate applies.
        #[arg(long)]
        effective_from: Option<String>,
    },
    /// Move the agent to an organization.
    Assign {
        /// Agent id.
        agent_id: String,
        /// Target organization id.
        #[arg(long)]
        org: String,
    },
    /// Return the agent to the internal organization.
    Unassign {
        /// Agent id.
        agent_id: String,
    },
}

const COLUMNS: &[&str] = &["id", "name", "org_id", "active", "effective_billing_rate"];

impl Agents {
    /// Runs the command.
    pub async fn run(self, conn: &Conn) -> Result<(), CliError> {
        let api = conn.api()?;
        let s = |v: Option<String>| v.map(Value::String);
        let v = match self {
            Agents::List { org } => {
                let q: Vec<(&str, String)> = org.map(|o| ("org_id", o)).into_iter().collect();
                let items = api.list_all("/api/agents", &q).await?;
                output::list(&items, COLUMNS, conn.json);
                return Ok(());
            }
            Agents::Get { agent_id } => {
                api.call(
                    Method::GET,
                    &format!("/api/agents/{}", seg(&agent_id)),
                    &[],
                    None,
                )
                .await?
            }
            Agents::Create {
                name,
                org,
                billing_rate,
            } => {
                let body = fields([
                    ("name", Some(json!(name))),
                    ("org_id", s(org)),
                    ("billing_rate", s(billing_rate)),
                ]);
                api.call(Method::POST, "/api/agents", &[], Some(&body))
                    .await?
            }
            Agents::Update {
                agent_id,
                name,
                active,
                billing_rate,
                effective_from,
            } => {
                let body = fields([
                    ("name", s(name)),
                    ("active", active.map(Value::Bool)),
                    ("billingRate", s(billing_rate)),
                    ("billingRateEffectiveFrom", s(effective_from)),
                ]);
                api.call(
                    Method::PATCH,
                    &format!("/api/agents/{}", seg(&agent_id)),
                    &[],
                    Some(&body),
                )
                .await?
            }
            Agents::Assign { agent_id, org } => {
                api.call(
                    Method::POST,
                    &format!("/api/agents/{}/assign-org", seg(&agent_id)),
                    &[],
                    Some(&json!({"org_id": org})),
                )
                .await?
            }
            Agents::Unassign { agent_id } => {
                api.call(
                    Method::POST,
                    &format!("/api/agents/{}/unassign-org", seg(&agent_id)),
                    &[],
                    None,
                )
                .await?
            }
        };
        output::one(&v, conn.json);
        Ok(())
    }
}
