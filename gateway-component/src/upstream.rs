//! The provider call: build the outgoing request, send the body, and relay the
//! answer to the client chunk by chunk while reading its usage.

use futures::{SinkExt, StreamExt};
use policy::ProviderRoute;
use spin_sdk::http::{
    ErrorCode, Fields, IncomingResponse, Method, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme, SendError,
};

use crate::errors::GatewayError;
use crate::routes::Endpoint;
use crate::usage::{Usage, UsageScanner};

/// Client headers forwarded to the provider; nothing else is, above all not the
/// client's `Authorization` or `x-api-key`, nor `accept-encoding` (the gateway must
/// read the answer's `usage`, so it asks for an uncompressed body).
#[derive(Debug, Default)]
pub struct ClientHeaders {
    /// `Content-Type` of the request body.
    pub content_type: Option<Vec<u8>>,
    /// `Accept`.
    pub accept: Option<Vec<u8>>,
}

/// Where an endpoint of a provider lives.
#[derive(Debug, PartialEq, Eq)]
struct Target<'a> {
    https: bool,
    authority: &'a str,
    path: String,
}

/// Joins `base_url` (`http[s]://host[:port][/prefix]`) and an endpoint path with
/// exactly one slash between segments; `None` for anything else (a misconfigured
/// provider fails the call rather than going somewhere unintended).
fn target(base_url: &str, endpoint: Endpoint) -> Option<Target<'_>> {
    let (https, rest) = if let Some(rest) = strip_prefix_ignore_case(base_url, "https://") {
        (true, rest)
    } else {
        (false, strip_prefix_ignore_case(base_url, "http://")?)
    };
    let (authority, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() || authority.contains(['@', '?', '#']) || prefix.contains(['?', '#']) {
        return None;
    }
    let prefix = prefix.trim_matches('/');
    let endpoint = endpoint.upstream_path();
    let mut path = String::with_capacity(prefix.len() + endpoint.len() + 2);
    if !prefix.is_empty() {
        path.push('/');
        path.push_str(prefix);
    }
    path.push('/');
    path.push_str(endpoint);
    Some(Target {
        https,
        authority,
        path,
    })
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Whether a wasi-http error means the provider was too slow rather than unreachable.
fn is_timeout(code: &ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::DnsTimeout
            | ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout
            | ErrorCode::HttpResponseTimeout
    )
}

/// Whether a wasi-http error can only have happened before the request reached
/// the provider (name lookup, connect, TLS handshake, refused by the runtime), so
/// the provider cannot have billed it. Anything else may come after it did.
fn before_provider(code: &ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::DnsTimeout
            | ErrorCode::DnsError(_)
            | ErrorCode::DestinationNotFound
            | ErrorCode::DestinationUnavailable
            | ErrorCode::DestinationIpProhibited
            | ErrorCode::DestinationIpUnroutable
            | ErrorCode::ConnectionRefused
            | ErrorCode::ConnectionTimeout
            | ErrorCode::TlsProtocolError
            | ErrorCode::TlsCertificateError
            | ErrorCode::TlsAlertReceived(_)
            | ErrorCode::HttpRequestDenied
            | ErrorCode::HttpRequestUriInvalid
    )
}

/// A provider call that produced no response.
#[derive(Debug)]
pub struct SendFailure {
    /// The answer for the client.
    pub error: GatewayError,
    /// Whether the request may have reached the provider (and been billed).
    pub reached_provider: bool,
}

impl SendFailure {
    fn before(error: GatewayError) -> SendFailure {
        SendFailure {
            error,
            reached_provider: false,
        }
    }
}

/// What a relayed answer reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Relayed {
    /// The usage the provider reported, if any.
    pub usage: Option<Usage>,
    /// Whether the provider's body was read to its end (a broken or timed-out
    /// stream is not: the provider may have billed tokens it never reported).
    pub complete: bool,
    /// The whole answer, when asked for and it was a complete JSON body of at
    /// most 1 MiB (for the response cache).
    pub answer: Option<Answer>,
    /// What was relayed, when asked for: its first
    /// [`MAX_CONTENT_BYTES`](policy::usage::MAX_CONTENT_BYTES) and one byte more (so
    /// a cut shows), for orgs that store content.
    pub transcript: Option<Vec<u8>>,
}

/// A complete answer body kept for the response cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// The provider's `Content-Type`.
    pub content_type: Option<Vec<u8>>,
    /// The body as relayed.
    pub body: Vec<u8>,
}

