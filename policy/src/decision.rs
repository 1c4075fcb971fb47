//! The decision engine: may this key, from this address, call this model now?

use std::borrow::Cow;
use std::net::IpAddr;

use crate::limits::{Budget, Exceeded, Meter, Metric, Scope};
use crate::records::{AgentRecord, KeyRecord, KeyStatus, OrgRecord, TeamRecord};

/// The records a request resolved to; the caller loads them from the KV store.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The presented key's record.
    pub key: &'a KeyRecord,
    /// The key's organization.
    pub org: &'a OrgRecord,
    /// The key's team, when the key names one and the record was found.
    pub team: Option<&'a TeamRecord>,
    /// The key's agent, when the key names one and the record was found.
    pub agent: Option<&'a AgentRecord>,
}

impl<'a> Subject<'a> {
    /// Every configured limit the request counts against: key, then team, then org.
    pub fn meters(&self) -> impl Iterator<Item = Meter<'a>> + 'a {
        let scopes = [
            Some((Scope::Key, self.key.key_id.as_str(), &self.key.limits)),
            self.team
                .map(|t| (Scope::Team, t.team_id.as_str(), &t.limits)),
            Some((Scope::Org, self.org.org_id.as_str(), &self.org.limits)),
        ];
        scopes
            .into_iter()
            .flatten()
            .flat_map(|(scope, id, limits)| {
                limits.configured().map(move |(metric, limit)| Meter {
                    scope,
                    id,
                    metric,
                    limit,
                })
            })
    }

    /// Every configured budget: key, then team, then org.
    pub fn budgets(&self) -> impl Iterator<Item = (Scope, &'a str, &'a Budget)> + 'a {
        let scopes = [
            self.key
                .budget
                .as_ref()
                .map(|b| (Scope::Key, self.key.key_id.as_str(), b)),
            self.team.and_then(|t| {
                t.budget
                    .as_ref()
                    .map(|b| (Scope::Team, t.team_id.as_str(), b))
            }),
            self.org
                .budget
                .as_ref()
                .map(|b| (Scope::Org, self.org.org_id.as_str(), b)),
        ];
        scopes.into_iter().flatten()
    }
}

/// What the request asks for, and when.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// Current time, Unix milliseconds (passed in: the engine reads no clock).
    pub now_ms: u64,
    /// The client address, if the runtime or a trusted header tells it.
    pub client_ip: Option<IpAddr>,
    /// The requested model; `None` for requests that name none (model listing).
    pub model: Option<&'a str>,
}

/// Why a request is refused. Each maps to an HTTP status and an OpenAI-shaped error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// No key presented.
    MissingKey,
    /// The key is unknown.
    UnknownKey,
    /// The key was revoked.
    KeyRevoked,
    /// The key is past its expiry.
    KeyExpired,
    /// A record the key needs is missing, unreadable or inconsistent (fail closed).
    RecordUnavailable(&'static str),
    /// The organization is inactive.
    OrgInactive,
    /// The key's agent is suspended or no longer in the key's organization.
    AgentInactive,
    /// The client address is not allowed by the key's IP ACL.
    IpNotAllowed,
    /// The key may not call this model.
    ModelNotAllowed(String),
    /// No provider of the organization serves this model.
    NoRoute(String),
    /// A budget applies but the model has no price (and the org no default price),
    /// so its spend could not be counted.
    ModelNotPriced(String),
    /// A rate limit would be exceeded.
    RateLimited(Exceeded),
    /// A budget is spent for this period.
    BudgetExceeded {
        /// Scope whose budget is spent.
        scope: Scope,
        /// Seconds until the period resets.
        retry_after_secs: u64,
    },
}

