//! CPU per request, throughput and latency of the edge, in one run, on every
//! key-value backend, next to the provider direct.
//!
//! The edge runs in a child process (this binary again, `TOLLGATE_BENCH_ROLE=node`)
//! so its CPU time (`/proc/<pid>/stat`, user + system) is its own: on SQLite it is
//! wired as `tollgate up` wires it (admin service pushing records to the KV file
//! and draining usage from it, in the same process as the edge); on Redis the same
//! with a Redis sink; in memory the records are seeded directly (nothing drains).
//! The provider is a minimal hyper server in this (the load) process answering a
//! fixed chat completion.
//!
//! For each backend, at concurrency 1 and 16: a key without limits, and a key under
//! key and org RPM/TPM/RPH/RPD/TPD plus key and org budgets.
//!
//! `scripts/bench` (release build, `nice`); `BENCH_SECONDS` (default 5) per run,
//! `BENCH_BACKENDS` (default `sqlite,memory,redis`). `BENCH_BEFORE=<path>` names an
//! older build of this bench whose nodes run beside this build's, interleaved in
//! the same run, for a before/after table. `BENCH_EXTRA_KEYS=<n>` first fills
//! each store with n more key records (lookup time against store size).

use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use reqwest::Method;
use serde_json::{Value, json};
use tollgate_e2e::fixtures;
use tollgate_e2e::harness::RedisServer;

const ROLE: &str = "TOLLGATE_BENCH_ROLE";
const CONCURRENCY: [usize; 2] = [1, 16];
const MODEL: &str = "gpt-4o-mini";
const ADMIN_TOKEN: &str = "tg-admin-bench-0123456789abcdef0123";
/// Limits no run reaches: every check runs, none refuses.
const HUGE: u64 = 1_000_000_000_000;

/// The fixed answer of the bench provider (usage included, as OpenAI sends it).
const ANSWER: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello."},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}"#;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match std::env::var(ROLE).as_deref() {
        Ok("node") => runtime.block_on(node::run()),
        Ok("proxy") => runtime.block_on(proxy::run()),
        _ => runtime.block_on(drive()),
    }
}

/// Serves the fixed answer on a free loopback port.
async fn provider() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind provider");
    let addr = listener.local_addr().expect("provider addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|_req| async {
                    let mut resp =
                        hyper::Response::new(Full::new(Bytes::from_static(ANSWER.as_bytes())));
                    resp.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, std::convert::Infallible>(resp)
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// One measured run.
struct Run {
    requests: usize,
    rps: f64,
    p50: Duration,
    p99: Duration,
    /// Edge process CPU per request, µs (none for the provider direct).
    cpu_us: Option<f64>,
}

/// User + system CPU time of `pid` so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line (11 and 12 here).
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // /proc reports in USER_HZ, which Linux fixes at 100 for user space.
    Duration::from_millis(ticks * 10)
}

