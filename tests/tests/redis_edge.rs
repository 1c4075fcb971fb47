//! Redis as the shared edge store: the backend's semantics against a real
//! `redis-server`, two real edge processes enforcing one org limit together, and
//! the edge failing closed while Redis is away.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use edge_host::kv::DEFAULT_STORE;
use edge_host::{EdgeConfig, EdgeServer, Kv, KvError};
use futures::future::join_all;
use policy::{Metric, Scope, kv};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tollgate_e2e::fixtures;
use tollgate_e2e::harness::{Gateway, KEY, ORG, RedisServer};
use tollgate_e2e::upstream::MockUpstream;
use tollgate_e2e::wall_clock::{MINUTE_MS, clear_of_minute_end, now_ms, secs_left_in_minute};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_backend_keeps_spin_layout_and_atomic_counters() {
    let redis = RedisServer::start();
    let a = Kv::connect(&redis.kv_config()).await.unwrap();
    let b = Kv::connect(&redis.kv_config()).await.unwrap();

    a.set("org:o1", b"{\"x\":1}").await.unwrap();
    // Plain keys, exactly as written: another writer (the admin sink, Spin) sees them.
    assert_eq!(redis.command("STRLEN org:o1"), ":7");
    assert_eq!(
        b.get("org:o1").await.unwrap().as_deref(),
        Some(&b"{\"x\":1}"[..])
    );
    assert_eq!(b.get("org:none").await.unwrap(), None);
    b.set_many(&[
        ("key:2".into(), b"two".to_vec()),
        ("key:1".into(), b"one".to_vec()),
    ])
    .await
    .unwrap();
    assert_eq!(a.list_keys().await.unwrap(), ["key:1", "key:2", "org:o1"]);
    let many = a
        .backend()
        .get_many(
            DEFAULT_STORE,
            &["key:2".into(), "nope".into(), "key:1".into()],
        )
        .await
        .unwrap();
    assert_eq!(many, [Some(b"two".to_vec()), None, Some(b"one".to_vec())]);
    a.backend()
        .delete_many(DEFAULT_STORE, &["key:1".into(), "key:2".into()])
        .await
        .unwrap();
    a.delete("org:o1").await.unwrap();
    assert!(b.list_keys().await.unwrap().is_empty());

    // Increments from two connections and many tasks all land.
    let ctr = "ctr:org:o1:rpm:29000000";
    let tasks = (0..16).map(|i| {
        let kv = if i % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move {
            for _ in 0..100 {
                kv.increment(ctr, 1).await.unwrap();
            }
        })
    });
    join_all(tasks).await.into_iter().for_each(|r| r.unwrap());
    assert_eq!(a.counter(ctr).await.unwrap(), 1600);
    // Spin's Redis layout: counters are Redis integers (decimal text).
    assert_eq!(b.get(ctr).await.unwrap().as_deref(), Some(&b"1600"[..]));
    // Counters expire after the longest period that can read them; records never.
    let ttl: i64 = redis.command(&format!("TTL {ctr}"))[1..].parse().unwrap();
    assert!((34 * 86_400..=35 * 86_400).contains(&ttl), "TTL {ttl}");
    a.set("org:o2", b"{}").await.unwrap();
    assert_eq!(redis.command("TTL org:o2"), ":-1");
    // Reading a counter creates nothing.
    assert_eq!(a.counter("ctr:none").await.unwrap(), 0);
    assert_eq!(redis.command("EXISTS ctr:none"), ":0");
    // Not a number: an error, not a silent zero.
    assert!(matches!(
        a.increment("org:o2", 1).await,
        Err(KvError::NotACounter { .. })
    ));
    a.set("ctr:max", i64::MAX.to_string().as_bytes())
        .await
        .unwrap();
    assert!(matches!(
        a.increment("ctr:max", 1).await,
        Err(KvError::Overflow { .. })
    ));

    // Compare-and-swap, binary-safe, against absent and present values.
    let cas = |expected: Option<&'static [u8]>, new: &'static [u8]| {
        let a = a.clone();
        async move {
            a.backend()
                .compare_and_swap(DEFAULT_STORE, "cas", expected, new)
                .await
                .unwrap()
        }
    };
    assert!(cas(None, b"\x00one").await);
    assert!(!cas(None, b"two").await);
    assert!(!cas(Some(b"one"), b"two").await);
    assert!(cas(Some(b"\x00one"), b"two").await);
    assert_eq!(a.get("cas").await.unwrap().as_deref(), Some(&b"two"[..]));
}

