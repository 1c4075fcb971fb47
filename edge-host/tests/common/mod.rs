//! Shared test support: records, a mock OpenAI-compatible upstream, servers.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};

/// A key allowed every model from anywhere.
pub const OPEN_KEY: &str = "sk-tg-open-key-0001";

/// A records file (as JSON) with org `o1` routing `gpt-*` to `base_url`, and
/// the given extra keys `(secret, key_id, ip_acl)`.
pub fn records(base_url: &str, keys: &[(&str, &str, Value)]) -> Value {
    let mut all = vec![(OPEN_KEY, "k-open", json!({}))];
    all.extend(keys.iter().map(|(s, id, acl)| (*s, *id, acl.clone())));
    json!({
        "orgs": [{
            "schema_version": 1,
            "org_id": "o1",
            "slug": "acme",
            "active": true,
            "providers": [{"name": "mock", "base_url": base_url, "models": ["gpt-*"]}],
            "allowed_upstreams": policy::upstream::origin(base_url).into_iter().collect::<Vec<_>>(),
        }],
        "keys": all.iter().map(|(secret, id, acl)| json!({
            "secret": secret,
            "record": {
                "schema_version": 1,
                "key_id": id,
                "org_id": "o1",
                "status": "active",
                "models": {"exact": ["gpt-4o"]},
                "ip_acl": acl,
            }
        })).collect::<Vec<_>>(),
    })
}

/// Writes `value` to a temp file and returns it (kept alive by the handle).
pub fn write_json(value: &Value) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec_pretty(value).unwrap()).unwrap();
    file
}

/// A mock provider: answers chat completions, streamed (SSE) when asked, and
/// counts the requests it received. A streamed answer sends its first chunk,
/// then waits for [`Upstream::release`] before the rest.
pub struct Upstream {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    pub release: Arc<Notify>,
}

impl Upstream {
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b))))
    }
}

type MockBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn answer(req: Request<Incoming>, release: Arc<Notify>) -> Response<MockBody> {
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let usage = json!({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5});
    if body["stream"] == json!(true) {
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(async move {
            let chunk = |content: &str| {
                Bytes::from(format!(
                    "data: {}\n\n",
                    json!({"id": "c1", "object": "chat.completion.chunk", "created": 0,
                           "model": "gpt-4o",
                           "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]})
                ))
            };
            let _ = tx.send(chunk("first")).await;
            release.notified().await;
            let _ = tx.send(chunk("second")).await;
            let last = json!({"id": "c1", "object": "chat.completion.chunk", "created": 0,
                              "model": "gpt-4o", "choices": [], "usage": usage});
            let _ = tx.send(Bytes::from(format!("data: {last}\n\n"))).await;
            let _ = tx.send(Bytes::from_static(b"data: [DONE]\n\n")).await;
        });
        return Response::builder()
            .header("content-type", "text/event-stream")
            .body(ChannelBody(rx).boxed())
            .unwrap();
    }
    let answer = json!({
        "id": "c1", "object": "chat.completion", "created": 0, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": usage,
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(
            http_body_util::Full::new(Bytes::from(answer.to_string()))
                .map_err(|e| match e {})
                .boxed(),
        )
        .unwrap()
}

/// Starts the mock provider on a free loopback port.
pub async fn upstream() -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Notify::new());
    let (h, r) = (hits.clone(), release.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (h, r) = (h.clone(), r.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    h.fetch_add(1, Ordering::SeqCst);
                    let r = r.clone();
                    async move { Ok::<_, Infallible>(answer(req, r).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Upstream {
        addr,
        hits,
        release,
    }
}

/// A chat completion request body.
pub fn chat(stream: bool) -> String {
    json!({"model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": "hello"}]})
        .to_string()
}
