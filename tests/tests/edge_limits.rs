//! The edge host's own limits, with the real component under the real host over
//! loopback TCP: per-org in-flight caps taken before any guest instance, request
//! head and body read deadlines, and guest deadlines whose traps give back the
//! request's counters and reserved spend.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use edge_host::{EdgeConfig, EdgeLimits};
use policy::{Budget, BudgetPeriod, Limits, ProviderRoute, kv};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tollgate_e2e::fixtures;
use tollgate_e2e::harness::{Gateway, KEY, ORG, RedisServer, config};
use tollgate_e2e::upstream::MockUpstream;

/// A second org and its key: the tenant the flood must not starve.
const OTHER_ORG: &str = "org_other";
const OTHER_KEY: &str = "sk-tg-test-other-0123456789abcdefghijklmn";

/// A status line, a JSON body and when it came, as a raw client sees them.
struct Answer {
    status: u16,
    body: Value,
    after: Duration,
}

/// Reads one HTTP/1.1 response (head, then `content-length` bytes of body).
async fn read_answer(mut stream: impl AsyncRead + Unpin, since: Instant) -> Answer {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.expect("read the answer");
        assert!(n > 0, "connection closed without an answer");
        buf.extend_from_slice(&chunk[..n]);
    };
    let after = since.elapsed();
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head[9..12].parse().expect("status code");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().expect("content-length"))
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.expect("read the body");
        assert!(n > 0, "body cut short");
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = serde_json::from_slice(&buf[head_end..head_end + length]).unwrap_or(Value::Null);
    Answer {
        status,
        body,
        after,
    }
}

/// Opens a connection that declares a 4 MB chat body and sends one byte of it.
async fn slow_body(addr: SocketAddr, key: Option<&str>) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: edge\r\n{auth}Content-Type: application/json\r\nContent-Length: 4000000\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.expect("send head");
    stream
}

/// Seeds [`OTHER_ORG`] and [`OTHER_KEY`] beside the harness's org.
async fn seed_other_org(gw: &Gateway) {
    let org = fixtures::org(OTHER_ORG, &gw.upstream.base_url());
    let key = fixtures::key("key_other", OTHER_ORG, &["gpt-4o-mini"]);
    gw.edge
        .kv()
        .set_many(&[
            fixtures::org_entry(&org),
            fixtures::key_entry(OTHER_KEY, &key),
        ])
        .await
        .expect("seed the other org");
}

fn limits() -> EdgeLimits {
    EdgeLimits {
        header_read_timeout: Duration::from_secs(2),
        body_read_timeout: Duration::from_secs(3),
        ..EdgeLimits::default()
    }
}

