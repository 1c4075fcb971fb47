//! The org config document: providers (write-only credentials), routing, caching,
//! rate limits, budgets, asset access, the trusted client-IP header and audit
//! storage; its validation, and what it grants out of the catalog. The API accepts
//! it and the compiler reads it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::auth::Actor;
use crate::billing::money::Micros;
use crate::errors::ApiError;
use crate::model::catalog::{Catalog, valid_label};
use policy::{BudgetPeriod, ModelPattern, ModelSet};

/// A provider credential: serialized only into the database and compiled records,
/// never into an API response; `Debug` redacts it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One upstream provider of an organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Operator-chosen name, unique in the org.
    pub name: String,
    /// OpenAI-compatible base URL.
    pub base_url: String,
    /// Upstream credential (write-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    /// Models served: exact names or `*` patterns.
    #[serde(default)]
    #[schema(schema_with = crate::model::schemas::model_patterns)]
    pub models: Vec<ModelPattern>,
    /// Share of requests under the `weighted` strategy (1 when unset); refused
    /// under `priority`, where nothing would act on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

/// How requests pick a provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoutingStrategy {
    /// The first provider (in `provider_order`, else list order) serving the model;
    /// the next one when it fails.
    #[default]
    Priority,
    /// A provider drawn by `weight` among those serving the model; the others,
    /// drawn likewise, when it fails.
    Weighted,
}

/// Routing settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// Strategy.
    #[serde(default)]
    pub strategy: RoutingStrategy,
    /// Provider names in routing order; providers not named follow in list order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_order: Option<Vec<String>>,
    /// Most provider calls per request, failover included (1 = no failover);
    /// unset: every provider serving the model, once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Consecutive failures after which a provider is skipped for
    /// `cooldown_seconds`; set both or neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_failures: Option<u32>,
    /// How long a provider is skipped once it failed `cooldown_failures` times in a row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_seconds: Option<u32>,
}

/// Largest `cooldown_failures`.
const MAX_COOLDOWN_FAILURES: u32 = 1_000;
/// Longest `cooldown_seconds` (a day).
const MAX_COOLDOWN_SECONDS: u32 = 86_400;
/// Largest provider `weight`.
const MAX_WEIGHT: u32 = 1_000_000;

impl RoutingConfig {
    /// The compiled routing settings (route groups are added by the compiler).
    pub fn compile(&self) -> policy::Routing {
        policy::Routing {
            strategy: match self.strategy {
                RoutingStrategy::Priority => policy::Strategy::Priority,
                RoutingStrategy::Weighted => policy::Strategy::Weighted,
            },
            max_attempts: self.max_attempts,
            cooldown: match (self.cooldown_failures, self.cooldown_seconds) {
                (Some(failures), Some(seconds)) => Some(policy::Cooldown { failures, seconds }),
                _ => None,
            },
            groups: Vec::new(),
        }
    }

    /// Checks the settings against the org's `providers`.
    pub(crate) fn validate(
        &self,
        prefix: &str,
        providers: &[ProviderConfig],
    ) -> Result<(), ApiError> {
        let at = |field: &str| format!("{prefix}.routing.{field}");
        if let Some(order) = &self.provider_order {
            for (i, name) in order.iter().enumerate() {
                if !providers.iter().any(|p| &p.name == name) {
                    return Err(ApiError::invalid(
                        at(&format!("provider_order[{i}]")),
                        format!("no provider named {name:?}"),
                    ));
                }
            }
        }
        if let Some(n) = self.max_attempts {
            let most = u32::try_from(providers.len()).unwrap_or(u32::MAX);
            if n == 0 || n > most {
                return Err(ApiError::invalid(
                    at("max_attempts"),
                    format!("must be between 1 and the number of providers ({most})"),
                ));
            }
        }
        match (self.cooldown_failures, self.cooldown_seconds) {
            (None, None) => {}
            (Some(f), Some(s)) => {
                if !(1..=MAX_COOLDOWN_FAILURES).contains(&f) {
                    return Err(ApiError::invalid(
                        at("cooldown_failures"),
                        format!("must be between 1 and {MAX_COOLDOWN_FAILURES}"),
                    ));
                }
                if !(1..=MAX_COOLDOWN_SECONDS).contains(&s) {
                    return Err(ApiError::invalid(
                        at("cooldown_seconds"),
                        format!("must be between 1 and {MAX_COOLDOWN_SECONDS}"),
                    ));
                }
            }
            (Some(_), None) => {
                return Err(ApiError::invalid(
                    at("cooldown_seconds"),
                    "must be set with cooldown_failures",
                ));
            }
            (None, Some(_)) => {
                return Err(ApiError::invalid(
                    at("cooldown_failures"),
                    "must be set with cooldown_seconds",
                ));
            }
        }
        for (i, p) in providers.iter().enumerate() {
            let Some(w) = p.weight else { continue };
            let field = format!("{prefix}.providers[{i}].weight");
            if self.strategy != RoutingStrategy::Weighted {
                return Err(ApiError::invalid(
                    field,
                    "only the weighted routing strategy uses weights; set routing.strategy to \"weighted\" or remove it",
                ));
            }
            if !(1..=MAX_WEIGHT).contains(&w) {
                return Err(ApiError::invalid(
                    field,
                    format!("must be between 1 and {MAX_WEIGHT}"),
                ));
            }
        }
        Ok(())
    }
}

