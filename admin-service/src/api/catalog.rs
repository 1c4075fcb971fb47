//! The model catalog (names, access-group labels, prices), route groups, access
//! groups, and the resolution of grants into model sets.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::AnyPool;

use crate::AppState;
use crate::api::extract::{ApiJson, nullable, present};
use crate::api::paging::{NamePageQuery, PageParams, Paged};
use crate::auth::Actor;
use crate::billing::fx::{self};
use crate::billing::money::{Micros, check_currency};
use crate::errors::{ApiError, ApiResult, unique_or_conflict};
use crate::model::catalog::*;
use crate::store::catalog::{self as stored, ModelChange, ModelRow, RouteGroupRow};
use crate::store::config as stored_config;
use crate::store::db::{now_ms, rfc3339};
use policy::ModelPattern;
/// A catalog model as returned by the API.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModelView {
    /// Public model name.
    pub name: String,
    /// Access-group labels.
    pub access_groups: Vec<String>,
    /// Price per one million input tokens.
    pub input_price_per_1m: Micros,
    /// Price per one million output tokens.
    pub output_price_per_1m: Micros,
    /// Currency of the prices.
    pub currency: String,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// Body of `POST /api/models`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateModel {
    #[schema(schema_with = crate::model::schemas::exact_model_name)]
    name: String,
    #[serde(default)]
    #[schema(schema_with = crate::model::schemas::labels)]
    access_groups: Vec<String>,
    #[serde(default)]
    input_price_per_1m: Micros,
    #[serde(default)]
    output_price_per_1m: Micros,
    /// Currency of the prices (default `USD`).
    #[serde(default)]
    #[schema(schema_with = crate::model::schemas::currency_or_null)]
    currency: Option<String>,
}

/// Body of `PATCH /api/models/{name}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateModel {
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    #[schema(schema_with = crate::model::schemas::labels)]
    access_groups: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    input_price_per_1m: Option<Micros>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    output_price_per_1m: Option<Micros>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    #[schema(schema_with = crate::model::schemas::currency)]
    currency: Option<String>,
}

fn check_groups(groups: &[String]) -> Result<(), ApiError> {
    for (i, g) in groups.iter().enumerate() {
        if !valid_label(g) {
            return Err(ApiError::invalid(
                format!("access_groups[{i}]"),
                "must be 1-64 characters of a-z, 0-9, '-', '_' or '.'",
            ));
        }
    }
    Ok(())
}

fn model_view(row: &ModelRow) -> Result<ModelView, ApiError> {
    Ok(ModelView {
        name: row.name.clone(),
        access_groups: serde_json::from_str(&row.access_groups)?,
        input_price_per_1m: Micros(row.input_price_micros_per_1m as u64),
        output_price_per_1m: Micros(row.output_price_micros_per_1m as u64),
        currency: row.currency.clone(),
        created_at: rfc3339(row.created_at_ms),
        updated_at: rfc3339(row.updated_at_ms),
    })
}

async fn fetch_model(pool: &AnyPool, name: &str) -> ApiResult<ModelView> {
    let row = stored::model(pool, name)
        .await?
        .ok_or_else(|| ApiError::not_found("model"))?;
    model_view(&row)
}

/// `GET /api/models`: any authenticated caller.
#[utoipa::path(
    get,
    path = "/api/models",
    tag = "catalog",
    summary = "Model catalog with access groups and prices per 1M tokens.",
    params(NamePageQuery),
    responses((status = 200, description = "One page; more follow while the `x-next-cursor` header is present", body = Vec<ModelView>, headers(("x-next-cursor" = String, description = "Cursor of the next page (absent on the last page)")))),
    security(("bearer" = [])),
)]
pub async fn list_models(
    State(st): State<AppState>,
    _actor: Actor,
    page: Result<Query<NamePageQuery>, QueryRejection>,
) -> ApiResult<Paged<ModelView>> {
    let page = PageParams::from_name_query(page)?;
    let rows = stored::models_page(&st.db, page.after_name(), page.fetch()).await?;
    let items = rows.iter().map(model_view).collect::<ApiResult<Vec<_>>>()?;
    Ok(Paged::from_items(items, &page, |m| m.name.clone()))
}

