//! The model catalog (names, access-group labels, prices), route groups, access
//! groups, and the resolution of grants into model sets.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::{AnyPool, Row};

use crate::AppState;
use crate::api::config::{OrgConfig, valid_label};
use crate::api::extract::{ApiJson, nullable, present};
use crate::api::paging::{PageParams, PageQuery, Paged};
use crate::auth::Actor;
use crate::billing::fx::{self, FxRates};
use crate::billing::money::{Micros, check_currency};
use crate::errors::{ApiError, ApiResult, unique_or_conflict};
use crate::store::db::{now_ms, rfc3339};
use policy::{ModelPattern, ModelPrice, ModelSet};

/// Prefix of a team or key grant entry that names an access group (`group:support`).
pub const ACCESS_GROUP_PREFIX: &str = "group:";

/// Catalog state needed to resolve grants.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Model name → access-group labels.
    pub models: BTreeMap<String, Vec<String>>,
    /// Route group name → member models (names or patterns).
    pub route_groups: BTreeMap<String, Vec<ModelPattern>>,
    /// Prices of the priced catalog models, compiled into every org record.
    pub prices: Vec<CatalogPrice>,
    /// Exchange rates that bring prices into an org's currency.
    pub fx: FxRates,
}

/// A catalog price and the currency it is set in.
#[derive(Debug, Clone)]
pub struct CatalogPrice {
    /// Model and price per 1M tokens, in `currency`.
    pub price: ModelPrice,
    /// ISO 4217 code.
    pub currency: String,
}

impl Catalog {
    /// Loads the catalog.
    pub async fn load(pool: &AnyPool) -> Result<Catalog, ApiError> {
        let mut cat = Catalog::default();
        for row in sqlx::query(
            "SELECT name, access_groups, input_price_micros_per_1m, output_price_micros_per_1m, currency FROM catalog_models",
        )
        .fetch_all(pool)
        .await?
        {
            let name: String = row.try_get("name")?;
            let groups: Vec<String> = serde_json::from_str(row.try_get("access_groups")?)?;
            let input: i64 = row.try_get("input_price_micros_per_1m")?;
            let output: i64 = row.try_get("output_price_micros_per_1m")?;
            if input > 0 || output > 0 {
                let model = name.parse().map_err(|e| {
                    tracing::error!(model = %name, error = %e, "unparseable catalog model name");
                    ApiError::internal()
                })?;
                cat.prices.push(CatalogPrice {
                    price: ModelPrice {
                        model,
                        input_per_mtok_micros: u64::try_from(input).unwrap_or(0),
                        output_per_mtok_micros: u64::try_from(output).unwrap_or(0),
                    },
                    currency: row.try_get("currency")?,
                });
            }
            cat.models.insert(name, groups);
        }
        for row in sqlx::query("SELECT name, models FROM route_groups")
            .fetch_all(pool)
            .await?
        {
            let models: Vec<ModelPattern> = serde_json::from_str(row.try_get("models")?)?;
            cat.route_groups.insert(row.try_get("name")?, models);
        }
        cat.fx = FxRates::load(pool).await?;
        Ok(cat)
    }

    /// Catalog models labelled with `group`.
    pub fn group_members(&self, group: &str) -> Vec<ModelPattern> {
        self.models
            .iter()
            .filter(|(_, groups)| groups.iter().any(|g| g == group))
            .filter_map(|(name, _)| name.parse().ok())
            .collect()
    }

    /// The model set one grant entry stands for: an access group's models
    /// (`group:<label>`), a route group's members, or the entry itself as a name or
    /// pattern. A label no catalog model carries is an error: it grants nothing.
    pub fn resolve_entry(&self, entry: &str) -> Result<ModelSet, String> {
        if let Some(group) = entry.strip_prefix(ACCESS_GROUP_PREFIX) {
            let members = self.group_members(group);
            if members.is_empty() {
                return Err(format!(
                    "{entry:?}: no catalog model is labelled {group:?} (unknown access group)"
                ));
            }
            return Ok(ModelSet::from_patterns(members));
        }
        if let Some(models) = self.route_groups.get(entry) {
            return Ok(ModelSet::from_patterns(models.iter().cloned()));
        }
        let p: ModelPattern = entry
            .parse()
            .map_err(|e: policy::models::PatternError| e.to_string())?;
        Ok(ModelSet::from_patterns([p]))
    }

