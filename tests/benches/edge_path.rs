//! Full edge path against the mock provider direct, in one run, at concurrency 1
//! (the gateway's own work per request) and 16 (under load, queueing included):
//! requests/s and the latency the gateway adds at p50 and p99.
//!
//! `cargo bench -p tollgate-e2e --bench edge_path` (release host, release component).

use std::time::{Duration, Instant};

use serde_json::json;
use tollgate_e2e::harness::{Gateway, KEY};

/// Concurrency levels measured, each with its own interleaved rounds.
const CONCURRENCY: [usize; 2] = [1, 16];
const WARMUP_PER_WORKER: usize = 50;

struct Run {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

async fn load(
    client: &reqwest::Client,
    url: &str,
    auth: Option<&str>,
    concurrency: usize,
    per_worker: usize,
) -> Run {
    let body = serde_json::to_vec(
        &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .unwrap();
    let one = |client: reqwest::Client, body: Vec<u8>| {
        let url = url.to_string();
        let auth = auth.map(str::to_string);
        async move {
            let mut req = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body);
            if let Some(a) = &auth {
                req = req.bearer_auth(a);
            }
            let t = Instant::now();
            let resp = req.send().await.expect("request");
            assert_eq!(resp.status(), 200);
            resp.bytes().await.expect("body");
            t.elapsed()
        }
    };
    let worker = |n: usize| {
        let (client, body) = (client.clone(), body.clone());
        let one = &one;
        async move {
            let mut lat = Vec::with_capacity(n);
            for _ in 0..n {
                lat.push(one(client.clone(), body.clone()).await);
            }
            lat
        }
    };
    // Warm connections and the instance pool first.
    futures::future::join_all((0..concurrency).map(|_| worker(WARMUP_PER_WORKER))).await;
    let start = Instant::now();
    let mut all: Vec<Duration> =
        futures::future::join_all((0..concurrency).map(|_| worker(per_worker)))
            .await
            .into_iter()
            .flatten()
            .collect();
    let wall = start.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Run {
        rps: all.len() as f64 / wall.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let per_worker: usize = std::env::var("BENCH_REQUESTS_PER_WORKER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250);
    let gw = Gateway::start().await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY[1])
        .build()
        .unwrap();
    let direct_url = format!("{}/chat/completions", gw.upstream.base_url());
    let edge_url = gw.url("chat/completions");

    for concurrency in CONCURRENCY {
        // Same request count per run at every level.
        let per_worker = per_worker * CONCURRENCY[1] / concurrency;
        measure(&client, &direct_url, &edge_url, concurrency, per_worker).await;
    }
    gw.edge.shutdown().await;
}

/// Interleaved direct and gateway rounds at one concurrency; prints the table.
async fn measure(
    client: &reqwest::Client,
    direct_url: &str,
    edge_url: &str,
    concurrency: usize,
    per_worker: usize,
) {
    // Interleave direct and gateway rounds so drift on a shared machine hits both.
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let direct = load(client, direct_url, None, concurrency, per_worker).await;
        let edge = load(client, edge_url, Some(KEY), concurrency, per_worker).await;
        rounds.push((direct, edge));
    }
    println!(
        "edge path, concurrency {concurrency}, {} requests per run, chat completion (JSON, usage parsed)",
        per_worker * concurrency
    );
    println!(
        "{:<8} {:>12} {:>10} {:>10} {:>12} {:>10} {:>10} {:>11} {:>11}",
        "round",
        "direct rps",
        "p50 ms",
        "p99 ms",
        "gateway rps",
        "p50 ms",
        "p99 ms",
        "+p50 ms",
        "+p99 ms"
    );
    for (i, (d, e)) in rounds.iter().enumerate() {
        println!(
            "{:<8} {:>12.0} {:>10.3} {:>10.3} {:>12.0} {:>10.3} {:>10.3} {:>11.3} {:>11.3}",
            i + 1,
            d.rps,
            ms(d.p50),
            ms(d.p99),
            e.rps,
            ms(e.p50),
            ms(e.p99),
            ms(e.p50) - ms(d.p50),
            ms(e.p99) - ms(d.p99),
        );
    }
    let best = rounds
        .iter()
        .min_by(|a, b| (a.1.p50.saturating_sub(a.0.p50)).cmp(&b.1.p50.saturating_sub(b.0.p50)))
        .unwrap();
    println!(
        "best round: gateway/direct throughput ratio {:.2}, added p50 {:.3} ms, added p99 {:.3} ms",
        best.1.rps / best.0.rps,
        ms(best.1.p50) - ms(best.0.p50),
        ms(best.1.p99) - ms(best.0.p99)
    );
}
