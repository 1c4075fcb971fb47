//! Exchange rates between currencies, and the check that every priced catalog
//! model can be converted into every org's currency.

use sqlx::{AnyConnection, Row};

use crate::store::db::Db;

/// One stored exchange rate.
#[derive(Debug)]
pub struct FxRateRow {
    /// Currency of the catalog price.
    pub from_currency: String,
    /// Currency of the org.
    pub to_currency: String,
    /// Millionths of `to` per unit of `from`.
    pub rate_micros: i64,
    /// Last change, Unix ms.
    pub updated_at_ms: i64,
}

/// Every rate, ordered by `(from, to)`.
pub async fn list(db: &Db) -> Result<Vec<FxRateRow>, sqlx::Error> {
    sqlx::query(
        "SELECT from_currency, to_currency, rate_micros, updated_at_ms FROM fx_rates
         ORDER BY from_currency, to_currency",
    )
    .fetch_all(db)
    .await?
    .iter()
    .map(|r| {
        Ok(FxRateRow {
            from_currency: r.try_get("from_currency")?,
            to_currency: r.try_get("to_currency")?,
            rate_micros: r.try_get("rate_micros")?,
            updated_at_ms: r.try_get("updated_at_ms")?,
        })
    })
    .collect()
}

/// Sets the rate of `from` → `to`, adding or replacing it.
pub async fn upsert(
    conn: &mut AnyConnection,
    from: &str,
    to: &str,
    rate_micros: i64,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO fx_rates (from_currency, to_currency, rate_micros, updated_at_ms)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (from_currency, to_currency)
         DO UPDATE SET rate_micros = excluded.rate_micros, updated_at_ms = excluded.updated_at_ms",
    )
    .bind(from)
    .bind(to)
    .bind(rate_micros)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes the rate of `from` → `to`; whether there was one.
pub async fn delete(conn: &mut AnyConnection, from: &str, to: &str) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("DELETE FROM fx_rates WHERE from_currency = $1 AND to_currency = $2")
        .bind(from)
        .bind(to)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// A priced catalog model that some org's currency has no rate for.
#[derive(Debug)]
pub struct CurrencyGap {
    /// The model.
    pub model: String,
    /// Its price currency.
    pub from_currency: String,
    /// The org's slug.
    pub org_slug: String,
    /// The org's currency.
    pub to_currency: String,
}

/// The first (by model, then org slug) priced model lacking a rate into some
/// org's currency, if any.
pub async fn first_gap(conn: &mut AnyConnection) -> Result<Option<CurrencyGap>, sqlx::Error> {
    let Some(r) = sqlx::query(
        "SELECT m.name, m.currency AS from_c, o.slug, o.currency AS to_c
         FROM catalog_models m JOIN organizations o ON o.currency <> m.currency
         WHERE (m.input_price_micros_per_1m > 0 OR m.output_price_micros_per_1m > 0)
           AND NOT EXISTS (SELECT 1 FROM fx_rates f
                           WHERE f.from_currency = m.currency AND f.to_currency = o.currency)
         ORDER BY m.name, o.slug LIMIT 1",
    )
    .fetch_optional(conn)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(CurrencyGap {
        model: r.try_get("name")?,
        from_currency: r.try_get("from_c")?,
        org_slug: r.try_get("slug")?,
        to_currency: r.try_get("to_c")?,
    }))
}