/// POSTs `body` to the provider's endpoint with `api_key` (the opened credential)
/// as bearer, and waits for the response head.
pub async fn send(
    provider: &ProviderRoute,
    api_key: Option<&str>,
    endpoint: Endpoint,
    body: Vec<u8>,
    client: &ClientHeaders,
) -> Result<IncomingResponse, SendFailure> {
    let target = target(&provider.base_url, endpoint)
        .ok_or(SendFailure::before(GatewayError::UpstreamError))?;
    let mut headers: Vec<(String, Vec<u8>)> = Vec::with_capacity(4);
    headers.push((
        "content-type".into(),
        client
            .content_type
            .clone()
            .unwrap_or_else(|| b"application/json".to_vec()),
    ));
    // A declared length lets the request go out unchunked, which every server takes.
    headers.push(("content-length".into(), body.len().to_string().into_bytes()));
    if let Some(accept) = &client.accept {
        headers.push(("accept".into(), accept.clone()));
    }
    if let Some(key) = api_key {
        headers.push(("authorization".into(), format!("Bearer {key}").into_bytes()));
    }
    let fields = Fields::from_list(&headers)
        .map_err(|_| SendFailure::before(GatewayError::UpstreamError))?;
    let request = OutgoingRequest::new(fields);
    let scheme = if target.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let built = request.set_method(&Method::Post).is_ok()
        && request.set_scheme(Some(&scheme)).is_ok()
        && request.set_authority(Some(target.authority)).is_ok()
        && request.set_path_with_query(Some(&target.path)).is_ok();
    if !built {
        return Err(SendFailure::before(GatewayError::UpstreamError));
    }
    let mut sink = request.take_body();
    // The body is written while the request is in flight, as `spin_sdk::http::send`
    // does for buffered bodies; the response error (not a failed write) says why a
    // call failed, so both are driven to the end.
    let write = async move {
        let written = sink.send(body).await;
        // Dropping the sink finishes the body.
        drop(sink);
        written
    };
    let (response, _written) =
        futures::join!(spin_sdk::http::send::<_, IncomingResponse>(request), write);
    match response {
        Ok(response) => Ok(response),
        Err(SendError::Http(code)) => Err(SendFailure {
            error: if is_timeout(&code) {
                GatewayError::UpstreamTimeout
            } else {
                GatewayError::UpstreamError
            },
            reached_provider: !before_provider(&code),
        }),
        // A failure of the runtime's own: the request may have gone out.
        Err(_) => Err(SendFailure {
            error: GatewayError::UpstreamError,
            reached_provider: true,
        }),
    }
}

/// Sends the provider's status, content type and body to the client with the
/// gateway's own `head` headers, each chunk as soon as it arrives (SSE is never
/// buffered); with `strip_usage_only`, the usage-only chunk the gateway asked for
/// on the client's behalf is removed. `before_end` gets the status and what was
/// relayed after the last byte is relayed but before the body ends, so whatever it
/// settles is in place by the time the client sees the answer complete. Once the
/// head is sent an error can only end the stream. A client that goes away does
/// not end the read: the provider's answer is read to its end (each wait bounded
/// by the runtime's between-bytes timeout) for the usage it reports. With
/// `keep_answer`, a whole JSON answer comes back in [`Relayed::answer`]; with
/// `keep_transcript`, the start of what was relayed in [`Relayed::transcript`].
pub async fn relay(
    response: IncomingResponse,
    out: ResponseOutparam,
    mut head: Vec<(String, Vec<u8>)>,
    strip_usage_only: bool,
    (keep_answer, keep_transcript): (bool, bool),
    before_end: impl FnOnce(u16, Relayed),
) {
    let content_type = response.headers().get("content-type").into_iter().next();
    let mut scanner = UsageScanner::for_content_type(content_type.as_deref(), strip_usage_only);
    let kept_type = if keep_answer {
        content_type.clone()
    } else {
        None
    };
    head.extend(content_type.map(|ct| ("content-type".to_string(), ct)));
    let headers = Fields::from_list(&head).unwrap_or_else(|_| Fields::new());
    let outgoing = OutgoingResponse::new(headers);
    // Statuses are 100..=599 by construction of `IncomingResponse`.
    let status = response.status();
    let _ = outgoing.set_status_code(status);
    let mut sink = outgoing.take_body();
    out.set(outgoing);
    let mut chunks = response.take_body_stream();
    let mut client_gone = false;
    let mut complete = true;
    let mut transcript = keep_transcript.then(Vec::new);
    while let Some(next) = chunks.next().await {
        let Ok(chunk) = next else {
            complete = false;
            break;
        };
        let forward = scanner.pass(chunk);
        if let Some(t) = &mut transcript {
            note(t, &forward);
        }
        if !client_gone && !forward.is_empty() && sink.send(forward).await.is_err() {
            client_gone = true;
        }
    }
    let (usage, tail, whole) = scanner.finish_with_body();
    if let Some(t) = &mut transcript {
        note(t, &tail);
    }
    if !client_gone && !tail.is_empty() {
        let _ = sink.send(tail).await;
    }
    let answer = whole
        .filter(|_| keep_answer && complete)
        .map(|body| Answer {
            content_type: kept_type,
            body,
        });
    before_end(
        status,
        Relayed {
            usage,
            complete,
            answer,
            transcript,
        },
    );
    drop(sink);
    // Dropped last: dropping the response first could cancel the body (wasmtime#7413).
    drop(chunks);
    drop(response);
}

