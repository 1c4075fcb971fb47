//! Exchange rates the platform admin maintains. Catalog prices carry a currency; an
//! org billing in another one is charged at the rate in force when its record is
//! compiled (recorded usage keeps the cost it had). Without a rate there is no
//! mixing: a write that would leave a priced model without a rate into some org's
//! currency is refused with 409 `currency_mismatch`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, AnyPool, Row};

use crate::AppState;
use crate::api::extract::ApiJson;
use crate::auth::Actor;
use crate::billing::money::{FxRate, check_currency};
use crate::errors::{ApiError, ApiResult};
use crate::store::db::{now_ms, rfc3339};

/// Rates by `(from, to)`, in millionths of `to` per unit of `from`.
#[derive(Debug, Clone, Default)]
pub struct FxRates(BTreeMap<(String, String), u64>);

impl FxRates {
    /// Loads every rate.
    pub async fn load(pool: &AnyPool) -> Result<FxRates, sqlx::Error> {
        let mut rates = BTreeMap::new();
        for r in sqlx::query("SELECT from_currency, to_currency, rate_micros FROM fx_rates")
            .fetch_all(pool)
            .await?
        {
            let rate: i64 = r.try_get("rate_micros")?;
            rates.insert(
                (r.try_get("from_currency")?, r.try_get("to_currency")?),
                u64::try_from(rate).unwrap_or(0),
            );
        }
        Ok(FxRates(rates))
    }

    /// `micros` of `from` in `to`, rounded half up; `None` without a rate.
    pub fn convert(&self, micros: u64, from: &str, to: &str) -> Option<u64> {
        if from == to {
            return Some(micros);
        }
        let rate = *self.0.get(&(from.to_string(), to.to_string()))?;
        let v = (u128::from(micros) * u128::from(rate) + 500_000) / 1_000_000;
        u64::try_from(v).ok()
    }
}

/// Refuses the write in progress (409 naming `field`) when some priced catalog
/// model has no rate into the currency of some organization.
pub async fn check_convertible(conn: &mut AnyConnection, field: &str) -> ApiResult<()> {
    let gap = sqlx::query(
        "SELECT m.name, m.currency AS from_c, o.slug, o.currency AS to_c
         FROM catalog_models m JOIN organizations o ON o.currency <> m.currency
         WHERE (m.input_price_micros_per_1m > 0 OR m.output_price_micros_per_1m > 0)
           AND NOT EXISTS (SELECT 1 FROM fx_rates f
                           WHERE f.from_currency = m.currency AND f.to_currency = o.currency)
         ORDER BY m.name, o.slug LIMIT 1",
    )
    .fetch_optional(conn)
    .await?;
    let Some(r) = gap else { return Ok(()) };
    let (model, from, slug, to): (String, String, String, String) = (
        r.try_get("name")?,
        r.try_get("from_c")?,
        r.try_get("slug")?,
        r.try_get("to_c")?,
    );
    Err(ApiError::conflict(
        "currency_mismatch",
        format!(
            "no exchange rate from {from} to {to}: model {model:?} is priced in {from} and \
             organization {slug:?} bills in {to}; add the rate first (PUT /api/fx-rates/{from}/{to})"
        ),
    )
    .with_field(field))
}

/// An exchange rate as returned by the API.
#[derive(Debug, Serialize)]
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
#[derive(Debug, Deserialize)]
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
pub async fn list_rates(
    State(st): State<AppState>,
    _actor: Actor,
) -> ApiResult<Json<Vec<FxRateView>>> {
    let rows = sqlx::query("SELECT * FROM fx_rates ORDER BY from_currency, to_currency")
        .fetch_all(&st.db)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(FxRateView {
            from: r.try_get("from_currency")?,
            to: r.try_get("to_currency")?,
            rate: FxRate(u64::try_from(r.try_get::<i64, _>("rate_micros")?).unwrap_or(0)),
            updated_at: rfc3339(r.try_get("updated_at_ms")?),
        });
    }
    Ok(Json(out))
}

/// `PUT /api/fx-rates/{from}/{to}`: platform admins. Prices compiled from now on
/// use the new rate; recorded usage keeps its cost.
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
    sqlx::query(
        "INSERT INTO fx_rates (from_currency, to_currency, rate_micros, updated_at_ms)
         VALUES (?, ?, ?, ?)
         ON CONFLICT (from_currency, to_currency)
         DO UPDATE SET rate_micros = excluded.rate_micros, updated_at_ms = excluded.updated_at_ms",
    )
    .bind(&from)
    .bind(&to)
    .bind(i64::try_from(body.rate.0).unwrap_or(i64::MAX))
    .bind(now)
    .execute(tx.conn())
    .await?;
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
pub async fn delete_rate(
    State(st): State<AppState>,
    actor: Actor,
    Path((from, to)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    actor.require_platform_admin()?;
    check_pair(&from, &to)?;
    let mut tx = st.writer.begin(&st.db).await?;
    let n = sqlx::query("DELETE FROM fx_rates WHERE from_currency = ? AND to_currency = ?")
        .bind(&from)
        .bind(&to)
        .execute(tx.conn())
        .await?
        .rows_affected();
    if n == 0 {
        return Err(ApiError::not_found("exchange rate"));
    }
    check_convertible(tx.conn(), "to").await?;
    tx.enqueue("all", "*").await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_at_the_rate_rounding_half_up() {
        let mut m = BTreeMap::new();
        m.insert(("USD".to_string(), "EUR".to_string()), 920_000);
        let fx = FxRates(m);
        assert_eq!(fx.convert(2_500_000, "USD", "EUR"), Some(2_300_000));
        assert_eq!(fx.convert(1, "USD", "EUR"), Some(1));
        assert_eq!(fx.convert(7, "USD", "USD"), Some(7));
        // Rates are not inverted or chained: a missing pair is no rate.
        assert_eq!(fx.convert(1_000_000, "EUR", "USD"), None);
    }
}