/// Response caching settings: the edge's exact-match cache of non-streamed answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CachingConfig {
    /// Whether caching is on.
    #[serde(default)]
    pub enabled: bool,
    /// Time to live of a cached response (default
    /// [`policy::cache::DEFAULT_TTL_SECONDS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

impl CachingConfig {
    /// The TTL the edge applies, or `None` while caching is off.
    pub fn compile(&self) -> Option<u32> {
        self.enabled.then(|| {
            self.ttl_seconds
                .and_then(|t| u32::try_from(t).ok())
                .unwrap_or(policy::cache::DEFAULT_TTL_SECONDS)
        })
    }

    pub(crate) fn validate(&self, prefix: &str) -> Result<(), ApiError> {
        use policy::cache::{MAX_TTL_SECONDS, MIN_TTL_SECONDS};
        if self
            .ttl_seconds
            .is_some_and(|t| t < u64::from(MIN_TTL_SECONDS) || t > u64::from(MAX_TTL_SECONDS))
        {
            return Err(ApiError::invalid(
                format!("{prefix}.ttl_seconds"),
                format!("must be between {MIN_TTL_SECONDS} and {MAX_TTL_SECONDS} seconds"),
            ));
        }
        Ok(())
    }
}

/// Org-wide rate limits, shared by all its teams and keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimiting {
    /// Configured limits are enforced unless this is an explicit `false` (the seed:
    /// "only configured limits are enforced"); a limit stored but off is a trap.
    #[serde(default = "enforced_by_default")]
    pub enabled: bool,
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Tokens per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Requests per hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rph: Option<u64>,
    /// Requests per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpd: Option<u64>,
    /// Tokens per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpd: Option<u64>,
}

fn enforced_by_default() -> bool {
    true
}

impl Default for RateLimiting {
    fn default() -> Self {
        RateLimiting {
            enabled: enforced_by_default(),
            rpm: None,
            tpm: None,
            rph: None,
            rpd: None,
            tpd: None,
        }
    }
}

/// A spend cap, in the org's currency (`limit` is a decimal: `500.00`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetInput {
    /// The cap.
    pub limit: Micros,
    /// `daily`, `weekly` or `monthly`.
    #[schema(schema_with = crate::model::schemas::budget_period)]
    pub period: BudgetPeriod,
    /// Calendar boundaries are at midnight in this UTC offset.
    #[serde(default)]
    #[schema(minimum = -1080, maximum = 1080)]
    pub utc_offset_minutes: i32,
}

impl BudgetInput {
    /// The compiled budget.
    pub fn compile(&self) -> policy::Budget {
        policy::Budget {
            limit_micros: self.limit.0,
            period: self.period,
            utc_offset_minutes: self.utc_offset_minutes,
        }
    }

    /// Checks the offset is a real one (±18 h).
    pub fn validate(&self, field: &str) -> Result<(), ApiError> {
        if self.utc_offset_minutes.abs() > 18 * 60 {
            return Err(ApiError::invalid(
                format!("{field}.utc_offset_minutes"),
                "must be between -1080 and 1080",
            ));
        }
        Ok(())
    }
}