/// Appends what fits of `chunk` to a transcript bounded one byte past the kept
/// content (that byte only marks the cut).
fn note(transcript: &mut Vec<u8>, chunk: &[u8]) {
    let room = (policy::usage::MAX_CONTENT_BYTES + 1).saturating_sub(transcript.len());
    transcript.extend_from_slice(&chunk[..chunk.len().min(room)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(base: &str, e: Endpoint) -> Option<(bool, String, String)> {
        target(base, e).map(|t| (t.https, t.authority.to_string(), t.path))
    }

    #[test]
    fn a_transcript_stops_one_byte_past_the_kept_content() {
        let max = policy::usage::MAX_CONTENT_BYTES;
        let mut t = Vec::new();
        note(&mut t, &vec![b'a'; max - 1]);
        note(&mut t, b"bcd");
        note(&mut t, b"e");
        assert_eq!(t.len(), max + 1);
        assert_eq!(&t[max - 1..], b"bc");
    }

    #[test]
    fn joins_base_and_endpoint_with_single_slashes() {
        let some = |https, a: &str, p: &str| Some((https, a.to_string(), p.to_string()));
        assert_eq!(
            t("http://127.0.0.1:9999/v1", Endpoint::ChatCompletions),
            some(false, "127.0.0.1:9999", "/v1/chat/completions")
        );
        assert_eq!(
            t("https://api.openai.com/v1/", Endpoint::Embeddings),
            some(true, "api.openai.com", "/v1/embeddings")
        );
        assert_eq!(
            t("HTTPS://h//openai//v1//", Endpoint::Completions),
            some(true, "h", "/openai//v1/completions")
        );
        assert_eq!(
            t("http://h", Endpoint::Completions),
            some(false, "h", "/completions")
        );
        assert_eq!(
            t("http://[::1]:8080/", Endpoint::Completions),
            some(false, "[::1]:8080", "/completions")
        );
    }

    #[test]
    fn rejects_unusable_base_urls() {
        for base in [
            "",
            "ftp://h/v1",
            "h/v1",
            "http://",
            "http:///v1",
            "http://u:p@h/v1",
            "http://h/v1?x=1",
            "http://h?x",
        ] {
            assert_eq!(t(base, Endpoint::ChatCompletions), None, "{base}");
        }
    }

    #[test]
    fn timeouts_are_told_apart() {
        assert!(is_timeout(&ErrorCode::ConnectionTimeout));
        assert!(is_timeout(&ErrorCode::ConnectionReadTimeout));
        assert!(is_timeout(&ErrorCode::HttpResponseTimeout));
        assert!(!is_timeout(&ErrorCode::ConnectionRefused));
        assert!(!is_timeout(&ErrorCode::HttpRequestDenied));
    }

    #[test]
    fn only_failures_before_sending_count_as_unbilled() {
        assert!(before_provider(&ErrorCode::ConnectionRefused));
        assert!(before_provider(&ErrorCode::HttpRequestDenied));
        assert!(before_provider(&ErrorCode::ConnectionTimeout));
        assert!(!before_provider(&ErrorCode::HttpResponseTimeout));
        assert!(!before_provider(&ErrorCode::ConnectionReadTimeout));
        assert!(!before_provider(&ErrorCode::HttpProtocolError));
    }
}