/// One `tollgate-edge` process on `kv`, allowed to call `upstream`.
struct EdgeProcess {
    url: String,
    _child: Child,
}

impl EdgeProcess {
    async fn start(kv: &str, upstream: &MockUpstream) -> EdgeProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate-edge-node"))
            .args(["serve", "--listen", "127.0.0.1:0", "--kv", kv])
            .args(["--allow-outbound", &upstream.addr().to_string()])
            // The burst below is 100 concurrent requests per node from one org.
            .args(["--org-max-in-flight", "1000"])
            .env("RUST_LOG", "warn")
            // Opens the provider credential the fixture org record carries sealed.
            .env("TOLLGATE_EDGE_KEYS", fixtures::EDGE_KEYS)
            .env_remove("TOLLGATE_EDGE_KEY_FILE")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("edge process starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        // The process prints its URL once it serves.
        let url = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .expect("edge process serves within 2 minutes")
            .expect("stdout readable")
            .expect("edge process printed its URL");
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        EdgeProcess { url, _child: child }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_edge_processes_on_one_redis_admit_exactly_the_org_rpm() {
    let redis = RedisServer::start();
    let upstream = MockUpstream::start().await;
    let store = Kv::connect(&redis.kv_config()).await.unwrap();
    let mut org = fixtures::org(ORG, &upstream.base_url());
    org.limits.rpm = Some(20);
    let key = fixtures::key("key_full", ORG, &fixtures::SERVED);
    store
        .set_many(&[fixtures::org_entry(&org), fixtures::key_entry(KEY, &key)])
        .await
        .unwrap();
    let url = redis.url();
    let (one, two) = tokio::join!(
        EdgeProcess::start(&url, &upstream),
        EdgeProcess::start(&url, &upstream)
    );

    clear_of_minute_end().await;
    let http = reqwest::Client::new();
    let body = serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    let started = now_ms();
    let answers = join_all((0..200).map(|i| {
        let url = format!(
            "{}/v1/chat/completions",
            if i % 2 == 0 { &one.url } else { &two.url }
        );
        let (http, body) = (http.clone(), body.clone());
        async move {
            let resp = http
                .post(url)
                .bearer_auth(KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let retry = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            let remaining = resp.headers()["x-ratelimit-remaining-requests"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap();
            let json: Value = resp.json().await.unwrap();
            (status, retry, remaining, json)
        }
    }))
    .await;
    let finished = now_ms();
    assert_eq!(
        started / MINUTE_MS,
        finished / MINUTE_MS,
        "burst within one minute"
    );

    let ok: Vec<_> = answers.iter().filter(|a| a.0 == 200).collect();
    let limited: Vec<_> = answers.iter().filter(|a| a.0 == 429).collect();
    assert_eq!((ok.len(), limited.len()), (20, 180));
    let remaining: BTreeSet<u64> = ok.iter().map(|a| a.2).collect();
    assert_eq!(
        remaining,
        (0..20).collect(),
        "each admitted request saw its own count"
    );
    let retry_range = secs_left_in_minute(finished)..=secs_left_in_minute(started);
    for (_, retry, remaining, json) in &limited {
        assert_eq!(json["error"]["code"], "rate_limit_exceeded", "{json}");
        assert!(
            retry_range.contains(&retry.unwrap()),
            "{retry:?} not in {retry_range:?}"
        );
        assert_eq!(*remaining, 0);
    }
    let window = started / MINUTE_MS;
    let counter = kv::counter_key(Scope::Org, ORG, Metric::Rpm, window);
    assert_eq!(store.counter(&counter).await.unwrap(), 20);
    assert_eq!(upstream.received().len(), 20);
    // Both processes spooled their events into the one store: the 20 forwarded
    // requests, and the 180 refused ones as denials (the request log).
    let mut forwarded = 0;
    let mut denied = 0;
    for k in store.list_keys().await.unwrap() {
        if k.starts_with(policy::usage::USAGE_PREFIX) {
            let bytes = store.get(&k).await.unwrap().expect("event present");
            let e = policy::UsageEvent::decode(&bytes).expect("a usage event");
            if e.denied {
                assert_eq!(e.code.as_deref(), Some("rate_limit_exceeded"), "{e:?}");
                denied += 1;
            } else {
                forwarded += 1;
            }
        }
    }
    assert_eq!((forwarded, denied), (20, 180));
}

#[tokio::test]
async fn edge_on_redis_fails_closed_while_redis_is_away_and_recovers() {
    let mut redis = RedisServer::start();
    let gw = Gateway::start_on_redis(&redis).await;
    let upstream = &gw.upstream;
    assert_eq!(gw.chat(KEY, "gpt-4o").await.status(), 200);

    redis.kill();
    let resp = gw.chat(KEY, "gpt-4o").await;
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "policy_unavailable", "{body}");
    assert_eq!(
        upstream.received().len(),
        1,
        "nothing forwarded while unverifiable"
    );

    // A fresh (empty) Redis on the same address: the edge reconnects by itself,
    // and serves again once records are pushed.
    redis.restart();
    let org = fixtures::org(ORG, &upstream.base_url());
    let key = fixtures::key("key_full", ORG, &fixtures::SERVED);
    let store = Kv::connect(&redis.kv_config()).await.unwrap();
    store
        .set_many(&[fixtures::org_entry(&org), fixtures::key_entry(KEY, &key)])
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let status = gw.chat(KEY, "gpt-4o").await.status().as_u16();
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(
            std::time::Instant::now() < deadline,
            "edge did not reconnect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn edge_refuses_to_start_on_an_unreachable_redis() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = EdgeServer::start(EdgeConfig {
        kv: edge_host::KvConfig::Redis(format!("redis://127.0.0.1:{port}")),
        ..EdgeConfig::default()
    })
    .await
    .err()
    .expect("no edge without its store");
    assert!(err.to_string().contains("redis"), "{err}");
}

/// Every limit of a key and its org, and a budget on each: what a request moves.
async fn seed_every_limit(gw: &Gateway) {
    use policy::{Budget, BudgetPeriod, Limits};
    let every = Limits {
        rpm: Some(1_000),
        rph: Some(1_000),
        rpd: Some(1_000),
        tpm: Some(1_000_000),
        tpd: Some(1_000_000),
    };
    let budget = Some(Budget {
        limit_micros: 1_000_000_000,
        period: BudgetPeriod::Monthly,
        utc_offset_minutes: 0,
    });
    let mut org = fixtures::org(ORG, &gw.upstream.base_url());
    org.limits = every;
    org.budget = budget;
    org.prices = vec![fixtures::price("gpt-4o-mini", 150_000, 600_000)];
    let mut key = fixtures::key("key_full", ORG, &fixtures::SERVED);
    key.limits = every;
    key.budget = budget;
    gw.edge
        .kv()
        .set_many(&[fixtures::org_entry(&org), fixtures::key_entry(KEY, &key)])
        .await
        .unwrap();
}

/// Writes `records` and bumps the records version, as a push of the admin service does.
async fn push(gw: &Gateway, records: &[(String, Vec<u8>)]) {
    gw.edge.kv().set_many(records).await.unwrap();
    gw.edge
        .kv()
        .increment(kv::RECORDS_VERSION_KEY, 1)
        .await
        .unwrap();
}

/// The commands one successful request sends to Redis, its settling included.
async fn round_trips(gw: &Gateway, redis: &RedisServer) -> Vec<String> {
    let monitor = redis.monitor();
    assert_eq!(gw.chat(KEY, "gpt-4o-mini").await.status(), 200);
    gw.settled().await;
    monitor.commands(redis)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_under_every_limit_costs_three_redis_round_trips_with_records_kept() {
    let redis = RedisServer::start();
    let gw = Gateway::start_on_redis(&redis).await;
    seed_every_limit(&gw).await;
    clear_of_minute_end().await;
    // The first request loads the counters script into Redis.
    assert_eq!(gw.chat(KEY, "gpt-4o-mini").await.status(), 200);
    gw.settled().await;

    // Records written by hand: no version announces changes, so none are kept.
    // The version (with the spool's count, in one script), the key and org
    // records, then ten limit counters, two budget reservations and the spool
    // check in one script before forwarding; the token counts, the settled spend
    // and the usage event in one after.
    assert_eq!(
        round_trips(&gw, &redis).await,
        ["EVALSHA", "GET", "GET", "EVALSHA", "EVALSHA"]
    );

    // Once a version stands (the admin service bumps it with every push), the
    // records read under it are kept: two round trips before forwarding, one after.
    push(&gw, &[]).await;
    assert_eq!(gw.chat(KEY, "gpt-4o-mini").await.status(), 200);
    gw.settled().await;
    assert_eq!(
        round_trips(&gw, &redis).await,
        ["EVALSHA", "EVALSHA", "EVALSHA"]
    );

    // A key of an org without limits checks only the spool's room, which
    // admission read with the version: one round trip before forwarding, one after.
    let bare = "sk-tg-a-key-without-limits";
    let free_org = fixtures::org("org_unlimited", &gw.upstream.base_url());
    let unlimited = fixtures::key("key_bare", "org_unlimited", &fixtures::SERVED);
    push(
        &gw,
        &[
            fixtures::org_entry(&free_org),
            fixtures::key_entry(bare, &unlimited),
        ],
    )
    .await;
    assert_eq!(gw.chat(bare, "gpt-4o-mini").await.status(), 200);
    gw.settled().await;
    let monitor = redis.monitor();
    assert_eq!(gw.chat(bare, "gpt-4o-mini").await.status(), 200);
    gw.settled().await;
    assert_eq!(monitor.commands(&redis), ["EVALSHA", "EVALSHA"]);

    // A record pushed with a new version is read afresh by the very next request.
    let mut revoked = fixtures::key("key_full", ORG, &fixtures::SERVED);
    revoked.status = policy::KeyStatus::Revoked;
    push(&gw, &[fixtures::key_entry(KEY, &revoked)]).await;
    assert_eq!(gw.chat(KEY, "gpt-4o-mini").await.status(), 401);

    // An unknown key is kept as absent, and a push that creates it ends that.
    let late = "sk-tg-created-after-a-refusal";
    assert_eq!(gw.chat(late, "gpt-4o-mini").await.status(), 401);
    assert_eq!(gw.chat(late, "gpt-4o-mini").await.status(), 401);
    let created = fixtures::key("key_late", ORG, &fixtures::SERVED);
    push(&gw, &[fixtures::key_entry(late, &created)]).await;
    assert_eq!(gw.chat(late, "gpt-4o-mini").await.status(), 200);

    let events = gw.events().await;
    assert_eq!(
        events.iter().filter(|e| !e.denied).count(),
        7,
        "every request spooled"
    );
    let tpm = kv::counter_key(
        Scope::Key,
        "key_full",
        Metric::Tpm,
        Metric::Tpm.window(now_ms()).index,
    );
    let tokens: u64 = events
        .iter()
        .filter(|e| e.key_id == "key_full")
        .map(|e| e.input_tokens + e.output_tokens)
        .sum();
    assert_eq!(gw.edge.kv().counter(&tpm).await.unwrap(), tokens as i64);
}
