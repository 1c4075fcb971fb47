//! The model catalog and route groups: the `catalog_models` and `route_groups` tables.
//! JSON columns come back as text; the API layer decodes them.

use sqlx::{AnyConnection, FromRow};

use crate::store::db::Db;

/// A `catalog_models` row.
#[derive(Debug, Clone, FromRow)]
pub struct ModelRow {
    /// Public model name.
    pub name: String,
    /// JSON array of access-group labels.
    pub access_groups: String,
    /// Price per one million input tokens, in micros of `currency`.
    pub input_price_micros_per_1m: i64,
    /// Price per one million output tokens, in micros of `currency`.
    pub output_price_micros_per_1m: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
    /// Last change (Unix ms).
    pub updated_at_ms: i64,
}

const MODEL_COLUMNS: &str = "name, access_groups, input_price_micros_per_1m, \
    output_price_micros_per_1m, currency, created_at_ms, updated_at_ms";

/// A `route_groups` row.
#[derive(Debug, Clone, FromRow)]
pub struct RouteGroupRow {
    /// Callable name.
    pub name: String,
    /// JSON array of member names or patterns.
    pub models: String,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
}

/// A catalog change; `None` fields stay as they are.
#[derive(Debug, Default)]
pub struct ModelChange<'a> {
    /// JSON array of labels.
    pub access_groups: Option<String>,
    /// Input price (micros per 1M tokens).
    pub input_price_micros_per_1m: Option<i64>,
    /// Output price (micros per 1M tokens).
    pub output_price_micros_per_1m: Option<i64>,
    /// Currency of the prices.
    pub currency: Option<&'a str>,
}

/// Every catalog model.
pub async fn models(db: &Db) -> Result<Vec<ModelRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {MODEL_COLUMNS} FROM catalog_models"))
        .fetch_all(db)
        .await
}

/// Up to `limit` catalog models named after `after`, by name.
pub async fn models_page(db: &Db, after: &str, limit: i64) -> Result<Vec<ModelRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {MODEL_COLUMNS} FROM catalog_models WHERE name > $1 ORDER BY name LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The catalog model `name`.
pub async fn model(db: &Db, name: &str) -> Result<Option<ModelRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {MODEL_COLUMNS} FROM catalog_models WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(db)
    .await
}

/// Whether a catalog model is called `name`.
pub async fn model_exists(conn: &mut AnyConnection, name: &str) -> Result<bool, sqlx::Error> {
    let found: Option<String> =
        sqlx::query_scalar("SELECT name FROM catalog_models WHERE name = $1")
            .bind(name)
            .fetch_optional(conn)
            .await?;
    Ok(found.is_some())
}

/// Adds a catalog model (a unique violation when the name is taken).
pub async fn insert_model(conn: &mut AnyConnection, m: &ModelRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO catalog_models (name, access_groups, input_price_micros_per_1m,
            output_price_micros_per_1m, currency, created_at_ms, updated_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&m.name)
    .bind(&m.access_groups)
    .bind(m.input_price_micros_per_1m)
    .bind(m.output_price_micros_per_1m)
    .bind(&m.currency)
    .bind(m.created_at_ms)
    .bind(m.updated_at_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Applies `change` to model `name` at `now`; whether it exists.
pub async fn update_model(
    conn: &mut AnyConnection,
    name: &str,
    change: &ModelChange<'_>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let found = sqlx::query(
        "UPDATE catalog_models SET
           access_groups = COALESCE($1, access_groups),
           input_price_micros_per_1m = COALESCE($2, input_price_micros_per_1m),
           output_price_micros_per_1m = COALESCE($3, output_price_micros_per_1m),
           currency = COALESCE($4, currency),
           updated_at_ms = $5
         WHERE name = $6",
    )
    .bind(change.access_groups.as_deref())
    .bind(change.input_price_micros_per_1m)
    .bind(change.output_price_micros_per_1m)
    .bind(change.currency)
    .bind(now)
    .bind(name)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(found > 0)
}

/// Deletes model `name`; whether it existed.
pub async fn delete_model(conn: &mut AnyConnection, name: &str) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("DELETE FROM catalog_models WHERE name = $1")
        .bind(name)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// Every route group.
pub async fn route_groups(db: &Db) -> Result<Vec<RouteGroupRow>, sqlx::Error> {
    sqlx::query_as("SELECT name, models, created_at_ms FROM route_groups")
        .fetch_all(db)
        .await
}

/// Up to `limit` route groups named after `after`, by name.
pub async fn route_groups_page(
    db: &Db,
    after: &str,
    limit: i64,
) -> Result<Vec<RouteGroupRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT name, models, created_at_ms FROM route_groups WHERE name > $1
         ORDER BY name LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Creation time of route group `name`, if it exists.
pub async fn route_group_created(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT created_at_ms FROM route_groups WHERE name = $1")
        .bind(name)
        .fetch_optional(conn)
        .await
}

/// Adds a route group (a unique violation when the name is taken).
pub async fn insert_route_group(
    conn: &mut AnyConnection,
    g: &RouteGroupRow,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO route_groups (name, models, created_at_ms) VALUES ($1, $2, $3)")
        .bind(&g.name)
        .bind(&g.models)
        .bind(g.created_at_ms)
        .execute(conn)
        .await?;
    Ok(())
}

/// Replaces the members (JSON array) of route group `name`.
pub async fn set_route_group_models(
    conn: &mut AnyConnection,
    name: &str,
    models: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE route_groups SET models = $1 WHERE name = $2")
        .bind(models)
        .bind(name)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes route group `name`; whether it existed.
pub async fn delete_route_group(conn: &mut AnyConnection, name: &str) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("DELETE FROM route_groups WHERE name = $1")
        .bind(name)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(n > 0)
}
