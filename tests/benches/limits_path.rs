//! What limit checks add to the edge path, in one run: the same chat completion
//! through the same edge, once for a key with no limits and once for a key under
//! every limit at every scope plus key and org budgets (5 request counters taken,
//! 3 token counters read, 2 budget reservations before forwarding; 3 token adds
//! and 2 settlements after), on the in-memory store and on a real Redis.
//!
//! `cargo bench -p tollgate-e2e --bench limits_path` (needs `redis-server`).

use std::time::{Duration, Instant};

use policy::{Budget, BudgetPeriod, Limits};
use serde_json::json;
use tollgate_e2e::fixtures;
use tollgate_e2e::harness::{Gateway, KEY, RedisServer};

const CONCURRENCY: usize = 8;
const LIMITED_KEY: &str = "sk-tg-bench-limited-0123456789abcdef";
/// Limits no run reaches: every check runs, none refuses.
const HUGE: u64 = 1_000_000_000_000;

/// Requests of `per_worker` each on CONCURRENCY workers; sorted latencies.
async fn run(http: &reqwest::Client, url: &str, key: &str, per_worker: usize) -> Vec<Duration> {
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]});
    let worker = || {
        let (http, body) = (http.clone(), body.clone());
        async move {
            let mut lat = Vec::with_capacity(per_worker);
            for _ in 0..per_worker {
                let t = Instant::now();
                let resp = http.post(url).bearer_auth(key).json(&body).send().await;
                let resp = resp.expect("request");
                assert_eq!(resp.status(), 200, "{}", key);
                resp.bytes().await.expect("body");
                lat.push(t.elapsed());
            }
            lat
        }
    };
    let mut all: Vec<Duration> = futures::future::join_all((0..CONCURRENCY).map(|_| worker()))
        .await
        .into_iter()
        .flatten()
        .collect();
    all.sort();
    all
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1e3
}

/// A second org whose key, team and org are limited on every metric, with budgets.
async fn seed_limited(gw: &Gateway) {
    let all = Limits {
        rpm: Some(HUGE),
        rph: Some(HUGE),
        rpd: Some(HUGE),
        tpm: Some(HUGE),
        tpd: Some(HUGE),
    };
    let budget = Some(Budget {
        limit_micros: HUGE,
        period: BudgetPeriod::Monthly,
        utc_offset_minutes: 0,
    });
    let mut org = fixtures::org("org_limited", &gw.upstream.base_url());
    org.limits = all;
    org.budget = budget;
    org.prices = vec![fixtures::price("gpt-4o-mini", 150_000, 600_000)];
    let mut team = fixtures::team("team_limited", "org_limited");
    team.limits.rpm = Some(HUGE);
    let mut key = fixtures::key("key_limited", "org_limited", &fixtures::SERVED);
    key.team_id = Some("team_limited".into());
    key.limits = Limits {
        rpm: Some(HUGE),
        tpm: Some(HUGE),
        ..Limits::default()
    };
    key.budget = budget;
    gw.edge
        .kv()
        .set_many(&[
            fixtures::org_entry(&org),
            fixtures::team_entry(&team),
            fixtures::key_entry(LIMITED_KEY, &key),
        ])
        .await
        .expect("seed");
}

async fn compare(store: &str, gw: &Gateway, per_worker: usize) {
    seed_limited(gw).await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let url = gw.url("chat/completions");
    // Warm connections, the instance pool and the store.
    run(&http, &url, KEY, 50).await;
    run(&http, &url, LIMITED_KEY, 50).await;
    println!(
        "{store:<7} {:<6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "round", "bare p50", "bare p99", "limit p50", "limit p99", "+p50 ms", "+p99 ms"
    );
    let mut added = Vec::new();
    // Interleaved so drift on a shared machine hits both paths alike.
    for round in 1..=3 {
        let bare = run(&http, &url, KEY, per_worker).await;
        let limited = run(&http, &url, LIMITED_KEY, per_worker).await;
        let (b50, b99, l50, l99) = (
            pct(&bare, 0.5),
            pct(&bare, 0.99),
            pct(&limited, 0.5),
            pct(&limited, 0.99),
        );
        println!(
            "{store:<7} {round:<6} {b50:>10.3} {b99:>10.3} {l50:>10.3} {l99:>10.3} {:>10.3} {:>10.3}",
            l50 - b50,
            l99 - b99
        );
        added.push(l50 - b50);
    }
    added.sort_by(f64::total_cmp);
    println!(
        "{store}: median added p50 over 3 rounds {:.3} ms per request (concurrency {CONCURRENCY}, {} requests per path per round)",
        added[1],
        per_worker * CONCURRENCY
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let per_worker: usize = std::env::var("BENCH_REQUESTS_PER_WORKER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    println!("limit checks on the edge path: chat completion, latencies in ms");

    let gw = Gateway::start().await;
    compare("memory", &gw, per_worker).await;
    gw.edge.shutdown().await;

    let redis = RedisServer::start();
    let gw = Gateway::start_on_redis(&redis).await;
    compare("redis", &gw, per_worker).await;
    gw.edge.shutdown().await;
}
