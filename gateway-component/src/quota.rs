//! Limits and budgets on the shared counters of the edge store: request counters
//! are taken before forwarding (and given back when the request is refused), token
//! counters are read before and added to after, and budget spend is reserved
//! before and settled with the real cost after.
//!
//! Every counter moves with `wasi:keyvalue/atomics.increment`, so any number of
//! edge instances on one store (Redis across nodes) enforce one limit together.
//! Counters are only ever read through `increment(…, 0)`: unlike `get`, it returns
//! the number whatever encoding the backend stores it in (Spin's Redis store keeps
//! decimal strings, SQLite integers).

use policy::limits::{Estimate, Meter, RateHeaders};
use policy::{Denial, ModelPrice, Subject, kv};

use crate::bindings::wasi::keyvalue::atomics;
use crate::bindings::wasi::keyvalue::store::{Bucket, Error as StoreError};
use crate::errors::GatewayError;
use crate::upstream::Relayed;

/// A request let through, and what it holds on the counters until settled.
#[derive(Debug, Default)]
pub struct Admitted {
    /// Token counters (TPM, TPD) to add the real usage to.
    token_counters: Vec<String>,
    /// Spend counters each holding `reserved_micros` for this request.
    spend_counters: Vec<String>,
    /// The estimated cost reserved on every spend counter.
    reserved_micros: u64,
    /// `x-ratelimit-*` headers for the response.
    pub headers: RateHeaders,
}

/// A request refused by a limit or a budget, or because the counters could not
/// be read (fail closed).
#[derive(Debug)]
pub struct Refused {
    /// The answer.
    pub error: GatewayError,
    /// The `x-ratelimit-*` headers known when it was refused.
    pub headers: RateHeaders,
}

/// What a finished request is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Tokens added to the TPM/TPD counters.
    pub tokens: u64,
    /// Cost in micro-units.
    pub cost_micros: u64,
}

impl Charge {
    /// Nothing: the request never reached the provider.
    pub const NONE: Charge = Charge {
        input_tokens: 0,
        output_tokens: 0,
        tokens: 0,
        cost_micros: 0,
    };

