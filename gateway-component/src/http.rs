//! The wasi:http adapter: reads what the other modules need from the request and
//! writes their answers. Kept thin so a move to WASI 0.3 touches only this file
//! and `upstream`.

use policy::usage::{Content, MAX_CONTENT_BYTES};
use policy::{Candidate, Estimate, Facts, OrgRecord, RateHeaders};
use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};

use crate::auth::{self, AUTHORIZATION, X_API_KEY};
use crate::bindings::wasi::keyvalue::store::Bucket;
use crate::cache::{self, Directive, Slot};
use crate::client_ip::{self, CLIENT_ADDR_HEADER};
use crate::counters;
use crate::errors::GatewayError;
use crate::quota::{self, Charge};
use crate::records::{self, Records};
use crate::request_body::{self, UsageRequest};
use crate::routes::{self, Endpoint, Route};
use crate::routing;
use crate::spool;
use crate::upstream::{self, ClientHeaders};

const JSON: &[u8] = b"application/json";

#[cfg_attr(target_arch = "wasm32", spin_sdk::http_component)]
async fn handle(request: IncomingRequest, out: ResponseOutparam) {
    let path = request.path_with_query().unwrap_or_default();
    match routes::route(&request.method(), &path) {
        Ok(Route::Health) => respond(out, 200, Vec::new(), br#"{"status":"ok"}"#.to_vec()).await,
        Ok(Route::Models) => match list_models(&request) {
            Ok(body) => respond(out, 200, Vec::new(), body).await,
            Err(e) => respond_error(out, &e, &RateHeaders::default()).await,
        },
        Ok(Route::Inference(endpoint)) => {
            if let Err(failed) = infer(endpoint, request, out).await {
                respond_error(failed.out, &failed.error, &failed.headers).await;
            }
        }
        Err(e) => respond_error(out, &e, &RateHeaders::default()).await,
    }
}

/// The first value of a header (repeated values are not meaningful for these).
fn header(headers: &Fields, name: &str) -> Option<Vec<u8>> {
    headers.get(name).into_iter().next()
}

/// Opens the store and loads the records of the presented key.
fn authenticate(headers: &Fields) -> Result<(Bucket, Records), GatewayError> {
    let authorization = header(headers, AUTHORIZATION);
    let x_api_key = header(headers, X_API_KEY);
    let secret = auth::presented_key(authorization.as_deref(), x_api_key.as_deref())
        .ok_or(policy::Denial::MissingKey)?;
    let bucket = records::open()?;
    let records = records::load(&bucket, secret)?;
    Ok((bucket, records))
}

/// The client address: the runtime's peer address, or what the org's forwarding
/// header says when the peer is a proxy the edge trusts (see `client_ip`). Spin
/// appends its `spin-client-addr` after any the client sent (the edge host
/// replaces them), so only the last value is the runtime's: the first would let a
/// client pick its IP.
fn client_ip(headers: &Fields, org: &OrgRecord) -> Option<std::net::IpAddr> {
    let peer = std::str::from_utf8(headers.get(CLIENT_ADDR_HEADER).last()?)
        .ok()
        .and_then(client_ip::parse_addr);
    let Some(name) = &org.client_ip_header else {
        return peer;
    };
    // Read only when a header is named. Missing or unreadable: nobody is trusted.
    let trusted = match crate::bindings::wasi::config::store::get(client_ip::TRUSTED_PROXIES) {
        Ok(Some(setting)) => client_ip::parse_trusted(&setting),
        Ok(None) => Vec::new(),
        Err(e) => {
            eprintln!(
                "tollgate: edge setting {} unreadable: {e:?}",
                client_ip::TRUSTED_PROXIES
            );
            Vec::new()
        }
    };
    client_ip::resolve(peer, &headers.get(name), &trusted)
}

fn list_models(request: &IncomingRequest) -> Result<Vec<u8>, GatewayError> {
    let headers = request.headers();
    let (_, records) = authenticate(&headers)?;
    records.authorize(&Facts {
        now_ms: crate::now_ms(),
        client_ip: client_ip(&headers, &records.org),
        model: None,
    })?;
    Ok(crate::models::list_body(&records.key, &records.org))
}

/// An inference call that failed before the answer started: the outparam comes
/// back with the error (and any rate-limit headers) so the caller can answer.
struct Failed {
    error: GatewayError,
    headers: RateHeaders,
    out: ResponseOutparam,
    /// Its usage event is already spooled (a provider was called).
    spooled: bool,
}

impl Failed {
    fn new(error: impl Into<GatewayError>, out: ResponseOutparam) -> Failed {
        Failed {
            error: error.into(),
            headers: RateHeaders::default(),
            out,
            spooled: false,
        }
    }
}

/// What the policy stage decided to forward.
struct Forward {
    estimate: Estimate,
    /// The body to send: the client's, amended to ask for streamed usage.
    body: Vec<u8>,
    /// Whether the gateway asked for usage the client did not (strip it again).
    asked_usage: bool,
    /// Where the answer is cached, when the org caches and the request may be.
    cache: Option<Slot>,
}

/// Milliseconds since `started`.
fn elapsed_ms(started: std::time::Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// An inference call: authenticate, then forward (below). A request refused after
/// its key resolved is logged as a denial of the key's org; an unknown or missing
/// key has no tenant to log it under and is not logged.
async fn infer(
    endpoint: Endpoint,
    request: IncomingRequest,
    out: ResponseOutparam,
) -> Result<(), Failed> {
    let started = std::time::Instant::now();
    let at_ms = crate::now_ms();
    let prepared = {
        // The header fields are a child of the request: dropped before the body is taken.
        let headers = request.headers();
        prepare(&headers)
    };
    let mut head = match prepared {
        Ok(head) => head,
        Err(e) => return Err(Failed::new(e, out)),
    };
    let client = std::mem::take(&mut head.client);
    let (bucket, records) = (&head.bucket, &head.records);
    // The model, once the body named one: what the denial log records.
    let mut model = String::new();
    let result = forward(
        endpoint,
        (request, client),
        out,
        &head,
        &mut model,
        (started, at_ms),
    )
    .await;
    if let Err(failed) = &result
        && !failed.spooled
    {
        let outcome = spool::Outcome {
            model: &model,
            route_group: None,
            status: failed.error.status(),
            at_ms,
            latency_ms: elapsed_ms(started),
            provider: None,
            code: Some(failed.error.code()),
        };
        spool::write_denial(bucket, records, outcome);
    }
    result
}

/// Reads the body, authorises, counts against limits and budgets, forwards,
/// relays, settles the counters and spools the usage event.
async fn forward(
    endpoint: Endpoint,
    (request, client): (IncomingRequest, ClientHeaders),
    out: ResponseOutparam,
    head: &Head,
    model: &mut String,
    (started, at_ms): (std::time::Instant, u64),
) -> Result<(), Failed> {
    let Head {
        bucket,
        records,
        client_ip,
        declared_length,
        cache_directive,
        ..
    } = head;
    let body = match request_body::read_limited(request.into_body_stream(), *declared_length).await
    {
        Ok(body) => body,
        Err(e) => return Err(Failed::new(e, out)),
    };
    // Kept before the body is amended, one byte past the bound to show a cut.
    let request_content = records
        .org
        .store_content
        .then(|| body[..body.len().min(MAX_CONTENT_BYTES + 1)].to_vec());
    let forward = match decide(endpoint, records, *client_ip, *cache_directive, body, model) {
        Ok(f) => f,
        Err(e) => return Err(Failed::new(e, out)),
    };
    let model = model.as_str();
    let subject = records.subject();
    // Under a budget an unpriced model would cost nothing: such members are not
    // tried, and a model with none left is refused.
    let needs_price = subject.budgets().next().is_some();
    let plan = match routing::plan(bucket, records, model, needs_price, at_ms) {
        Ok(p) => p,
        Err(e) => return Err(Failed::new(e, out)),
    };
    let price_of = |model: &str| policy::pricing::price_of(&records.org.prices, model);
    let estimate = forward.estimate;
    // Reserved once, for the dearest model an attempt may call; settled at the
    // price of the one that served.
    let estimate_micros = plan
        .attempts
        .iter()
        .filter_map(|c| price_of(c.model))
        .map(|p| p.cost_micros(estimate.input_tokens, estimate.output_tokens))
        .max()
        .unwrap_or(0);
    let admitted = match quota::admit(bucket, &subject, estimate_micros, crate::now_ms()) {
        Ok(a) => a,
        Err(refused) => {
            return Err(Failed {
                error: refused.error,
                headers: refused.headers,
                out,
                spooled: false,
            });
        }
    };
    // A cache hit (`served` none) was counted against the request limits by
    // `admit`; it costs nothing and no provider served it. `answer`: what the
    // client got, kept with the request for orgs that store content.
    let finish = |status: u16,
                  charge: Charge,
                  served: Option<Candidate<'_>>,
                  code: Option<&str>,
                  answer: Option<&[u8]>| {
        let outcome = spool::Outcome {
            model: served.map_or(model, |call| call.model),
            route_group: plan.group,
            status,
            at_ms,
            latency_ms: elapsed_ms(started),
            provider: served.map(|call| records.org.providers[call.provider].name.as_str()),
            code,
        };
        let mut event = spool::event(records, outcome, &charge);
        event.cached = served.is_none();
        if let (Some(request), Some(answer)) = (&request_content, answer) {
            event.content = Some(Content::of(request, answer));
        }
        spool::write(bucket, &event, admitted.settlement(&charge));
    };
    let mut head = header_list(&admitted.headers);
    if let Some(slot) = &forward.cache {
        if let Some(hit) = slot.lookup(bucket, crate::now_ms()) {
            finish(200, Charge::NONE, None, None, Some(&hit.body));
            head.push((cache::HEADER.into(), b"hit".to_vec()));
            respond_cached(out, head, hit).await;
            return Ok(());
        }
        head.push((cache::HEADER.into(), b"miss".to_vec()));
    }
    // Before a byte is relayed, a failed call (no answer, 5xx, 429) moves on to the
    // next candidate; the last one's answer or error is the client's.
    let last = plan.attempts.len() - 1;
    let mut body = Some(forward.body);
    for (i, &call) in plan.attempts.iter().enumerate() {
        let provider = &records.org.providers[call.provider];
        let attempt_body = match (plan.group, i == last) {
            (Some(_), _) => {
                request_body::with_model(body.as_deref().unwrap_or_default(), call.model)
            }
            // The body is kept for a next attempt only when there is one.
            (None, true) => body.take().unwrap_or_default(),
            (None, false) => body.clone().unwrap_or_default(),
        };
        // Opened only for the outgoing call: a credential that does not open is
        // never sent, and counts as a failed attempt that reached no provider.
        let api_key = match crate::credential::open(&records.org.org_id, provider) {
            Ok(key) => key,
            Err(_) if i < last => {
                eprintln!(
                    "tollgate: credential of provider {} of org {} does not open; failing over",
                    provider.name, records.org.org_id
                );
                continue;
            }
            Err(e) => {
                finish(e.status(), Charge::NONE, Some(call), Some(e.code()), None);
                return Err(Failed {
                    error: e,
                    headers: admitted.headers,
                    out,
                    spooled: true,
                });
            }
        };
        let sent = upstream::send(
            provider,
            api_key.as_deref().map(String::as_str),
            endpoint,
            attempt_body,
            &client,
        )
        .await;
        // The plaintext is wiped as soon as the request is out.
        drop(api_key);
        match sent {
            Ok(response) if i < last && routing::retryable(response.status()) => {
                eprintln!(
                    "tollgate: provider {} answered {} for org {}; failing over",
                    provider.name,
                    response.status(),
                    records.org.org_id
                );
                drop(response);
                plan.failed(bucket, records, call.provider, crate::now_ms());
            }
            Ok(response) => {
                if routing::retryable(response.status()) {
                    plan.failed(bucket, records, call.provider, crate::now_ms());
                } else {
                    plan.served(bucket, records, call.provider);
                }
                let strip = forward.asked_usage;
                let price = price_of(call.model);
                let keep = (forward.cache.is_some(), request_content.is_some());
                upstream::relay(response, out, head, strip, keep, |status, relayed| {
                    if let (Some(slot), Some(answer)) = (&forward.cache, &relayed.answer) {
                        let kind = answer.content_type.as_deref();
                        slot.store(bucket, crate::now_ms(), status, kind, &answer.body);
                    }
                    finish(
                        status,
                        Charge::of(&relayed, status, estimate, price),
                        Some(call),
                        None,
                        relayed.transcript.as_deref(),
                    );
                })
                .await;
                return Ok(());
            }
            Err(failed) if i < last => {
                eprintln!(
                    "tollgate: provider {} of org {} failed ({}); failing over",
                    provider.name,
                    records.org.org_id,
                    failed.error.code()
                );
                plan.failed(bucket, records, call.provider, crate::now_ms());
            }
            Err(failed) => {
                plan.failed(bucket, records, call.provider, crate::now_ms());
                // Once the request may have reached the provider it may have been
                // billed: settled at the reservation. Otherwise it is released.
                let charge = if failed.reached_provider {
                    Charge::estimated(estimate, price_of(call.model))
                } else {
                    Charge::NONE
                };
                finish(
                    failed.error.status(),
                    charge,
                    Some(call),
                    Some(failed.error.code()),
                    None,
                );
                return Err(Failed {
                    error: failed.error,
                    headers: admitted.headers,
                    out,
                    spooled: true,
                });
            }
        }
    }
    // `plan` never holds no attempt; should it, nothing was sent.
    if let Err(e) = counters::update(bucket, &admitted.settlement(&Charge::NONE), &[]) {
        eprintln!("tollgate: reservation of a request sent nowhere not released: {e:?}");
    }
    Err(Failed::new(GatewayError::UpstreamError, out))
}

/// Checks the body and the policy; what to forward, or why not.
fn decide(
    endpoint: Endpoint,
    records: &Records,
    client_ip: Option<std::net::IpAddr>,
    cache_directive: Option<Directive>,
    body: Vec<u8>,
    model: &mut String,
) -> Result<Forward, GatewayError> {
    let inspected = request_body::inspect(&body)?;
    model.push_str(&inspected.model);
    records.authorize(&Facts {
        now_ms: crate::now_ms(),
        client_ip,
        model: Some(&inspected.model),
    })?;
    let usage_request: Option<UsageRequest> = if endpoint.streams_usage_on_request() {
        inspected.usage_request()
    } else {
        None
    };
    let estimate = Estimate::of_request(
        body.len(),
        inspected.max_output_tokens,
        records.org.default_max_output_tokens,
        inspected.choices,
        endpoint.generates(),
    );
    let cache = cache_directive.and_then(|directive| {
        let model = &inspected.model;
        Slot::of(
            &records.org,
            directive,
            endpoint,
            model,
            inspected.stream,
            &body,
        )
    });
    let body = match usage_request {
        Some(amend) => amend.apply(body),
        None => body,
    };
    Ok(Forward {
        estimate,
        body,
        asked_usage: usage_request.is_some(),
        cache,
    })
}

/// Everything the inference path reads from the request head.
struct Head {
    bucket: Bucket,
    records: Records,
    client_ip: Option<std::net::IpAddr>,
    declared_length: Option<usize>,
    client: ClientHeaders,
    /// The client's `Cache-Control`, read only when the org caches.
    cache_directive: Option<Directive>,
}

/// Authenticates, then checks the declared length (so an oversized body from an
/// unknown key still answers 401) and collects the headers to forward.
fn prepare(headers: &Fields) -> Result<Head, GatewayError> {
    let (bucket, records) = authenticate(headers)?;
    let declared_length =
        request_body::check_declared_length(header(headers, "content-length").as_deref())?;
    let client_ip = client_ip(headers, &records.org);
    let client = ClientHeaders {
        content_type: header(headers, "content-type"),
        accept: header(headers, "accept"),
    };
    let cache_directive = records
        .org
        .cache_ttl_seconds
        .map(|_| Directive::of(header(headers, cache::CACHE_CONTROL).as_deref()));
    Ok(Head {
        bucket,
        records,
        client_ip,
        declared_length,
        client,
        cache_directive,
    })
}

/// `x-ratelimit-*` as response header fields.
fn header_list(headers: &RateHeaders) -> Vec<(String, Vec<u8>)> {
    headers
        .pairs()
        .map(|(name, value)| (name.to_string(), value.into_bytes()))
        .collect()
}

async fn respond_error(out: ResponseOutparam, error: &GatewayError, rate: &RateHeaders) {
    let mut extra = header_list(rate);
    // The body's code again, for hosts and proxies that count errors without
    // parsing bodies (the edge host's metrics).
    extra.push(("x-tollgate-error".into(), error.code().as_bytes().to_vec()));
    if let Some(secs) = error.retry_after_secs() {
        extra.push(("retry-after".into(), secs.to_string().into_bytes()));
    }
    if let GatewayError::MethodNotAllowed(allow) = error {
        extra.push(("allow".into(), allow.as_bytes().to_vec()));
    }
    respond(out, error.status(), extra, error.body()).await;
}

/// Answers with a cached body under its stored content type.
async fn respond_cached(out: ResponseOutparam, mut head: Vec<(String, Vec<u8>)>, hit: cache::Hit) {
    if !hit.content_type.is_empty() {
        head.push(("content-type".into(), hit.content_type));
    }
    head.push((
        "content-length".into(),
        hit.body.len().to_string().into_bytes(),
    ));
    let fields = Fields::from_list(&head).unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(200);
    let _ = out.set_with_body(response, hit.body).await;
}

/// Answers with a JSON body.
async fn respond(out: ResponseOutparam, status: u16, extra: Vec<(String, Vec<u8>)>, body: Vec<u8>) {
    let mut headers: Vec<(String, Vec<u8>)> = Vec::with_capacity(2 + extra.len());
    headers.push(("content-type".into(), JSON.to_vec()));
    headers.push(("content-length".into(), body.len().to_string().into_bytes()));
    headers.extend(extra);
    let fields = Fields::from_list(&headers).unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(status);
    // Nothing more can be done if the client is gone.
    let _ = out.set_with_body(response, body).await;
}
