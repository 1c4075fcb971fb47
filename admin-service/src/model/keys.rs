//! A virtual key's stored settings, decoded: what the API checks a key against and
//! the compiler turns into an edge key record.

use sqlx::FromRow;
use sqlx::any::AnyRow;

use crate::errors::ApiError;
use crate::model::config::BudgetInput;
use crate::store::keys as stored;
use policy::Limits;

/// A key's settings, decoded from its stored row.
#[derive(Debug, Clone)]
pub struct KeyRow {
    /// Id.
    pub id: String,
    /// Org.
    pub org_id: String,
    /// Team.
    pub team_id: Option<String>,
    /// Agent.
    pub agent_id: Option<String>,
    /// SHA-256 hex of the secret.
    pub key_hash: String,
    /// Grants.
    pub allowed_models: Option<Vec<String>>,
    /// Allowed CIDRs (validated on write).
    pub ip_allow: Vec<String>,
    /// Denied CIDRs.
    pub ip_deny: Vec<String>,
    /// Limits.
    pub limits: Limits,
    /// Budget.
    pub budget: Option<BudgetInput>,
    /// Expiry (Unix ms).
    pub expires_at_ms: Option<i64>,
    /// Status.
    pub status: String,
    /// Creator (user id).
    pub created_by: Option<String>,
}

impl KeyRow {
    /// Decodes a `virtual_keys` row read with `SELECT *`.
    pub fn from_row(r: &AnyRow) -> Result<KeyRow, ApiError> {
        KeyRow::decode(&stored::KeyRow::from_row(r)?)
    }

    /// Decodes the JSON columns of a stored key.
    pub fn decode(r: &stored::KeyRow) -> Result<KeyRow, ApiError> {
        Ok(KeyRow {
            id: r.id.clone(),
            org_id: r.org_id.clone(),
            team_id: r.team_id.clone(),
            agent_id: r.agent_id.clone(),
            key_hash: r.key_hash.clone(),
            allowed_models: r
                .allowed_models
                .as_deref()
                .map(serde_json::from_str)
                .transpose()?,
            ip_allow: serde_json::from_str(&r.ip_allow)?,
            ip_deny: serde_json::from_str(&r.ip_deny)?,
            limits: serde_json::from_str(&r.limits)?,
            budget: r.budget.as_deref().map(serde_json::from_str).transpose()?,
            expires_at_ms: r.expires_at_ms,
            status: r.status.clone(),
            created_by: r.created_by.clone(),
        })
    }
}

/// Largest rate limit accepted (2^53 - 1, exact in every JSON client); the schema
/// documents the same bound.
pub const MAX_LIMIT: u64 = (1 << 53) - 1;

/// Checks every limit is at most [`MAX_LIMIT`] (422 naming `rate_limit_*`).
pub fn check_limits(l: &policy::Limits) -> Result<(), crate::errors::ApiError> {
    let named = [
        ("rate_limit_rpm", l.rpm),
        ("rate_limit_tpm", l.tpm),
        ("rate_limit_rph", l.rph),
        ("rate_limit_rpd", l.rpd),
        ("rate_limit_tpd", l.tpd),
    ];
    for (field, v) in named {
        if v.is_some_and(|v| v > MAX_LIMIT) {
            return Err(crate::errors::ApiError::invalid(
                field,
                format!("must be at most {MAX_LIMIT}"),
            ));
        }
    }
    Ok(())
}
