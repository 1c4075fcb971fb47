//! Outbound HTTP policy: which upstream hosts the guest may call, the timeouts
//! every outbound request gets, and the pool of upstream connections they share.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::metrics::{self, Upstream};

/// HTTP and HTTPS upstream connections.
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// Longest timeout applied (keeps deadline arithmetic far from overflow).
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Idle upstream connections are closed after this long.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// An allow-list entry: a host, optionally pinned to one port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    host: String,
    port: Option<u16>,
}

/// Errors in an `--allow-outbound` entry.
#[derive(Debug, thiserror::Error)]
#[error("invalid outbound host {entry:?}: expected `host` or `host:port`")]
pub struct InvalidOutbound {
    entry: String,
}

/// The host's outbound rules, shared by every instance.
#[derive(Clone)]
pub struct OutboundPolicy {
    allowed: Arc<[Allowed]>,
    timeouts: RequestOptions,
    /// Kept-alive connections: a provider's TCP and TLS handshakes happen once
    /// per connection, not once per request. One pool per serving thread, so a
    /// request reuses connections driven by its own thread, never waking another.
    clients: Arc<[Client<Connector, WasiBody>]>,
}

impl std::fmt::Debug for OutboundPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundPolicy")
            .field("allowed", &self.allowed)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl OutboundPolicy {
    /// Parses `host` / `host:port` / `[v6]:port` entries; empty denies everything.
    /// `pools`: one connection pool per serving thread (at least one).
    pub fn new(
        entries: &[String],
        connect: Duration,
        first_byte: Duration,
        between_bytes: Duration,
        pools: usize,
    ) -> Result<OutboundPolicy, InvalidOutbound> {
        let allowed = entries
            .iter()
            .map(|e| parse_entry(e).ok_or_else(|| InvalidOutbound { entry: e.clone() }))
            .collect::<Result<Vec<_>, _>>()?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let clients = (0..pools.max(1))
            .map(|_| {
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                    .build(https.clone())
            })
            .collect();
        Ok(OutboundPolicy {
            allowed: allowed.into(),
            timeouts: RequestOptions {
                connect_timeout: Some(connect),
                first_byte_timeout: Some(first_byte),
                between_bytes_timeout: Some(between_bytes),
            },
            clients,
        })
    }

    /// Whether a request to `host` on `port` may leave the host (exact match).
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        self.allowed
            .iter()
            .any(|a| a.host == host && a.port.is_none_or(|p| p == port))
    }

    /// The guest's per-request options, each capped by the host's timeout.
    fn options(&self, guest: Option<RequestOptions>) -> RequestOptions {
        let cap = |g: Option<Duration>, h: Option<Duration>| match (g, h) {
            (Some(g), Some(h)) => Some(g.min(h)),
            (g, h) => g.or(h),
        };
        let g = guest.unwrap_or_default();
        RequestOptions {
            connect_timeout: cap(g.connect_timeout, self.timeouts.connect_timeout),
            first_byte_timeout: cap(g.first_byte_timeout, self.timeouts.first_byte_timeout),
            between_bytes_timeout: cap(
                g.between_bytes_timeout,
                self.timeouts.between_bytes_timeout,
            ),
        }
    }
}

fn parse_entry(entry: &str) -> Option<Allowed> {
    let entry = entry.trim().to_ascii_lowercase();
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        (format!("[{v6}]"), port)
    } else {
        match entry.split_once(':') {
            Some((h, p)) if !p.contains(':') => (h.to_string(), Some(p.parse().ok()?)),
            Some(_) => return None,
            None => (entry.clone(), None),
        }
    };
    if host.is_empty() || host.contains('/') {
        return None;
    }
    Some(Allowed { host, port })
}

/// The `wasi:http` hooks of one instance: enforce the policy, then send over the
/// shared connection pool.
pub(crate) struct OutboundHooks {
    pub(crate) policy: OutboundPolicy,
    /// Upstream requests that may have reached their provider: sent, or still
    /// in flight; one that failed to connect never did.
    pub(crate) reached: Arc<AtomicU32>,
}

impl OutboundHooks {
    /// Hooks enforcing `policy`, with nothing sent yet.
    pub(crate) fn new(policy: OutboundPolicy) -> OutboundHooks {
        OutboundHooks {
            policy,
            reached: Arc::default(),
        }
    }

