//! The provider choice at the edge: the calls a model or route group may make,
//! in the org's strategy order (weighted draws use `wasi:random`), minus
//! providers cooling down, up to `max_attempts`; and the cooldown bookkeeping in
//! the edge store, which is touched only when the org configures a cooldown.
//!
//! Cooldown state of a provider lives under `cool:<org>:<provider>` as
//! `"<failure streak> <cooldown end, Unix ms>"` (read for every candidate in one
//! batch `get`), and its failure streak is counted atomically under
//! `ctr:fail:<org>:<provider>`, so every edge node on a shared store sees one state.

use policy::routing::{candidates, weighted_order};
use policy::{Candidate, Denial, Strategy, kv};

use crate::bindings::wasi::keyvalue::batch;
use crate::bindings::wasi::keyvalue::store::Bucket;
use crate::counters::increment;
use crate::errors::GatewayError;
use crate::records::Records;

/// The provider calls one request may make.
#[derive(Debug)]
pub struct Plan<'a> {
    /// Calls to try, first to last: the next only when one fails before relaying.
    pub attempts: Vec<Candidate<'a>>,
    /// The route group the client named, if it named one.
    pub group: Option<&'a str>,
    /// Failure streaks read for the providers of `attempts` (cooldown only).
    streaks: Vec<(usize, u64)>,
}

/// A provider's cooldown state as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Health {
    /// Consecutive failures so far.
    streak: u64,
    /// Unix ms until which the provider is skipped.
    until_ms: u64,
}

impl Health {
    /// Reads `"<streak> <until_ms>"`; anything else counts as healthy (the state is
    /// advisory: a garbled one must not take a provider out of service).
    fn decode(bytes: &[u8]) -> Health {
        let text = std::str::from_utf8(bytes).unwrap_or_default();
        let mut parts = text.split(' ').map(|p| p.parse::<u64>().ok());
        match (parts.next().flatten(), parts.next().flatten()) {
            (Some(streak), Some(until_ms)) => Health { streak, until_ms },
            _ => Health::default(),
        }
    }

    fn encode(self) -> Vec<u8> {
        format!("{} {}", self.streak, self.until_ms).into_bytes()
    }
}

/// The calls `model` (a model or a granted route group, already authorised) may
/// make for these records. Under a budget (`needs_price`), members without a
/// price are left out; none left is `model_not_priced`. Providers cooling down
/// are skipped; all of them cooling down is a 503 with `Retry-After`.
pub fn plan<'a>(
    bucket: &Bucket,
    records: &'a Records,
    model: &'a str,
    needs_price: bool,
    now_ms: u64,
) -> Result<Plan<'a>, GatewayError> {
    let org = &records.org;
    let mut attempts = candidates(org, &records.key, model);
    if attempts.is_empty() {
        return Err(Denial::NoRoute(model.to_string()).into());
    }
    if needs_price {
        attempts.retain(|c| policy::pricing::price_of(&org.prices, c.model).is_some());
        if attempts.is_empty() {
            return Err(Denial::ModelNotPriced(model.to_string()).into());
        }
    }
    attempts.retain(|c| org.may_call(&org.providers[c.provider].base_url));
    if attempts.is_empty() {
        return Err(GatewayError::UpstreamNotAllowed);
    }
    if org.routing.strategy == Strategy::Weighted {
        weighted_order(
            &mut attempts,
            |i| org.providers[i].weight.unwrap_or(1),
            wasi::random::random::get_random_u64,
        );
    }
    let mut streaks = Vec::new();
    if org.routing.cooldown.is_some() {
        let mut providers: Vec<usize> = Vec::with_capacity(attempts.len());
        for c in &attempts {
            if !providers.contains(&c.provider) {
                providers.push(c.provider);
            }
        }
        let keys: Vec<String> = providers
            .iter()
            .map(|&i| kv::cooldown_key(&org.org_id, &org.providers[i].name))
            .collect();
        let values = batch::get_many(bucket, &keys).map_err(|e| {
            eprintln!("tollgate: cooldown state unreadable: {e:?}");
            GatewayError::StoreUnavailable
        })?;
        let mut cooling_until = u64::MAX;
        for (&provider, (_, value)) in providers.iter().zip(values) {
            let health = value.as_deref().map(Health::decode).unwrap_or_default();
            if health.until_ms > now_ms {
                attempts.retain(|c| c.provider != provider);
                cooling_until = cooling_until.min(health.until_ms);
            } else if health.streak > 0 {
                streaks.push((provider, health.streak));
            }
        }
        if attempts.is_empty() {
            return Err(GatewayError::ProvidersCoolingDown {
                retry_after_secs: (cooling_until - now_ms).div_ceil(1000),
            });
        }
    }
    if let Some(most) = org.routing.max_attempts {
        attempts.truncate(usize::try_from(most).unwrap_or(usize::MAX).max(1));
    }
    let group = org.routing.group(model).map(|g| g.name.as_str());
    Ok(Plan {
        attempts,
        group,
        streaks,
    })
}