    /// The org's universe: everything when `access` is unset, else the union of its
    /// direct models, route groups and access groups.
    pub fn org_models(&self, cfg: &OrgConfig) -> ModelSet {
        let Some(access) = &cfg.access else {
            return ModelSet::all();
        };
        let mut items: Vec<ModelPattern> = access.models.clone();
        for g in &access.route_groups {
            items.extend(self.route_groups.get(g).into_iter().flatten().cloned());
        }
        for g in &access.access_groups {
            items.extend(self.group_members(g));
        }
        ModelSet::from_patterns(items)
    }

    /// The route groups the org grants, as the edge calls them: each member that
    /// is a pattern stands for the catalog models (and provider model names) it
    /// matches, and only members some provider of the org serves are kept, so a
    /// group always names models upstream.
    pub fn granted_route_groups(&self, cfg: &OrgConfig) -> Vec<policy::RouteGroup> {
        let Some(access) = &cfg.access else {
            return Vec::new();
        };
        let served = |m: &str| {
            cfg.providers
                .iter()
                .any(|p| p.models.iter().any(|pat| pat.matches(m)))
        };
        let named = self.models.keys().map(String::as_str).chain(
            cfg.providers
                .iter()
                .flat_map(|p| &p.models)
                .filter(|m| m.is_exact())
                .map(ModelPattern::as_str),
        );
        let named: Vec<&str> = named.collect();
        access
            .route_groups
            .iter()
            .filter_map(|g| {
                let mut models: Vec<String> = Vec::new();
                for member in self.route_groups.get(g)? {
                    let expanded: Vec<&str> = if member.is_exact() {
                        vec![member.as_str()]
                    } else {
                        named
                            .iter()
                            .copied()
                            .filter(|n| member.matches(n))
                            .collect()
                    };
                    for m in expanded {
                        if served(m) && !models.iter().any(|x| x == m) {
                            models.push(m.to_string());
                        }
                    }
                }
                Some(policy::RouteGroup {
                    name: g.clone(),
                    models,
                })
            })
            .collect()
    }

    /// The set a stored grant list allows (`None` = inherit everything). Entries
    /// that no longer resolve are dropped: the edge must fail closed.
    pub fn grant_set(&self, grants: Option<&[String]>) -> ModelSet {
        let Some(grants) = grants else {
            return ModelSet::all();
        };
        let mut out = ModelSet::default();
        for g in grants {
            if let Ok(s) = self.resolve_entry(g) {
                out.exact.extend(s.exact);
                out.patterns.extend(s.patterns);
            }
        }
        // Re-normalize through from_patterns by intersecting with everything.
        out.intersect(&ModelSet::all())
    }

    /// Checks that every entry of `grants` lies inside `parent` (grants only narrow);
    /// the error names the first offending entry as `field[i]`.
    pub fn check_narrows(
        &self,
        field: &str,
        grants: &[String],
        parent: &ModelSet,
        parent_name: &str,
    ) -> Result<(), ApiError> {
        for (i, g) in grants.iter().enumerate() {
            let at = format!("{field}[{i}]");
            let set = self
                .resolve_entry(g)
                .map_err(|e| ApiError::invalid(&at, e))?;
            if parent.intersect(&set) != set {
                return Err(ApiError::invalid(
                    &at,
                    format!("{g:?} is not granted to the {parent_name}"),
                ));
            }
        }
        Ok(())
    }
}

