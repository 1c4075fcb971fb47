//! `tollgate members`: members of an organization, and invitations.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::CliError;
use super::{Conn, fields, output, seg};

/// Member commands.
#[derive(Subcommand, Debug)]
pub enum Members {
    /// Members of an organization and their roles.
    List {
        /// Organization id.
        #[arg(long)]
        org: String,
    },
    /// Add an existing user (platform admins; org admins invite).
    Add {
        /// Organization id.
        #[arg(long)]
        org: String,
        /// The user's id.
        #[arg(long, conflicts_with = "email", required_unless_present = "email")]
        user_id: Option<String>,
        /// The user's (verified) email.
        #[arg(long)]
        email: Option<String>,
        /// owner, admin, member or viewer.
        #[arg(long)]
        role: String,
    },
    /// Change a member's role.
    Update {
        /// Organization id.
        #[arg(long)]
        org: String,
        /// The member's user id.
        user_id: String,
        /// owner, admin, member or viewer.
        #[arg(long)]
        role: String,
    },
    /// Remove a member: their keys here are revoked, or handed to another member.
    Remove {
        /// Organization id.
        #[arg(long)]
        org: String,
        /// The member's user id.
        user_id: String,
        /// Hand their keys to this member instead of revoking them.
        #[arg(long)]
        transfer_keys_to: Option<String>,
    },
    /// Invite by email; the secret goes only to the invitee.
    Invite {
        /// Organization id.
        #[arg(long)]
        org: String,
        /// The invitee's email.
        #[arg(long)]
        email: String,
        /// owner, admin, member or viewer.
        #[arg(long)]
        role: String,
    },
}

const COLUMNS: &[&str] = &["user_id", "email", "role", "created_at"];

impl Members {
    /// Runs the command.
    pub async fn run(self, conn: &Conn) -> Result<(), CliError> {
        let api = conn.api()?;
        let s = |v: Option<String>| v.map(Value::String);
        match self {
            Members::List { org } => {
                let items = api
                    .list_all(&format!("/api/organizations/{}/members", seg(&org)), &[])
                    .await?;
                output::list(&items, COLUMNS, conn.json);
            }
            Members::Add {
                org,
                user_id,
                email,
                role,
            } => {
                let body = fields([
                    ("user_id", s(user_id)),
                    ("email", s(email)),
                    ("role", Some(json!(role))),
                ]);
                let v = api
                    .call(
                        Method::POST,
                        &format!("/api/organizations/{}/members", seg(&org)),
                        &[],
                        Some(&body),
                    )
                    .await?;
                output::one(&v, conn.json);
            }
            Members::Update { org, user_id, role } => {
                let v = api
                    .call(
                        Method::PATCH,
                        &format!("/api/organizations/{}/members/{}", seg(&org), seg(&user_id)),
                        &[],
                        Some(&json!({"role": role})),
                    )
                    .await?;
                output::one(&v, conn.json);
            }
            Members::Remove {
                org,
                user_id,
                transfer_keys_to,
            } => {
                let q: Vec<(&str, String)> = transfer_keys_to
                    .map(|t| ("transfer_keys_to", t))
                    .into_iter()
                    .collect();
                let v = api
                    .call(
                        Method::DELETE,
                        &format!("/api/organizations/{}/members/{}", seg(&org), seg(&user_id)),
                        &q,
                        None,
                    )
                    .await?;
                output::one(&v, conn.json);
            }
            Members::Invite { org, email, role } => {
                let v = api
                    .call(
                        Method::POST,
                        &format!("/api/organizations/{}/invitations", seg(&org)),
                        &[],
                        Some(&json!({"email": email, "role": role})),
                    )
                    .await?;
                output::one(&v, conn.json);
            }
        }
        Ok(())
    }
}
