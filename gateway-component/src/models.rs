//! `GET /v1/models`: the models a key may use, in OpenAI's list shape.

use policy::{KeyRecord, OrgRecord};
use serde::Serialize;

/// The list body: every model the key permits among its exact grants and the exact
/// names its organization's providers serve, keeping only models that route; then
/// the route groups the key may call (owned by `route-group`).
pub fn list_body(key: &KeyRecord, org: &OrgRecord) -> Vec<u8> {
    #[derive(Serialize)]
    struct List<'a> {
        object: &'static str,
        data: Vec<Model<'a>>,
    }
    #[derive(Serialize)]
    struct Model<'a> {
        id: &'a str,
        object: &'static str,
        created: u64,
        owned_by: &'a str,
    }
    let catalog = org
        .providers
        .iter()
        .flat_map(|p| &p.models)
        .filter(|m| m.is_exact())
        .map(|m| m.as_str());
    let groups = key
        .route_groups
        .iter()
        .filter(|g| org.routing.group(g).is_some())
        .map(|g| Model {
            id: g,
            object: "model",
            created: 0,
            owned_by: "route-group",
        });
    let data = key
        .models
        .listed(catalog)
        .into_iter()
        .filter_map(|id| {
            org.route(id).map(|p| Model {
                id,
                object: "model",
                created: 0,
                owned_by: &p.name,
            })
        })
        .chain(groups)
        .collect();
    serde_json::to_vec(&List {
        object: "list",
        data,
    })
    .expect("model lists serialize infallibly")
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy::records::SCHEMA_VERSION;
    use policy::{IpAcl, KeyStatus, Limits, ModelSet, ProviderRoute};
    use serde_json::{Value, json};

    fn provider(name: &str, models: &[&str]) -> ProviderRoute {
        ProviderRoute {
            name: name.into(),
            base_url: "http://up/v1".into(),
            api_key: None,
            models: models.iter().map(|m| m.parse().unwrap()).collect(),
            weight: None,
        }
    }

    #[test]
    fn lists_permitted_routable_models_with_their_provider() {
        let org = OrgRecord {
            schema_version: SCHEMA_VERSION,
            org_id: "o1".into(),
            slug: "o1".into(),
            active: true,
            providers: vec![
                provider("openai", &["gpt-4o", "gpt-4o-mini", "gpt-*"]),
                provider("anthropic", &["claude-3-opus", "gpt-4o"]),
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
            routing: policy::Routing {
                groups: vec![policy::RouteGroup {
                    name: "fast".into(),
                    models: vec!["gpt-4o-mini".into()],
                }],
                ..policy::Routing::default()
            },
        };
        let key = KeyRecord {
            schema_version: SCHEMA_VERSION,
            key_id: "k1".into(),
            org_id: "o1".into(),
            team_id: None,
            agent_id: None,
            status: KeyStatus::Active,
            expires_at_ms: None,
            // `gpt-5` routes (via `gpt-*`) though no provider names it; `o1` does not.
            models: ModelSet::from_patterns(
                ["gpt-4o*", "claude-*", "gpt-5", "o1"].map(|m| m.parse().unwrap()),
            ),
            ip_acl: IpAcl::default(),
            limits: Limits::default(),
            budget: None,
            // `gone` is no longer granted to the org: not listed.
            route_groups: vec!["fast".into(), "gone".into()],
        };
        let body: Value = serde_json::from_slice(&list_body(&key, &org)).unwrap();
        let model = |id: &str, owner: &str| json!({"id": id, "object": "model", "created": 0, "owned_by": owner});
        assert_eq!(
            body,
            json!({"object": "list", "data": [
                model("claude-3-opus", "anthropic"),
                model("gpt-4o", "openai"),
                model("gpt-4o-mini", "openai"),
                model("gpt-5", "openai"),
                model("fast", "route-group"),
            ]})
        );
    }
}