    /// Whether any upstream request of this instance may have reached (and so
    /// may be billed by) its provider.
    pub(crate) fn may_have_reached_upstream(&self) -> bool {
        self.reached.load(Ordering::SeqCst) > 0
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        // Errors of the response body are reported to the guest through the
        // stream itself; nothing extra to watch here (as the default hook does).
        drop(fut);
        let uri = request.uri();
        let tls = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let allowed = uri.authority().is_some_and(|a| {
            let port = a.port_u16().unwrap_or(if tls { 443 } else { 80 });
            self.policy.allows(a.host(), port)
        });
        if !allowed {
            // The host only: an authority may carry `user:password@`.
            tracing::warn!(
                host = uri.authority().map(|a| a.host()).unwrap_or(""),
                "outbound request denied: host not in the allowed list"
            );
            return Box::new(std::future::ready(Err(HttpError::HttpRequestDenied)));
        }
        let options = self.policy.options(options);
        let pool = crate::serving::current_thread().unwrap_or(0) % self.policy.clients.len();
        let client = self.policy.clients[pool].clone();
        let reached = self.reached.clone();
        reached.fetch_add(1, Ordering::SeqCst);
        Box::new(async move {
            // The connector enforces the connect timeout; a fresh connection's
            // handshake counts against the time to the response head as well.
            let head = options.first_byte_timeout.unwrap_or(MAX_TIMEOUT);
            let started = std::time::Instant::now();
            let upstream = metrics::metrics();
            let response = match tokio::time::timeout(head, client.request(request)).await {
                Err(_) => {
                    upstream.upstream(Upstream::Timeout, started);
                    return Err(HttpError::ConnectionReadTimeout);
                }
                Ok(Err(e)) => {
                    if e.is_connect() {
                        // No connection, so the provider never saw the request.
                        reached.fetch_sub(1, Ordering::SeqCst);
                    }
                    let outcome = if e.is_connect() {
                        Upstream::ConnectError
                    } else {
                        Upstream::Error
                    };
                    upstream.upstream(outcome, started);
                    return Err(client_error(e));
                }
                Ok(Ok(response)) => {
                    upstream.upstream(Upstream::Response, started);
                    response
                }
            };
            let between = options
                .between_bytes_timeout
                .unwrap_or(MAX_TIMEOUT)
                .clamp(Duration::from_nanos(1), MAX_TIMEOUT);
            let response = response.map(|incoming| {
                BetweenBytes {
                    incoming,
                    idle: Box::pin(tokio::time::sleep(between)),
                    between,
                }
                .boxed_unsync()
            });
            // The pool drives connection I/O itself: nothing for the caller to await.
            Ok((
                response,
                Box::new(std::future::ready(Ok(()))) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

/// The `wasi:http` error of a failed upstream request.
fn client_error(e: hyper_util::client::legacy::Error) -> HttpError {
    use std::error::Error as _;
    if e.is_connect() {
        return HttpError::ConnectionRefused;
    }
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            return if h.is_timeout() {
                HttpError::HttpResponseTimeout
            } else if h.is_incomplete_message() || h.is_closed() {
                HttpError::HttpResponseIncomplete
            } else {
                HttpError::HttpProtocolError
            };
        }
        source = s.source();
    }
    HttpError::InternalError(Some(e.to_string()))
}

/// A response body that fails when the upstream stays silent for longer than
/// the between-bytes timeout.
struct BetweenBytes {
    incoming: Incoming,
    idle: Pin<Box<tokio::time::Sleep>>,
    between: Duration,
}

impl Body for BetweenBytes {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let deadline = tokio::time::Instant::now() + self.between;
                self.idle.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(if e.is_timeout() {
                HttpError::HttpResponseTimeout
            } else {
                HttpError::from(e)
            }))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                ready!(self.idle.as_mut().poll(cx));
                Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> OutboundPolicy {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        let d = Duration::from_secs(1);
        OutboundPolicy::new(&entries, d, d, d, 1).unwrap()
    }

    #[test]
    fn exact_host_and_port_matching() {
        let p = policy(&["api.openai.com", "127.0.0.1:9000", "[::1]:8080"]);
        assert!(p.allows("api.openai.com", 443));
        assert!(p.allows("API.OpenAI.com", 80));
        assert!(!p.allows("evil.openai.com", 443));
        assert!(p.allows("127.0.0.1", 9000));
        assert!(!p.allows("127.0.0.1", 9001));
        assert!(p.allows("[::1]", 8080));
        assert!(!p.allows("[::1]", 80));
    }

    #[test]
    fn empty_list_denies_everything() {
        assert!(!policy(&[]).allows("localhost", 80));
    }

    #[test]
    fn rejects_malformed_entries() {
        let d = Duration::from_secs(1);
        for bad in ["", "host:notaport", "http://x", "::1", "[::1", "h:1:2"] {
            assert!(
                OutboundPolicy::new(&[bad.to_string()], d, d, d, 1).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn guest_timeouts_are_capped_by_the_host() {
        let p = policy(&[]);
        let o = p.options(Some(RequestOptions {
            connect_timeout: Some(Duration::from_millis(10)),
            first_byte_timeout: Some(Duration::from_secs(100)),
            between_bytes_timeout: None,
        }));
        assert_eq!(o.connect_timeout, Some(Duration::from_millis(10)));
        assert_eq!(o.first_byte_timeout, Some(Duration::from_secs(1)));
        assert_eq!(o.between_bytes_timeout, Some(Duration::from_secs(1)));
    }
}
