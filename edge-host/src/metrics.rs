//! The edge host's Prometheus metrics: requests by org, status and error code,
//! request and upstream latency, and key-value operation latency. One registry
//! per process (tests start many servers in one). Labels are ids, statuses and
//! error codes: never a key, a header or a path with its query.

use std::future::Future;
use std::sync::LazyLock;
use std::time::Instant;

use telemetry::prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, exponential_buckets,
};

/// Response header in which the component names the error code of an error
/// answer (the same code as the body's `error.code`).
pub const ERROR_CODE_HEADER: &str = "x-tollgate-error";

/// Org label of requests no org was found for (no key, or an unknown one).
pub const NO_ORG: &str = "";

/// A guest key-value operation, as labelled in the metrics.
#[derive(Debug, Clone, Copy)]
pub enum KvOp {
    /// `store.get`.
    Get,
    /// `store.set`.
    Set,
    /// `store.delete`.
    Delete,
    /// `store.exists`.
    Exists,
    /// `store.list-keys`.
    ListKeys,
    /// `atomics.increment`.
    Increment,
    /// `atomics.swap`.
    CompareAndSwap,
    /// `batch.get-many`.
    GetMany,
    /// `batch.set-many`.
    SetMany,
    /// `batch.delete-many`.
    DeleteMany,
    /// `tollgate:gateway/counters.update`.
    Update,
}

const KV_OPS: [&str; 11] = [
    "get",
    "set",
    "delete",
    "exists",
    "list_keys",
    "increment",
    "compare_and_swap",
    "get_many",
    "set_many",
    "delete_many",
    "update",
];

/// How an upstream call ended, as labelled in the metrics.
#[derive(Debug, Clone, Copy)]
pub enum Upstream {
    /// A response head arrived.
    Response,
    /// No response head within the first-byte timeout.
    Timeout,
    /// No connection.
    ConnectError,
    /// Any other failure.
    Error,
}

const UPSTREAM_OUTCOMES: [&str; 4] = ["response", "timeout", "connect_error", "error"];

const STATUS_CLASSES: [&str; 6] = ["0xx", "1xx", "2xx", "3xx", "4xx", "5xx"];

/// The process's edge metrics. Every label but the org is known up front, so
/// those series are resolved once here, not looked up on each request.
pub struct EdgeMetrics {
    registry: Registry,
    requests: IntCounterVec,
    request_seconds: [Histogram; 6],
    upstream_seconds: [Histogram; 4],
    kv_seconds: [Histogram; KV_OPS.len()],
}

static METRICS: LazyLock<EdgeMetrics> = LazyLock::new(EdgeMetrics::new);

/// The process's edge metrics.
pub fn metrics() -> &'static EdgeMetrics {
    &METRICS
}

fn histogram(name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(telemetry::LATENCY_BUCKETS.to_vec()),
        labels,
    )
    .expect("a valid histogram definition")
}

impl EdgeMetrics {
    fn new() -> EdgeMetrics {
        let requests = IntCounterVec::new(
            Opts::new(
                "tollgate_edge_requests_total",
                "Requests answered, by org (empty: none known), status and error code (empty: none).",
            ),
            &["org", "status", "code"],
        )
        .expect("a valid counter definition");
        let request_seconds = histogram(
            "tollgate_edge_request_duration_seconds",
            "Time from the request head to the response head (streams continue after).",
            &["status_class"],
        );
        let upstream_seconds = histogram(
            "tollgate_edge_upstream_duration_seconds",
            "Time from sending a request upstream to its response head, by outcome.",
            &["outcome"],
        );
        // KV operations are sub-millisecond in memory and SQLite, a round trip on Redis.
        let kv_seconds = HistogramVec::new(
            HistogramOpts::new(
                "tollgate_edge_kv_operation_duration_seconds",
                "Latency of the guest's key-value operations, by operation.",
            )
            .buckets(exponential_buckets(0.000_005, 2.5, 14).expect("valid buckets")),
            &["op"],
        )
        .expect("a valid histogram definition");
        let registry = Registry::new();
        for c in [
            Box::new(requests.clone()) as Box<dyn telemetry::prometheus::core::Collector>,
            Box::new(request_seconds.clone()),
            Box::new(upstream_seconds.clone()),
            Box::new(kv_seconds.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        EdgeMetrics {
            registry,
            requests,
            request_seconds: STATUS_CLASSES.map(|c| request_seconds.with_label_values(&[c])),
            upstream_seconds: UPSTREAM_OUTCOMES.map(|o| upstream_seconds.with_label_values(&[o])),
            kv_seconds: KV_OPS.map(|op| kv_seconds.with_label_values(&[op])),
        }
    }

    /// Counts an answered request and its latency to the response head.
    pub fn request(&self, org: &str, status: u16, code: &str, started: Instant) {
        let digits = itoa_status(status);
        let status_text = std::str::from_utf8(&digits).unwrap_or("0");
        self.requests
            .with_label_values(&[org, status_text, code])
            .inc();
        self.request_seconds[usize::from(status / 100).min(5)]
            .observe(started.elapsed().as_secs_f64());
    }

    /// Records an upstream call's time to its response head.
    pub fn upstream(&self, outcome: Upstream, started: Instant) {
        self.upstream_seconds[outcome as usize].observe(started.elapsed().as_secs_f64());
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        telemetry::render(&self.registry)
    }
}

/// A status as three ASCII digits (statuses are 100..=999), without allocating.
fn itoa_status(status: u16) -> [u8; 3] {
    let s = status.clamp(0, 999);
    [
        b'0' + (s / 100) as u8,
        b'0' + (s / 10 % 10) as u8,
        b'0' + (s % 10) as u8,
    ]
}

/// Runs a key-value operation, recording its latency under `op`.
pub async fn kv_timed<T>(op: KvOp, operation: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = operation.await;
    metrics().kv_seconds[op as usize].observe(started.elapsed().as_secs_f64());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_render_as_three_digits() {
        assert_eq!(&itoa_status(200), b"200");
        assert_eq!(&itoa_status(429), b"429");
        assert_eq!(&itoa_status(5), b"005");
    }

    #[test]
    fn requests_are_counted_by_org_status_and_code() {
        let m = EdgeMetrics::new();
        m.request("org_a", 429, "rate_limit_exceeded", Instant::now());
        m.request(NO_ORG, 401, "invalid_api_key", Instant::now());
        let text = m.render();
        assert!(
            text.contains(
                r#"tollgate_edge_requests_total{code="rate_limit_exceeded",org="org_a",status="429"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"status_class="4xx""#), "{text}");
    }
}