/// `concurrency` workers sending requests for `seconds` after a warm-up; the
/// edge's CPU measured over the timed part when `pid` is given.
async fn load(
    client: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    concurrency: usize,
    seconds: f64,
    pid: Option<u32>,
) -> Run {
    let body = Bytes::from(
        serde_json::to_vec(
            &json!({"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .unwrap(),
    );
    let worker = |until: Instant| {
        let (client, body, url) = (client.clone(), body.clone(), url.to_string());
        let key = key.map(str::to_string);
        async move {
            let mut lat = Vec::new();
            while Instant::now() < until {
                let mut req = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone());
                if let Some(k) = &key {
                    req = req.bearer_auth(k);
                }
                let t = Instant::now();
                let resp = req.send().await.expect("request");
                let status = resp.status();
                let bytes = resp.bytes().await.expect("body");
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
                lat.push(t.elapsed());
            }
            lat
        }
    };
    let warm = Instant::now() + Duration::from_secs_f64((seconds / 5.0).max(0.5));
    futures::future::join_all((0..concurrency).map(|_| worker(warm))).await;
    let cpu_before = pid.map(cpu_time);
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(seconds);
    let mut all: Vec<Duration> = futures::future::join_all((0..concurrency).map(|_| worker(until)))
        .await
        .into_iter()
        .flatten()
        .collect();
    let wall = start.elapsed();
    let cpu = pid
        .zip(cpu_before)
        .map(|(pid, before)| cpu_time(pid).saturating_sub(before));
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Run {
        requests: all.len(),
        rps: all.len() as f64 / wall.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        cpu_us: cpu.map(|c| c.as_secs_f64() * 1e6 / all.len() as f64),
    }
}

/// A running edge node (child process) and what it printed.
struct Node {
    child: Child,
    stdin: Option<ChildStdin>,
    edge_url: String,
    bare_key: String,
    limited_key: String,
}

impl Node {
    fn spawn(exe: &str, backend: &str, provider: SocketAddr, redis: Option<&str>) -> Node {
        Node::spawn_as("node", exe, backend, provider, redis)
    }

    fn spawn_as(
        role: &str,
        exe: &str,
        backend: &str,
        provider: SocketAddr,
        redis: Option<&str>,
    ) -> Node {
        let mut child = Command::new(exe)
            .env(ROLE, role)
            .env("BENCH_NODE_BACKEND", backend)
            .env("BENCH_NODE_PROVIDER", provider.to_string())
            .env("BENCH_NODE_REDIS", redis.unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node starts");
        let stdin = child.stdin.take();
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut field = |name: &str| {
            let line = lines.next().expect("node line").expect("node output");
            line.strip_prefix(&format!("{name} "))
                .unwrap_or_else(|| panic!("expected {name}, got {line}"))
                .to_string()
        };
        let edge_url = field("edge");
        let bare_key = field("bare");
        let limited_key = field("limited");
        Node {
            child,
            stdin,
            edge_url,
            bare_key,
            limited_key,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Closing stdin asks the node to stop; it is killed if it does not.
        drop(self.stdin.take());
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child's lifetime: until the driver closes its stdin.
async fn until_stdin_closes() {
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
    })
    .await
    .expect("stdin");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn row(backend: &str, path: &str, c: usize, r: &Run, direct: &Run) {
    let backend = if path.contains("direct") || path.contains("floor") {
        "-"
    } else {
        backend
    };
    let cpu = r.cpu_us.map_or("-".to_string(), |c| format!("{c:.0}"));
    println!(
        "| {backend} | {path} | {c} | {:.0} | {:.3} | {:.3} | {cpu} | {:.2} | {:+.3} | {:+.3} | {} |",
        r.rps,
        ms(r.p50),
        ms(r.p99),
        r.rps / direct.rps,
        ms(r.p50) - ms(direct.p50),
        ms(r.p99) - ms(direct.p99),
        r.requests,
    );
    let _ = std::io::stdout().flush();
}

async fn drive() {
    let seconds: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5.0);
    let backends = std::env::var("BENCH_BACKENDS").unwrap_or("sqlite,memory,redis".into());
    let provider = provider().await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY[1])
        .build()
        .unwrap();
    let direct_url = format!("http://{provider}/v1/chat/completions");
    println!(
        "edge CPU bench: {seconds} s per run, chat completion (JSON, usage parsed), {} cores, {} extra keys",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::var("BENCH_EXTRA_KEYS").unwrap_or("no".into())
    );
    println!(
        "| store | path | conc. | rps | p50 ms | p99 ms | edge CPU µs/req | rps ÷ direct | +p50 ms | +p99 ms | requests |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let redis = backends.contains("redis").then(RedisServer::start);
    let this = std::env::current_exe().expect("own path");
    let mut builds = vec![("", this.display().to_string())];
    if let Ok(before) = std::env::var("BENCH_BEFORE") {
        builds.insert(0, ("before: ", before));
    }
    // The floor: what two HTTP hops cost this machine with no gateway work at all.
    let floor = Node::spawn_as("proxy", &this.display().to_string(), "-", provider, None);
    for c in CONCURRENCY {
        let direct = load(&client, &direct_url, None, c, seconds, None).await;
        row("-", "provider direct", c, &direct, &direct);
        let url = format!("{}/v1/chat/completions", floor.edge_url);
        let run = load(&client, &url, None, c, seconds, Some(floor.child.id())).await;
        row("-", "hyper pass-through proxy (floor)", c, &run, &direct);
    }
    drop(floor);
    for backend in backends.split(',') {
        // Each build on a Redis database of its own.
        let nodes: Vec<(&str, Node)> = builds
            .iter()
            .enumerate()
            .map(|(i, (label, exe))| {
                let redis_url = redis.as_ref().map(|r| format!("{}/{i}", r.url()));
                (
                    *label,
                    Node::spawn(exe, backend, provider, redis_url.as_deref()),
                )
            })
            .collect();
        for c in CONCURRENCY {
            let direct = load(&client, &direct_url, None, c, seconds, None).await;
            row(backend, "provider direct", c, &direct, &direct);
            for (path, limited) in [
                ("key without limits", false),
                ("key + org limits, 2 budgets", true),
            ] {
                for (label, node) in &nodes {
                    let url = format!("{}/v1/chat/completions", node.edge_url);
                    let key = if limited {
                        &node.limited_key
                    } else {
                        &node.bare_key
                    };
                    let pid = node.child.id();
                    let run = load(&client, &url, Some(key), c, seconds, Some(pid)).await;
                    row(&format!("{label}{backend}"), path, c, &run, &direct);
                }
            }
        }
        drop(nodes);
    }
}

/// The edge node: admin service and edge as `tollgate up` runs them.
mod node {
    use super::*;
    use admin_service::sync::sinks::SinkTarget;
    use admin_service::vault::KeySource;
    use edge_host::{EdgeConfig, EdgeServer, KvConfig};

    pub async fn run() {
        let backend = std::env::var("BENCH_NODE_BACKEND").expect("backend");
        let provider = std::env::var("BENCH_NODE_PROVIDER").expect("provider");
        let redis = std::env::var("BENCH_NODE_REDIS").unwrap_or_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let kv_path = dir.path().join("edge-kv.db");
        let (kv, sink) = match backend.as_str() {
            "sqlite" => (
                KvConfig::Sqlite(kv_path.clone()),
                Some(SinkTarget::Sqlite(kv_path)),
            ),
            "redis" => (
                KvConfig::Redis(redis.clone()),
                Some(SinkTarget::Redis(redis)),
            ),
            "memory" => (KvConfig::Memory, None),
            other => panic!("unknown backend {other}"),
        };
        let edge = EdgeServer::start(EdgeConfig {
            kv,
            allowed_outbound: vec![provider.clone()],
            edge_keys: fixtures::edge_keys(),
            ..EdgeConfig::default()
        })
        .await
        .expect("edge starts");
        let base_url = format!("http://{provider}/v1");
        let (bare, limited, _admin) = match sink {
            Some(sink) => admin_keys(dir.path(), sink, &base_url).await,
            None => {
                let (b, l) = seed_memory(&edge, &base_url).await;
                (b, l, None)
            }
        };
        let extra: usize = std::env::var("BENCH_EXTRA_KEYS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        fill(&edge, extra).await;
        println!("edge {}", edge.url());
        println!("bare {bare}");
        println!("limited {limited}");
        until_stdin_closes().await;
        edge.shutdown().await;
    }

    /// Adds `n` key records of another org, in batches.
    async fn fill(edge: &EdgeServer, n: usize) {
        let record = policy::records::encode(&fixtures::key("key_filler", "org_filler", &[MODEL]));
        let mut done = 0;
        while done < n {
            let batch: Vec<(String, Vec<u8>)> = (done..n.min(done + 10_000))
                .map(|i| {
                    let name = policy::kv::KeyName::of(&format!("sk-tg-filler-{i:012}"));
                    (name.as_str().to_string(), record.clone())
                })
                .collect();
            done += batch.len();
            edge.kv().set_many(&batch).await.expect("fill");
        }
    }

    /// Starts the admin service on `sink` (its database in `dir`), creates both
    /// orgs and keys through its API and waits until the edge store has them.
    async fn admin_keys(
        dir: &std::path::Path,
        sink: SinkTarget,
        base_url: &str,
    ) -> (String, String, Option<tokio::task::JoinHandle<()>>) {
        let config = admin_service::Config {
            database_url: format!("sqlite://{}", dir.join("admin.db").display()),
            edge_kv: vec![sink],
            admin_token: Some(ADMIN_TOKEN.to_string()),
            master_key: KeySource::Inline(fixtures::MASTER_KEY.to_string().into()),
            edge_keys: KeySource::Inline(fixtures::EDGE_KEYS.to_string().into()),
        };
        let started = admin_service::start(&config)
            .await
            .expect("admin service starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind admin");
        let admin_url = format!("http://{}", listener.local_addr().expect("admin addr"));
        let server = tokio::spawn(async move {
            let _ = admin_service::serve(listener, started.state, std::future::pending()).await;
        });
        let http = reqwest::Client::new();
        let api = |method: Method, path: &str, body: Option<Value>| {
            let req = http
                .request(method, format!("{admin_url}{path}"))
                .bearer_auth(ADMIN_TOKEN);
            let req = match body {
                Some(b) => req.json(&b),
                None => req,
            };
            async move {
                let resp = req.send().await.expect("admin reachable");
                let status = resp.status();
                let v: Value = resp.json().await.unwrap_or(Value::Null);
                assert!(status.is_success(), "admin answered {status}: {v}");
                v
            }
        };
        api(
            Method::POST,
            "/api/models",
            Some(
                json!({"name": MODEL, "input_price_per_1m": "0.15", "output_price_per_1m": "0.60"}),
            ),
        )
        .await;
        let mut keys = Vec::new();
        for limited in [false, true] {
            let org = api(
                Method::POST,
                "/api/organizations",
                Some(json!({"name": if limited {"limited"} else {"bare"}, "currency": "USD"})),
            )
            .await;
            let org = org["id"].as_str().expect("org id").to_string();
            let mut config = json!({"providers": [{
                "name": "bench",
                "base_url": base_url,
                "api_key": fixtures::PROVIDER_KEY,
                "models": [MODEL],
            }]});
            let mut key = json!({"name": "bench"});
            if limited {
                config["rate_limiting"] =
                    json!({"rpm": HUGE, "tpm": HUGE, "rph": HUGE, "rpd": HUGE, "tpd": HUGE});
                config["budgets"] = json!({"limit": "1000000", "period": "monthly"});
                key = json!({"name": "bench", "rate_limit_rpm": HUGE, "rate_limit_tpm": HUGE,
                    "budget": {"limit": "1000000", "period": "monthly"}});
            }
            api(
                Method::PATCH,
                &format!("/api/organizations/{org}/config"),
                Some(json!({ "config": config })),
            )
            .await;
            let key = api(
                Method::POST,
                &format!("/api/organizations/{org}/keys"),
                Some(key),
            )
            .await;
            keys.push(key["key"].as_str().expect("secret").to_string());
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = api(Method::GET, "/api/sync/status", None).await;
            if s["sinks"]
                .as_array()
                .expect("sinks")
                .iter()
                .all(|k| k["pending"] == 0)
            {
                break;
            }
            assert!(Instant::now() < deadline, "sinks did not catch up: {s}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The outbox pushers and usage drain keep running, as under `tollgate up`.
        std::mem::forget(started.pushers);
        let limited = keys.pop().expect("limited key");
        let bare = keys.pop().expect("bare key");
        (bare, limited, Some(server))
    }

    /// Seeds both orgs and keys straight into the memory store.
    async fn seed_memory(edge: &EdgeServer, base_url: &str) -> (String, String) {
        use policy::{Budget, BudgetPeriod, Limits};
        let bare = "sk-tg-bench-bare-0123456789abcdef".to_string();
        let limited = "sk-tg-bench-limited-0123456789abcdef".to_string();
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
        let mut org = fixtures::org("org_bare", base_url);
        org.prices = vec![fixtures::price(MODEL, 150_000, 600_000)];
        let mut limited_org = fixtures::org("org_limited", base_url);
        limited_org.limits = all;
        limited_org.budget = budget;
        limited_org.prices = org.prices.clone();
        let bare_key = fixtures::key("key_bare", "org_bare", &[MODEL]);
        let mut limited_key = fixtures::key("key_limited", "org_limited", &[MODEL]);
        limited_key.limits = Limits {
            rpm: Some(HUGE),
            tpm: Some(HUGE),
            ..Limits::default()
        };
        limited_key.budget = budget;
        edge.kv()
            .set_many(&[
                fixtures::org_entry(&org),
                fixtures::org_entry(&limited_org),
                fixtures::key_entry(&bare, &bare_key),
                fixtures::key_entry(&limited, &limited_key),
            ])
            .await
            .expect("seed");
        (bare, limited)
    }
}

/// The floor: a hyper proxy that forwards every request to the provider over a
/// pooled connection and streams the answer back, with no policy, no guest and
/// no store, on tokio's default runtime. Prints the node's three lines.
mod proxy {
    use super::*;
    use http_body_util::BodyExt;
    use hyper_util::client::legacy::Client;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;

    pub async fn run() {
        let provider = std::env::var("BENCH_NODE_PROVIDER").expect("provider");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        println!("edge http://{}", listener.local_addr().expect("proxy addr"));
        println!("bare -");
        println!("limited -");
        let client: Client<HttpConnector, hyper::body::Incoming> =
            Client::builder(TokioExecutor::new()).build_http();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (client, provider) = (client.clone(), provider.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (client, provider) = (client.clone(), provider.clone());
                        async move {
                            let (mut parts, body) = req.into_parts();
                            parts.uri = format!("http://{provider}{}", parts.uri.path())
                                .parse()
                                .expect("upstream uri");
                            let resp = client
                                .request(hyper::Request::from_parts(parts, body))
                                .await
                                .expect("provider answers");
                            Ok::<_, std::convert::Infallible>(resp.map(BodyExt::boxed))
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        until_stdin_closes().await;
    }
}