/// The organization's asset universe; teams and keys only narrow it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    /// Direct model grants: names or `*` patterns.
    #[serde(default)]
    #[schema(schema_with = crate::model::schemas::model_patterns)]
    pub models: Vec<ModelPattern>,
    /// Route groups (resolved to their models at compile time).
    #[serde(default)]
    pub route_groups: Vec<String>,
    /// Access groups: every catalog model labelled with one of them.
    #[serde(default)]
    pub access_groups: Vec<String>,
}

/// The price of routable models the catalog does not price, per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DefaultPrice {
    /// Price of one million input (prompt) tokens.
    pub input_per_1m: Micros,
    /// Price of one million output (completion) tokens.
    pub output_per_1m: Micros,
}

/// Largest accepted `default_max_output_tokens`.
const MAX_OUTPUT_CEILING: u64 = 10_000_000;

/// Audit settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Whether request and response bodies (the first 32 KiB of each) are kept
    /// with the request logs, readable by admins.
    #[serde(default)]
    pub store_content: bool,
    /// Days stored bodies are kept; required while `store_content` is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
}

/// Longest content retention: ten years.
const MAX_RETENTION_DAYS: u32 = 3650;

/// The whole org config as stored (credentials included).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgConfig {
    /// Upstream providers.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    /// Routing.
    #[serde(default)]
    pub routing: RoutingConfig,
    /// Caching.
    #[serde(default)]
    pub caching: CachingConfig,
    /// Org-scope rate limits.
    #[serde(default)]
    pub rate_limiting: RateLimiting,
    /// Org-scope budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budgets: Option<BudgetInput>,
    /// Asset access; absent means every model (the providers still bound what routes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<AccessConfig>,
    /// Trusted forwarding header carrying the client IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip_header: Option<String>,
    /// Requests of the org an edge node runs at once (streams included); absent:
    /// the edge's `--org-max-in-flight` default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 10_000)]
    pub max_in_flight: Option<u32>,
    /// Audit storage.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Price of models the catalog does not price; without it (and with a budget
    /// applying) the edge refuses unpriced models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_price: Option<DefaultPrice>,
    /// Output tokens the edge reserves against budgets for a request that sets no
    /// `max_tokens` (per completion; 1024 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub default_max_output_tokens: Option<u64>,
}

/// A provider as clients read it: the credential replaced by whether one is stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProviderView {
    /// Operator-chosen name, unique in the org.
    pub name: String,
    /// OpenAI-compatible base URL.
    pub base_url: String,
    /// Whether a credential is stored (it is never returned).
    pub api_key_set: bool,
    /// Models served: exact names or `*` patterns.
    #[schema(schema_with = crate::model::schemas::model_patterns)]
    pub models: Vec<ModelPattern>,
    /// Share of requests under the `weighted` strategy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

/// The org config as clients read it ([`OrgConfig`] with providers' credentials
/// replaced by `api_key_set`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrgConfigView {
    /// Upstream providers.
    pub providers: Vec<ProviderView>,
    /// Routing.
    pub routing: RoutingConfig,
    /// Response cache.
    pub caching: CachingConfig,
    /// Org-wide rate limits.
    pub rate_limiting: RateLimiting,
    /// Org budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budgets: Option<BudgetInput>,
    /// Model access.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<AccessConfig>,
    /// Header the edge reads the client IP from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip_header: Option<String>,
    /// Requests in flight at once for the org at each edge node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    /// Request logging and content retention.
    pub audit: AuditConfig,
    /// Catch-all price for models the catalog lacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_price: Option<DefaultPrice>,
    /// Output tokens reserved when a request sets no `max_tokens`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_max_output_tokens: Option<u64>,
}

impl OrgConfig {
    /// Parses a stored config document.
    pub fn from_stored(text: &str) -> Result<OrgConfig, ApiError> {
        Ok(serde_json::from_str(text)?)
    }

    /// The config as clients may read it: credentials replaced by `api_key_set`.
    pub fn redacted(&self) -> OrgConfigView {
        let c = self.clone();
        OrgConfigView {
            providers: c
                .providers
                .into_iter()
                .map(|p| ProviderView {
                    api_key_set: p.api_key.is_some(),
                    name: p.name,
                    base_url: p.base_url,
                    models: p.models,
                    weight: p.weight,
                })
                .collect(),
            routing: c.routing,
            caching: c.caching,
            rate_limiting: c.rate_limiting,
            budgets: c.budgets,
            access: c.access,
            client_ip_header: c.client_ip_header,
            max_in_flight: c.max_in_flight,
            audit: c.audit,
            default_price: c.default_price,
            default_max_output_tokens: c.default_max_output_tokens,
        }
    }

