//! The OpenAPI 3 document of a list of endpoints (the route table passes its own,
//! so this module does not depend on it).

use std::sync::OnceLock;

use axum::Json;
use serde_json::{Value, json};
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, ObjectBuilder, OpenApi, OpenApiBuilder,
    PathsBuilder, Ref, Required, ResponseBuilder, Type,
};

/// One endpoint, as documented.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    /// HTTP method, lower case.
    pub method: &'static str,
    /// Path with `{param}` segments.
    pub path: &'static str,
    /// OpenAPI tag.
    pub tag: &'static str,
    /// One-line summary, incl. who may call it.
    pub summary: &'static str,
    /// Whether the endpoint takes a JSON body.
    pub body: bool,
    /// Whether a bearer token is required.
    pub auth: bool,
}

fn method(m: &str) -> HttpMethod {
    match m {
        "post" => HttpMethod::Post,
        "put" => HttpMethod::Put,
        "patch" => HttpMethod::Patch,
        "delete" => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

/// Builds the document of `endpoints`.
pub fn document(endpoints: &[Endpoint]) -> OpenApi {
    let error_schema = ObjectBuilder::new()
        .property(
            "error",
            ObjectBuilder::new()
                .property("message", ObjectBuilder::new().schema_type(Type::String))
                .property("type", ObjectBuilder::new().schema_type(Type::String))
                .property("code", ObjectBuilder::new().schema_type(Type::String))
                .property("field", ObjectBuilder::new().schema_type(Type::String).description(Some("Path of the offending field, e.g. `ip_allow[2]`"))),
        )
        .required("error")
        .description(Some("Every error. 400 malformed JSON; 401 no/unknown token; 403 role too weak; 404 unknown or other tenant's object; 409 conflict; 422 invalid field (named in `field`)."));
    let mut paths = PathsBuilder::new();
    for e in endpoints {
        let mut op = OperationBuilder::new()
            .tag(e.tag)
            .summary(Some(e.summary))
            .operation_id(Some(format!(
                "{}_{}",
                e.method,
                e.path
                    .trim_start_matches("/api/")
                    .replace(['/', '{', '}', '-', '.'], "_")
            )))
            .response(
                "2XX",
                ResponseBuilder::new().description("Success; JSON body (204: none)."),
            )
            .response(
                "default",
                ResponseBuilder::new().description("Error").content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Error")))
                        .build(),
                ),
            );
        for seg in e.path.split('/') {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                op = op.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
                );
            }
        }
        if e.body {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
                            .build(),
                    )
                    .build(),
            ));
        }
        if e.auth {
            op = op.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
        }
        paths = paths.path(e.path, PathItem::new(method(e.method), op));
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Tollgate admin API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Control plane of the Tollgate LLM gateway. Money is a decimal string (\"99.00\"); inputs accept a number or a string. \
                     Secrets (virtual keys, tokens) are returned once; invitation secrets go only to the invitee by email; provider credentials never.",
                )),
        )
        .paths(paths)
        .components(Some(
            ComponentsBuilder::new()
                .schema("Error", error_schema)
                .security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()))
                .build(),
        ))
        .build()
}

/// The body of `GET /api/openapi.json`: the document of `endpoints`, built once
/// (the route table is fixed for the life of the process).
pub fn serve(endpoints: &[Endpoint]) -> Json<Value> {
    static DOC: OnceLock<Value> = OnceLock::new();
    Json(
        DOC.get_or_init(|| serde_json::to_value(document(endpoints)).unwrap_or_else(|_| json!({})))
            .clone(),
    )
}
