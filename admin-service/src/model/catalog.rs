//! The model catalog as the API validates grants against it and the compiler reads
//! it: names, access-group labels, prices in the catalog currency (with the
//! exchange rates that convert them), route groups, and the resolution of grants
//! into model sets.

use std::collections::BTreeMap;

use crate::billing::fx::FxRates;
use crate::errors::ApiError;
use crate::store::catalog as stored;
use crate::store::db::Db;
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
    pub async fn load(pool: &Db) -> Result<Catalog, ApiError> {
        let mut cat = Catalog::default();
        for row in stored::models(pool).await? {
            let groups: Vec<String> = serde_json::from_str(&row.access_groups)?;
            let (input, output) = (
                row.input_price_micros_per_1m,
                row.output_price_micros_per_1m,
            );
            if input > 0 || output > 0 {
                let model = row.name.parse().map_err(|e| {
                    tracing::error!(model = %row.name, error = %e, "unparseable catalog model name");
                    ApiError::internal()
                })?;
                cat.prices.push(CatalogPrice {
                    price: ModelPrice {
                        model,
                        input_per_mtok_micros: u64::try_from(input).unwrap_or(0),
                        output_per_mtok_micros: u64::try_from(output).unwrap_or(0),
                    },
                    currency: row.currency,
                });
            }
            cat.models.insert(row.name, groups);
        }
        for row in stored::route_groups(pool).await? {
            let models: Vec<ModelPattern> = serde_json::from_str(&row.models)?;
            cat.route_groups.insert(row.name, models);
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

/// Whether `s` is an acceptable access-group label.
pub fn valid_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}
