//! The OpenAPI document's frame: info, the bearer scheme, the error schema, and the
//! error responses every operation can give (the operations themselves come from the
//! handlers' `#[utoipa::path]` annotations, collected by the route table).

use utoipa::openapi::path::{HttpMethod, Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Ref, RefOr,
    ResponseBuilder,
};
use utoipa::{PartialSchema, ToSchema};

use crate::errors::{ErrorBody, ErrorDetail};

/// One endpoint, as documented.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// HTTP method, lower case.
    pub method: &'static str,
    /// Path with `{param}` segments.
    pub path: String,
    /// Whether the endpoint takes a JSON body.
    pub body: bool,
    /// Whether a bearer token is required.
    pub auth: bool,
}

/// The document before the routes add their operations.
pub fn base() -> OpenApi {
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Tollgate admin API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Control plane of the Tollgate LLM gateway. Money is a decimal string (\"99.00\"); inputs accept a number or a string. \
                     Secrets (virtual keys, tokens) are returned once; invitation secrets go only to the invitee by email; provider credentials never. \
                     Lists return one page as a JSON array; while more follow, the `x-next-cursor` header holds the `cursor` of the next page.",
                )),
        )
        .components(Some(
            ComponentsBuilder::new()
                .schema(ErrorBody::name(), ErrorBody::schema())
                .schema(ErrorDetail::name(), ErrorDetail::schema())
                .security_scheme(
                    "bearer",
                    SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
                )
                .build(),
        ))
        .build()
}

/// The error statuses an operation can answer, from what it takes: a body can be
/// malformed (400), too large (413) or invalid (422); a token can be missing (401)
/// or too weak (403); an id in the path or body can name nothing the caller may see
/// (404); a write can conflict (409); a query can be invalid (422); a secret sent
/// without a token can be guessed at only so often (429).
fn error_statuses(method: &HttpMethod, op: &Operation) -> Vec<(&'static str, &'static str)> {
    let has = |kind: ParameterIn| {
        op.parameters
            .iter()
            .flatten()
            .any(|p| std::mem::discriminant(&p.parameter_in) == std::mem::discriminant(&kind))
    };
    let body = op.request_body.is_some();
    let auth = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let mut out = Vec::new();
    if body {
        out.push(("400", "The body is not JSON."));
    }
    if auth {
        out.push(("401", "No token, or an unknown, revoked or expired one."));
        out.push(("403", "The caller's role may not do this."));
    }
    // A body or a query filter can name objects too (`org_id`, `user_id`, an
    // invitation secret).
    if has(ParameterIn::Path) || has(ParameterIn::Query) || body {
        out.push((
            "404",
            "No such object, or one of another organization (never told apart).",
        ));
    }
    if !matches!(method, HttpMethod::Get) {
        out.push(("409", "The write conflicts with what is stored."));
    }
    if body {
        out.push(("413", "The body is larger than the API accepts."));
    }
    // Unauthenticated secrets (an invitation's) are guarded against guessing.
    if body && !auth {
        out.push((
            "429",
            "Too many failed attempts from this address; retry later.",
        ));
    }
    if body || has(ParameterIn::Query) || has(ParameterIn::Path) {
        out.push((
            "422",
            "A field, parameter or query value is invalid; `field` names it.",
        ));
    }
    out
}

/// Adds every operation's error responses (all in the `Error` shape) to `doc`.
pub fn finish(mut doc: OpenApi) -> OpenApi {
    for item in doc.paths.paths.values_mut() {
        for (method, op) in operations(item) {
            for (status, why) in error_statuses(&method, op) {
                op.responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| {
                        RefOr::T(
                            ResponseBuilder::new()
                                .description(why)
                                .content(
                                    "application/json",
                                    ContentBuilder::new()
                                        .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                                        .build(),
                                )
                                .build(),
                        )
                    });
            }
        }
    }
    doc
}

fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = (HttpMethod, &mut Operation)> {
    [
        (HttpMethod::Get, item.get.as_mut()),
        (HttpMethod::Post, item.post.as_mut()),
        (HttpMethod::Put, item.put.as_mut()),
        (HttpMethod::Patch, item.patch.as_mut()),
        (HttpMethod::Delete, item.delete.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
}

/// Every operation of `doc`.
pub fn endpoints(doc: &OpenApi) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for (path, item) in &doc.paths.paths {
        let ops = [
            ("get", &item.get),
            ("post", &item.post),
            ("put", &item.put),
            ("patch", &item.patch),
            ("delete", &item.delete),
        ];
        for (method, op) in ops {
            if let Some(op) = op {
                out.push(Endpoint {
                    method,
                    path: path.clone(),
                    body: op.request_body.is_some(),
                    auth: op.security.as_ref().is_some_and(|s| !s.is_empty()),
                });
            }
        }
    }
    out
}
