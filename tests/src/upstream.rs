//! A mock OpenAI-compatible provider on loopback: JSON and SSE answers with a
//! `usage` block, a recorder of what reached it, and knobs for slow and held streams.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

/// Tokens the mock reports for every prompt.
pub const PROMPT_TOKENS: u64 = 10;
/// Tokens the mock reports for every completion.
pub const COMPLETION_TOKENS: u64 = 5;
/// Content chunks in every streamed answer (before the usage chunk and `[DONE]`).
pub const STREAM_CHUNKS: usize = 3;
/// Models whose answers the mock delays past any sane first-byte timeout.
pub const SLOW_MODEL_PREFIX: &str = "slow-";

/// One request as the provider received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// Request path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// The `Authorization` header the gateway sent upstream.
    pub authorization: Option<String>,
    /// Every header as received.
    pub headers: HeaderMap,
    /// The JSON body.
    pub body: Value,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    hold_streams: Mutex<bool>,
    release: Notify,
    /// Prompt tokens reported instead of [`PROMPT_TOKENS`] (a provider counting
    /// images or tool schemas the gateway's byte estimate cannot see).
    prompt_tokens: Mutex<Option<u64>>,
    /// Status every call is answered with instead of a completion (a failing provider).
    fail_status: Mutex<Option<u16>>,
    /// Whether every call waits [`STALL`] before answering (a provider too slow to
    /// send its response head).
    stall: Mutex<bool>,
}

/// How long a stalled provider waits before answering: past any sane first-byte timeout.
pub const STALL: Duration = Duration::from_secs(30);

/// A running mock provider.
#[derive(Clone)]
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl MockUpstream {
    /// Starts the provider on an ephemeral loopback port.
    pub async fn start() -> MockUpstream {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/completions", post(completions))
            .route("/v1/embeddings", post(embeddings))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind mock upstream");
        let addr = listener.local_addr().expect("mock upstream addr");
        tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("mock upstream serves")
        });
        MockUpstream { addr, shared }
    }

    /// The socket address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// OpenAI-style base URL, e.g. `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// From now on, streams stop after their first chunk until [`Self::release`].
    pub fn hold_streams(&self) {
        *self.shared.hold_streams.lock().unwrap() = true;
    }

    /// From now on, reports `prompt_tokens` prompt tokens per call.
    pub fn report_prompt_tokens(&self, prompt_tokens: u64) {
        *self.shared.prompt_tokens.lock().unwrap() = Some(prompt_tokens);
    }

    /// From now on, answers every call with `status` and an OpenAI-shaped error
    /// (`None`: answers normally again). Calls are still recorded.
    pub fn fail_with(&self, status: Option<u16>) {
        *self.shared.fail_status.lock().unwrap() = status;
    }

    /// From now on, every call waits [`STALL`] before it is answered (or not).
    pub fn stall(&self, stall: bool) {
        *self.shared.stall.lock().unwrap() = stall;
    }

    /// Lets held streams finish.
    pub fn release(&self) {
        *self.shared.hold_streams.lock().unwrap() = false;
        self.shared.release.notify_waiters();
    }
}

/// Records the call, then applies the failure knobs: the error response to answer
/// with instead of a completion, if the provider is set to fail.
async fn record_and_misbehave(
    shared: &Shared,
    path: &str,
    headers: &HeaderMap,
    body: &Value,
) -> Option<Response> {
    record(shared, path, headers, body);
    let stall = *shared.stall.lock().unwrap();
    if stall {
        tokio::time::sleep(STALL).await;
    }
    let status = (*shared.fail_status.lock().unwrap())?;
    let status = StatusCode::from_u16(status).expect("a valid status");
    Some(
        (
            status,
            axum::Json(json!({"error": {"message": "mock provider failure", "type": "server_error", "code": status.as_u16()}})),
        )
            .into_response(),
    )
}

fn record(shared: &Shared, path: &str, headers: &HeaderMap, body: &Value) {
    shared.received.lock().unwrap().push(Received {
        path: path.to_string(),
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        headers: headers.clone(),
        body: body.clone(),
    });
}

fn usage(shared: &Shared) -> Value {
    let prompt = shared
        .prompt_tokens
        .lock()
        .unwrap()
        .unwrap_or(PROMPT_TOKENS);
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": prompt + COMPLETION_TOKENS,
    })
}

/// The request body as JSON, or the 400 to answer with (boxed: responses are large).
fn parse(bytes: &Bytes) -> Result<Value, Box<Response>> {
    serde_json::from_slice(bytes).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"message": e.to_string()}})),
        )
            .into_response()
            .into()
    })
}

async fn maybe_slow(model: &str) {
    if model.starts_with(SLOW_MODEL_PREFIX) {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
}

async fn chat(State(shared): State<Arc<Shared>>, headers: HeaderMap, bytes: Bytes) -> Response {
    let body = match parse(&bytes) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    if let Some(failure) =
        record_and_misbehave(&shared, "/v1/chat/completions", &headers, &body).await
    {
        return failure;
    }
    let model = body["model"].as_str().unwrap_or_default().to_string();
    maybe_slow(&model).await;
    if body["stream"].as_bool() != Some(true) {
        return axum::Json(json!({
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from the mock upstream."},
                "finish_reason": "stop",
            }],
            "usage": usage(&shared),
        }))
        .into_response();
    }
    let include_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(8);
    tokio::spawn(async move {
        let chunk = |delta: Value, finish: Value| {
            let v = json!({
                "id": "chatcmpl-mock",
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            });
            Bytes::from(format!("data: {v}\n\n"))
        };
        for i in 0..STREAM_CHUNKS {
            let delta = json!({"role": "assistant", "content": format!("part{i} ")});
            if tx.send(Ok(chunk(delta, Value::Null))).await.is_err() {
                return;
            }
            if i == 0 {
                // Register for the release before checking, so a release in between is not lost.
                let released = shared.release.notified();
                let held = *shared.hold_streams.lock().unwrap();
                if held {
                    released.await;
                }
            }
        }
        let _ = tx.send(Ok(chunk(json!({}), json!("stop")))).await;
        if include_usage {
            let v = json!({
                "id": "chatcmpl-mock",
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": model,
                "choices": [],
                "usage": usage(&shared),
            });
            let _ = tx.send(Ok(Bytes::from(format!("data: {v}\n\n")))).await;
        }
        let _ = tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n"))).await;
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .expect("sse response")
}

async fn completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let body = match parse(&bytes) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    if let Some(failure) = record_and_misbehave(&shared, "/v1/completions", &headers, &body).await {
        return failure;
    }
    maybe_slow(body["model"].as_str().unwrap_or_default()).await;
    axum::Json(json!({
        "id": "cmpl-mock",
        "object": "text_completion",
        "created": 1_700_000_000,
        "model": body["model"],
        "choices": [{"index": 0, "text": "mock text", "finish_reason": "stop", "logprobs": null}],
        "usage": usage(&shared),
    }))
    .into_response()
}

async fn embeddings(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let body = match parse(&bytes) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    if let Some(failure) = record_and_misbehave(&shared, "/v1/embeddings", &headers, &body).await {
        return failure;
    }
    axum::Json(json!({
        "object": "list",
        "model": body["model"],
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
        "usage": {"prompt_tokens": PROMPT_TOKENS, "total_tokens": PROMPT_TOKENS},
    }))
    .into_response()
}