/// The test gateway (harness records, mock provider) under `limits`.
async fn gateway(limits: EdgeLimits) -> Gateway {
    let upstream = MockUpstream::start().await;
    let cfg = EdgeConfig {
        limits,
        ..config(&upstream)
    };
    Gateway::start_with(upstream, cfg).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_key_costs_only_its_own_org() {
    const FLOOD: usize = 300;
    const CAP: u32 = 16;
    let limits = limits();
    let gw = gateway(limits.clone()).await;
    seed_other_org(&gw).await;
    // The flooding org's cap, compiled into its record by the admin service.
    let mut org = fixtures::org(ORG, &gw.upstream.base_url());
    org.max_in_flight = Some(CAP);
    gw.edge
        .kv()
        .set_many(&[fixtures::org_entry(&org)])
        .await
        .unwrap();

    let started = Instant::now();
    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        flood.push(slow_body(gw.edge.local_addr(), Some(KEY)).await);
    }
    let answers: Vec<_> = flood
        .into_iter()
        .map(|s| tokio::spawn(read_answer(s, started)))
        .collect();

    // During the flood another org is served as if nothing happened.
    let asked = Instant::now();
    let r = gw.chat(OTHER_KEY, "gpt-4o-mini").await;
    let took = asked.elapsed();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert!(
        took < Duration::from_secs(1),
        "another org waited {took:?} behind the flood"
    );
    // The flooding org itself is at its cap: a well-formed request is refused too.
    let r = gw.chat(KEY, "gpt-4o-mini").await;
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["error"]["code"], "concurrency_limit_exceeded",
        "{body}"
    );

    let mut timed_out = 0;
    let mut refused = 0;
    for a in answers {
        let a = a.await.expect("reader task");
        match a.status {
            408 => {
                timed_out += 1;
                assert_eq!(a.body["error"]["code"], "request_timeout", "{}", a.body);
                assert!(
                    a.after >= limits.body_read_timeout,
                    "408 before the body deadline: {:?}",
                    a.after
                );
            }
            429 => {
                refused += 1;
                assert_eq!(
                    a.body["error"]["code"], "concurrency_limit_exceeded",
                    "{}",
                    a.body
                );
                assert_eq!(a.body["error"]["type"], "requests");
            }
            other => panic!("unexpected {other}: {}", a.body),
        }
    }
    assert_eq!(
        (timed_out, refused),
        (CAP as usize, FLOOD - CAP as usize),
        "the org's cap admits exactly {CAP} slow bodies, each ending in 408"
    );

    // The cap is freed with them: the flooding org is served again.
    let r = gw.chat(KEY, "gpt-4o-mini").await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn requests_without_a_known_key_share_one_cap() {
    let gw = gateway(EdgeLimits {
        anonymous_max_in_flight: 2,
        ..limits()
    })
    .await;
    let addr = gw.edge.local_addr();
    let started = Instant::now();
    let _held = [
        slow_body(addr, None).await,
        slow_body(addr, Some("sk-tg-not-a-real-key")).await,
    ];
    // Give the server a moment to admit both before the third arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let third = read_answer(slow_body(addr, Some("sk-tg-also-unknown")).await, started).await;
    assert_eq!(third.status, 429, "{}", third.body);
    assert_eq!(third.body["error"]["code"], "concurrency_limit_exceeded");
    // A known key is not behind the anonymous cap.
    assert_eq!(gw.chat(KEY, "gpt-4o-mini").await.status(), 200);
}

#[tokio::test]
async fn a_request_head_that_never_completes_gets_408() {
    let limits = limits();
    let gw = gateway(limits.clone()).await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(gw.edge.local_addr()).await.unwrap();
    stream
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: edge\r\n")
        .await
        .unwrap();
    let a = read_answer(stream, started).await;
    assert_eq!(a.status, 408, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "request_timeout");
    assert!(a.after >= limits.header_read_timeout, "{:?}", a.after);
}

#[tokio::test]
async fn a_declared_body_over_four_mib_is_refused_before_any_byte_is_read() {
    let gw = gateway(limits()).await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(gw.edge.local_addr()).await.unwrap();
    // One byte over the host's 4 MiB body bound; the body itself never follows.
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        (4 << 20) + 1
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let a = read_answer(stream, started).await;
    assert_eq!(a.status, 413, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "request_too_large");
    assert!(gw.upstream.received().is_empty());
}

#[tokio::test]
async fn a_chunked_body_that_trickles_on_past_four_mib_gets_413_by_the_body_deadline() {
    let limits = limits();
    let gw = gateway(limits.clone()).await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(gw.edge.local_addr()).await.unwrap();
    // No declared length: the bound is only found by reading past it.
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mib = vec![b' '; 1 << 20];
    for _ in 0..5 {
        stream.write_all(b"100000\r\n").await.unwrap();
        stream.write_all(&mib).await.unwrap();
        stream.write_all(b"\r\n").await.unwrap();
    }
    // Then a byte every 100 ms, never the last chunk: each one read must not
    // push the answer past the body deadline, which runs from the head.
    let (reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        while writer.write_all(b"1\r\n \r\n").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let answer =
        tokio::time::timeout(limits.body_read_timeout * 3, read_answer(reader, started)).await;
    trickle.abort();
    let a = answer.expect("no answer while the body trickled on");
    assert_eq!(a.status, 413, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "request_too_large");
    assert!(
        a.after < limits.body_read_timeout + Duration::from_secs(2),
        "answered after {:?}: the trickle held the connection past the body deadline",
        a.after
    );
    assert!(gw.upstream.received().is_empty());
}

/// A loopback listener that never accepts, its backlog full: connections to it
/// hang until the connecting side gives up (the kernel drops their SYNs).
fn unresponsive_listener() -> (tokio::net::TcpListener, Vec<std::net::TcpStream>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fill = Vec::new();
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => fill.push(s),
            Err(_) => return (listener, fill),
        }
    }
    panic!("the listen backlog never filled");
}

