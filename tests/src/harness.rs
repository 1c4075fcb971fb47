//! A running gateway for tests and benchmarks: the real component under the real
//! host, in front of the mock provider, with records seeded in its store.

use std::time::Duration;

use edge_host::{EdgeConfig, EdgeLimits, EdgeServer, KvConfig};

use crate::fixtures;
use crate::upstream::MockUpstream;

/// Org id of the seeded organization.
pub const ORG: &str = "org_test";
/// A key that may call every model the org serves.
pub const KEY: &str = "sk-tg-test-full-0123456789abcdefghijklmnop";
/// A key that may call `gpt-4o-mini` only.
pub const NARROW_KEY: &str = "sk-tg-test-narrow-0123456789abcdefghijk";

/// The edge, the provider behind it and an HTTP client.
pub struct Gateway {
    /// The edge runtime serving the component.
    pub edge: EdgeServer,
    /// The mock provider the org's records point at.
    pub upstream: MockUpstream,
    /// A client with no default headers.
    pub http: reqwest::Client,
}

/// Which build of the component an edge runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// The one the edge embeds: counters batched through `tollgate:gateway/counters`.
    Edge,
    /// The one `spin.toml` deploys: plain `wasi:keyvalue`, one call per counter.
    Portable,
}

impl Build {
    /// The component file to give [`EdgeConfig::component`]; none: the embedded one.
    pub fn component(self) -> Option<std::path::PathBuf> {
        match self {
            Build::Edge => None,
            Build::Portable => Some(edge_host::PORTABLE_COMPONENT.into()),
        }
    }
}

/// Host settings for tests: memory store, outbound only to `upstream`, short
/// first-byte timeout, and an org in-flight cap above the hundreds of concurrent
/// requests the rate-limit tests fire from one org (the cap has tests of its own).
pub fn config(upstream: &MockUpstream) -> EdgeConfig {
    EdgeConfig {
        kv: KvConfig::Memory,
        allowed_outbound: vec![upstream.addr().to_string()],
        first_byte_timeout: Duration::from_secs(2),
        limits: EdgeLimits {
            org_max_in_flight: 10_000,
            ..EdgeLimits::default()
        },
        edge_keys: fixtures::edge_keys(),
        ..EdgeConfig::default()
    }
}

/// [`config`] with outbound allowed to every one of `upstreams` (failover tests).
pub fn config_for(upstreams: &[&MockUpstream]) -> EdgeConfig {
    let mut cfg = config(upstreams[0]);
    cfg.allowed_outbound = upstreams.iter().map(|u| u.addr().to_string()).collect();
    cfg
}

impl Gateway {
    /// Starts provider and edge with `cfg`, seeding the org, [`KEY`] and [`NARROW_KEY`].
    pub async fn start_with(upstream: MockUpstream, cfg: EdgeConfig) -> Gateway {
        let edge = EdgeServer::start(cfg).await.expect("edge starts");
        let org = fixtures::org(ORG, &upstream.base_url());
        let full = fixtures::key("key_full", ORG, &fixtures::SERVED);
        let narrow = fixtures::key("key_narrow", ORG, &["gpt-4o-mini"]);
        edge.kv()
            .set_many(&[
                fixtures::org_entry(&org),
                fixtures::key_entry(KEY, &full),
                fixtures::key_entry(NARROW_KEY, &narrow),
            ])
            .await
            .expect("seed records");
        Gateway {
            edge,
            upstream,
            http: reqwest::Client::new(),
        }
    }

    /// Starts provider and edge with the test [`config`], the edge's store on `redis`.
    pub async fn start_on_redis(redis: &RedisServer) -> Gateway {
        let upstream = MockUpstream::start().await;
        let cfg = EdgeConfig {
            kv: redis.kv_config(),
            ..config(&upstream)
        };
        Gateway::start_with(upstream, cfg).await
    }

    /// Starts provider and edge with the test [`config`].
    pub async fn start() -> Gateway {
        let upstream = MockUpstream::start().await;
        let cfg = config(&upstream);
        Gateway::start_with(upstream, cfg).await
    }

