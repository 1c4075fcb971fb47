//! What belongs to the platform admin, not the tenant: the org's model universe
//! (`config.access`) and its `billing_rate_per_agent`. The seed: "platform admins
//! decide which assets an organization can use; teams, keys and users can only
//! narrow". Org admins may narrow; widening is a 403 naming the field.

use crate::api::catalog::Catalog;
use crate::api::config::OrgConfig;
use crate::billing::money::Cents;
use crate::errors::ApiError;

/// 403 naming `field`: only a platform admin may widen it.
fn widening(field: &str, what: &str) -> ApiError {
    ApiError::forbidden(format!(
        "{field}: only platform admins may widen {what}; organization roles may only narrow it"
    ))
    .with_field(field)
}

/// Checks that an org role's config edit does not widen the org's model universe:
/// the new set lies inside the stored one, and it names no route or access group the
/// stored access did not (their members are platform-defined and may grow later).
pub fn check_access_narrows(
    stored: &OrgConfig,
    new: &OrgConfig,
    catalog: &Catalog,
) -> Result<(), ApiError> {
    const FIELD: &str = "config.access";
    let Some(old) = &stored.access else {
        // Everything was allowed: any access section narrows.
        return Ok(());
    };
    let Some(next) = &new.access else {
        return Err(widening(FIELD, "the organization's model access"));
    };
    if let Some(g) = next
        .route_groups
        .iter()
        .find(|g| !old.route_groups.contains(g))
    {
        return Err(widening(
            &format!("{FIELD}.route_groups"),
            &format!("access to route group {g:?}"),
        ));
    }
    if let Some(g) = next
        .access_groups
        .iter()
        .find(|g| !old.access_groups.contains(g))
    {
        return Err(widening(
            &format!("{FIELD}.access_groups"),
            &format!("access to access group {g:?}"),
        ));
    }
    let before = catalog.org_models(stored);
    let after = catalog.org_models(new);
    if before.intersect(&after) != after {
        return Err(widening(
            &format!("{FIELD}.models"),
            "the organization's model access",
        ));
    }
    Ok(())
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