/// `GET /api/models/{name}`.
#[utoipa::path(
    get,
    path = "/api/models/{name}",
    tag = "catalog",
    summary = "One catalog model.",
    params(("name" = String, Path, description = "name")),
    responses((status = 200, description = "OK", body = ModelView)),
    security(("bearer" = [])),
)]
pub async fn get_model(
    State(st): State<AppState>,
    _actor: Actor,
    Path(name): Path<String>,
) -> ApiResult<Json<ModelView>> {
    fetch_model(&st.db, &name).await.map(Json)
}

/// `POST /api/models`: platform admins.
#[utoipa::path(
    post,
    path = "/api/models",
    tag = "catalog",
    summary = "Add a catalog model (platform admin).",
    request_body = CreateModel,
    responses((status = 201, description = "Created", body = ModelView)),
    security(("bearer" = [])),
)]
pub async fn create_model(
    State(st): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<CreateModel>,
) -> ApiResult<(StatusCode, Json<ModelView>)> {
    actor.require_platform_admin()?;
    let name: ModelPattern = body
        .name
        .parse()
        .map_err(|e: policy::models::PatternError| ApiError::invalid("name", e.to_string()))?;
    if !name.is_exact() {
        return Err(ApiError::invalid(
            "name",
            "a catalog model is an exact name, not a pattern",
        ));
    }
    if body.name.starts_with(ACCESS_GROUP_PREFIX) {
        return Err(ApiError::invalid(
            "name",
            format!("{ACCESS_GROUP_PREFIX:?} starts grants of access groups, not model names"),
        ));
    }
    check_groups(&body.access_groups)?;
    let currency = body.currency.as_deref().unwrap_or("USD");
    check_currency("currency", currency)?;
    let mut tx = st.writer.begin(&st.db).await?;
    if stored::route_group_created(tx.conn(), &body.name)
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(
            "duplicate",
            "a route group has this name; callable targets must be unique",
        )
        .with_field("name"));
    }
    let now = now_ms();
    let row = ModelRow {
        name: body.name.clone(),
        access_groups: serde_json::to_string(&body.access_groups)?,
        input_price_micros_per_1m: body.input_price_per_1m.0 as i64,
        output_price_micros_per_1m: body.output_price_per_1m.0 as i64,
        currency: currency.to_string(),
        created_at_ms: now,
        updated_at_ms: now,
    };
    // A duplicate ends the transaction: nothing runs after the failed insert.
    let res = stored::insert_model(tx.conn(), &row).await;
    unique_or_conflict(res, "name", || {
        format!("model {:?} already exists", body.name)
    })?;
    fx::check_convertible(tx.conn(), "currency").await?;
    // Access groups    fx::check_convertible(tx.conn(), "currency").await?;
    // Access groups are resolved into every key's record: recompile everything.
    tx.enqueue("all", "*").await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(fetch_model(&st.db, &body.name).await?),
    ))
}

/// `PATCH /api/models/{name}`: platform admins.
#[utoipa::path(
    patch,
    path = "/api/models/{name}",
    tag = "catalog",
    summary = "Update labels or prices (platform admin).",
    params(("name" = String, Path, description = "name")),
    request_body = UpdateModel,
    responses((status = 200, description = "OK", body = ModelView)),
    security(("bearer" = [])),
)]
pub async fn update_model(
    State(st): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<UpdateModel>,
) -> ApiResult<Json<ModelView>> {
    actor.require_platform_admin()?;
    if let Some(g) = &body.access_groups {
        check_groups(g)?;
    }
    if let Some(c) = &body.currency {
        check_currency("currency", c)?;
    }
    let mut tx = st.writer.begin(&st.db).await?;
    let change = ModelChange {
        access_groups: body
            .access_groups
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?,
        input_price_micros_per_1m: body.input_price_per_1m.map(|m| m.0 as i64),
        output_price_micros_per_1m: body.output_price_per_1m.map(|m| m.0 as i64),
        currency: body.currency.as_deref(),
    };
    let found = stored::update_model(tx.conn(), &name, &change, now_ms()).await?;
    if !found {
        return Err(ApiError::not_found("model"));
    }
    fx::check_convertible(tx.conn(), "currency").await?;
    tx.enqueue("all", "*").await?;
    tx.commit().await?;
    fetch_model(&st.db, &name).await.map(Json)
}

