//! The dashboard (issue 13) in a real browser: headless Chromium driven over WebDriver
//! against the real admin service, whose key is then used through the real edge by the
//! `openai` client. Screenshots of each step land in `target/ui-screenshots/`.
//! The attacker tests speak plain HTTP: no session, forged CSRF, other tenants' ids.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::Method;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::json;
use tollgate_e2e::admin::{ADMIN_TOKEN, ControlPlane};
use tollgate_e2e::fixtures::PROVIDER_KEY;
use tollgate_e2e::openai::chat_outcomes;

/// chromedriver on a free loopback port, with one headless Chromium session.
struct Browser {
    driver: Child,
    client: Client,
    shots: PathBuf,
    step: u32,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Browser {
    async fn start(shot_prefix: &str) -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (apt-get install chromium chromium-driver; .ci/run does)");
        let caps = json!({"goog:chromeOptions": {"args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1280,1000",
        ]}});
        let caps = caps.as_object().cloned().expect("an object");
        let url = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        let client = loop {
            // chromedriver is plain HTTP on loopback: no TLS stack needed.
            let connected = ClientBuilder::new(HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await;
            match connected {
                Ok(c) => break c,
                Err(e) if start.elapsed() < Duration::from_secs(20) => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("chromedriver did not start a session: {e}"),
            }
        };
        let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/ui-screenshots")
            .join(shot_prefix);
        // One run's steps only: numbers from an older run would interleave.
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        Browser {
            driver,
            client,
            shots,
            step: 0,
        }
    }

    /// Saves a screenshot of the current page as the next numbered step.
    async fn shot(&mut self, name: &str) {
        self.step += 1;
        let png = self.client.screenshot().await.expect("screenshot");
        let path = self.shots.join(format!("{:02}-{name}.png", self.step));
        std::fs::write(path, png).expect("write screenshot");
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("url")
            .path()
            .to_string()
    }

