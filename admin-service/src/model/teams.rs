//! A team's stored settings, decoded: grants, limits and budget that narrow its
//! keys, read by the API and compiled into edge team records.

use sqlx::FromRow;
use sqlx::any::AnyRow;

use crate::errors::ApiError;
use crate::model::config::BudgetInput;
use crate::store::teams::TeamRecord;
use policy::Limits;

/// Stored team row, decoded.
#[derive(Debug, Clone)]
pub struct TeamRow {
    /// Id.
    pub id: String,
    /// Owning org.
    pub org_id: String,
    /// Grants, `None` = inherit.
    pub allowed_models: Option<Vec<String>>,
    /// Team limits.
    pub limits: Limits,
    /// Team budget.
    pub budget: Option<BudgetInput>,
}

impl TeamRow {
    /// Decodes a stored team's JSON columns.
    pub fn from_record(r: &TeamRecord) -> Result<TeamRow, ApiError> {
        Ok(TeamRow {
            id: r.id.clone(),
            org_id: r.org_id.clone(),
            allowed_models: r
                .allowed_models
                .as_deref()
                .map(serde_json::from_str)
                .transpose()?,
            limits: serde_json::from_str(&r.limits)?,
            budget: r.budget.as_deref().map(serde_json::from_str).transpose()?,
        })
    }

    /// Decodes a `teams` row.
    pub fn from_row(r: &AnyRow) -> Result<TeamRow, ApiError> {
        TeamRow::from_record(&TeamRecord::from_row(r)?)
    }
}