#[tokio::test]
async fn a_guest_interrupted_after_admission_gives_back_its_counters_and_spend() {
    guest_interrupted_after_admission(|c| c).await;
}

#[tokio::test]
async fn a_guest_interrupted_after_admission_gives_back_its_counters_and_spend_on_redis() {
    let redis = RedisServer::start();
    guest_interrupted_after_admission(|c| EdgeConfig {
        kv: redis.kv_config(),
        ..c
    })
    .await;
}

async fn guest_interrupted_after_admission(store: impl FnOnce(EdgeConfig) -> EdgeConfig) {
    let upstream = MockUpstream::start().await;
    let (hole, _fill) = unresponsive_listener();
    let hole_addr = hole.local_addr().unwrap();
    let mut cfg = store(config(&upstream));
    cfg.allowed_outbound.push(hole_addr.to_string());
    cfg.connect_timeout = Duration::from_secs(1);
    cfg.first_byte_timeout = Duration::from_secs(4);
    // Past this the guest is interrupted the moment it runs again.
    cfg.limits.guest_response_deadline = Duration::from_millis(500);
    let gw = Gateway::start_with(upstream, cfg).await;

    // `gpt-4o` goes to a provider nobody answers; `gpt-4o-mini` to the mock.
    // One request a day for the key, and an org budget, so the guest reserves both.
    let mut org = fixtures::org(ORG, &gw.upstream.base_url());
    org.providers.insert(
        0,
        ProviderRoute {
            name: "hole".into(),
            base_url: format!("http://{hole_addr}/v1"),
            api_key: Some(fixtures::sealed_provider_key(ORG, "hole")),
            models: vec!["gpt-4o".parse().unwrap()],
            weight: None,
        },
    );
    // The org record allows the hole's origin, so the guest does call it.
    org.allowed_upstreams
        .extend(policy::upstream::origin(&format!("http://{hole_addr}/v1")));
    org.prices = vec![
        fixtures::price("gpt-4o", 2_500_000_000, 5_000_000_000),
        fixtures::price("gpt-4o-mini", 2_500_000_000, 5_000_000_000),
    ];
    org.budget = Some(Budget {
        limit_micros: 100_000_000,
        period: BudgetPeriod::Daily,
        utc_offset_minutes: 0,
    });
    let mut key = fixtures::key("key_full", ORG, &["gpt-4o", "gpt-4o-mini"]);
    key.limits = Limits {
        rpd: Some(1),
        ..Limits::default()
    };
    gw.edge
        .kv()
        .set_many(&[fixtures::org_entry(&org), fixtures::key_entry(KEY, &key)])
        .await
        .unwrap();

    let r = gw.chat(KEY, "gpt-4o").await;
    assert_eq!(r.status(), 504);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "gateway_timeout", "{body}");

    // Every counter the guest moved (the key's day window, the org's spend) is
    // back where it was: none existed before, so each reads zero.
    let counters: Vec<String> = gw
        .edge
        .kv()
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.starts_with(kv::COUNTER_PREFIX))
        .collect();
    assert!(
        counters.iter().any(|k| k.contains(":spend:")),
        "the guest reserved spend before it was interrupted: {counters:?}"
    );
    for k in &counters {
        assert_eq!(gw.edge.kv().counter(k).await.unwrap(), 0, "{k}");
    }
    // So the key's one request of the day is still there to use.
    let r = gw.chat(KEY, "gpt-4o-mini").await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(gw.chat(KEY, "gpt-4o-mini").await.status(), 429);
}
