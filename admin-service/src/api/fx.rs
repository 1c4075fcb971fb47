//! Exchange-rate endpoints: list (any caller), set and delete (platform admins).
//! The conversion itself and the currency-gap check live in `billing::fx`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::extract::ApiJson;
use crate::auth::Actor;
use crate::billing::fx;
use crate::billing::money::{FxRate, check_currency};
use crate::errors::{ApiError, ApiResult};
use crate::store;
use crate::store::db::{now_ms, rfc3339};

/// An exchange rate as returned by the API.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FxRateView {
    /// Currency of the catalog price.
    pub from: String,
    /// Currency of the org.
    pub to: String,
    /// Units of `to` per unit of `from`.
    pub rate: FxRate,
    /// Last change.
    pub updated_at: String,
}

/// Body of `PUT /api/fx-rates/{from}/{to}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRate {
    /// Units of `to` per unit of `from`, up to 6 decimals.
    rate: FxRate,
}

/// Largest accepted rate (keeps converted prices far inside `u64`).
const MAX_RATE_MICROS: u64 = 1_000_000 * 1_000_000;

fn check_pair(from: &str, to: &str) -> ApiResult<()> {
    check_currency("from", from)?;
    check_currency("to", to)?;
    if from == to {
        return Err(ApiError::invalid("to", "must differ from `from`"));
    }
    Ok(())
}

/// `GET /api/fx-rates`: any authenticated caller.
#[utoipa::path(
    get,
    path = "/api/fx-rates",
    tag = "catalog",
    summary = "Exchange rates that convert catalog prices into org currencies (any caller).",
    responses((status = 200, description = "OK", body = Vec<FxRateView>)),
    security(("bearer" = [])),
)]
pub async fn list_rates(
    State(st): State<AppState>,
    _actor: Actor,
) -> ApiResult<Json<Vec<FxRateView>>> {
    let out = store::fx::list(&st.db)
        .await?
        .into_iter()
        .map(|r| FxRateView {
            from: r.from_currency,
            to: r.to_currency,
            rate: FxRate(u64::try_from(r.rate_micros).unwrap_or(0)),
            updated_at: rfc3339(r.updated_at_ms),
        })
        .collect();
    Ok(Json(out))
}

/// `PUT /api/fx-rates/{from}/{to}`: platform admins. Prices compiled from now on
/// use the new rate; recorded usage keeps its cost.
#[utoipa::path(
    put,
    path = "/api/fx-rates/{from}/{to}",
    tag = "catalog",
    summary = "Set the rate {\"rate\": \"0.92\"} (units of `to` per `from`); prices compile at it from now on, recorded usage keeps its cost (platform admin).",
    params(("from" = String, Path, description = "Currency converted from", pattern = "^(USD|EUR|GBP|NGN|CAD|AUD)$"), ("to" = String, Path, description = "Currency converted to", pattern = "^(USD|EUR|GBP|NGN|CAD|AUD)$")),
    request_body = SetRate,
    responses((status = 200, description = "OK", body = FxRateView)),
    security(("bearer" = [])),
)]
pub async fn set_rate(
    State(st): State<AppState>,
    actor: Actor,
    Path((from, to)): Path<(String, String)>,
    ApiJson(body): ApiJson<SetRate>,
) -> ApiResult<Json<FxRateView>> {
    actor.require_platform_admin()?;
    check_pair(&from, &to)?;
    if body.rate.0 == 0 || body.rate.0 > MAX_RATE_MICROS {
        return Err(ApiError::invalid(
            "rate",
            "must be above 0 and at most 1000000",
        ));
    }
    let now = now_ms();
    let mut tx = st.writer.begin(&st.db).await?;
    let rate = i64::try_from(body.rate.0).unwrap_or(i64::MAX);
    store::fx::upsert(tx.conn(), &from, &to, rate, now).await?;
    // Every org's prices may change: recompile them all.
    tx.enqueue("all", "*").await?;
    tx.commit().await?;
    Ok(Json(FxRateView {
        from,
        to,
        rate: body.rate,
        updated_at: rfc3339(now),
    }))
}

/// `DELETE /api/fx-rates/{from}/{to}`: platform admins; refused while a priced
/// model still needs it.
#[utoipa::path(
    delete,
    path = "/api/fx-rates/{from}/{to}",
    tag = "catalog",
    summary = "Delete a rate no priced model needs (platform admin; 409 currency_mismatch otherwise).",
    params(("from" = String, Path, description = "Currency converted from", pattern = "^(USD|EUR|GBP|NGN|CAD|AUD)$"), ("to" = String, Path, description = "Currency converted to", pattern = "^(USD|EUR|GBP|NGN|CAD|AUD)$")),
    responses((status = 204, description = "Done; no body")),
    security(("bearer" = [])),
)]
pub async fn delete_rate(
    State(st): State<AppState>,
    actor: Actor,
    Path((from, to)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    actor.require_platform_admin()?;
    check_pair(&from, &to)?;
    let mut tx = st.writer.begin(&st.db).await?;
    if !store::fx::delete(tx.conn(), &from, &to).await? {
        return Err(ApiError::not_found("exchange rate"));
    }
    fx::check_convertible(tx.conn(), "to").await?;
    tx.enqueue("all", "*").await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
