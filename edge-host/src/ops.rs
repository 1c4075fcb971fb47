//! The operator listener, apart from the public one: `/metrics` (Prometheus),
//! `/healthz` (the process serves) and `/readyz` (the key-value store answers).
//! Kept off the inference port so tenants never see org ids or internals.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::kv::Kv;
use crate::metrics;

/// Binds `addr` and serves the operator endpoints until `stopped` turns true.
pub(crate) async fn serve(
    addr: SocketAddr,
    kv: Kv,
    mut stopped: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "ops accept failed");
                        continue;
                    }
                },
                _ = stopped.changed() => break,
            };
            let kv = kv.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let kv = kv.clone();
                    async move { Ok::<_, Infallible>(answer(&kv, &req).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    tracing::info!(%local, "edge ops endpoints serving (/metrics, /healthz, /readyz)");
    Ok((local, task))
}

async fn answer<B>(kv: &Kv, req: &Request<B>) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match req.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            telemetry::CONTENT_TYPE,
            metrics::metrics().render(),
        ),
        "/healthz" => (
            StatusCode::OK,
            "application/json",
            r#"{"status":"ok"}"#.into(),
        ),
        "/readyz" => match kv.get("ops:readyz").await {
            Ok(_) => (
                StatusCode::OK,
                "application/json",
                r#"{"status":"ready"}"#.into(),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "not ready: key-value store unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "application/json",
                    r#"{"status":"unavailable","reason":"key-value store"}"#.into(),
                )
            }
        },
        _ => (
            StatusCode::NOT_FOUND,
            "application/json",
            r#"{"status":"not found"}"#.into(),
        ),
    };
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}
