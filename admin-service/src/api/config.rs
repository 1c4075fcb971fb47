//! Org config: providers (write-only credentials), routing, caching, rate limits,
//! budgets, asset access, the trusted client-IP header and audit storage.
//! `PATCH` merges (RFC 7386 merge patch), `PUT` replaces.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::AnyConnection;

use crate::AppState;
use crate::api::extract::{ApiJson, from_value};
use crate::api::platform_owned::widening;
use crate::auth::{Actor, Perm, authorize_org};
use crate::errors::{ApiError, ApiResult};
use crate::model::catalog::Catalog;
use crate::model::config::*;
use crate::store::config as stored_config;
use crate::store::db::{now_ms, rfc3339};
/// Checks that an org role's config edit does not widen the org's model universe:
/// the new set lies inside the stored one, and it names no route or access group the
/// stored access did not (their members are platform-defined and may grow later).
fn check_access_narrows(
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

/// RFC 7386 JSON merge patch: objects merge key by key, `null` deletes, anything
/// else (arrays included) replaces.
pub fn merge_patch(target: &mut Value, patch: Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let t = target.as_object_mut().expect("just made an object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(&k);
                } else {
                    merge_patch(t.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other,
    }
}

/// Keeps write-only credentials across edits: a provider sent without `api_key`
/// keeps the stored one of the same name (`"api_key": null` clears it), and the
/// read-only `api_key_set` flag from a GET is accepted and dropped, so a client can
/// round-trip what it read. A credential follows only to the same scheme, host and
/// port: sent to a new origin, the provider's key would reach whoever runs it, so
/// a changed origin without a new `api_key` is refused naming the field.
fn carry_credentials(incoming: &mut Value, stored: &OrgConfig) -> Result<(), ApiError> {
    let Some(providers) = incoming.get_mut("providers").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for (i, p) in providers
        .iter_mut()
        .enumerate()
        .filter_map(|(i, p)| Some((i, p.as_object_mut()?)))
    {
        p.remove("api_key_set");
        if let Some(sent) = p.get("api_key") {
            // A sealed blob (another org's, copied) would be stored as if sealed here.
            if sent.as_str().is_some_and(policy::sealed::is_sealed) {
                return Err(ApiError::invalid(
                    format!("config.providers[{i}].api_key"),
                    "must be the provider's credential itself, not a sealed value",
                ));
            }
            continue;
        }
        let name = p.get("name").and_then(Value::as_str);
        let Some(old) = stored
            .providers
            .iter()
            .find(|o| Some(o.name.as_str()) == name)
        else {
            continue;
        };
        let Some(key) = &old.api_key else { continue };
        let Some(new_url) = p.get("base_url").and_then(Value::as_str) else {
            // Invalid anyway: validation names the missing base_url.
            continue;
        };
        let new_origin = policy::upstream::origin(new_url);
        if new_origin.is_none() || new_origin != policy::upstream::origin(&old.base_url) {
            return Err(ApiError::invalid(
                format!("config.providers[{i}].api_key"),
                "the base_url now points at another scheme, host or port; send the \
                 provider's api_key again (the stored one is not carried to a new host)",
            ));
        }
        p.insert("api_key".into(), Value::String(key.0.clone()));
    }
    Ok(())
}

/// Body of `PATCH`/`PUT /api/organizations/{id}/config`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigBody {
    /// The config (a merge patch for PATCH, the whole document for PUT).
    #[schema(value_type = crate::model::config::OrgConfig)]
    pub config: Value,
}

/// Config as returned to clients.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ConfigView {
    /// Organization id.
    pub org_id: String,
    /// The config, credentials redacted.
    pub config: crate::model::config::OrgConfigView,
    /// Last change.
    pub updated_at: String,
    /// What the edge will refuse because of this config (e.g. unpriced models
    /// under a budget); empty when nothing.
    pub warnings: Vec<String>,
}

