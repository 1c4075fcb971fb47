//! The wasi:http adapter: reads what the other modules need from the request and
//! writes their answers. Kept thin so a move to WASI 0.3 touches only this file
//! and `upstream`.

use policy::{Facts, OrgRecord};
use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};

use crate::auth::{self, AUTHORIZATION, X_API_KEY};
use crate::client_ip::{self, CLIENT_ADDR_HEADER};
use crate::errors::GatewayError;
use crate::records::{self, Records};
use crate::request_body;
use crate::routes::{self, Endpoint, Route};
use crate::upstream::{self, ClientHeaders};

const JSON: &[u8] = b"application/json";

#[cfg_attr(target_arch = "wasm32", spin_sdk::http_component)]
async fn handle(request: IncomingRequest, out: ResponseOutparam) {
    let path = request.path_with_query().unwrap_or_default();
    match routes::route(&request.method(), &path) {
        Ok(Route::Health) => respond(out, 200, &[], br#"{"status":"ok"}"#.to_vec()).await,
        Ok(Route::Models) => match list_models(&request) {
            Ok(body) => respond(out, 200, &[], body).await,
            Err(e) => respond_error(out, &e).await,
        },
        Ok(Route::Inference(endpoint)) => {
            if let Err((error, out)) = infer(endpoint, request, out).await {
                respond_error(out, &error).await;
            }
        }
        Err(e) => respond_error(out, &e).await,
    }
}

/// The first value of a header (repeated values are not meaningful for these).
fn header(headers: &Fields, name: &str) -> Option<Vec<u8>> {
    headers.get(name).into_iter().next()
}

/// Loads the records of the presented key.
fn authenticate(headers: &Fields) -> Result<Records, GatewayError> {
    let authorization = header(headers, AUTHORIZATION);
    let x_api_key = header(headers, X_API_KEY);
    let secret = auth::presented_key(authorization.as_deref(), x_api_key.as_deref())
        .ok_or(policy::Denial::MissingKey)?;
    records::load(secret)
}

/// The client address: the org's trusted forwarding header when it names one (and
/// then only that), otherwise the runtime's peer address.
fn client_ip(headers: &Fields, org: &OrgRecord) -> Option<std::net::IpAddr> {
    match &org.client_ip_header {
        Some(name) => client_ip::rightmost_forwarded(&headers.get(name)),
        None => std::str::from_utf8(&header(headers, CLIENT_ADDR_HEADER)?)
            .ok()
            .and_then(client_ip::parse_addr),
    }
}

fn list_models(request: &IncomingRequest) -> Result<Vec<u8>, GatewayError> {
    let headers = request.headers();
    let records = authenticate(&headers)?;
    records.authorize(&Facts {
        now_ms: crate::now_ms(),
        client_ip: client_ip(&headers, &records.org),
        model: None,
    })?;
    Ok(crate::models::list_body(&records.key, &records.org))
}

/// An inference call; on failure before the answer started, hands the outparam back
/// with the error so the caller can answer.
async fn infer(
    endpoint: Endpoint,
    request: IncomingRequest,
    out: ResponseOutparam,
) -> Result<(), (GatewayError, ResponseOutparam)> {
    let prepared = {
        // The header fields are a child of the request: dropped before the body is taken.
        let headers = request.headers();
        prepare(&headers)
    };
    let Head {
        records,
        client_ip,
        declared_length,
        client,
    } = match prepared {
        Ok(head) => head,
        Err(e) => return Err((e, out)),
    };
    let body = match request_body::read_limited(request.into_body_stream(), declared_length).await {
        Ok(body) => body,
        Err(e) => return Err((e, out)),
    };
    let (provider, usage_request) = {
        let inspected = match request_body::inspect(&body) {
            Ok(i) => i,
            Err(e) => return Err((e, out)),
        };
        let facts = Facts {
            now_ms: crate::now_ms(),
            client_ip,
            model: Some(&inspected.model),
        };
        if let Err(denial) = records.authorize(&facts) {
            return Err((denial.into(), out));
        }
        let Some(provider) = records.org.route(&inspected.model) else {
            return Err((
                policy::Denial::NoRoute(inspected.model.into_owned()).into(),
                out,
            ));
        };
        let usage_request = if endpoint.streams_usage_on_request() {
            inspected.usage_request()
        } else {
            None
        };
        (provider, usage_request)
    };
    let body = match usage_request {
        Some(amend) => amend.apply(body),
        None => body,
    };
    let response = match upstream::send(provider, endpoint, body, client).await {
        Ok(r) => r,
        Err(e) => return Err((e, out)),
    };
    // Token counters and usage events (the next step) consume this.
    let _usage = upstream::relay(response, out).await;
    Ok(())
}

/// Everything the inference path reads from the request head.
struct Head {
    records: Records,
    client_ip: Option<std::net::IpAddr>,
    declared_length: Option<usize>,
    client: ClientHeaders,
}

/// Authenticates, then checks the declared length (so an oversized body from an
/// unknown key still answers 401) and collects the headers to forward.
fn prepare(headers: &Fields) -> Result<Head, GatewayError> {
    let records = authenticate(headers)?;
    let declared_length =
        request_body::check_declared_length(header(headers, "content-length").as_deref())?;
    let client_ip = client_ip(headers, &records.org);
    let client = ClientHeaders {
        content_type: header(headers, "content-type"),
        accept: header(headers, "accept"),
    };
    Ok(Head {
        records,
        client_ip,
        declared_length,
        client,
    })
}

async fn respond_error(out: ResponseOutparam, error: &GatewayError) {
    let retry_after = error.retry_after_secs().map(|s| s.to_string());
    let allow = match error {
        GatewayError::MethodNotAllowed(allow) => Some(*allow),
        _ => None,
    };
    let mut extra: Vec<(&str, &[u8])> = Vec::with_capacity(1);
    if let Some(secs) = &retry_after {
        extra.push(("retry-after", secs.as_bytes()));
    }
    if let Some(allow) = allow {
        extra.push(("allow", allow.as_bytes()));
    }
    respond(out, error.status(), &extra, error.body()).await;
}

/// Answers with a JSON body.
async fn respond(out: ResponseOutparam, status: u16, extra: &[(&str, &[u8])], body: Vec<u8>) {
    let mut headers: Vec<(String, Vec<u8>)> = Vec::with_capacity(2 + extra.len());
    headers.push(("content-type".into(), JSON.to_vec()));
    headers.push(("content-length".into(), body.len().to_string().into_bytes()));
    headers.extend(extra.iter().map(|(k, v)| ((*k).to_string(), v.to_vec())));
    let fields = Fields::from_list(&headers).unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(status);
    // Nothing more can be done if the client is gone.
    let _ = out.set_with_body(response, body).await;
}