/// A catalog model as returned by the API.
#[derive(Debug, Serialize)]
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
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateModel {
    name: String,
    #[serde(default)]
    access_groups: Vec<String>,
    #[serde(default)]
    input_price_per_1m: Micros,
    #[serde(default)]
    output_price_per_1m: Micros,
    /// Currency of the prices (default `USD`).
    #[serde(default)]
    currency: Option<String>,
}

/// Body of `PATCH /api/models/{name}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateModel {
    #[serde(default, deserialize_with = "present")]
    access_groups: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    input_price_per_1m: Option<Micros>,
    #[serde(default, deserialize_with = "present")]
    output_price_per_1m: Option<Micros>,
    #[serde(default, deserialize_with = "present")]
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

fn model_view(row: &sqlx::any::AnyRow) -> Result<ModelView, ApiError> {
    Ok(ModelView {
        name: row.try_get("name")?,
        access_groups: serde_json::from_str(row.try_get("access_groups")?)?,
        input_price_per_1m: Micros(row.try_get::<i64, _>("input_price_micros_per_1m")? as u64),
        output_price_per_1m: Micros(row.try_get::<i64, _>("output_price_micros_per_1m")? as u64),
        currency: row.try_get("currency")?,
        created_at: rfc3339(row.try_get("created_at_ms")?),
        updated_at: rfc3339(row.try_get("updated_at_ms")?),
    })
}

async fn fetch_model(pool: &AnyPool, name: &str) -> ApiResult<ModelView> {
    let row = sqlx::query("SELECT * FROM catalog_models WHERE name = ?")
        .bind(name)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| ApiError::not_found("model"))?;
    model_view(&row)
}

/// `GET /api/models`: any authenticated caller.
pub async fn list_models(
    State(st): State<AppState>,
    _actor: Actor,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Paged<ModelView>> {
    let page = PageParams::from_query(page)?;
    let rows = sqlx::query(
        "SELECT name AS page_key, * FROM catalog_models WHERE name > ? ORDER BY name LIMIT ?",
    )
    .bind(page.after_name())
    .bind(page.fetch())
    .fetch_all(&st.db)
    .await?;
    Paged::from_rows(rows, &page, model_view)
}

/// `GET /api/models/{name}`.
pub async fn get_model(
    State(st): State<AppState>,
    _actor: Actor,
    Path(name): Path<String>,
) -> ApiResult<Json<ModelView>> {
    fetch_model(&st.db, &name).await.map(Json)
}

/// `POST /api/models`: platform admins.
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
    let clash: Option<String> = sqlx::query_scalar("SELECT name FROM route_groups WHERE name = ?")
        .bind(&body.name)
        .fetch_optional(tx.conn())
        .await?;
    if clash.is_some() {
        return Err(ApiError::conflict(
            "duplicate",
            "a route group has this name; callable targets must be unique",
        )
        .with_field("name"));
    }
    let now = now_ms();
    let res = sqlx::query(
        "INSERT INTO catalog_models (name, access_groups, input_price_micros_per_1m, output_price_micros_per_1m, currency, created_at_ms, updated_at_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&body.name)
    .bind(serde_json::to_string(&body.access_groups)?)
    .bind(body.input_price_per_1m.0 as i64)
    .bind(body.output_price_per_1m.0 as i64)
    .bind(currency)
    .bind(now)
    .bind(now)
    .execute(tx.conn())
    .await;
    unique_or_conflict(res, "name", || {
        format!("model {:?} already exists", body.name)
    })?;
    fx::check_convertible(tx.conn(), "currency").await?;
    // Access groups are resolved into every key's record: recompile everything.
    tx.enqueue("all", "*").await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(fetch_model(&st.db, &body.name).await?),
    ))
}