async fn load(conn: &mut AnyConnection, org_id: &str) -> ApiResult<(OrgConfig, i64)> {
    let (text, updated) = stored_config::get(conn, org_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    Ok((OrgConfig::from_stored(&text)?, updated))
}

/// `GET /api/organizations/{id}/config`.
#[utoipa::path(
    get,
    path = "/api/organizations/{id}/config",
    tag = "config",
    summary = "Org config; provider credentials are never returned, only api_key_set (member+).",
    params(("id" = String, Path, description = "id")),
    responses((status = 200, description = "OK", body = ConfigView)),
    security(("bearer" = [])),
)]
pub async fn get_config(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<ConfigView>> {
    authorize_org(&st.db, &actor, &id, Perm::ViewConfig).await?;
    let catalog = Catalog::load(&st.db).await?;
    let mut conn = st.db.acquire().await?;
    let (cfg, updated) = load(&mut conn, &id).await?;
    let budget_applies =
        cfg.budgets.is_some() || stored_config::member_budget_exists(&mut conn, &id).await?;
    Ok(Json(ConfigView {
        warnings: cfg.warnings(&catalog, budget_applies),
        org_id: id,
        config: cfg.redacted(),
        updated_at: rfc3339(updated),
    }))
}

async fn write_config(
    st: &AppState,
    actor: &Actor,
    id: &str,
    body: Value,
    merge: bool,
) -> ApiResult<Json<ConfigView>> {
    let access = authorize_org(&st.db, actor, id, Perm::Manage).await?;
    if !body.is_object() {
        return Err(ApiError::unprocessable(
            "invalid_type",
            "config",
            "config: must be an object".into(),
        ));
    }
    let catalog = Catalog::load(&st.db).await?;
    let mut tx = st.writer.begin(&st.db).await?;
    let (stored, _) = load(tx.conn(), id).await?;
    let mut incoming = body;
    carry_credentials(&mut incoming, &stored)?;
    let doc = if merge {
        let mut doc = serde_json::to_value(&stored)?;
        merge_patch(&mut doc, incoming);
        doc
    } else {
        incoming
    };
    let cfg: OrgConfig = from_value(doc, "config")?;
    cfg.validate("config", &catalog)?;
    if !access.platform_admin {
        check_access_narrows(&stored, &cfg, &catalog)?;
    }
    cfg.check_internal_upstreams(&stored, actor)?;
    let budget_applies =
        cfg.budgets.is_some() || stored_config::member_budget_exists(tx.conn(), id).await?;
    // Credentials are stored sealed; the response below is redacted either way.
    let mut stored_cfg = cfg.clone();
    st.vault.seal_config(tx.conn(), id, &mut stored_cfg).await?;
    let now = now_ms();
    stored_config::set(tx.conn(), id, &serde_json::to_string(&stored_cfg)?, now).await?;
    tx.enqueue("org", id).await?;
    tx.commit().await?;
    tracing::info!(org_id = id, "org config updated");
    Ok(Json(ConfigView {
        org_id: id.to_string(),
        warnings: cfg.warnings(&catalog, budget_applies),
        config: cfg.redacted(),
        updated_at: rfc3339(now),
    }))
}

/// `PATCH /api/organizations/{id}/config`: merges the given sections.
#[utoipa::path(
    patch,
    path = "/api/organizations/{id}/config",
    tag = "config",
    summary = "Merge-patch the org config: {\"config\": {...}} (admin+).",
    params(("id" = String, Path, description = "id")),
    request_body = ConfigBody,
    responses((status = 200, description = "OK", body = ConfigView)),
    security(("bearer" = [])),
)]
pub async fn patch_config(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ConfigBody>,
) -> ApiResult<Json<ConfigView>> {
    write_config(&st, &actor, &id, body.config, true).await
}