/// Whether a provider's answer moves the request to the next candidate: it is
/// overloaded (429) or failed (5xx). Other answers are the client's to see.
pub fn retryable(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

impl Plan<'_> {
    /// Records a failed call of `provider` (an org provider index): one more in
    /// its streak, and a cooldown once the streak reaches the org's threshold.
    pub fn failed(&self, bucket: &Bucket, records: &Records, provider: usize, now_ms: u64) {
        let org = &records.org;
        let Some(cooldown) = org.routing.cooldown else {
            return;
        };
        let name = &org.providers[provider].name;
        let counter = kv::failures_key(&org.org_id, name);
        let streak = match increment(bucket, &counter, 1) {
            Ok(n) => u64::try_from(n).unwrap_or(0),
            Err(e) => {
                eprintln!("tollgate: failure streak of provider {name} not counted: {e:?}");
                return;
            }
        };
        let health = if streak >= u64::from(cooldown.failures) {
            // The streak starts over once the cooldown is set.
            if let Err(e) = increment(bucket, &counter, -(streak as i64)) {
                eprintln!("tollgate: failure streak of provider {name} not reset: {e:?}");
            }
            eprintln!(
                "tollgate: provider {name} of org {} cools down for {} s after {streak} failures",
                org.org_id, cooldown.seconds
            );
            Health {
                streak: 0,
                until_ms: now_ms.saturating_add(u64::from(cooldown.seconds) * 1000),
            }
        } else {
            Health {
                streak,
                until_ms: 0,
            }
        };
        write_health(bucket, &org.org_id, name, health);
    }

    /// Records a call `provider` answered: a failure streak read at planning time
    /// ends (no store call when there was none).
    pub fn served(&self, bucket: &Bucket, records: &Records, provider: usize) {
        let org = &records.org;
        let Some(&(_, read)) = self.streaks.iter().find(|(p, _)| *p == provider) else {
            return;
        };
        let name = &org.providers[provider].name;
        let counter = kv::failures_key(&org.org_id, name);
        // Take back what the counter holds now, not what was read: failures
        // counted in between belong to the streak this success ends too.
        let current = increment(bucket, &counter, 0).unwrap_or(read as i64);
        if let Err(e) = increment(bucket, &counter, -current) {
            eprintln!("tollgate: failure streak of provider {name} not reset: {e:?}");
        }
        write_health(bucket, &org.org_id, name, Health::default());
    }
}

fn write_health(bucket: &Bucket, org_id: &str, provider: &str, health: Health) {
    if let Err(e) = bucket.set(&kv::cooldown_key(org_id, provider), &health.encode()) {
        eprintln!("tollgate: cooldown state of provider {provider} not written: {e:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_round_trips_and_garbage_is_healthy() {
        let h = Health {
            streak: 2,
            until_ms: 1_700_000_000_000,
        };
        assert_eq!(Health::decode(&h.encode()), h);
        for bad in [&b""[..], b"x y", b"1", b"-1 5", b"\xff"] {
            assert_eq!(Health::decode(bad), Health::default());
        }
    }

    #[test]
    fn only_overload_and_server_errors_fail_over() {
        for s in [429, 500, 502, 503, 504, 599] {
            assert!(retryable(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 408, 422] {
            assert!(!retryable(s), "{s}");
        }
    }
}
