//! `GET /api/docs`: the API reference rendered in the browser by Redoc 2.5.4 (npm
//! package `redoc`, MIT, vendored under `static/api-docs/` with its licenses) from
//! `/api/openapi.json`. Embedded in the binary: no CDN, works offline.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tollgate admin API</title>
</head>
<body>
<div id="reference"></div>
<script src="/api/docs/redoc.standalone.js"></script>
<script src="/api/docs/docs.js"></script>
</body>
</html>
"#;

/// Scripts only from here; Redoc styles inline and runs its search in a blob worker.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; \
    frame-ancestors 'none'; base-uri 'none'";

const FILES: &[(&str, &str)] = &[
    (
        "redoc.standalone.js",
        include_str!("../../static/api-docs/redoc.standalone.js"),
    ),
    ("docs.js", include_str!("../../static/api-docs/docs.js")),
];

/// The reference page and its scripts (state-free, so any router can merge them).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/api/docs", get(page))
        .route("/api/docs/{file}", get(file))
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
        ],
        PAGE,
    )
        .into_response()
}

async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _)| *n == name) {
        Some((_, body)) => (
            [
                (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            *body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