    /// `http://addr/v1/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.edge.url())
    }

    /// POSTs JSON to `/v1/<path>` with `key` as bearer.
    pub async fn post(&self, path: &str, key: &str, body: serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("request reaches the edge")
    }

    /// Waits until every request answered so far has settled its counters and
    /// spooled its usage, which its guest does after the client has the answer.
    pub async fn settled(&self) {
        assert!(
            self.edge.wait_idle(Duration::from_secs(10)).await,
            "a guest is still running after 10 s"
        );
    }

    /// The usage events spooled in the edge store by the requests answered so
    /// far, each checked to sit under its own key.
    pub async fn events(&self) -> Vec<policy::UsageEvent> {
        self.settled().await;
        let kv = self.edge.kv();
        let mut out = Vec::new();
        for key in kv.list_keys().await.expect("keys listable") {
            if key.starts_with(policy::usage::USAGE_PREFIX) {
                let bytes = kv.get(&key).await.unwrap().expect("event present");
                let event = policy::UsageEvent::decode(&bytes).expect("a valid usage event");
                assert_eq!(key, event.kv_key());
                out.push(event);
            }
        }
        out
    }

    /// A minimal chat request for `model`.
    pub async fn chat(&self, key: &str, model: &str) -> reqwest::Response {
        self.post(
            "chat/completions",
            key,
            serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await
    }
}

/// A throwaway `redis-server` on a free loopback port, persisting nothing, killed
/// on drop. Panics (never skips) when the binary is missing: `.ci/run` installs it.
pub struct RedisServer {
    child: std::process::Child,
    port: u16,
}

impl RedisServer {
    /// Starts the server and waits until it answers.
    pub fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let mut server = RedisServer {
            child: spawn_redis(port),
            port,
        };
        server.wait_ready();
        server
    }

    /// Starts a fresh, empty server on the same port after [`Self::kill`].
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn_redis(self.port);
        self.wait_ready();
    }

    /// Sends one inline command (`TTL some-key`) and returns the raw RESP reply line.
    pub fn command(&self, line: &str) -> String {
        use std::io::{BufRead, Write};
        let mut s =
            std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("redis reachable");
        s.write_all(format!("{line}\r\n").as_bytes()).expect("send");
        let mut reply = String::new();
        std::io::BufReader::new(s)
            .read_line(&mut reply)
            .expect("reply");
        reply.trim_end().to_string()
    }

    fn wait_ready(&mut self) {
        use std::io::{Read, Write};
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("redis-server status") {
                panic!(
                    "redis-server exited at start ({status}); is port {} taken?",
                    self.port
                );
            }
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let mut buf = [0u8; 7];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read_exact(&mut buf).is_ok()
                    && &buf == b"+PONG\r\n"
                {
                    return;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The store configuration for an edge on this server.
    pub fn kv_config(&self) -> KvConfig {
        KvConfig::Redis(self.url())
    }

    /// Starts recording the commands clients send (Redis's `MONITOR`).
    pub fn monitor(&self) -> Monitor {
        use std::io::{BufRead, Write};
        let mut stream =
            std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("redis reachable");
        stream.write_all(b"MONITOR\r\n").expect("send MONITOR");
        let mut lines = std::io::BufReader::new(stream.try_clone().expect("clone stream")).lines();
        let ok = lines.next().and_then(Result::ok);
        assert_eq!(ok.as_deref(), Some("+OK"), "MONITOR refused");
        let commands = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = commands.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                // `+<time> [<db> <client>] "<COMMAND>" "<arg>" …`; a script's own
                // commands show `[<db> lua]` and are not round trips.
                let Some((client, command)) = line.split_once("] \"") else {
                    continue;
                };
                if client.ends_with(" lua") {
                    continue;
                }
                let name = command.split('"').next().unwrap_or_default();
                sink.lock().unwrap().push(name.to_ascii_uppercase());
            }
        });
        Monitor { stream, commands }
    }

    /// Kills the server (as a crash would).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The commands clients sent since [`RedisServer::monitor`], one per round trip.
pub struct Monitor {
    stream: std::net::TcpStream,
    commands: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Monitor {
    /// Command names in the order Redis ran them, once `PING` sent after them has
    /// come through (so every earlier command has too); the `PING` is left out.
    pub fn commands(&self, redis: &RedisServer) -> Vec<String> {
        assert_eq!(redis.command("PING"), "+PONG");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let mut seen = self.commands.lock().unwrap().clone();
            if seen.last().is_some_and(|c| c == "PING") {
                seen.pop();
                return seen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "MONITOR lags: {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

fn spawn_redis(port: u16) -> std::process::Child {
    std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(std::env::temp_dir())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run redis-server ({e}); install it (`apt-get install redis-server`, \
                 as .ci/run does)"
            )
        })
}