    async fn wait(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(el) => el,
            Err(e) => {
                let page = self.client.source().await.unwrap_or_default();
                panic!("{css} never appeared ({e}) on:\n{page}")
            }
        }
    }

    async fn fill(&self, css: &str, text: &str) {
        let el = self.wait(css).await;
        el.clear().await.expect("clear");
        el.send_keys(text).await.expect("type");
    }

    /// Picks the option of value `value` in a `<select>`.
    async fn choose(&self, css: &str, value: &str) {
        self.wait(css)
            .await
            .select_by_value(value)
            .await
            .expect("select an option");
    }

    async fn click(&self, css: &str) {
        self.wait(css).await.click().await.expect("click");
    }

    /// Clicks a control that loads a new page, and waits until that page has loaded.
    async fn submit(&self, css: &str) {
        self.client
            .execute("window.__tgOldPage = true", vec![])
            .await
            .expect("mark the page");
        self.click(css).await;
        let start = Instant::now();
        loop {
            let loaded = self
                .client
                .execute(
                    "return window.__tgOldPage === undefined && document.readyState === 'complete'",
                    vec![],
                )
                .await
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            if loaded {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "clicking {css} loaded no page"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn text(&self, css: &str) -> String {
        self.wait(css).await.text().await.expect("text")
    }

    /// Waits until an element reads `expected`: script that settles a promise (the
    /// clipboard) updates the page after the click has returned.
    async fn wait_text(&self, css: &str, expected: &str) {
        let start = Instant::now();
        loop {
            let now = self.text(css).await;
            if now == expected {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{css} reads {now:?}, never {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .expect("find")
            .len()
    }

    async fn sign_in(&self, base: &str, token: &str) {
        self.goto(&format!("{base}/sign-in")).await;
        self.fill("#token", token).await;
        self.submit("#sign-in").await;
        self.wait("#sign-out").await;
    }

    async fn sign_out(&self) {
        self.submit("#sign-out").await;
        self.wait("#token").await;
    }
}

/// The org id from a `/orgs/{id}...` path.
fn org_of(path: &str) -> String {
    path.trim_start_matches("/orgs/")
        .split('/')
        .next()
        .expect("an org path")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_flows_in_a_real_browser() {
    let cp = ControlPlane::start().await;
    cp.price_gpt_4o().await;
    let base = cp.admin_url.clone();
    let mut b = Browser::start("flows").await;

    // No session: the dashboard sends the browser to sign in.
    b.goto(&format!("{base}/")).await;
    b.wait("#token").await;
    assert_eq!(b.path().await, "/sign-in");
    b.shot("sign-in").await;
    b.sign_in(&base, ADMIN_TOKEN).await;
    // The session cookie is HttpOnly: page script cannot read it (nor any token).
    let cookies = b
        .client
        .execute("return document.cookie", vec![])
        .await
        .expect("script");
    assert!(!cookies.as_str().unwrap_or("").contains("tg_session"));
    assert!(
        !b.client
            .source()
            .await
            .expect("source")
            .contains(ADMIN_TOKEN)
    );
    b.shot("orgs-empty").await;

    // Create an org with limits, a budget and asset access in the dialog.
    b.click("#new-org").await;
    b.fill("#new-name", "Acme Robotics").await;
    b.fill("#new-rpm", "120").await;
    b.fill("#new-tpd", "500000").await;
    b.fill("#new-budget", "50.00").await;
    b.fill("#new-models", "gpt-4o").await;
    b.shot("create-org-dialog").await;
    b.submit("#create-org").await;
    b.wait("#overview-limits").await;
    let org = org_of(&b.path().await);
    let limits = b.text("#overview-limits").await;
    assert!(
        limits.contains("120") && limits.contains("500000") && limits.contains("50"),
        "{limits}"
    );
    assert!(limits.contains("gpt-4o"), "{limits}");
    b.shot("org-overview").await;
    // Edit: the dialog comes prefilled; a new per-minute limit replaces the old one.
    b.click("#edit-org").await;
    assert_eq!(
        b.wait("#edit-rpm")
            .await
            .prop("value")
            .await
            .expect("value"),
        Some("120".to_string())
    );
    b.fill("#edit-rpm", "240").await;
    b.submit("#save-org").await;
    let limits = b.text("#overview-limits").await;
    assert!(
        limits.contains("240") && !limits.contains("120"),
        "{limits}"
    );
    // The provider is configured through the API (the Config tab is not built yet).
    cp.admin(
        Method::PATCH,
        &format!("/api/organizations/{org}/config"),
        Some(json!({"config": {"providers": [{
            "name": "mock", "base_url": cp.upstream.base_url(),
            "api_key": PROVIDER_KEY, "models": ["gpt-4o"],
        }]}})),
    )
    .await;

    // Back on the cards: the new org with its role.
    b.goto(&format!("{base}/")).await;
    let card = b.text("[data-org=acme-robotics]").await;
    assert!(card.contains("active") && card.contains("owner"), "{card}");
    b.shot("org-cards").await;

    // Invite a member.
    b.goto(&format!("{base}/orgs/{org}/members")).await;
    b.fill("#invite-email", "new.member@example.com").await;
    b.submit("#invite").await;
    let invitations = b.text("#invitations").await;
    assert!(
        invitations.contains("new.member@example.com"),
        "{invitations}"
    );
    b.shot("invited").await;

    // Teams: create one that narrows the org's models.
    b.goto(&format!("{base}/orgs/{org}/teams")).await;
    b.click("#new-team-toggle").await;
    b.fill("#team-name", "Research").await;
    b.fill("#team-models", "gpt-4o").await;
    b.submit("#create-team").await;
    assert!(b.text("#teams").await.contains("Research"));
    b.shot("teams").await;

    // Members: an owner makes a member an admin, adds them to the team, takes them
    // off it again; then removes them, handing their key to another member.
    let (member_id, member_token) = cp.member(&org, "member").await;
    let (heir_id, _) = cp.member(&org, "viewer").await;
    b.goto(&format!("{base}/orgs/{org}/members")).await;
    b.choose(&format!("#role-{member_id}"), "admin").await;
    b.submit(&format!(
        "form[action='/orgs/{org}/members/{member_id}/role'] button"
    ))
    .await;
    assert_eq!(b.text("[data-member^='member-'] .role").await, "admin");
    let roles = cp
        .admin(
            Method::GET,
            &format!("/api/organizations/{org}/members"),
            None,
        )
        .await;
    let role_of = |members: &serde_json::Value, id: &str| {
        members
            .as_array()
            .expect("members")
            .iter()
            .find(|m| m["user_id"] == id)
            .map(|m| m["role"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(role_of(&roles, &member_id).as_deref(), Some("admin"));
    b.shot("member-role-changed").await;
    b.goto(&format!("{base}/orgs/{org}/teams")).await;
    b.choose("[data-team=Research] select.team-member-choice", &member_id)
        .await;
    b.submit("[data-team=Research] button.add-team-member")
        .await;
    let team = b.text("[data-team=Research] .team-members").await;
    assert!(team.contains("member-"), "{team}");
    b.shot("team-member-added").await;
    b.submit("[data-team=Research] button.remove-team-member")
        .await;
    let team = b.text("[data-team=Research] .team-members").await;
    assert!(team.contains("No members."), "{team}");
    let (status, their_key) = cp
        .api_as(
            &member_token,
            Method::POST,
            &format!("/api/organizations/{org}/keys"),
            Some(json!({"name": "theirs"})),
        )
        .await;
    assert_eq!(status, 201, "{their_key}");
    b.goto(&format!("{base}/orgs/{org}/members")).await;
    b.choose(&format!("#keys-of-{member_id}"), &heir_id).await;
    b.submit(&format!(
        "form[action='/orgs/{org}/members/{member_id}/remove'] button"
    ))
    .await;
    assert_eq!(b.count("[data-member^='member-']").await, 0);
    b.shot("member-removed").await;
    let handed = cp
        .admin(
            Method::GET,
            &format!("/api/keys/{}", their_key["id"].as_str().expect("key id")),
            None,
        )
        .await;
    assert_eq!(
        (handed["status"].as_str(), handed["created_by"].as_str()),
        (Some("active"), Some(heir_id.as_str())),
        "{handed}"
    );
    let (gone, _) = cp
        .api_as(
            &member_token,
            Method::GET,
            &format!("/api/organizations/{org}"),
            None,
        )
        .await;
    assert_eq!(gone, 404);

    // Agents: one in another org is marked as such in the dropdown; assign it here.
    let other = cp
        .admin(
            Method::POST,
            "/api/organizations",
            Some(json!({"name": "Elsewhere Inc", "currency": "USD"})),
        )
        .await;
    let agent = cp
        .admin(
            Method::POST,
            "/api/agents",
            Some(json!({"name": "Scout", "org_id": other["id"]})),
        )
        .await;
    b.goto(&format!("{base}/orgs/{org}/agents")).await;
    let choices = b.text("#assign-agent").await;
    assert!(choices.contains("Scout [assigned elsewhere]"), "{choices}");
    b.shot("agents-dropdown").await;
    b.submit("#assign").await;
    let agents = b.text("#agents").await;
    assert!(agents.contains("Scout"), "{agents}");
    let moved = cp
        .admin(
            Method::GET,
            &format!("/api/agents/{}", agent["id"].as_str().expect("agent id")),
            None,
        )
        .await;
    assert_eq!(moved["org_id"].as_str(), Some(org.as_str()));
    b.shot("agent-assigned").await;
    // An owner gives the agent its own rate; an admin switches it off and on.
    let agent_id = agent["id"].as_str().expect("agent id");
    b.fill(&format!("#rate-{agent_id}"), "12.50").await;
    b.submit(&format!("[data-agent={agent_id}] button.set-rate"))
        .await;
    assert!(
        b.text(&format!("[data-agent={agent_id}]"))
            .await
            .contains("12.5"),
        "{}",
        b.text("#agents").await
    );
    let rated = cp
        .admin(Method::GET, &format!("/api/agents/{agent_id}"), None)
        .await;
    assert_eq!(rated["billing_rate"], json!("12.50"), "{rated}");
    b.shot("agent-rate").await;
    b.submit(&format!("[data-agent={agent_id}] button.toggle-agent"))
        .await;
    assert!(
        b.text(&format!("[data-agent={agent_id}]"))
            .await
            .contains("inactive")
    );
    b.submit(&format!("[data-agent={agent_id}] button.toggle-agent"))
        .await;
    assert!(
        !b.text(&format!("[data-agent={agent_id}]"))
            .await
            .contains("inactive")
    );

    // Config: the provider is listed, its key only as "set".
    b.goto(&format!("{base}/orgs/{org}/config")).await;
    let providers = b.text("#providers").await;
    assert!(
        providers.contains("mock") && providers.contains("set"),
        "{providers}"
    );
    assert!(
        !b.client
            .source()
            .await
            .expect("source")
            .contains(PROVIDER_KEY)
    );
    b.shot("config").await;
    // A second provider with its key: stored, shown only as set; the first keeps its key.
    b.click("#provider-toggle").await;
    b.fill("#provider-name", "backup").await;
    b.fill("#provider-url", &cp.upstream.base_url()).await;
    b.fill("#provider-key", "sk-backup-secret-0123456789").await;
    b.fill("#provider-models", "gpt-4o-mini").await;
    b.submit("#save-provider").await;
    let providers = b.text("#providers").await;
    assert!(providers.contains("backup"), "{providers}");
    assert!(
        !b.client
            .source()
            .await
            .expect("source")
            .contains("sk-backup-secret")
    );
    let stored = cp
        .admin(
            Method::GET,
            &format!("/api/organizations/{org}/config"),
            None,
        )
        .await;
    let set: Vec<bool> = stored["config"]["providers"]
        .as_array()
        .expect("providers")
        .iter()
        .map(|p| p["api_key_set"] == true)
        .collect();
    assert_eq!(set, [true, true], "{stored}");
    // Caching on with a TTL, then off again.
    b.click("#caching").await;
    b.fill("#ttl", "60").await;
    b.submit("#save-settings").await;
    assert!(b.text("#config-facts").await.contains("on, 60 s"));
    b.shot("config-saved").await;
    b.click("#caching").await;
    b.submit("#save-settings").await;
    assert!(b.text("#config-facts").await.contains("off"));
    // Routing beyond the strategy: order, attempts and cooldown; a cooldown
    // without its length is the API's error, naming the field.
    b.fill("#provider-order", "backup, mock").await;
    b.fill("#max-attempts", "2").await;
    b.fill("#cooldown-failures", "3").await;
    b.fill("#cooldown-seconds", "30").await;
    b.submit("#save-settings").await;
    let facts = b.text("#config-facts").await;
    assert!(
        facts.contains("order backup, mock")
            && facts.contains("up to 2 attempts")
            && facts.contains("cooldown 30 s after 3 failures"),
        "{facts}"
    );
    let routing = cp
        .admin(
            Method::GET,
            &format!("/api/organizations/{org}/config"),
            None,
        )
        .await["config"]["routing"]
        .clone();
    assert_eq!(
        routing,
        json!({"strategy": "priority", "provider_order": ["backup", "mock"],
               "max_attempts": 2, "cooldown_failures": 3, "cooldown_seconds": 30})
    );
    b.shot("routing-saved").await;
    b.fill("#cooldown-seconds", "").await;
    b.submit("#save-settings").await;
    let refused = b.text("#error-message").await;
    assert!(refused.contains("cooldown"), "{refused}");
    b.goto(&format!("{base}/orgs/{org}/config")).await;
    assert!(b.text("#config-facts").await.contains("cooldown 30 s"));

    // Create a key: shown once, with a copy button.
    b.goto(&format!("{base}/orgs/{org}/keys")).await;
    b.click("#new-key-toggle").await;
    b.fill("#key-name", "ui-key").await;
    b.submit("#create-key").await;
    let key = b.text("#new-key").await;
    assert!(key.starts_with("sk-") || key.len() > 20, "{key}");
    b.click("#copy-key").await;
    b.wait_text("#copy-key", "Copied").await;
    b.shot("key-shown-once").await;
    b.client.refresh().await.expect("reload");
    b.wait("#keys").await;
    assert_eq!(b.count("#new-key").await, 0, "the key is shown only once");
    assert!(!b.client.source().await.expect("source").contains(&key));
    b.shot("key-gone-after-reload").await;

    // The key works at the edge, through the openai client.
    cp.synced().await;
    let edge = format!("{}/v1", cp.edge.url());
    chat_outcomes(edge.clone(), &[(key.as_str(), "gpt-4o", 200)]).await;
    cp.usage_once_drained(&org, "", 1).await;

    // The call shows in Usage and Logs.
    b.goto(&format!("{base}/orgs/{org}/usage")).await;
    let by_model = b.text("#usage-model").await;
    assert!(by_model.contains("gpt-4o"), "{by_model}");
    assert_eq!(b.count("#usage-model svg").await, 1);
    b.shot("usage").await;
    b.goto(&format!("{base}/orgs/{org}/logs")).await;
    let logs = b.text("#logs").await;
    assert!(logs.contains("gpt-4o") && logs.contains("200"), "{logs}");
    b.shot("logs").await;

    // Billing: the revenue vs cost chart.
    b.goto(&format!("{base}/orgs/{org}/billing")).await;
    assert_eq!(b.count("#billing-chart svg").await, 1);
    assert!(b.text("#billing-chart").await.contains("revenue"));
    b.shot("billing").await;

    // Rotate: a new secret, shown once; then revoke.
    b.goto(&format!("{base}/orgs/{org}/keys")).await;
    b.submit("#keys tr[data-name=ui-key] button.rotate").await;
    let rotated = b.text("#new-key").await;
    assert_ne!(rotated, key);
    b.shot("key-rotated").await;
    cp.synced().await;
    chat_outcomes(
        edge.clone(),
        &[
            (rotated.as_str(), "gpt-4o", 200),
            (key.as_str(), "gpt-4o", 401),
        ],
    )
    .await;
    b.goto(&format!("{base}/orgs/{org}/keys")).await;
    b.submit("#keys tr[data-name=ui-key] button.revoke").await;
    let prefix = b
        .text("#keys tr[data-name=ui-key][data-status=revoked] code")
        .await;
    b.shot("key-revoked").await;
    cp.synced().await;
    chat_outcomes(edge, &[(rotated.as_str(), "gpt-4o", 401)]).await;

    // Why denied? answers in place (htmx).
    b.goto(&format!("{base}/orgs/{org}/explain")).await;
    b.fill("#explain-prefix", &prefix).await;
    b.fill("#explain-model", "gpt-4o").await;
    b.click("#explain").await;
    let verdict = b.text("#explain-verdict").await;
    assert!(verdict.starts_with("Denied"), "{verdict}");
    assert_eq!(b.path().await, format!("/orgs/{org}/explain"));
    b.shot("why-denied").await;

    // Toggle the org off and on from its card.
    b.goto(&format!("{base}/")).await;
    b.submit(&format!(
        "[data-org=acme-robotics] form[action='/orgs/{org}/toggle'] button"
    ))
    .await;
    assert!(
        b.text("[data-org=acme-robotics]")
            .await
            .contains("inactive")
    );
    b.shot("org-deactivated").await;
    b.submit(&format!(
        "[data-org=acme-robotics] form[action='/orgs/{org}/toggle'] button"
    ))
    .await;
    assert!(
        !b.text("[data-org=acme-robotics]")
            .await
            .contains("inactive")
    );

    // Delete offers the CSV export first, and is refused while an agent is assigned.
    b.click(&format!("[data-open=delete-{org}]")).await;
    let dialog = b.text(&format!("#delete-{org}")).await;
    assert!(dialog.contains("Download billing CSV"), "{dialog}");
    b.shot("delete-dialog").await;
    b.submit(&format!("#delete-{org} button.danger")).await;
    let refused = b.text("#error-message").await;
    assert!(refused.contains("agent"), "{refused}");
    b.shot("delete-refused").await;
    let still = cp
        .api_as(
            ADMIN_TOKEN,
            Method::GET,
            &format!("/api/organizations/{org}"),
            None,
        )
        .await;
    assert_eq!(still.0, 200);
    b.goto(&format!("{base}/")).await;

    // A viewer sees no mutation controls anywhere.
    let (_, viewer) = cp.member(&org, "viewer").await;
    b.sign_out().await;
    b.sign_in(&base, &viewer).await;
    assert!(
        b.text("[data-org=acme-robotics] .role")
            .await
            .contains("viewer")
    );
    for page in [
        "", "/keys", "/members", "/teams", "/agents", "/config", "/usage", "/billing", "/logs",
    ] {
        b.goto(&format!("{base}/orgs/{org}{page}")).await;
        b.wait("#role").await;
        assert_eq!(
            b.count("[data-mutation]").await,
            0,
            "mutation controls on {page} for a viewer"
        );
    }
    b.goto(&format!("{base}/")).await;
    b.wait("#sign-out").await;
    assert_eq!(b.count("[data-mutation]").await, 0);
    b.shot("viewer-cards").await;
    b.client.clone().close().await.expect("close browser");
}

/// A client that does not follow redirects and keeps no cookies.
fn plain_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Signs in with `token` over HTTP; the `Set-Cookie` header and the cookie pair.
async fn sign_in(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    extra: HeaderMap,
) -> (String, String) {
    let res = http
        .post(format!("{base}/sign-in"))
        .headers(extra)
        .form(&[("token", token)])
        .send()
        .await
        .expect("sign-in");
    assert_eq!(res.status(), 303);
    let set = res.headers()[SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_string();
    let pair = set.split(';').next().expect("pair").to_string();
    (set, pair)
}

/// The page at `path` as the session `cookie`: status, Location and body.
async fn page(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    cookie: &str,
) -> (u16, String, String) {
    let res = http
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("page");
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().expect("ascii").to_string())
        .unwrap_or_default();
    (status, location, res.text().await.expect("body"))
}

/// The CSRF token a page's forms carry.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF field")
        + 19;
    html[at..at + 64].to_string()
}

/// Posts a form to `path` as `cookie` from `origin`; the status.
async fn post(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    cookie: &str,
    origin: &str,
    form: &[(&str, &str)],
) -> u16 {
    http.post(format!("{base}{path}"))
        .header("cookie", cookie)
        .header("origin", origin)
        .form(form)
        .send()
        .await
        .expect("post")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_refuses_missing_sessions_forged_posts_and_other_tenants() {
    let cp = ControlPlane::start().await;
    let base = cp.admin_url.clone();
    let http = plain_http();
    let mine = cp.org_with_provider("Mine", &["gpt-4o"]).await;
    let theirs = cp.org_with_provider("Theirs", &["gpt-4o"]).await;

    // No session, or a made-up one: to sign-in, for pages and posts alike.
    for cookie in ["", "tg_session=0123456789abcdef"] {
        let (status, location, _) = page(&http, &base, &format!("/orgs/{mine}/keys"), cookie).await;
        assert_eq!((status, location.as_str()), (303, "/sign-in"));
        let status = post(
            &http,
            &base,
            &format!("/orgs/{mine}/keys"),
            cookie,
            &base,
            &[("name", "x")],
        )
        .await;
        assert_eq!(status, 303);
    }
    // A wrong token does not sign in.
    let res = http
        .post(format!("{base}/sign-in"))
        .form(&[("token", "tg-admin-not-a-real-token")])
        .send()
        .await
        .expect("sign-in");
    assert_eq!(res.status(), 401);
    assert!(res.headers().get(SET_COOKIE).is_none());
    // The API and probes still answer beside the dashboard.
    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .expect("healthz")
            .status(),
        200
    );
    assert_eq!(
        http.get(format!("{base}/api/organizations"))
            .send()
            .await
            .expect("api")
            .status(),
        401
    );

    // Cookie flags; Secure when the request came over https (a proxy's X-Forwarded-Proto).
    let (set, _) = sign_in(&http, &base, ADMIN_TOKEN, HeaderMap::new()).await;
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{set}");
    }
    assert!(!set.contains("Secure"), "{set}");
    let mut https = HeaderMap::new();
    https.insert("x-forwarded-proto", "https".parse().expect("header"));
    let (set, _) = sign_in(&http, &base, ADMIN_TOKEN, https).await;
    assert!(set.contains("; Secure"), "{set}");
    // A cross-site sign-in post (login CSRF) is refused.
    let res = http
        .post(format!("{base}/sign-in"))
        .header("origin", "https://evil.example")
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .expect("sign-in");
    assert_eq!(res.status(), 403);

    // A member of one org: another org's id in the URL is not found.
    let (_, member_token) = cp.member(&mine, "member").await;
    let (_, cookie) = sign_in(&http, &base, &member_token, HeaderMap::new()).await;
    for path in ["", "/keys", "/usage", "/billing", "/logs", "/members"] {
        let (status, _, body) = page(&http, &base, &format!("/orgs/{theirs}{path}"), &cookie).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.contains("Theirs"), "{path}");
    }
    // A member sees key actions only on keys they created, as the API allows.
    let (admins_key, _) = cp.key(&mine, json!({"name": "admins"})).await;
    let (status, own) = cp
        .api_as(
            &member_token,
            Method::POST,
            &format!("/api/organizations/{mine}/keys"),
            Some(json!({"name": "own"})),
        )
        .await;
    assert_eq!(status, 201, "{own}");
    let own_key = own["id"].as_str().expect("key id");
    let (status, _, html) = page(&http, &base, &format!("/orgs/{mine}/keys"), &cookie).await;
    assert_eq!(status, 200);
    let row = |id: &str| {
        html.split(&format!("data-key=\"{id}\""))
            .nth(1)
            .and_then(|r| r.split("</tr>").next())
            .unwrap_or_else(|| panic!("no row for {id}"))
            .to_string()
    };
    assert!(
        row(own_key).contains("/rotate"),
        "own key: {}",
        row(own_key)
    );
    let theirs_row = row(&admins_key);
    assert!(
        !theirs_row.contains("/rotate")
            && !theirs_row.contains("/revoke")
            && !theirs_row.contains("/edit"),
        "another's key offers actions to a member: {theirs_row}"
    );
    let csrf = csrf_of(&html);
    // Missing, wrong, or another site's CSRF: 403, and no key is made.
    let keys = format!("/orgs/{mine}/keys");
    assert_eq!(
        post(&http, &base, &keys, &cookie, &base, &[("name", "a")]).await,
        403
    );
    let wrong = "0".repeat(64);
    assert_eq!(
        post(
            &http,
            &base,
            &keys,
            &cookie,
            &base,
            &[("name", "b"), ("csrf", &wrong)]
        )
        .await,
        403
    );
    assert_eq!(
        post(
            &http,
            &base,
            &keys,
            &cookie,
            "https://evil.example",
            &[("name", "c"), ("csrf", &csrf)]
        )
        .await,
        403
    );
    // Another org's key path with a valid token: the API finds no such org for them.
    assert_eq!(
        post(
            &http,
            &base,
            &format!("/orgs/{theirs}/keys"),
            &cookie,
            &base,
            &[("name", "d"), ("csrf", &csrf)]
        )
        .await,
        404
    );
    let listed = cp
        .admin(
            Method::GET,
            &format!("/api/organizations/{mine}/keys"),
            None,
        )
        .await;
    // Only the two keys made above through the API: no forged post made one.
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    assert_eq!(
        post(
            &http,
            &base,
            &keys,
            &cookie,
            &base,
            &[("name", "e"), ("csrf", &csrf)]
        )
        .await,
        200
    );
    let listed = cp
        .admin(
            Method::GET,
            &format!("/api/organizations/{mine}/keys"),
            None,
        )
        .await;
    // The two API keys and the one the valid post made.
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
    // Another session's CSRF token does not pass for this one.
    let (_, other_cookie) = sign_in(&http, &base, &member_token, HeaderMap::new()).await;
    assert_eq!(
        post(
            &http,
            &base,
            &keys,
            &other_cookie,
            &base,
            &[("name", "f"), ("csrf", &csrf)]
        )
        .await,
        403
    );

    // A member sees no role, removal or team controls; posting them anyway with a
    // valid CSRF token is refused by the API, and nothing changes.
    let (victim, _) = cp.member(&mine, "viewer").await;
    let team = cp
        .admin(
            Method::POST,
            &format!("/api/organizations/{mine}/teams"),
            Some(json!({"name": "Core"})),
        )
        .await;
    let team = team["id"].as_str().expect("team id");
    for tab in ["/members", "/teams"] {
        let (_, _, html) = page(&http, &base, &format!("/orgs/{mine}{tab}"), &cookie).await;
        for control in ["/role\"", "/remove\"", "/members\""] {
            assert!(
                !html.contains(control),
                "{tab} offers {control} to a member"
            );
        }
    }
    for (path, form) in [
        (
            format!("/orgs/{mine}/members/{victim}/role"),
            vec![("role", "admin")],
        ),
        (format!("/orgs/{mine}/members/{victim}/remove"), vec![]),
        (
            format!("/orgs/{mine}/teams/{team}/members"),
            vec![("user_id", victim.as_str())],
        ),
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        assert_eq!(
            post(&http, &base, &path, &cookie, &base, &form).await,
            403,
            "{path}"
        );
    }
    let members = cp
        .admin(
            Method::GET,
            &format!("/api/organizations/{mine}/members"),
            None,
        )
        .await;
    assert!(
        members
            .as_array()
            .expect("members")
            .iter()
            .any(|m| m["user_id"] == victim.as_str() && m["role"] == "viewer"),
        "{members}"
    );
    let in_team = cp
        .admin(Method::GET, &format!("/api/teams/{team}/members"), None)
        .await;
    assert_eq!(in_team, json!([]));

    // A viewer's forged post with a valid CSRF token: the API refuses it.
    let (_, viewer_token) = cp.member(&mine, "viewer").await;
    let (_, viewer) = sign_in(&http, &base, &viewer_token, HeaderMap::new()).await;
    let (_, _, html) = page(&http, &base, &format!("/orgs/{mine}/keys"), &viewer).await;
    assert!(
        !html.contains("data-mutation"),
        "viewer sees mutation controls"
    );
    let vcsrf = csrf_of(&html);
    assert_eq!(
        post(
            &http,
            &base,
            &keys,
            &viewer,
            &base,
            &[("name", "g"), ("csrf", &vcsrf)]
        )
        .await,
        403
    );
    assert_eq!(
        post(
            &http,
            &base,
            &format!("/orgs/{mine}/toggle"),
            &viewer,
            &base,
            &[("csrf", &vcsrf)]
        )
        .await,
        403
    );

    let provider = [
        ("csrf", vcsrf.as_str()),
        ("name", "evil"),
        ("base_url", "https://evil.example"),
        ("models", "*"),
    ];
    let path = format!("/orgs/{mine}/config/providers");
    assert_eq!(
        post(&http, &base, &path, &viewer, &base, &provider).await,
        403
    );

    // Sign-out ends the session.
    assert_eq!(
        post(
            &http,
            &base,
            "/sign-out",
            &viewer,
            &base,
            &[("csrf", &vcsrf)]
        )
        .await,
        303
    );
    let (status, location, _) = page(&http, &base, "/", &viewer).await;
    assert_eq!((status, location.as_str()), (303, "/sign-in"));

    // Revoking the token ends its sessions.
    let tokens = cp.admin(Method::GET, "/api/tokens", None).await;
    let member_uid = cp
        .admin(
            Method::GET,
            &format!("/api/organizations/{mine}/members"),
            None,
        )
        .await
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["role"] == "member")
        .map(|m| m["user_id"].clone())
        .expect("the member");
    let token_id = tokens
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["user_id"] == member_uid)
        .map(|t| t["id"].as_str().expect("id").to_string())
        .expect("the member's token");
    cp.admin(Method::DELETE, &format!("/api/tokens/{token_id}"), None)
        .await;
    let (status, location, _) = page(&http, &base, "/", &cookie).await;
    assert_eq!((status, location.as_str()), (303, "/sign-in"));

    // An agent edit that names no known change is refused and changes nothing (a
    // post without it must not switch the agent off).
    let agent = cp
        .admin(
            Method::POST,
            "/api/agents",
            Some(json!({"name": "Steady", "org_id": mine})),
        )
        .await;
    let agent = agent["id"].as_str().expect("agent id");
    let (_, owner) = sign_in(&http, &base, ADMIN_TOKEN, HeaderMap::new()).await;
    let (_, _, html) = page(&http, &base, &format!("/orgs/{mine}/agents"), &owner).await;
    let csrf = csrf_of(&html);
    for change in [None, Some("name")] {
        let mut form = vec![("csrf", csrf.as_str()), ("active", "false")];
        form.extend(change.map(|c| ("change", c)));
        let path = format!("/orgs/{mine}/agents/{agent}/edit");
        assert_eq!(post(&http, &base, &path, &owner, &base, &form).await, 422);
    }
    let still = cp
        .admin(Method::GET, &format!("/api/agents/{agent}"), None)
        .await;
    assert_eq!(still["active"], true, "{still}");
}

/// `/api/docs` renders the API reference from the served document in a real browser,
/// with every script from the admin service itself (the page's CSP allows no other).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_reference_renders_from_embedded_assets() {
    let cp = ControlPlane::start().await;
    let base = cp.admin_url.clone();
    let mut b = Browser::start("api-docs").await;
    b.goto(&format!("{base}/api/docs")).await;
    // Redoc lists every operation by its summary once it has fetched the document.
    let start = Instant::now();
    loop {
        let text = b.text("#reference").await;
        if text.contains("Create a virtual key") && text.contains("Revoke a key") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the reference never rendered the operations: {}",
            &text[..text.len().min(500)]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.shot("reference").await;
    let scripts = b
        .client
        .execute(
            "return Array.from(document.scripts).map(s => s.src)",
            vec![],
        )
        .await
        .expect("script");
    for src in scripts.as_array().expect("scripts") {
        assert!(
            src.as_str()
                .unwrap_or("")
                .starts_with(&format!("{base}/api/docs/")),
            "{src}"
        );
    }
}