/// `DELETE /api/models/{name}`: platform admins.
#[utoipa::path(
    delete,
    path = "/api/models/{name}",
    tag = "catalog",
    summary = "Remove a catalog model (platform admin).",
    params(("name" = String, Path, description = "name")),
    responses((status = 204, description = "Done; no body")),
    security(("bearer" = [])),
)]
pub async fn delete_model(
    State(st): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    actor.require_platform_admin()?;
    let mut tx = st.writer.begin(&st.db).await?;
    if !stored::delete_model(tx.conn(), &name).await? {
        return Err(ApiError::not_found("model"));
    }
    tx.enqueue("all", "*").await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An access group: a label and the catalog models carrying it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccessGroupView {
    /// Label.
    pub name: String,
    /// Models labelled with it.
    pub models: Vec<String>,
}

/// `GET /api/access-groups`: labels derived from the catalog.
#[utoipa::path(
    get,
    path = "/api/access-groups",
    tag = "catalog",
    summary = "Access groups and their member models.",
    params(NamePageQuery),
    responses((status = 200, description = "One page; more follow while the `x-next-cursor` header is present", body = Vec<AccessGroupView>, headers(("x-next-cursor" = String, description = "Cursor of the next page (absent on the last page)")))),
    security(("bearer" = [])),
)]
pub async fn list_access_groups(
    State(st): State<AppState>,
    _actor: Actor,
    page: Result<Query<NamePageQuery>, QueryRejection>,
) -> ApiResult<Paged<AccessGroupView>> {
    let page = PageParams::from_name_query(page)?;
    let cat = Catalog::load(&st.db).await?;
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (model, labels) in &cat.models {
        for l in labels.iter().filter(|l| l.as_str() > page.after_name()) {
            groups.entry(l.clone()).or_default().push(model.clone());
        }
    }
    let items = groups
        .into_iter()
        .take(page.limit as usize + 1)
        .map(|(name, models)| AccessGroupView { name, models })
        .collect();
    Ok(Paged::from_items(items, &page, |g| g.name.clone()))
}

/// A route group as returned by the API.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RouteGroupView {
    /// Callable name of the group.
    pub name: String,
    /// Member models (names or patterns).
    #[schema(schema_with = crate::model::schemas::model_patterns)]
    pub models: Vec<ModelPattern>,
    /// Creation time.
    pub created_at: String,
}

/// Body of `POST /api/route-groups`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRouteGroup {
    #[schema(schema_with = crate::model::schemas::exact_model_name)]
    name: String,
    #[schema(schema_with = crate::model::schemas::model_patterns)]
    models: Vec<ModelPattern>,
}

/// Body of `PATCH /api/route-groups/{name}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRouteGroup {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = crate::model::schemas::model_patterns, nullable)]
    #[schema(required = true)]
    models: Option<Option<Vec<ModelPattern>>>,
}

/// `GET /api/route-groups`.
#[utoipa::path(
    get,
    path = "/api/route-groups",
    tag = "catalog",
    summary = "Route groups.",
    params(NamePageQuery),
    responses((status = 200, description = "One page; more follow while the `x-next-cursor` header is present", body = Vec<RouteGroupView>, headers(("x-next-cursor" = String, description = "Cursor of the next page (absent on the last page)")))),
    security(("bearer" = [])),
)]
pub async fn list_route_groups(
    State(st): State<AppState>,
    _actor: Actor,
    page: Result<Query<NamePageQuery>, QueryRejection>,
) -> ApiResult<Paged<RouteGroupView>> {
    let page = PageParams::from_name_query(page)?;
    let rows = stored::route_groups_page(&st.db, page.after_name(), page.fetch()).await?;
    let items = rows
        .into_iter()
        .map(|r| {
            Ok(RouteGroupView {
                models: serde_json::from_str(&r.models)?,
                created_at: rfc3339(r.created_at_ms),
                name: r.name,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Paged::from_items(items, &page, |g| g.name.clone()))
}

/// `POST /api/route-groups`: platform admins.
#[utoipa::path(
    post,
    path = "/api/route-groups",
    tag = "catalog",
    summary = "Create a route group (platform admin).",
    request_body = CreateRouteGroup,
    responses((status = 201, description = "Created", body = RouteGroupView)),
    security(("bearer" = [])),
)]
pub async fn create_route_group(
    State(st): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<CreateRouteGroup>,
) -> ApiResult<(StatusCode, Json<RouteGroupView>)> {
    actor.require_platform_admin()?;
    if body
        .name
        .parse::<ModelPattern>()
        .map(|p| !p.is_exact())
        .unwrap_or(true)
    {
        return Err(ApiError::invalid(
            "name",
            "must be a non-empty name without whitespace or '*'",
        ));
    }
    if body.name.starts_with(ACCESS_GROUP_PREFIX) {
        return Err(ApiError::invalid(
            "name",
            format!("{ACCESS_GROUP_PREFIX:?} starts grants of access groups, not route groups"),
        ));
    }
    let mut tx = st.writer.begin(&st.db).await?;
    if stored::model_exists(tx.conn(), &body.name).await? {
        return Err(ApiError::conflict(
            "duplicate",
            "a model has this name; callable targets must be unique",
        )
        .with_field("name"));
    }
    let now = now_ms();
    let row = RouteGroupRow {
        name: body.name.clone(),
        models: serde_json::to_string(&body.models)?,
        created_at_ms: now,
    };
    let res = stored::insert_route_group(tx.conn(), &row).await;
    unique_or_conflict(res, "name", || {
        format!("route group {:?} already exists", body.name)
    })?;
    tx.enqueue("all", "*").await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(RouteGroupView {
            name: body.name,
            models: body.models,
            created_at: rfc3339(now),
        }),
    ))
}