    /// Providers in routing order.
    pub fn ordered_providers(&self) -> Vec<&ProviderConfig> {
        let mut out: Vec<&ProviderConfig> = Vec::new();
        if let Some(order) = &self.routing.provider_order {
            for name in order {
                if let Some(p) = self.providers.iter().find(|p| &p.name == name) {
                    out.push(p);
                }
            }
        }
        for p in &self.providers {
            if !out.iter().any(|o| o.name == p.name) {
                out.push(p);
            }
        }
        out
    }

    /// Semantic checks beyond the types; `prefix` is the path of the document.
    pub fn validate(&self, prefix: &str, catalog: &Catalog) -> Result<(), ApiError> {
        for (i, p) in self.providers.iter().enumerate() {
            let at = format!("{prefix}.providers[{i}]");
            if p.name.trim().is_empty() {
                return Err(ApiError::invalid(format!("{at}.name"), "must not be empty"));
            }
            if self.providers[..i].iter().any(|q| q.name == p.name) {
                return Err(ApiError::invalid(
                    format!("{at}.name"),
                    format!("duplicate provider name {:?}", p.name),
                ));
            }
            let url_ok = (p.base_url.starts_with("http://") || p.base_url.starts_with("https://"))
                && p.base_url.len() > "https://".len()
                && !p.base_url.chars().any(char::is_whitespace)
                && policy::upstream::origin(&p.base_url).is_some();
            if !url_ok {
                return Err(ApiError::invalid(
                    format!("{at}.base_url"),
                    "must be an http:// or https:// URL with a host (no user info) and a valid port",
                ));
            }
            if p.api_key
                .as_ref()
                .is_some_and(|k| k.0.is_empty() || k.0.chars().any(char::is_control))
            {
                return Err(ApiError::invalid(
                    format!("{at}.api_key"),
                    "must be a non-empty printable string",
                ));
            }
        }
        self.routing.validate(prefix, &self.providers)?;
        self.caching.validate(&format!("{prefix}.caching"))?;
        if let Some(b) = &self.budgets {
            b.validate(&format!("{prefix}.budgets"))?;
        }
        // Bodies are kept for a stated time or not at all.
        match self.audit.retention_days {
            Some(d) if d == 0 || d > MAX_RETENTION_DAYS => {
                return Err(ApiError::invalid(
                    format!("{prefix}.audit.retention_days"),
                    format!("must be between 1 and {MAX_RETENTION_DAYS}"),
                ));
            }
            None if self.audit.store_content => {
                return Err(ApiError::invalid(
                    format!("{prefix}.audit.retention_days"),
                    "is required while store_content is on: stored bodies are deleted after it",
                ));
            }
            _ => {}
        }
        if self
            .default_max_output_tokens
            .is_some_and(|n| n == 0 || n > MAX_OUTPUT_CEILING)
        {
            return Err(ApiError::invalid(
                format!("{prefix}.default_max_output_tokens"),
                format!("must be between 1 and {MAX_OUTPUT_CEILING}"),
            ));
        }
        if let Some(access) = &self.access {
            for (i, g) in access.route_groups.iter().enumerate() {
                if !catalog.route_groups.contains_key(g) {
                    return Err(ApiError::invalid(
                        format!("{prefix}.access.route_groups[{i}]"),
                        format!("no route group named {g:?}"),
                    ));
                }
            }
            for (i, g) in access.access_groups.iter().enumerate() {
                // Groups may have no members yet; only the label's shape is checked.
                if !valid_label(g) {
                    return Err(ApiError::invalid(
                        format!("{prefix}.access.access_groups[{i}]"),
                        "must be 1-64 characters of a-z, 0-9, '-', '_' or '.'",
                    ));
                }
            }
        }
        if let Some(h) = &self.client_ip_header {
            let ok = !h.is_empty()
                && h.len() <= 64
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(ApiError::invalid(
                    format!("{prefix}.client_ip_header"),
                    "must be an HTTP header name",
                ));
            }
        }
        if self
            .max_in_flight
            .is_some_and(|n| !(1..=MAX_IN_FLIGHT).contains(&n))
        {
            return Err(ApiError::invalid(
                format!("{prefix}.max_in_flight"),
                format!("must be between 1 and {MAX_IN_FLIGHT}"),
            ));
        }
        Ok(())
    }
}