    /// The provider's reported usage, priced. Without usage the estimate (the
    /// reservation) is charged when the answer succeeded or was cut off, so a
    /// provider omitting usage or a stream breaking cannot make calls free; only a
    /// failed answer read to its end without usage is charged nothing.
    pub fn of(
        relayed: &Relayed,
        status: u16,
        estimate: Estimate,
        price: Option<&ModelPrice>,
    ) -> Charge {
        let (input, output, total) = match relayed.usage {
            Some(u) => (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            None if (200..300).contains(&status) || !relayed.complete => {
                return Charge::estimated(estimate, price);
            }
            None => return Charge::NONE,
        };
        Charge {
            input_tokens: input,
            output_tokens: output,
            // Some providers omit `total_tokens`, some count extra tokens in it.
            tokens: total.max(input.saturating_add(output)),
            cost_micros: price.map_or(0, |p| p.cost_micros(input, output)),
        }
    }

    /// The estimate, priced: what was reserved.
    pub fn estimated(estimate: Estimate, price: Option<&ModelPrice>) -> Charge {
        Charge {
            input_tokens: estimate.input_tokens,
            output_tokens: estimate.output_tokens,
            tokens: estimate.total(),
            cost_micros: price.map_or(0, |p| {
                p.cost_micros(estimate.input_tokens, estimate.output_tokens)
            }),
        }
    }
}

/// Counts the request against every configured limit and reserves its estimated
/// cost on every budget. A refusal gives back everything taken, so refused
/// requests consume no quota. Touches no counter when nothing is configured.
pub fn admit(
    bucket: &Bucket,
    subject: &Subject<'_>,
    estimate_micros: u64,
    now_ms: u64,
) -> Result<Admitted, Refused> {
    let mut admitted = Admitted::default();
    if !subject.is_metered() {
        return Ok(admitted);
    }
    let mut requests_taken: Vec<String> = Vec::new();
    let result = take(
        bucket,
        subject,
        estimate_micros,
        now_ms,
        &mut admitted,
        &mut requests_taken,
    );
    match result {
        Ok(()) => Ok(admitted),
        Err(error) => {
            for key in &requests_taken {
                give_back(bucket, key, -1);
            }
            let reserved = micros_delta(0, admitted.reserved_micros);
            for key in &admitted.spend_counters {
                give_back(bucket, key, reserved);
            }
            Err(Refused {
                error,
                headers: admitted.headers,
            })
        }
    }
}

/// The counter moves of [`admit`]; whatever it took is recorded in `admitted` and
/// `requests_taken` before it is checked, so the caller can give it back.
fn take(
    bucket: &Bucket,
    subject: &Subject<'_>,
    estimate_micros: u64,
    now_ms: u64,
    admitted: &mut Admitted,
    requests_taken: &mut Vec<String>,
) -> Result<(), GatewayError> {
    // Requests first: increment, then compare, so that of N concurrent requests
    // exactly `limit` see a value within it (a plain read would let them all in).
    for meter in subject.meters().filter(|m| !m.metric.counts_tokens()) {
        let key = counter_of(&meter, now_ms);
        let counted = increment(bucket, &key, 1)?;
        requests_taken.push(key);
        admitted.headers.observe(&meter, counted, now_ms);
        meter.check(counted, now_ms).map_err(Denial::RateLimited)?;
    }
    // Tokens are known only afterwards: refuse once the window is used up.
    for meter in subject.meters().filter(|m| m.metric.counts_tokens()) {
        let key = counter_of(&meter, now_ms);
        let used = increment(bucket, &key, 0)?;
        admitted.headers.observe(&meter, used, now_ms);
        meter.check(used, now_ms).map_err(Denial::RateLimited)?;
        admitted.token_counters.push(key);
    }
    admitted.reserved_micros = estimate_micros;
    for (scope, id, budget) in subject.budgets() {
        let refuse = || Denial::BudgetExceeded {
            scope,
            retry_after_secs: budget.retry_after_secs(now_ms),
        };
        // Cannot fit in any period; refused before it could overflow a counter.
        if estimate_micros > budget.limit_micros {
            return Err(refuse().into());
        }
        let (period_start, _) = budget.period_bounds(now_ms);
        let key = kv::spend_key(scope, id, period_start);
        let total = increment(bucket, &key, micros_delta(estimate_micros, 0))?;
        admitted.spend_counters.push(key);
        let before = total.saturating_sub(estimate_micros);
        if !budget.admits(before, estimate_micros) {
            return Err(refuse().into());
        }
    }
    Ok(())
}

impl Admitted {
    /// Adds the charged tokens to the token counters and replaces the budget
    /// reservation with the real cost. Runs after the answer was relayed, so a
    /// failure can only be logged.
    pub fn settle(&self, bucket: &Bucket, charge: &Charge) {
        if charge.tokens > 0 {
            let tokens = micros_delta(charge.tokens, 0);
            for key in &self.token_counters {
                give_back(bucket, key, tokens);
            }
        }
        let delta = micros_delta(charge.cost_micros, self.reserved_micros);
        if delta != 0 {
            for key in &self.spend_counters {
                give_back(bucket, key, delta);
            }
        }
    }
}

fn counter_of(meter: &Meter<'_>, now_ms: u64) -> String {
    kv::counter_key(
        meter.scope,
        meter.id,
        meter.metric,
        meter.metric.window(now_ms).index,
    )
}

/// `increment`, as a non-negative count (a counter an operator reset below zero
/// counts as empty).
fn increment(bucket: &Bucket, key: &str, delta: i64) -> Result<u64, GatewayError> {
    increment_unless_busy(bucket, key, delta)
        .map(|v| u64::try_from(v).unwrap_or(0))
        .map_err(|e| {
            eprintln!("tollgate: counter {key} unavailable: {e:?}");
            GatewayError::StoreUnavailable
        })
}

/// An increment whose failure leaves the counter off by `delta` but cannot change
/// the answer any more; logged for the operator.
fn give_back(bucket: &Bucket, key: &str, delta: i64) {
    if let Err(e) = increment_unless_busy(bucket, key, delta) {
        eprintln!("tollgate: counter {key} not adjusted by {delta}: {e:?}");
    }
}

/// Longest single wait before giving up on a locked SQLite store (waits double from
/// 1 ms: about a quarter second in all).
const BUSY_MAX_WAIT_MS: u64 = 128;

/// `atomics.increment`, retried while the store answers SQLite's "database is
/// locked": Spin's SQLite store increments in a deferred transaction, which SQLite
/// rolls back at once, writing nothing, when another process (the admin service's
/// sink, another edge) holds the write lock. Other failures may have applied the
/// delta and are not retried.
pub(crate) fn increment_unless_busy(
    bucket: &Bucket,
    key: &str,
    delta: i64,
) -> Result<i64, StoreError> {
    let mut wait_ms = 1;
    loop {
        match atomics::increment(bucket, key, delta) {
            Err(StoreError::Other(e))
                if wait_ms <= BUSY_MAX_WAIT_MS && e.contains("database is locked") =>
            {
                wasi::clocks::monotonic_clock::subscribe_duration(wait_ms * 1_000_000).block();
                wait_ms *= 2;
            }
            result => return result,
        }
    }
}

/// `plus - minus` as a counter delta, saturating at the i64 range.
fn micros_delta(plus: u64, minus: u64) -> i64 {
    let d = i128::from(plus) - i128::from(minus);
    i64::try_from(d).unwrap_or(if d < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::Usage;

    fn price() -> ModelPrice {
        ModelPrice {
            model: "m".parse().unwrap(),
            input_per_mtok_micros: 2_000_000,
            output_per_mtok_micros: 8_000_000,
        }
    }

    const EST: Estimate = Estimate {
        input_tokens: 100,
        output_tokens: 50,
    };

    fn relayed(usage: Option<Usage>, complete: bool) -> Relayed {
        Relayed {
            usage,
            complete,
            answer: None,
            transcript: None,
        }
    }

    #[test]
    fn reported_usage_is_priced() {
        let usage = Usage {
            prompt_tokens: 10,
            completion_tokens: 5,
            total_tokens: 15,
        };
        let c = Charge::of(&relayed(Some(usage), true), 200, EST, Some(&price()));
        assert_eq!((c.input_tokens, c.output_tokens, c.tokens), (10, 5, 15));
        assert_eq!(c.cost_micros, 60); // 10×2 + 5×8
        assert_eq!(
            Charge::of(&relayed(Some(usage), true), 200, EST, None).cost_micros,
            0
        );
        // A missing total is the sum; a failed call that reports usage still pays.
        let partial = Usage {
            total_tokens: 0,
            ..usage
        };
        assert_eq!(
            Charge::of(&relayed(Some(partial), true), 500, EST, None).tokens,
            15
        );
    }

    #[test]
    fn missing_usage_charges_the_estimate_unless_a_complete_failure() {
        let c = Charge::of(&relayed(None, true), 200, EST, Some(&price()));
        assert_eq!((c.tokens, c.cost_micros), (150, 600));
        assert_eq!(c, Charge::estimated(EST, Some(&price())));
        assert_eq!(
            Charge::of(&relayed(None, true), 400, EST, Some(&price())),
            Charge::NONE
        );
        // Cut off mid-body: the provider may have billed what it never reported.
        assert_eq!(
            Charge::of(&relayed(None, false), 500, EST, Some(&price())).cost_micros,
            600
        );
    }

    #[test]
    fn deltas_saturate() {
        assert_eq!(micros_delta(5, 7), -2);
        assert_eq!(micros_delta(u64::MAX, 0), i64::MAX);
        assert_eq!(micros_delta(0, u64::MAX), i64::MIN);
    }
}
