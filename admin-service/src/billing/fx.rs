//! Exchange rates the platform admin maintains. Catalog prices carry a currency; an
//! org billing in another one is charged at the rate in force when its record is
//! compiled (recorded usage keeps the cost it had). Without a rate there is no
//! mixing: a write that would leave a priced model without a rate into some org's
//! currency is refused with 409 `currency_mismatch`.

use std::collections::BTreeMap;

use sqlx::AnyConnection;

use crate::errors::{ApiError, ApiResult};
use crate::store;
use crate::store::db::Db;

/// Rates by `(from, to)`, in millionths of `to` per unit of `from`.
#[derive(Debug, Clone, Default)]
pub struct FxRates(BTreeMap<(String, String), u64>);

impl FxRates {
    /// Loads every rate.
    pub async fn load(pool: &Db) -> Result<FxRates, sqlx::Error> {
        let rates = store::fx::list(pool)
            .await?
            .into_iter()
            .map(|r| {
                let rate = u64::try_from(r.rate_micros).unwrap_or(0);
                ((r.from_currency, r.to_currency), rate)
            })
            .collect();
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
    let Some(gap) = store::fx::first_gap(conn).await? else {
        return Ok(());
    };
    let store::fx::CurrencyGap {
        model,
        from_currency: from,
        org_slug: slug,
        to_currency: to,
    } = gap;
    Err(ApiError::conflict(
        "currency_mismatch",
        format!(
            "no exchange rate from {from} to {to}: model {model:?} is priced in {from} and \
             organization {slug:?} bills in {to}; add the rate first (PUT /api/fx-rates/{from}/{to})"
        ),
    )
    .with_field(field))
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