/// Largest per-org in-flight cap: beyond it the cap no longer protects other
/// tenants of an edge node (its instance pool is of this order).
const MAX_IN_FLIGHT: u32 = 10_000;
impl OrgConfig {
    /// Prices compiled into the org record, in the org's `currency`: the catalog's
    /// (converted at the platform's exchange rate), then the org default as the
    /// catch-all pattern `*` (first match wins, so the catalog's come first). A price
    /// without a rate is left out (the edge then refuses the model under a budget);
    /// the API refuses the writes that would cause that.
    pub fn prices(&self, catalog: &Catalog, currency: &str) -> Vec<policy::ModelPrice> {
        let mut prices = Vec::with_capacity(catalog.prices.len() + 1);
        for c in &catalog.prices {
            let p = &c.price;
            let convert = |micros| catalog.fx.convert(micros, &c.currency, currency);
            match (
                convert(p.input_per_mtok_micros),
                convert(p.output_per_mtok_micros),
            ) {
                (Some(input), Some(output)) => prices.push(policy::ModelPrice {
                    model: p.model.clone(),
                    input_per_mtok_micros: input,
                    output_per_mtok_micros: output,
                }),
                _ => tracing::error!(
                    model = %p.model.as_str(), from = %c.currency, to = %currency,
                    "no exchange rate: the model is compiled unpriced"
                ),
            }
        }
        if let Some(d) = &self.default_price {
            prices.push(policy::ModelPrice {
                model: "*".parse().expect("`*` is a valid pattern"),
                input_per_mtok_micros: d.input_per_1m.0,
                output_per_mtok_micros: d.output_per_1m.0,
            });
        }
        prices
    }

    /// Origins of the providers: the only hosts the edge may call for the org.
    pub fn allowed_upstreams(&self) -> Vec<String> {
        let mut origins: Vec<String> = self
            .providers
            .iter()
            .filter_map(|p| policy::upstream::origin(&p.base_url))
            .collect();
        origins.sort();
        origins.dedup();
        origins
    }

    /// Warnings for a config the edge will partly refuse: with a budget applying,
    /// every routable model the catalog does not price (and no default price covers)
    /// is refused with `model_not_priced`.
    pub fn warnings(&self, catalog: &Catalog, budget_applies: bool) -> Vec<String> {
        if !budget_applies || self.default_price.is_some() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (i, p) in self.providers.iter().enumerate() {
            for (j, m) in p.models.iter().enumerate() {
                if !catalog
                    .prices
                    .iter()
                    .any(|c| c.price.model.matches(m.as_str()))
                {
                    out.push(format!(
                        "config.providers[{i}].models[{j}]: {:?} has no catalog price and the \
                         organization sets no default_price; while a budget applies, requests \
                         for it are refused (403 model_not_priced)",
                        m.as_str()
                    ));
                }
            }
        }
        out
    }

    /// Checks that providers on internal hosts (loopback, private, link-local) are
    /// set only by a platform admin; such a provider already stored with the same
    /// `base_url` may stay whoever edits the rest.
    pub(crate) fn check_internal_upstreams(
        &self,
        stored: &OrgConfig,
        actor: &Actor,
    ) -> Result<(), ApiError> {
        if actor.platform_admin {
            return Ok(());
        }
        for (i, p) in self.providers.iter().enumerate() {
            let kept = stored.providers.iter().any(|o| o.base_url == p.base_url);
            if !kept && policy::upstream::is_internal(&p.base_url) {
                return Err(ApiError::platform_admin_field(
                    format!("config.providers[{i}].base_url"),
                    "a provider on a loopback, private or link-local address (or localhost) \
                     may only be set by a platform admin",
                ));
            }
        }
        Ok(())
    }
}

// What an org config grants out of the catalog. Here rather than in `catalog.rs`
// so the catalog knows nothing of org configs (no import cycle).
impl Catalog {
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
}