impl Denial {
    /// HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            Denial::MissingKey | Denial::UnknownKey | Denial::KeyRevoked | Denial::KeyExpired => {
                401
            }
            Denial::RecordUnavailable(_)
            | Denial::OrgInactive
            | Denial::AgentInactive
            | Denial::IpNotAllowed
            | Denial::ModelNotAllowed(_)
            | Denial::ModelNotPriced(_) => 403,
            Denial::NoRoute(_) => 404,
            Denial::RateLimited(_) | Denial::BudgetExceeded { .. } => 429,
        }
    }

    /// OpenAI error `type`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Denial::MissingKey | Denial::UnknownKey | Denial::KeyRevoked | Denial::KeyExpired => {
                "invalid_request_error"
            }
            Denial::NoRoute(_) => "invalid_request_error",
            Denial::RateLimited(e) if e.metric.counts_tokens() => "tokens",
            Denial::RateLimited(_) => "requests",
            Denial::BudgetExceeded { .. } => "insufficient_quota",
            _ => "permission_error",
        }
    }

    /// Machine-readable error `code`.
    pub fn code(&self) -> &'static str {
        match self {
            Denial::MissingKey | Denial::UnknownKey => "invalid_api_key",
            Denial::KeyRevoked => "key_revoked",
            Denial::KeyExpired => "key_expired",
            Denial::RecordUnavailable(_) => "policy_unavailable",
            Denial::OrgInactive => "organization_inactive",
            Denial::AgentInactive => "agent_inactive",
            Denial::IpNotAllowed => "ip_not_allowed",
            Denial::ModelNotAllowed(_) => "model_not_allowed",
            Denial::NoRoute(_) => "model_not_found",
            Denial::ModelNotPriced(_) => "model_not_priced",
            Denial::RateLimited(_) => "rate_limit_exceeded",
            Denial::BudgetExceeded { .. } => "budget_exceeded",
        }
    }

    /// Human-readable message.
    pub fn message(&self) -> Cow<'static, str> {
        match self {
            Denial::MissingKey => {
                "No API key provided: send `Authorization: Bearer <key>` or `x-api-key`.".into()
            }
            Denial::UnknownKey => "Incorrect API key provided.".into(),
            Denial::KeyRevoked => "This API key has been revoked.".into(),
            Denial::KeyExpired => "This API key has expired.".into(),
            Denial::RecordUnavailable(what) => {
                format!("The gateway cannot verify this request ({what}); access is denied.").into()
            }
            Denial::OrgInactive => "The organization of this API key is inactive.".into(),
            Denial::AgentInactive => "The agent of this API key is suspended.".into(),
            Denial::IpNotAllowed => {
                "Requests from this IP address are not allowed for this API key.".into()
            }
            Denial::ModelNotAllowed(m) => {
                format!("This API key is not allowed to use model `{m}`.").into()
            }
            Denial::NoRoute(m) => {
                format!("The model `{m}` does not exist or no provider serves it.").into()
            }
            Denial::ModelNotPriced(m) => format!(
                "The model `{m}` has no price and a budget applies to this API key; an \
                 administrator must price it in the catalog or set the organization's default price."
            )
            .into(),
            Denial::RateLimited(e) => format!(
                "Rate limit reached: {} {} limit of {} exceeded; retry in {}s.",
                e.scope.as_str(),
                e.metric.as_str(),
                e.limit,
                e.retry_after_secs
            )
            .into(),
            Denial::BudgetExceeded {
                scope,
                retry_after_secs,
            } => format!(
                "The {} budget for this period is spent, or too little of it is left for this \
                 request's estimated cost (lower `max_tokens` to reserve less); it resets in {}s.",
                scope.as_str(),
                retry_after_secs
            )
            .into(),
        }
    }

    /// Seconds for `Retry-After`, for 429s.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Denial::RateLimited(e) => Some(e.retry_after_secs),
            Denial::BudgetExceeded {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// The metric that tripped, for 429s caused by a rate limit.
    pub fn metric(&self) -> Option<Metric> {
        match self {
            Denial::RateLimited(e) => Some(e.metric),
            _ => None,
        }
    }
}

