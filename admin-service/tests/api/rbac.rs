//! The RBAC matrix: every endpoint of `routes::endpoints()` × every role × the
//! caller's own org and another org. An endpoint missing from `rule` fails the
//! test, so a new endpoint cannot escape the matrix.

use serde_json::{Value, json};

use crate::common::{ADMIN, TestServer, rand_suffix};
use admin_service::api::routes::{Endpoint, endpoints};

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Need {
    /// No token needed.
    Public,
    /// Any valid token; answers are scoped to the caller.
    Any,
    /// Platform admins only (403 for every user).
    PlatformAdmin,
    /// Another user's object: platform admins only, and to users it does not exist (404).
    OthersHidden,
    /// This role or a stronger one in the org the object belongs to (`platform`:
    /// no org role suffices); 404 outside it.
    Org(&'static str),
}

/// The permission table of the seed's roles, endpoint by endpoint.
fn rule(e: &Endpoint) -> Option<Need> {
    use Need::*;
    Some(match (e.method, e.path.as_str()) {
        ("get", "/api/openapi.json") => Public,
        ("post", "/api/invitations/accept") => Public,
        (
            "get",
            "/api/me" | "/api/organizations" | "/api/agents" | "/api/models" | "/api/models/{name}",
        ) => Any,
        ("get", "/api/access-groups" | "/api/route-groups" | "/api/fx-rates") => Any,
        ("put" | "delete", "/api/fx-rates/{from}/{to}") => PlatformAdmin,
        ("post", "/api/organizations" | "/api/users" | "/api/models" | "/api/route-groups") => {
            PlatformAdmin
        }
        // Another user's tokens (each user manages their own: tests/api/tokens.rs).
        ("get" | "post", "/api/users/{id}/tokens") => PlatformAdmin,
        ("get" | "post", "/api/tokens") => Any,
        ("delete", "/api/tokens/{id}") => OthersHidden,
        ("get", "/api/users" | "/api/sync/status" | "/api/audit-log") => PlatformAdmin,
        ("get", "/api/platform/keys") => PlatformAdmin,
        ("post", "/api/platform/master-key/rotate" | "/api/platform/edge-keys/rotate") => {
            PlatformAdmin
        }
        ("get", "/api/organizations/{id}/audit-log") => Org("admin"),
        ("patch" | "delete", "/api/models/{name}" | "/api/route-groups/{name}") => PlatformAdmin,
        // Viewer: read-only.
        (
            "get",
            "/api/organizations/{id}"
            | "/api/organizations/{id}/members"
            | "/api/organizations/{id}/teams",
        ) => Org("viewer"),
        (
            "get",
            "/api/organizations/{id}/keys"
            | "/api/teams/{id}"
            | "/api/keys/{id}"
            | "/api/agents/{id}",
        ) => Org("viewer"),
        ("get", "/api/organizations/{id}/usage") => Org("viewer"),
        ("get", "/api/organizations/{id}/logs") => Org("viewer"),
        ("get", "/api/organizations/{id}/logs/{event_id}/content") => Org("admin"),
        ("post", "/api/organizations/{id}/explain") => Org("admin"),
        // Member: views config and creates keys.
        ("get", "/api/organizations/{id}/config") => Org("member"),
        ("post", "/api/organizations/{id}/keys") => Org("member"),
        // Admin: providers, keys, routing, budgets, teams, agents, members except owners.
        ("patch", "/api/organizations/{id}") => Org("admin"),
        ("patch" | "put", "/api/organizations/{id}/config") => Org("admin"),
        ("post" | "get", "/api/organizations/{id}/invitations") => Org("admin"),
        // Adding an existing user directly: platform admins only (org admins invite).
        ("post", "/api/organizations/{id}/members") => Org("platform"),
        ("patch" | "delete", "/api/organizations/{id}/members/{user_id}") => Org("admin"),
        ("delete", "/api/invitations/{id}") => Org("admin"),
        ("post", "/api/organizations/{id}/teams") => Org("admin"),
        ("patch" | "delete", "/api/teams/{id}") => Org("admin"),
        ("get", "/api/teams/{id}/members") => Org("viewer"),
        ("post", "/api/teams/{id}/members") => Org("admin"),
        ("delete", "/api/teams/{id}/members/{user_id}") => Org("admin"),
        // A key created by someone else: only admins revoke, edit or rotate it.
        ("delete" | "patch", "/api/keys/{id}") => Org("admin"),
        ("post", "/api/keys/{id}/rotate") => Org("admin"),
        ("post", "/api/agents") => Org("admin"),
        ("patch", "/api/agents/{id}") => Org("admin"),
        ("post", "/api/agents/{id}/assign-org" | "/api/agents/{id}/unassign-org") => Org("admin"),
        // Owner: deletion, activation (and billing fields, see agents.rs).
        ("delete", "/api/organizations/{id}") => Org("owner"),
        ("post", "/api/organizations/{id}/toggle") => Org("owner"),
        (
            "get",
            "/api/organizations/{id}/billing-summary"
            | "/api/organizations/{id}/billing"
            | "/api/organizations/{id}/billing.csv",
        ) => Org("owner"),
        _ => return None,
    })
}

const ROLES: [&str; 4] = ["owner", "admin", "member", "viewer"];

/// Whether `role` is `min` or stronger (`platform`: platform admins only).
fn allowed(role: &str, min: &str) -> bool {
    let rank = |r: &str| ROLES.iter().position(|x| *x == r);
    min != "platform" && rank(role).unwrap() <= rank(min).unwrap()
}

/// Fresh objects in one org for one call (mutations consume them).
#[derive(Default)]
struct World {
    org: String,
    team: String,
    key: String,
    agent: String,
    invitation: String,
    invitation_token: String,
    member: String,
    token: String,
    fresh_user: String,
    model: String,
    route_group: String,
    event: String,
}

impl World {
    /// Every id this world holds, to check none leaks to an outsider.
    fn ids(&self) -> Vec<&str> {
        [
            &self.org,
            &self.team,
            &self.key,
            &self.agent,
            &self.invitation,
            &self.member,
        ]
        .into_iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect()
    }
}

/// Builds the objects `e` needs in `org` (as platform admin).
async fn world(s: &TestServer, e: &Endpoint, org: &str) -> World {
    let mut w = World {
        org: org.to_string(),
        ..World::default()
    };
    let p = e.path.as_str();
    if p.starts_with("/api/teams/") {
        let t = s
            .post(
                &format!("/api/organizations/{org}/teams"),
                json!({"name": format!("team-{}", rand_suffix())}),
            )
            .await
            .ok();
        w.team = t["id"].as_str().unwrap().into();
    }
    if p.starts_with("/api/keys/") || p.ends_with("/explain") {
        w.key = s.key(org, json!({"name": "fixture"})).await["id"]
            .as_str()
            .unwrap()
            .into();
    }
    if p.starts_with("/api/agents/") {
        w.agent = s.agent(org, "fixture").await;
    }
    if p.starts_with("/api/invitations/") {
        let email = format!("inv-{}@example.com", rand_suffix());
        let (inv, secret) = s.invite(org, &email, "viewer").await;
        w.invitation = inv["id"].as_str().unwrap().into();
        w.invitation_token = secret;
    }
    if p.contains("{user_id}")
        || p.starts_with("/api/users/")
        || (p.starts_with("/api/teams/") && p.ends_with("/members"))
    {
        w.member = s.user(org, "viewer").await.0;
    }
    if p == "/api/teams/{id}/members/{user_id}" {
        s.post(
            &format!("/api/teams/{}/members", w.team),
            json!({"user_id": w.member}),
        )
        .await
        .ok();
    }
    if p.starts_with("/api/tokens/") {
        let uid = s.user(org, "viewer").await.0;
        let t = s
            .post(&format!("/api/users/{uid}/tokens"), json!({}))
            .await
            .ok();
        w.token = t["id"].as_str().unwrap().into();
    }
    if e.method == "post" && p.ends_with("/members") {
        let u = s
            .post(
                "/api/users",
                json!({"email": format!("fresh-{}@example.com", rand_suffix())}),
            )
            .await
            .ok();
        w.fresh_user = u["id"].as_str().unwrap().into();
    }
    if p.starts_with("/api/models/") {
        w.model = format!("model-{}", rand_suffix());
        s.post("/api/models", json!({"name": w.model})).await.ok();
    }
    if p.ends_with("/content") {
        // Bodies as the drain stores them for an org that keeps content.
        w.event = format!("evt-{}", rand_suffix());
        sqlx::query(
            "INSERT INTO request_contents
                (event_id, org_id, at_ms, expires_at_ms, request, response, truncated)
             VALUES ($1, $2, 0, 9999999999999, '{}', '{}', 0)",
        )
        .bind(&w.event)
        .bind(org)
        .execute(&s.db().await)
        .await
        .unwrap();
    }
    if p.starts_with("/api/fx-rates/") {
        s.put("/api/fx-rates/EUR/GBP", json!({"rate": "0.87"}))
            .await
            .ok();
    }
    if p.starts_with("/api/route-groups/") {
        w.route_group = format!("rg-{}", rand_suffix());
        s.post(
            "/api/route-groups",
            json!({"name": w.route_group, "models": ["m"]}),
        )
        .await
        .ok();
    }
    w
}

/// The concrete path of `e` in world `w`.
fn path(e: &Endpoint, w: &World) -> String {
    let p = e.path.as_str();
    let id = if p.starts_with("/api/organizations/") {
        &w.org
    } else if p.starts_with("/api/teams/") {
        &w.team
    } else if p.starts_with("/api/keys/") {
        &w.key
    } else if p.starts_with("/api/agents/") {
        &w.agent
    } else if p.starts_with("/api/invitations/") {
        &w.invitation
    } else if p.starts_with("/api/tokens/") {
        &w.token
    } else {
        &w.member
    };
    let name = if p.starts_with("/api/models/") {
        &w.model
    } else {
        &w.route_group
    };
    p.replace("{id}", id)
        .replace("{event_id}", &w.event)
        .replace("{from}", "EUR")
        .replace("{to}", "GBP")
        .replace("{user_id}", &w.member)
        .replace("{name}", name)
}

/// A valid body for `e` in world `w`, so that only the caller's rights decide.
fn body(e: &Endpoint, w: &World) -> Option<Value> {
    let unique = rand_suffix();
    let b = match (e.method, e.path.as_str()) {
        ("post", "/api/organizations") => json!({"name": format!("org {unique}")}),
        ("patch", "/api/organizations/{id}") => json!({"name": format!("renamed {unique}")}),
        ("patch" | "put", "/api/organizations/{id}/config") => {
            json!({"config": {"rate_limiting": {"enabled": true, "rpm": 60}}})
        }
        ("post", "/api/organizations/{id}/members") => {
            json!({"user_id": w.fresh_user, "role": "viewer"})
        }
        ("patch", "/api/organizations/{id}/members/{user_id}") => json!({"role": "member"}),
        ("post", "/api/organizations/{id}/invitations") => {
            json!({"email": format!("i-{unique}@example.com"), "role": "viewer"})
        }
        ("post", "/api/invitations/accept") => json!({"token": w.invitation_token}),
        ("post", "/api/organizations/{id}/teams") => json!({"name": format!("team {unique}")}),
        ("patch", "/api/teams/{id}") => json!({"name": format!("team {unique}")}),
        ("post", "/api/organizations/{id}/keys") => json!({"name": "k"}),
        ("patch", "/api/keys/{id}") => json!({"name": format!("renamed {unique}")}),
        // A day: a grace ending mid-run would let the clean-up write between snapshots.
        ("post", "/api/keys/{id}/rotate") => json!({"grace_seconds": 86_400}),
        ("post", "/api/teams/{id}/members") => json!({"user_id": w.member}),
        ("post", "/api/agents") => json!({"name": "agent", "org_id": w.org}),
        ("patch", "/api/agents/{id}") => json!({"name": "renamed"}),
        ("post", "/api/organizations/{id}/explain") => json!({"key_id": w.key, "model": "m"}),
        ("post", "/api/agents/{id}/assign-org") => json!({"org_id": w.org}),
        ("post", "/api/users") => json!({"email": format!("u-{unique}@example.com")}),
        ("post", "/api/users/{id}/tokens" | "/api/tokens") => json!({}),
        ("post", "/api/models") => json!({"name": format!("m-{unique}")}),
        ("patch", "/api/models/{name}") => json!({"access_groups": ["g"]}),
        ("post", "/api/route-groups") => json!({"name": format!("rg-{unique}"), "models": ["m"]}),
        ("patch", "/api/route-groups/{name}") => json!({"models": ["m2"]}),
        ("put", "/api/fx-rates/{from}/{to}") => json!({"rate": "0.86"}),
        _ => return None,
    };
    Some(b)
}

/// One call: asserts the status class, that a refused call wrote nothing, and that
/// an outsider's answer names nothing of `hidden`.
async fn check(
    s: &TestServer,
    e: &Endpoint,
    token: Option<&str>,
    w: &World,
    want: u16,
    hidden: &[&str],
    who: &str,
) {
    let p = path(e, w);
    let b = body(e, w);
    assert_eq!(
        e.body,
        b.is_some(),
        "{} {}: the route table and this test disagree on a body",
        e.method,
        e.path
    );
    let before = if want >= 400 {
        Some(s.snapshot().await)
    } else {
        None
    };
    let text = b.map(|b| b.to_string());
    let r = s
        .raw(&e.method.to_uppercase(), &p, token, text.as_deref())
        .await;
    let ok = if want < 300 {
        (200..300).contains(&r.status)
    } else {
        r.status == want
    };
    assert!(
        ok,
        "{who}: {} {p}: expected {want}, got {}: {}",
        e.method.to_uppercase(),
        r.status,
        r.text
    );
    if let Some(before) = before {
        let after = s.snapshot().await;
        // Only the rows that differ, so a failure says what was written.
        let changed: Vec<String> = diff_lines(&before, &after);
        assert!(
            changed.is_empty(),
            "{who}: refused {} {p} wrote something: {changed:#?}",
            e.method
        );
    }
    for id in hidden {
        assert!(
            !r.text.contains(id),
            "{who}: {} {p} revealed {id} of another org: {}",
            e.method,
            r.text
        );
    }
}

#[tokio::test]
async fn every_endpoint_checks_role_and_org() {
    let s = TestServer::start().await;
    let missing: Vec<String> = endpoints()
        .iter()
        .filter(|e| rule(e).is_none())
        .map(|e| format!("{} {}", e.method, e.path))
        .collect();
    assert!(
        missing.is_empty(),
        "endpoints missing from the RBAC table in tests/api/rbac.rs: {missing:?}"
    );

    let own = s.org("Own").await;
    let other = s.org("Other").await;
    let mut users = Vec::new();
    for role in ROLES {
        users.push((role, s.user(&own, role).await.1));
    }
    // Something of the other org everyone could stumble on.
    let other_world = {
        let mut w = World {
            org: other.clone(),
            ..World::default()
        };
        w.agent = s.agent(&other, "theirs").await;
        w.key = s.key(&other, json!({"name": "theirs"})).await["id"]
            .as_str()
            .unwrap()
            .into();
        w.team = s
            .post(
                &format!("/api/organizations/{other}/teams"),
                json!({"name": "theirs"}),
            )
            .await
            .ok()["id"]
            .as_str()
            .unwrap()
            .into();
        w
    };
    let mut calls = 0;
    for e in endpoints() {
        let need = rule(e).unwrap();
        // No or unknown token: 401 on everything but the public endpoints, before anything else.
        if need != Need::Public {
            let w = world(&s, e, &own).await;
            check(&s, e, None, &w, 401, &[], "anonymous").await;
            check(
                &s,
                e,
                Some("tg-user-unknown"),
                &w,
                401,
                &[],
                "unknown token",
            )
            .await;
            calls += 2;
        }
        match need {
            Need::Public | Need::Any | Need::PlatformAdmin | Need::OthersHidden => {
                let w = world(&s, e, &own).await;
                check(&s, e, Some(ADMIN), &w, 200, &[], "platform admin").await;
                for (role, tok) in &users {
                    let w = world(&s, e, &own).await;
                    let want = match need {
                        Need::PlatformAdmin => 403,
                        Need::OthersHidden => 404,
                        _ => 200,
                    };
                    check(&s, e, Some(tok), &w, want, &other_world.ids(), role).await;
                    calls += 1;
                }
            }
            Need::Org(min) => {
                // Deleting consumes the org; creating a key there as a member needs an
                // org without teams (with teams, members need one: tests/api/teams_catalog.rs).
                let fresh_org = (e.method == "delete" && e.path == "/api/organizations/{id}")
                    || (e.method == "post" && e.path == "/api/organizations/{id}/keys");
                let mut w = world(&s, e, &own).await;
                if fresh_org {
                    w.org = s.org(&format!("Disposable {}", rand_suffix())).await;
                }
                check(&s, e, Some(ADMIN), &w, 200, &[], "platform admin").await;
                for (role, tok) in &users {
                    // Own org: allowed at `min` and above, 403 below (the object is visible).
                    let mut w = world(&s, e, &own).await;
                    if fresh_org {
                        w.org = s.org(&format!("Disposable {}", rand_suffix())).await;
                        let me = s.call("GET", "/api/me", tok, None).await.ok();
                        let uid = me["user"]["id"].as_str().unwrap();
                        s.post(
                            &format!("/api/organizations/{}/members", w.org),
                            json!({"user_id": uid, "role": role}),
                        )
                        .await
                        .ok();
                    }
                    let want = if allowed(role, min) { 200 } else { 403 };
                    check(
                        &s,
                        e,
                        Some(tok),
                        &w,
                        want,
                        &other_world.ids(),
                        &format!("{role} of own org"),
                    )
                    .await;
                    // Another org: 404 whatever the role, and nothing of it in the answer.
                    let w = world(&s, e, &other).await;
                    let mut hidden = w.ids();
                    hidden.extend(other_world.ids());
                    check(
                        &s,
                        e,
                        Some(tok),
                        &w,
                        404,
                        &hidden,
                        &format!("{role} of another org"),
                    )
                    .await;
                    calls += 2;
                }
            }
        }
    }
    assert!(
        calls > endpoints().len() * 6,
        "the matrix ran only {calls} calls"
    );
}

/// Lines only in `before` (prefixed `-`) or only in `after` (`+`).
fn diff_lines(before: &str, after: &str) -> Vec<String> {
    let b: std::collections::BTreeSet<&str> = before.lines().collect();
    let a: std::collections::BTreeSet<&str> = after.lines().collect();
    b.difference(&a)
        .map(|l| format!("-{l}"))
        .chain(a.difference(&b).map(|l| format!("+{l}")))
        .collect()
}
