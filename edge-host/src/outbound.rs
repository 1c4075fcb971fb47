//! Outbound HTTP policy: which upstream hosts the guest may call, and the
//! timeouts every outbound request gets.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

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
#[derive(Debug, Clone)]
pub struct OutboundPolicy {
    allowed: Arc<[Allowed]>,
    timeouts: RequestOptions,
}

impl OutboundPolicy {
    /// Parses `host` / `host:port` / `[v6]:port` entries; empty denies everything.
    pub fn new(
        entries: &[String],
        connect: Duration,
        first_byte: Duration,
        between_bytes: Duration,
    ) -> Result<OutboundPolicy, InvalidOutbound> {
        let allowed = entries
            .iter()
            .map(|e| parse_entry(e).ok_or_else(|| InvalidOutbound { entry: e.clone() }))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(OutboundPolicy {
            allowed: allowed.into(),
            timeouts: RequestOptions {
                connect_timeout: Some(connect),
                first_byte_timeout: Some(first_byte),
                between_bytes_timeout: Some(between_bytes),
            },
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

/// The `wasi:http` hooks of one instance: enforce the policy, then send with
/// wasmtime-wasi-http's default client.
pub(crate) struct OutboundHooks {
    pub(crate) policy: OutboundPolicy,
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
        Box::new(async move {
            let (response, io) =
                wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> OutboundPolicy {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        let d = Duration::from_secs(1);
        OutboundPolicy::new(&entries, d, d, d).unwrap()
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
                OutboundPolicy::new(&[bad.to_string()], d, d, d).is_err(),
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
