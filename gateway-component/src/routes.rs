//! Which endpoint a request is for.

use spin_sdk::http::Method;

use crate::errors::GatewayError;

/// An OpenAI-compatible inference endpoint forwarded to a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/chat/completions`.
    ChatCompletions,
    /// `POST /v1/completions` (legacy).
    Completions,
    /// `POST /v1/embeddings`.
    Embeddings,
}

impl Endpoint {
    /// The path below the provider's base URL.
    pub fn upstream_path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat/completions",
            Endpoint::Completions => "completions",
            Endpoint::Embeddings => "embeddings",
        }
    }

    /// Whether the endpoint generates tokens (embeddings only read them), which the
    /// budget reservation estimates.
    pub fn generates(self) -> bool {
        !matches!(self, Endpoint::Embeddings)
    }

    /// Whether the endpoint streams and accepts `stream_options.include_usage`, so a
    /// streamed answer reports usage only when asked.
    pub fn streams_usage_on_request(self) -> bool {
        matches!(self, Endpoint::ChatCompletions | Endpoint::Completions)
    }
}

/// What the gateway does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /healthz`: liveness, no key needed.
    Health,
    /// `GET /v1/models`: the models this key may use.
    Models,
    /// An inference call to forward.
    Inference(Endpoint),
}

/// Routes by method and path (a query string is ignored).
pub fn route(method: &Method, path_with_query: &str) -> Result<Route, GatewayError> {
    let path = path_with_query
        .split_once('?')
        .map_or(path_with_query, |(p, _)| p);
    let (route, allowed) = match path {
        "/healthz" => (Route::Health, Method::Get),
        "/v1/models" => (Route::Models, Method::Get),
        "/v1/chat/completions" => (Route::Inference(Endpoint::ChatCompletions), Method::Post),
        "/v1/completions" => (Route::Inference(Endpoint::Completions), Method::Post),
        "/v1/embeddings" => (Route::Inference(Endpoint::Embeddings), Method::Post),
        _ => return Err(GatewayError::NotFound),
    };
    if *method != allowed {
        return Err(GatewayError::MethodNotAllowed(match allowed {
            Method::Get => "GET",
            _ => "POST",
        }));
    }
    Ok(route)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_known_paths() {
        assert_eq!(route(&Method::Get, "/healthz"), Ok(Route::Health));
        assert_eq!(route(&Method::Get, "/v1/models?x=1"), Ok(Route::Models));
        assert_eq!(
            route(&Method::Post, "/v1/chat/completions"),
            Ok(Route::Inference(Endpoint::ChatCompletions))
        );
        assert_eq!(
            route(&Method::Post, "/v1/completions"),
            Ok(Route::Inference(Endpoint::Completions))
        );
        assert_eq!(
            route(&Method::Post, "/v1/embeddings"),
            Ok(Route::Inference(Endpoint::Embeddings))
        );
    }

    #[test]
    fn unknown_path_and_wrong_method() {
        assert_eq!(route(&Method::Get, "/v1/nope"), Err(GatewayError::NotFound));
        assert_eq!(route(&Method::Post, "/"), Err(GatewayError::NotFound));
        assert_eq!(
            route(&Method::Get, "/v1/chat/completions"),
            Err(GatewayError::MethodNotAllowed("POST"))
        );
        assert_eq!(
            route(&Method::Post, "/v1/models"),
            Err(GatewayError::MethodNotAllowed("GET"))
        );
    }

    #[test]
    fn upstream_paths() {
        assert_eq!(
            Endpoint::ChatCompletions.upstream_path(),
            "chat/completions"
        );
        assert!(!Endpoint::Embeddings.streams_usage_on_request());
        assert!(!Endpoint::Embeddings.generates() && Endpoint::Completions.generates());
    }
}