/// `PATCH /api/route-groups/{name}`: platform admins; replaces the member list.
#[utoipa::path(
    patch,
    path = "/api/route-groups/{name}",
    tag = "catalog",
    summary = "Replace a route group's models (platform admin).",
    params(("name" = String, Path, description = "name")),
    request_body = UpdateRouteGroup,
    responses((status = 200, description = "OK", body = RouteGroupView)),
    security(("bearer" = [])),
)]
pub async fn update_route_group(
    State(st): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<UpdateRouteGroup>,
) -> ApiResult<Json<RouteGroupView>> {
    actor.require_platform_admin()?;
    let models = match body.models {
        Some(Some(m)) => m,
        Some(None) => return Err(ApiError::invalid("models", "must be a list")),
        // An empty body must not silently empty the group for every org granting it.
        None => {
            return Err(ApiError::unprocessable(
                "missing_field",
                "models",
                "models: is required".into(),
            ));
        }
    };
    let mut tx = st.writer.begin(&st.db).await?;
    let created = stored::route_group_created(tx.conn(), &name)
        .await?
        .ok_or_else(|| ApiError::not_found("route group"))?;
    stored::set_route_group_models(tx.conn(), &name, &serde_json::to_string(&models)?).await?;
    tx.enqueue("all", "*").await?;
    tx.commit().await?;
    Ok(Json(RouteGroupView {
        name,
        models,
        created_at: rfc3339(created),
    }))
}

/// The route groups a stored org config grants (`access.route_groups`); the rest of
/// the document is not read here.
#[derive(Deserialize, utoipa::ToSchema)]
struct GrantedGroups {
    #[serde(default)]
    access: Option<GrantedAccess>,
}

/// `access` of a stored org config, as far as route groups go.
#[derive(Deserialize, utoipa::ToSchema)]
struct GrantedAccess {
    #[serde(default)]
    route_groups: Vec<String>,
}

/// `DELETE /api/route-groups/{name}`: platform admins; refused while an org grants it.
#[utoipa::path(
    delete,
    path = "/api/route-groups/{name}",
    tag = "catalog",
    summary = "Delete an unused route group (platform admin).",
    params(("name" = String, Path, description = "name")),
    responses((status = 204, description = "Done; no body")),
    security(("bearer" = [])),
)]
pub async fn delete_route_group(
    State(st): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    actor.require_platform_admin()?;
    let mut tx = st.writer.begin(&st.db).await?;
    for (_, text) in stored_config::all(tx.conn()).await? {
        let grants: GrantedGroups = serde_json::from_str(&text)?;
        if grants
            .access
            .is_some_and(|a| a.route_groups.contains(&name))
        {
            return Err(ApiError::conflict(
                "in_use",
                "an organization's asset access grants this route group",
            ));
        }
    }
    if !stored::delete_route_group(tx.conn(), &name).await? {
        return Err(ApiError::not_found("route group"));
    }
    tx.enqueue("all", "*").await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