/// Decides key status, organization and agent state, IP ACL and model access.
/// Limits and budgets are checked separately against counters (see [`crate::limits`]).
pub fn authorize(subject: &Subject<'_>, facts: &Facts<'_>) -> Result<(), Denial> {
    let Subject {
        key,
        org,
        team,
        agent,
    } = *subject;
    if key.status == KeyStatus::Revoked {
        return Err(Denial::KeyRevoked);
    }
    if key.expires_at_ms.is_some_and(|exp| facts.now_ms >= exp) {
        return Err(Denial::KeyExpired);
    }
    if org.org_id != key.org_id {
        return Err(Denial::RecordUnavailable(
            "organization record does not match the key",
        ));
    }
    if !org.active {
        return Err(Denial::OrgInactive);
    }
    match (&key.team_id, team) {
        (None, _) => {}
        (Some(id), Some(t)) if *id == t.team_id && t.org_id == key.org_id => {}
        (Some(_), _) => {
            return Err(Denial::RecordUnavailable(
                "team record missing or inconsistent",
            ));
        }
    }
    match (&key.agent_id, agent) {
        (None, _) => {}
        (Some(id), Some(a)) if *id == a.agent_id => {
            // An agent moved to another org no longer speaks for this one.
            if !a.active || a.org_id != key.org_id {
                return Err(Denial::AgentInactive);
            }
        }
        (Some(_), _) => return Err(Denial::RecordUnavailable("agent record missing")),
    }
    if !key.ip_acl.permits(facts.client_ip) {
        return Err(Denial::IpNotAllowed);
    }
    if let Some(model) = facts.model {
        // A granted route group is called by name: the key may call it when it may
        // call one of its members (compiled into the key record).
        if org.routing.group(model).is_some() {
            if key
                .route_groups
                .binary_search_by(|g| g.as_str().cmp(model))
                .is_err()
            {
                return Err(Denial::ModelNotAllowed(model.to_string()));
            }
            return Ok(());
        }
        if !key.models.permits(model) {
            return Err(Denial::ModelNotAllowed(model.to_string()));
        }
        if org.route(model).is_none() {
            return Err(Denial::NoRoute(model.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::parse_cidrs;
    use crate::models::ModelSet;
    use crate::records::{ProviderRoute, SCHEMA_VERSION};
    use crate::{IpAcl, Limits};

    fn key() -> KeyRecord {
        KeyRecord {
            schema_version: SCHEMA_VERSION,
            key_id: "k1".into(),
            org_id: "o1".into(),
            team_id: None,
            agent_id: None,
            status: KeyStatus::Active,
            expires_at_ms: Some(2_000),
            models: ModelSet::from_patterns([
                "gpt-4o".parse().unwrap(),
                "claude-*".parse().unwrap(),
            ]),
            ip_acl: IpAcl {
                allow: parse_cidrs(&["10.0.0.0/8"]).unwrap(),
                deny: vec![],
            },
            limits: Limits::default(),
            budget: None,
            route_groups: vec!["fast".into()],
        }
    }

    fn org() -> OrgRecord {
        OrgRecord {
            schema_version: SCHEMA_VERSION,
            org_id: "o1".into(),
            slug: "acme".into(),
            active: true,
            providers: vec![ProviderRoute {
                name: "p".into(),
                base_url: "http://up".into(),
                api_key: None,
                models: vec!["gpt-*".parse().unwrap()],
                weight: None,
            }],
            limits: Limits::default(),
            budget: None,
            client_ip_header: None,
            prices: Vec::new(),
            max_in_flight: None,
            allowed_upstreams: Vec::new(),
            default_max_output_tokens: None,
            cache_ttl_seconds: None,
            store_content: false,
            routing: crate::Routing {
                groups: vec![
                    crate::RouteGroup {
                        name: "fast".into(),
                        models: vec!["gpt-4o".into()],
                    },
                    crate::RouteGroup {
                        name: "smart".into(),
                        models: vec!["gpt-5".into()],
                    },
                ],
                ..crate::Routing::default()
            },
        }
    }

    fn facts(model: Option<&str>) -> Facts<'_> {
        Facts {
            now_ms: 1_000,
            client_ip: Some("10.1.1.1".parse().unwrap()),
            model,
        }
    }

    fn decide(key: &KeyRecord, org: &OrgRecord, f: &Facts<'_>) -> Result<(), Denial> {
        authorize(
            &Subject {
                key,
                org,
                team: None,
                agent: None,
            },
            f,
        )
    }

    #[test]
    fn allows_a_valid_request() {
        assert_eq!(decide(&key(), &org(), &facts(Some("gpt-4o"))), Ok(()));
        assert_eq!(decide(&key(), &org(), &facts(None)), Ok(()));
    }

    #[test]
    fn each_denial_with_its_status() {
        let (k, o) = (key(), org());
        let mut revoked = k.clone();
        revoked.status = KeyStatus::Revoked;
        assert_eq!(
            decide(&revoked, &o, &facts(None)).unwrap_err().status(),
            401
        );
        let expired = decide(
            &k,
            &o,
            &Facts {
                now_ms: 2_000,
                ..facts(None)
            },
        )
        .unwrap_err();
        assert_eq!((expired.status(), expired.code()), (401, "key_expired"));
        let mut inactive = o.clone();
        inactive.active = false;
        assert_eq!(
            decide(&k, &inactive, &facts(None)),
            Err(Denial::OrgInactive)
        );
        let mut other = o.clone();
        other.org_id = "o2".into();
        assert_eq!(decide(&k, &other, &facts(None)).unwrap_err().status(), 403);
        let outside = Facts {
            client_ip: Some("192.168.0.1".parse().unwrap()),
            ..facts(None)
        };
        assert_eq!(decide(&k, &o, &outside), Err(Denial::IpNotAllowed));
        let unknown_ip = Facts {
            client_ip: None,
            ..facts(None)
        };
        assert_eq!(decide(&k, &o, &unknown_ip), Err(Denial::IpNotAllowed));
        let d = decide(&k, &o, &facts(Some("gpt-4o-mini"))).unwrap_err();
        assert_eq!((d.status(), d.code()), (403, "model_not_allowed"));
        // Allowed for the key, but no provider serves it.
        assert_eq!(
            decide(&k, &o, &facts(Some("claude-3")))
                .unwrap_err()
                .status(),
            404
        );
    }

    #[test]
    fn granted_route_groups_are_callable_by_name_only_when_compiled_into_the_key() {
        let (k, o) = (key(), org());
        assert_eq!(decide(&k, &o, &facts(Some("fast"))), Ok(()));
        // The org grants `smart` but the key may call none of its members.
        let d = decide(&k, &o, &facts(Some("smart"))).unwrap_err();
        assert_eq!((d.status(), d.code()), (403, "model_not_allowed"));
        // A key naming a group its org does not grant (another org's) gets nothing.
        let mut spoofed = key();
        spoofed.route_groups = vec!["fast".into(), "other-orgs-group".into()];
        assert_eq!(
            decide(&spoofed, &o, &facts(Some("other-orgs-group")))
                .unwrap_err()
                .status(),
            403
        );
        // A group the org no longer grants is a plain (unknown) model name.
        let mut revoked = org();
        revoked.routing.groups.clear();
        assert_eq!(
            decide(&k, &revoked, &facts(Some("fast")))
                .unwrap_err()
                .status(),
            403
        );
    }

    #[test]
    fn team_and_agent_records_must_match() {
        let (mut k, o) = (key(), org());
        k.team_id = Some("t1".into());
        k.agent_id = Some("a1".into());
        let team = TeamRecord {
            schema_version: SCHEMA_VERSION,
            team_id: "t1".into(),
            org_id: "o1".into(),
            limits: Limits::default(),
            budget: None,
        };
        let mut agent = AgentRecord {
            schema_version: SCHEMA_VERSION,
            agent_id: "a1".into(),
            org_id: "o1".into(),
            active: true,
        };
        let run = |team: Option<&TeamRecord>, agent: Option<&AgentRecord>| {
            authorize(
                &Subject {
                    key: &k,
                    org: &o,
                    team,
                    agent,
                },
                &facts(None),
            )
        };
        assert_eq!(run(Some(&team), Some(&agent)), Ok(()));
        assert!(matches!(
            run(None, Some(&agent)),
            Err(Denial::RecordUnavailable(_))
        ));
        assert!(matches!(
            run(Some(&team), None),
            Err(Denial::RecordUnavailable(_))
        ));
        agent.active = false;
        assert_eq!(run(Some(&team), Some(&agent)), Err(Denial::AgentInactive));
        agent.active = true;
        agent.org_id = "o2".into();
        assert_eq!(run(Some(&team), Some(&agent)), Err(Denial::AgentInactive));
    }

    #[test]
    fn meters_cover_every_configured_scope_in_order() {
        let (mut k, mut o) = (key(), org());
        k.limits = Limits {
            rpm: Some(5),
            ..Default::default()
        };
        k.team_id = Some("t1".into());
        o.limits = Limits {
            rpm: Some(20),
            tpd: Some(1000),
            ..Default::default()
        };
        o.budget = Some(crate::Budget {
            limit_micros: 1,
            period: crate::BudgetPeriod::Daily,
            utc_offset_minutes: 0,
        });
        let team = TeamRecord {
            schema_version: SCHEMA_VERSION,
            team_id: "t1".into(),
            org_id: "o1".into(),
            limits: Limits {
                rph: Some(7),
                ..Default::default()
            },
            budget: None,
        };
        let s = Subject {
            key: &k,
            org: &o,
            team: Some(&team),
            agent: None,
        };
        let got: Vec<_> = s
            .meters()
            .map(|m| (m.scope, m.id, m.metric, m.limit))
            .collect();
        assert_eq!(
            got,
            vec![
                (Scope::Key, "k1", Metric::Rpm, 5),
                (Scope::Team, "t1", Metric::Rph, 7),
                (Scope::Org, "o1", Metric::Rpm, 20),
                (Scope::Org, "o1", Metric::Tpd, 1000),
            ]
        );
        let budgets: Vec<_> = s.budgets().map(|(scope, id, _)| (scope, id)).collect();
        assert_eq!(budgets, vec![(Scope::Org, "o1")]);
        let (bare_key, bare_org) = (key(), org());
        let bare = Subject {
            key: &bare_key,
            org: &bare_org,
            team: None,
            agent: None,
        };
        assert_eq!(bare.meters().count() + bare.budgets().count(), 0);
    }

    #[test]
    fn rate_limit_denial_carries_retry_after() {
        let e = crate::limits::check(Scope::Team, Metric::Rpm, 1, 2, 59_500).unwrap_err();
        let d = Denial::RateLimited(e);
        assert_eq!(
            (d.status(), d.error_type(), d.retry_after_secs()),
            (429, "requests", Some(1))
        );
        assert!(d.message().contains("team rpm limit of 1"));
    }
}
