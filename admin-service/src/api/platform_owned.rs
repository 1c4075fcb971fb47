//! What belongs to the platform admin, not the tenant: the org's model universe
//! (`config.access`) and its `billing_rate_per_agent`. The seed: "platform admins
//! decide which assets an organization can use; teams, keys and users can only
//! narrow". Org admins may narrow; widening is a 403 naming the field. The model
//! universe is checked with the config it is part of (`api::config`).

use crate::billing::money::Cents;
use crate::errors::ApiError;

/// 403 naming `field`: only a platform admin may widen it.
pub fn widening(field: &str, what: &str) -> ApiError {
    ApiError::forbidden(format!(
        "{field}: only platform admins may widen {what}; organization roles may only narrow it"
    ))
    .with_field(field)
}

/// Checks that an org role's billing-rate change does not lower the rate the
/// platform charges per agent (raising it narrows nothing the tenant may use).
pub fn check_billing_rate(current: Cents, requested: Cents) -> Result<(), ApiError> {
    if requested.0 < current.0 {
        return Err(widening(
            "billing_rate_per_agent",
            "the organization's terms by lowering its billing rate",
        ));
    }
    Ok(())
}
