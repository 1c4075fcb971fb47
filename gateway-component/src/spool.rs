//! Usage events: one per forwarded request, spooled in the edge store under
//! `usage:<event_id>` for the admin service to drain; and one per request denied
//! after its key resolved (the request log), within a bound of their own.

use policy::UsageEvent;
use policy::usage::{
    DENIALS_DROPPED_KEY, MAX_PENDING_FOR_DENIALS, MAX_SPOOLED_EVENTS, SPOOL_PENDING_KEY,
};

use crate::bindings::wasi::keyvalue::store::Bucket;
use crate::counters;
use crate::errors::GatewayError;
use crate::quota::Charge;
use crate::records::Records;

/// What the event records about one request besides its records and charge.
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'a> {
    /// Model that served (a route group's member when the client named a group).
    pub model: &'a str,
    /// Route group the client named, if any.
    pub route_group: Option<&'a str>,
    /// Status the client got.
    pub status: u16,
    /// When the request arrived, Unix milliseconds.
    pub at_ms: u64,
    /// From arrival to the last byte relayed.
    pub latency_ms: u64,
    /// Provider that served, if one was called.
    pub provider: Option<&'a str>,
    /// Error code of a failed or denied request.
    pub code: Option<&'a str>,
}

/// Builds the event of a finished request under a fresh id.
pub fn event(records: &Records, outcome: Outcome<'_>, charge: &Charge) -> UsageEvent {
    UsageEvent {
        event_id: event_id(outcome.at_ms),
        org_id: records.key.org_id.clone(),
        team_id: records.key.team_id.clone(),
        key_id: records.key.key_id.clone(),
        agent_id: records.key.agent_id.clone(),
        model: outcome.model.to_string(),
        input_tokens: charge.input_tokens,
        output_tokens: charge.output_tokens,
        cost_micros: charge.cost_micros,
        status: outcome.status,
        latency_ms: outcome.latency_ms,
        at_ms: outcome.at_ms,
        provider: outcome.provider.map(str::to_owned),
        route_group: outcome.route_group.map(str::to_owned),
        cached: false,
        code: outcome.code.map(str::to_owned),
        denied: false,
        content: None,
    }
}

/// Logs a request denied after its key resolved: no tokens, no cost, no provider.
/// Denials never refuse a request and never fill the spool for others: past
/// [`MAX_PENDING_FOR_DENIALS`] spooled events they are only counted (under
/// [`DENIALS_DROPPED_KEY`]), so a flood of them leaves half the spool to requests
/// that are forwarded.
pub fn write_denial(bucket: &Bucket, records: &Records, outcome: Outcome<'_>) {
    match counters::increment(bucket, SPOOL_PENDING_KEY, 0) {
        Ok(pending) if u64::try_from(pending).unwrap_or(0) < MAX_PENDING_FOR_DENIALS => {
            let mut event = event(records, outcome, &Charge::NONE);
            event.denied = true;
            write(bucket, &event, Vec::new());
        }
        Ok(_) => {
            if let Err(e) = counters::increment(bucket, DENIALS_DROPPED_KEY, 1) {
                eprintln!("tollgate: dropped-denials counter not incremented: {e:?}");
            }
        }
        Err(e) => eprintln!("tollgate: denial not logged, spool counter unavailable: {e:?}"),
    }
}

/// Refuses a request when the spool already holds [`MAX_SPOOLED_EVENTS`] events
/// the admin service has not drained (`pending`): its usage could not be recorded.
/// Checked before forwarding; concurrent requests may overshoot the bound by their
/// number.
pub fn room(pending: u64) -> Result<(), GatewayError> {
    if pending >= MAX_SPOOLED_EVENTS {
        return Err(GatewayError::SpoolFull);
    }
    Ok(())
}

/// Writes the event and counts it, with `moves` (the request's settlement) in the
/// same store update; the answer is already out, so a failure can only be logged.
pub fn write(bucket: &Bucket, event: &UsageEvent, mut moves: Vec<(String, i64)>) {
    moves.push((SPOOL_PENDING_KEY.to_string(), 1));
    let values = [(event.kv_key(), event.encode())];
    if let Err(e) = counters::update(bucket, &moves, &values) {
        eprintln!(
            "tollgate: usage event {} not spooled, its counters not settled: {e:?}",
            event.event_id
        );
    }
}

/// 32 lower-case hex digits: the request's arrival (Unix ms, 12 digits), then 80
/// random bits from `wasi:random`. Unique without coordination between edge nodes,
/// and the drain's idempotency key. Time first, so the drain, which reads the
/// spool in key order, takes the oldest first, and the store files new events at
/// the end of its key index rather than on a random page of it.
fn event_id(at_ms: u64) -> String {
    let mut id = format!("{:012x}", at_ms & 0xffff_ffff_ffff);
    id.push_str(&hex::encode(wasi::random::random::get_random_bytes(10)));
    id
}