/// `PATCH /api/models/{name}`: platform admins.
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
    let found = sqlx::query(
        "UPDATE catalog_models SET
           access_groups = COALESCE(?, access_groups),
           input_price_micros_per_1m = COALESCE(?, input_price_micros_per_1m),
           output_price_micros_per_1m = COALESCE(?, output_price_micros_per_1m),
           currency = COALESCE(?, currency),
           updated_at_ms = ?
         WHERE name = ?",
    )
    .bind(
        body.access_groups
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?,
    )
    .bind(body.input_price_per_1m.map(|m| m.0 as i64))
    .bind(body.output_price_per_1m.map(|m| m.0 as i64))
    .bind(&body.currency)
    .bind(now_ms())
    .bind(&name)
    .execute(tx.conn())
    .await?
    .rows_affected();
    if found == 0 {
        return Err(ApiError::not_found("model"));
    }
    fx::check_convertible(tx.conn(), "currency").await?;
    tx.enqueue("all", "*").await?;
    tx.commit().await?;
    fetch_model(&st.db, &name).await.map(Json)
}

/// `DELETE /api/models/{name}`: platform admins.
pub async fn delete_model(
    State(st): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    actor.require_platform_admin()?;
    let mut tx = st.writer.begin(&st.db).await?;
    let n = sqlx::query("DELETE FROM catalog_models WHERE name = ?")
        .bind(&name)
        .execute(tx.conn())
        .await?
        .rows_affected();
    if n == 0 {
        return Err(ApiError::not_found("model"));
    }
    tx.enqueue("all", "*").await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An access group: a label and the catalog models carrying it.
#[derive(Debug, Serialize)]
pub struct AccessGroupView {
    /// Label.
    pub name: String,
    /// Models labelled with it.
    pub models: Vec<String>,
}

/// `GET /api/access-groups`: labels derived from the catalog.
pub async fn list_access_groups(
    State(st): State<AppState>,
    _actor: Actor,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Paged<AccessGroupView>> {
    let page = PageParams::from_query(page)?;
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
#[derive(Debug, Serialize)]
pub struct RouteGroupView {
    /// Callable name of the group.
    pub name: String,
    /// Member models (names or patterns).
    pub models: Vec<ModelPattern>,
    /// Creation time.
    pub created_at: String,
}

/// Body of `POST /api/route-groups`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRouteGroup {
    name: String,
    models: Vec<ModelPattern>,
}

/// Body of `PATCH /api/route-groups/{name}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRouteGroup {
    #[serde(default, deserialize_with = "nullable")]
    models: Option<Option<Vec<ModelPattern>>>,
}

/// `GET /api/route-groups`.
pub async fn list_route_groups(
    State(st): State<AppState>,
    _actor: Actor,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Paged<RouteGroupView>> {
    let page = PageParams::from_query(page)?;
    let rows = sqlx::query(
        "SELECT name AS page_key, * FROM route_groups WHERE name > ? ORDER BY name LIMIT ?",
    )
    .bind(page.after_name())
    .bind(page.fetch())
    .fetch_all(&st.db)
    .await?;
    Paged::from_rows(rows, &page, |row| {
        Ok(RouteGroupView {
            name: row.try_get("name")?,
            models: serde_json::from_str(row.try_get("models")?)?,
            created_at: rfc3339(row.try_get("created_at_ms")?),
        })
    })
}

/// `POST /api/route-groups`: platform admins.
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
    let clash: Option<String> =
        sqlx::query_scalar("SELECT name FROM catalog_models WHERE name = ?")
            .bind(&body.name)
            .fetch_optional(tx.conn())
            .await?;
    if clash.is_some() {
        return Err(ApiError::conflict(
            "duplicate",
            "a model has this name; callable targets must be unique",
        )
        .with_field("name"));
    }
    let now = now_ms();
    let res =
        sqlx::query("INSERT INTO route_groups (name, models, created_at_ms) VALUES (?, ?, ?)")
            .bind(&body.name)
            .bind(serde_json::to_string(&body.models)?)
            .bind(now)
            .execute(tx.conn())
            .await;
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
    let created: Option<i64> =
        sqlx::query_scalar("SELECT created_at_ms FROM route_groups WHERE name = ?")
            .bind(&name)
            .fetch_optional(tx.conn())
            .await?;
    let created = created.ok_or_else(|| ApiError::not_found("route group"))?;
    sqlx::query("UPDATE route_groups SET models = ? WHERE name = ?")
        .bind(serde_json::to_string(&models)?)
        .bind(&name)
        .execute(tx.conn())
        .await?;
    tx.enqueue("all", "*").await?;
    tx.commit().await?;
    Ok(Json(RouteGroupView {
        name,
        models,
        created_at: rfc3339(created),
    }))
}

/// `DELETE /api/route-groups/{name}`: platform admins; refused while an org grants it.
pub async fn delete_route_group(
    State(st): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    actor.require_platform_admin()?;
    let mut tx = st.writer.begin(&st.db).await?;
    let configs: Vec<String> = sqlx::query_scalar("SELECT config FROM organizations")
        .fetch_all(tx.conn())
        .await?;
    for text in configs {
        let cfg = OrgConfig::from_stored(&text)?;
        if cfg
            .access
            .as_ref()
            .is_some_and(|a| a.route_groups.contains(&name))
        {
            return Err(ApiError::conflict(
                "in_use",
                "an organization's asset access grants this route group",
            ));
        }
    }
    let n = sqlx::query("DELETE FROM route_groups WHERE name = ?")
        .bind(&name)
        .execute(tx.conn())
        .await?
        .rows_affected();
    if n == 0 {
        return Err(ApiError::not_found("route group"));
    }
    tx.enqueue("all", "*").await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::config::AccessConfig;

    #[test]
    fn org_universe_and_narrowing() {
        let mut cat = Catalog::default();
        cat.models.insert("gpt-4o".into(), vec!["support".into()]);
        cat.models
            .insert("claude-3-opus".into(), vec!["finance".into()]);
        cat.route_groups
            .insert("fast".into(), vec!["gpt-4o-mini".parse().unwrap()]);
        let cfg = OrgConfig {
            access: Some(AccessConfig {
                models: vec!["o1*".parse().unwrap()],
                route_groups: vec!["fast".into()],
                access_groups: vec!["support".into(), "beta".into()],
            }),
            ..OrgConfig::default()
        };
        let org = cat.org_models(&cfg);
        assert!(org.permits("gpt-4o") && org.permits("gpt-4o-mini") && org.permits("o1-preview"));
        assert!(!org.permits("claude-3-opus"));
        assert!(
            cat.check_narrows(
                "allowed_models",
                &["gpt-4o".into(), "o1-mini".into(), "fast".into()],
                &org,
                "org"
            )
            .is_ok()
        );
        let e = cat
            .check_narrows(
                "allowed_models",
                &["gpt-4o".into(), "claude-3-opus".into()],
                &org,
                "org",
            )
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("allowed_models[1]"));
        let e = cat
            .check_narrows("allowed_models", &["gpt-*".into()], &org, "org")
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("allowed_models[0]"));
        assert_eq!(cat.org_models(&OrgConfig::default()), ModelSet::all());
        // Access groups below the org: `group:<label>`, within the parent only.
        let support = cat.resolve_entry("group:support").unwrap();
        assert!(support.permits("gpt-4o") && !support.permits("claude-3-opus"));
        assert!(
            cat.check_narrows("allowed_models", &["group:support".into()], &org, "org")
                .is_ok()
        );
        for g in ["group:finance", "group:nope", "group:"] {
            let e = cat
                .check_narrows("allowed_models", &[g.into()], &org, "org")
                .unwrap_err();
            assert_eq!(e.field.as_deref(), Some("allowed_models[0]"), "{g}");
        }
        // A label nobody carries grants nothing, never everything.
        assert!(
            cat.grant_set(Some(&["group:nope".into()]))
                .intersect(&ModelSet::all())
                .is_empty()
        );
    }
}
