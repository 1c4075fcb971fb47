//! Limits and budgets on the shared counters of the edge store: request counters
//! are taken before forwarding (and given back when the request is refused), token
//! counters are read before and added to after, and budget spend is reserved
//! before and settled with the real cost after.
//!
//! Every counter moves by an atomic increment, so any number of edge instances on
//! one store (Redis across nodes) enforce one limit together. A request's moves
//! before forwarding go to the store as one [`counters::update`], and so do the ones
//! after (with its usage event): two host calls however many limits apply.

use policy::limits::{Estimate, Meter, RateHeaders};
use policy::usage::SPOOL_PENDING_KEY;
use policy::{Denial, ModelPrice, Subject, kv};

use crate::bindings::wasi::keyvalue::store::Bucket;
use crate::counters;
use crate::errors::GatewayError;
use crate::spool;
use crate::upstream::Relayed;

/// A request let through, and what it holds on the counters until settled.
#[derive(Debug)]
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

/// Checks that the usage spool has room for the request's event, counts the
/// request against every configured limit and reserves its estimated cost on every
/// budget, in one store update. A refusal gives back everything taken, so refused
/// requests consume no quota.
///
/// Everything is taken first and checked after, in the order limits are reported
/// (spool, request limits, token limits, budgets). Of N concurrent requests exactly
/// `limit` see a count within it (a plain read would let them all in); one that is
/// refused holds its increments until it gives them back, which can refuse another
/// request in between, never admit one.
pub fn admit(
    bucket: &Bucket,
    subject: &Subject<'_>,
    estimate_micros: u64,
    now_ms: u64,
) -> Result<Admitted, Refused> {
    let mut moves = vec![(SPOOL_PENDING_KEY.to_string(), 0)];
    for meter in requests(subject) {
        moves.push((counter_of(&meter, now_ms), 1));
    }
    for meter in tokens(subject) {
        moves.push((counter_of(&meter, now_ms), 0));
    }
    let reservation = micros_delta(estimate_micros, 0);
    for (scope, id, budget) in subject.budgets() {
        // An estimate no period can hold reserves nothing (it could overflow the
        // counter); it is refused when its budget's turn comes.
        let delta = if estimate_micros > budget.limit_micros {
            0
        } else {
            reservation
        };
        let (period_start, _) = budget.period_bounds(now_ms);
        moves.push((kv::spend_key(scope, id, period_start), delta));
    }
    let counted = counters::update(bucket, &moves, &[]).map_err(|e| {
        eprintln!("tollgate: counters unavailable: {e:?}");
        Refused {
            error: GatewayError::StoreUnavailable,
            headers: RateHeaders::default(),
        }
    })?;
    let mut headers = RateHeaders::default();
    match check(subject, estimate_micros, now_ms, &counted, &mut headers) {
        Ok(()) => {
            let mut later = moves.into_iter().skip(1 + requests(subject).count());
            let token_counters = later
                .by_ref()
                .take(tokens(subject).count())
                .map(|(key, _)| key)
                .collect();
            Ok(Admitted {
                token_counters,
                spend_counters: later.map(|(key, _)| key).collect(),
                reserved_micros: estimate_micros,
                headers,
            })
        }
        Err(error) => {
            let taken: Vec<(String, i64)> = moves
                .into_iter()
                .filter(|(_, delta)| *delta != 0)
                .map(|(key, delta)| (key, delta.saturating_neg()))
                .collect();
            if let Err(e) = counters::update(bucket, &taken, &[]) {
                eprintln!("tollgate: counters of a refused request not given back: {e:?}");
            }
            Err(Refused { error, headers })
        }
    }
}

/// The request limits (RPM, RPH, RPD), taken before forwarding.
fn requests<'a>(subject: &Subject<'a>) -> impl Iterator<Item = Meter<'a>> + 'a {
    subject.meters().filter(|m| !m.metric.counts_tokens())
}

/// The token limits (TPM, TPD), read before forwarding and added to after.
fn tokens<'a>(subject: &Subject<'a>) -> impl Iterator<Item = Meter<'a>> + 'a {
    subject.meters().filter(|m| m.metric.counts_tokens())
}

/// Checks what [`admit`]'s update returned (`counted`, in the order of its moves)
/// and fills `headers` with every limit it saw.
fn check(
    subject: &Subject<'_>,
    estimate_micros: u64,
    now_ms: u64,
    counted: &[i64],
    headers: &mut RateHeaders,
) -> Result<(), GatewayError> {
    // A counter an operator reset below zero counts as empty.
    let mut counted = counted.iter().map(|&v| u64::try_from(v).unwrap_or(0));
    let mut next = || counted.next().ok_or(GatewayError::StoreUnavailable);
    spool::room(next()?)?;
    // Requests were incremented: the count includes this one.
    for meter in requests(subject).chain(tokens(subject)) {
        let used = next()?;
        headers.observe(&meter, used, now_ms);
        meter.check(used, now_ms).map_err(Denial::RateLimited)?;
    }
    for (scope, _, budget) in subject.budgets() {
        let total = next()?;
        let fits = estimate_micros <= budget.limit_micros
            && budget.admits(total.saturating_sub(estimate_micros), estimate_micros);
        if !fits {
            return Err(Denial::BudgetExceeded {
                scope,
                retry_after_secs: budget.retry_after_secs(now_ms),
            }
            .into());
        }
    }
    Ok(())
}

impl Admitted {
    /// The counter moves that settle the request at `charge`: the charged tokens
    /// added to the token counters, and the budget reservation replaced by the
    /// real cost. Made with the request's usage event ([`spool::write`]).
    pub fn settlement(&self, charge: &Charge) -> Vec<(String, i64)> {
        let tokens = micros_delta(charge.tokens, 0);
        let spend = micros_delta(charge.cost_micros, self.reserved_micros);
        let moves = self.token_counters.iter().map(|key| (key, tokens));
        moves
            .chain(self.spend_counters.iter().map(|key| (key, spend)))
            .filter(|(_, delta)| *delta != 0)
            .map(|(key, delta)| (key.clone(), delta))
            .collect()
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