/// `PUT /api/organizations/{id}/config`: replaces the whole config.
#[utoipa::path(
    put,
    path = "/api/organizations/{id}/config",
    tag = "config",
    summary = "Replace the org config: {\"config\": {...}} (admin+).",
    params(("id" = String, Path, description = "id")),
    request_body = ConfigBody,
    responses((status = 200, description = "OK", body = ConfigView)),
    security(("bearer" = [])),
)]
pub async fn put_config(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ConfigBody>,
) -> ApiResult<Json<ConfigView>> {
    write_config(&st, &actor, &id, body.config, false).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy::ModelSet;
    use serde_json::json;

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

    #[test]
    fn merge_patch_follows_rfc7386() {
        let mut doc = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge_patch(&mut doc, json!({"a": {"b": null, "d": 3}, "l": [9]}));
        assert_eq!(doc, json!({"a": {"c": 2, "d": 3}, "l": [9]}));
    }

    #[test]
    fn credentials_are_redacted_everywhere_but_storage() {
        let cfg = OrgConfig {
            providers: vec![ProviderConfig {
                name: "openai".into(),
                base_url: "https://api.openai.com/v1".into(),
                api_key: Some(Secret("sk-upstream-secret".into())),
                models: vec!["gpt-*".parse().unwrap()],
                weight: None,
            }],
            ..OrgConfig::default()
        };
        assert!(!format!("{cfg:?}").contains("sk-upstream-secret"));
        let shown = serde_json::to_string(&cfg.redacted()).unwrap();
        assert!(!shown.contains("sk-upstream-secret") && shown.contains("\"api_key_set\":true"));
        let mut incoming = json!({"providers": [{"name": "openai", "base_url": "HTTPS://api.openai.com:443/v2", "api_key_set": true}]});
        carry_credentials(&mut incoming, &cfg).unwrap();
        assert_eq!(incoming["providers"][0]["api_key"], "sk-upstream-secret");
        assert!(incoming["providers"][0].get("api_key_set").is_none());
    }

    #[test]
    fn credentials_do_not_follow_a_new_origin() {
        let cfg = OrgConfig {
            providers: vec![ProviderConfig {
                name: "openai".into(),
                base_url: "https://api.openai.com/v1".into(),
                api_key: Some(Secret("sk-upstream-secret".into())),
                models: vec![],
                weight: None,
            }],
            ..OrgConfig::default()
        };
        for url in [
            "http://api.openai.com/v1",
            "https://api.openai.com:8443/v1",
            "https://evil.example/v1",
            "https://api.openai.com@evil.example/v1",
        ] {
            let mut incoming = json!({"providers": [{"name": "openai", "base_url": url}]});
            let err = carry_credentials(&mut incoming, &cfg).unwrap_err();
            assert_eq!(
                err.field.as_deref(),
                Some("config.providers[0].api_key"),
                "{url}"
            );
            assert!(incoming["providers"][0].get("api_key").is_none());
        }
    }

    #[test]
    fn caching_ttl_is_bounded_and_defaults_when_enabled() {
        let caching = |enabled, ttl_seconds| CachingConfig {
            enabled,
            ttl_seconds,
        };
        for bad in [0, u64::from(policy::cache::MAX_TTL_SECONDS) + 1, u64::MAX] {
            let err = caching(true, Some(bad))
                .validate("config.caching")
                .unwrap_err();
            assert_eq!(err.field.as_deref(), Some("config.caching.ttl_seconds"));
            // A TTL kept for later is checked too.
            assert!(caching(false, Some(bad)).validate("c").is_err());
        }
        assert!(caching(true, Some(1)).validate("c").is_ok());
        assert_eq!(caching(true, Some(60)).compile(), Some(60));
        assert_eq!(
            caching(true, None).compile(),
            Some(policy::cache::DEFAULT_TTL_SECONDS)
        );
        assert_eq!(caching(false, Some(60)).compile(), None);
    }

    #[test]
    fn routing_settings_nothing_acts_on_are_refused() {
        let provider = |name: &str, weight: Option<u32>| ProviderConfig {
            name: name.into(),
            base_url: format!("https://{name}.example/v1"),
            api_key: None,
            models: vec!["gpt-*".parse().unwrap()],
            weight,
        };
        let cfg = |strategy, weights: [Option<u32>; 2], routing: Value| {
            let mut routing: RoutingConfig = serde_json::from_value(routing).unwrap();
            routing.strategy = strategy;
            OrgConfig {
                providers: vec![provider("a", weights[0]), provider("b", weights[1])],
                routing,
                ..OrgConfig::default()
            }
        };
        let field = |c: OrgConfig| {
            c.validate("config", &Catalog::default())
                .err()
                .and_then(|e| e.field)
        };
        use RoutingStrategy::{Priority, Weighted};
        let ok = cfg(
            Weighted,
            [Some(3), None],
            json!({"max_attempts": 2, "cooldown_failures": 3, "cooldown_seconds": 30}),
        );
        assert_eq!(field(ok.clone()), None);
        assert_eq!(
            ok.routing.compile(),
            policy::Routing {
                strategy: policy::Strategy::Weighted,
                max_attempts: Some(2),
                cooldown: Some(policy::Cooldown {
                    failures: 3,
                    seconds: 30
                }),
                groups: vec![],
            }
        );
        for (c, expected) in [
            (
                cfg(Priority, [Some(3), None], json!({})),
                "config.providers[0].weight",
            ),
            (
                cfg(Weighted, [None, Some(0)], json!({})),
                "config.providers[1].weight",
            ),
            (
                cfg(Priority, [None, None], json!({"max_attempts": 0})),
                "config.routing.max_attempts",
            ),
            (
                cfg(Priority, [None, None], json!({"max_attempts": 3})),
                "config.routing.max_attempts",
            ),
            (
                cfg(Priority, [None, None], json!({"cooldown_failures": 2})),
                "config.routing.cooldown_seconds",
            ),
            (
                cfg(Priority, [None, None], json!({"cooldown_seconds": 2})),
                "config.routing.cooldown_failures",
            ),
            (
                cfg(
                    Priority,
                    [None, None],
                    json!({"cooldown_failures": 0, "cooldown_seconds": 2}),
                ),
                "config.routing.cooldown_failures",
            ),
            (
                cfg(
                    Priority,
                    [None, None],
                    json!({"cooldown_failures": 1, "cooldown_seconds": 86401}),
                ),
                "config.routing.cooldown_seconds",
            ),
        ] {
            assert_eq!(field(c).as_deref(), Some(expected));
        }
        // Unknown routing members stay unknown (422 at the API).
        assert!(serde_json::from_value::<RoutingConfig>(json!({"retries": 2})).is_err());
    }
}
