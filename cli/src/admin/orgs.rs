//! `tollgate orgs`: organizations.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Api, CliError};
use super::{Conn, fields, output, seg};

/// Organization commands.
#[derive(Subcommand, Debug)]
pub enum Orgs {
    /// List organizations you may see.
    List,
    /// Show one organization.
    Get {
        /// Organization id.
        org_id: String,
    },
    /// Create an organization (platform admins).
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// URL-safe slug (derived from the name when left out).
        #[arg(long)]
        slug: Option<String>,
        /// Currency it bills in (USD, EUR, GBP, NGN, CAD, AUD).
        #[arg(long)]
        currency: Option<String>,
        /// Billing rate per agent per month, e.g. 99.00.
        #[arg(long)]
        billing_rate: Option<String>,
        /// Contact email.
        #[arg(long)]
        contact_email: Option<String>,
        /// Description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Change an organization's fields.
    Update {
        /// Organization id.
        org_id: String,
        /// New display name.
        #[arg(long)]
        name: Option<String>,
        /// New description.
        #[arg(long)]
        description: Option<String>,
        /// New contact email.
        #[arg(long)]
        contact_email: Option<String>,
    },
    /// Activate or deactivate (inactive orgs are suspended at the edge).
    Toggle {
        /// Organization id.
        org_id: String,
    },
    /// Delete an organization with no agents.
    Delete {
        /// Organization id.
        org_id: String,
        /// Confirm that its billing history is deleted too.
        #[arg(long)]
        confirm: bool,
    },
}

const COLUMNS: &[&str] = &["id", "slug", "name", "active", "currency", "role"];

impl Orgs {
    /// Runs the command.
    pub async fn run(self, conn: &Conn) -> Result<(), CliError> {
        let api: Api = conn.api()?;
        let s = |v: Option<String>| v.map(Value::String);
        match self {
            Orgs::List => {
                let items = api.list_all("/api/organizations", &[]).await?;
                output::list(&items, COLUMNS, conn.json);
            }
            Orgs::Get { org_id } => {
                let v = api
                    .call(
                        Method::GET,
                        &format!("/api/organizations/{}", seg(&org_id)),
                        &[],
                        None,
                    )
                    .await?;
                output::one(&v, conn.json);
            }
            Orgs::Create {
                name,
                slug,
                currency,
                billing_rate,
                contact_email,
                description,
            } => {
                let body = fields([
                    ("name", Some(json!(name))),
                    ("slug", s(slug)),
                    ("currency", s(currency)),
                    ("billing_rate_per_agent", s(billing_rate)),
                    ("contact_email", s(contact_email)),
                    ("description", s(description)),
                ]);
                let v = api
                    .call(Method::POST, "/api/organizations", &[], Some(&body))
                    .await?;
                output::one(&v, conn.json);
            }
            Orgs::Update {
                org_id,
                name,
                description,
                contact_email,
            } => {
                let body = fields([
                    ("name", s(name)),
                    ("description", s(description)),
                    ("contact_email", s(contact_email)),
                ]);
                let v = api
                    .call(
                        Method::PATCH,
                        &format!("/api/organizations/{}", seg(&org_id)),
                        &[],
                        Some(&body),
                    )
                    .await?;
                output::one(&v, conn.json);
            }
            Orgs::Toggle { org_id } => {
                let v = api
                    .call(
                        Method::POST,
                        &format!("/api/organizations/{}/toggle", seg(&org_id)),
                        &[],
                        None,
                    )
                    .await?;
                output::one(&v, conn.json);
            }
            Orgs::Delete { org_id, confirm } => {
                let q = if confirm {
                    vec![("confirm", "true".to_string())]
                } else {
                    vec![]
                };
                api.call(
                    Method::DELETE,
                    &format!("/api/organizations/{}", seg(&org_id)),
                    &q,
                    None,
                )
                .await?;
                if !conn.json {
                    println!("deleted {org_id}");
                }
            }
        }
        Ok(())
    }
}
