//! Routing as compiled into the org record: the strategy, failover bounds,
//! provider cooldown and the route groups the org grants; and the pure choice of
//! which (provider, model) pairs a request tries, in which order.

use serde::{Deserialize, Serialize};

use crate::records::{KeyRecord, OrgRecord};

/// How a request picks among the providers that serve its model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Providers in the org's order; the next one only when one fails.
    #[default]
    Priority,
    /// A random provider, each as likely as its weight; then the rest, by weight.
    Weighted,
}

impl Strategy {
    fn is_priority(&self) -> bool {
        *self == Strategy::Priority
    }
}

/// After `failures` consecutive failed attempts a provider is skipped for `seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cooldown {
    /// Consecutive failures (connect error, timeout, 5xx, 429) that start a cooldown.
    pub failures: u32,
    /// How long the provider is skipped, in seconds.
    pub seconds: u32,
}

/// A catalog route group the org grants: a name clients may send as `model`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteGroup {
    /// The group's name.
    pub name: String,
    /// Its member models that some provider of the org serves, in group order.
    pub models: Vec<String>,
}

/// An org's routing settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    /// Priority or weighted.
    #[serde(default, skip_serializing_if = "Strategy::is_priority")]
    pub strategy: Strategy,
    /// Most provider calls per request (failover included); absent: every candidate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Provider cooldown after consecutive failures; absent: none (and no KV reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<Cooldown>,
    /// Route groups the org grants, callable by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<RouteGroup>,
}

impl Routing {
    /// Whether nothing differs from the default (kept out of the encoded record).
    pub fn is_default(&self) -> bool {
        *self == Routing::default()
    }

    /// The granted route group named `name`.
    pub fn group(&self, name: &str) -> Option<&RouteGroup> {
        self.groups.iter().find(|g| g.name == name)
    }
}

/// One provider call a request may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Index into the org's `providers`.
    pub provider: usize,
    /// The model to name upstream (a route group's member, or the model asked for).
    pub model: &'a str,
}

/// The provider calls `model` may make, in priority order: for a route group the
/// key may call, each member the key may call (group order) at each provider
/// serving it (org order); for a model, each provider serving it. Authorization
/// (`crate::authorize`) has already run.
pub fn candidates<'a>(org: &'a OrgRecord, key: &KeyRecord, model: &'a str) -> Vec<Candidate<'a>> {
    let mut out = Vec::new();
    let mut add = |model: &'a str| {
        for (provider, p) in org.providers.iter().enumerate() {
            if p.models.iter().any(|m| m.matches(model)) {
                out.push(Candidate { provider, model });
            }
        }
    };
    match org.routing.group(model) {
        Some(group) => {
            for member in group.models.iter().filter(|m| key.models.permits(m)) {
                add(member);
            }
        }
        None => add(model),
    }
    out
}

/// Orders `candidates` by weight: the first is drawn with probability weight /
/// total, the next among the rest likewise, and so on. `weight` of a provider
/// index; `random` yields uniform 64-bit values.
pub fn weighted_order(
    candidates: &mut [Candidate<'_>],
    weight: impl Fn(usize) -> u32,
    mut random: impl FnMut() -> u64,
) {
    for i in 0..candidates.len() {
        let rest = &candidates[i..];
        let total: u64 = rest.iter().map(|c| u64::from(weight(c.provider))).sum();
        if total == 0 {
            return;
        }
        let mut pick = random() % total;
        let mut chosen = i;
        for (j, c) in rest.iter().enumerate() {
            let w = u64::from(weight(c.provider));
            if pick < w {
                chosen = i + j;
                break;
            }
            pick -= w;
        }
        candidates[i..=chosen].rotate_right(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{ProviderRoute, SCHEMA_VERSION};
    use crate::{IpAcl, KeyStatus, Limits, ModelSet};

    fn provider(name: &str, models: &[&str], weight: Option<u32>) -> ProviderRoute {
        ProviderRoute {
            name: name.into(),
            base_url: format!("http://{name}"),
            api_key: None,
            models: models.iter().map(|m| m.parse().unwrap()).collect(),
            weight,
        }
    }

    fn org() -> OrgRecord {
        OrgRecord {
            schema_version: SCHEMA_VERSION,
            org_id: "o1".into(),
            slug: "o1".into(),
            active: true,
            providers: vec![
                provider("a", &["gpt-4o", "gpt-4o-mini"], Some(3)),
                provider("b", &["gpt-*"], Some(1)),
                provider("c", &["claude-3"], None),
            ],
            limits: Limits::default(),
            budget: None,
            client_ip_header: None,
            prices: Vec::new(),
            max_in_flight: None,
            allowed_upstreams: Vec::new(),
            default_max_output_tokens: None,
            cache_ttl_seconds: None,
            store_content: false,
            routing: Routing {
                groups: vec![RouteGroup {
                    name: "fast".into(),
                    models: vec!["gpt-4o-mini".into(), "claude-3".into()],
                }],
                ..Routing::default()
            },
        }
    }

    fn key(models: &[&str]) -> KeyRecord {
        KeyRecord {
            schema_version: SCHEMA_VERSION,
            key_id: "k".into(),
            org_id: "o1".into(),
            team_id: None,
            agent_id: None,
            status: KeyStatus::Active,
            expires_at_ms: None,
            models: ModelSet::from_patterns(models.iter().map(|m| m.parse().unwrap())),
            ip_acl: IpAcl::default(),
            limits: Limits::default(),
            budget: None,
            route_groups: vec!["fast".into()],
        }
    }

    fn pairs(c: &[Candidate<'_>]) -> Vec<(usize, String)> {
        c.iter()
            .map(|c| (c.provider, c.model.to_string()))
            .collect()
    }

    #[test]
    fn models_go_to_every_serving_provider_in_org_order() {
        let org = org();
        let k = key(&["*"]);
        assert_eq!(
            pairs(&candidates(&org, &k, "gpt-4o")),
            [(0, "gpt-4o".into()), (1, "gpt-4o".into())]
        );
        assert!(candidates(&org, &k, "llama").is_empty());
    }

    #[test]
    fn groups_expand_to_the_members_the_key_may_call() {
        let org = org();
        assert_eq!(
            pairs(&candidates(&org, &key(&["*"]), "fast")),
            [
                (0, "gpt-4o-mini".into()),
                (1, "gpt-4o-mini".into()),
                (2, "claude-3".into())
            ]
        );
        assert_eq!(
            pairs(&candidates(&org, &key(&["claude-*"]), "fast")),
            [(2, "claude-3".into())]
        );
    }

    #[test]
    fn weighted_order_follows_the_weights() {
        let org = org();
        let k = key(&["*"]);
        let weight = |i: usize| org.providers[i].weight.unwrap_or(1);
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut random = || {
            // xorshift: deterministic, uniform enough for a spread check.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut first_a = 0;
        for _ in 0..4000 {
            let mut c = candidates(&org, &k, "gpt-4o");
            weighted_order(&mut c, weight, &mut random);
            assert_eq!(c.len(), 2, "every candidate stays, once");
            assert_ne!(c[0].provider, c[1].provider);
            if c[0].provider == 0 {
                first_a += 1;
            }
        }
        // 3:1 → 3000 expected.
        assert!((2800..=3200).contains(&first_a), "{first_a}");
        // A zero draw takes the first; the rest keep their order.
        let mut c = candidates(&org, &k, "fast");
        weighted_order(&mut c, weight, || 0);
        assert_eq!(pairs(&c), pairs(&candidates(&org, &k, "fast")));
    }
}
