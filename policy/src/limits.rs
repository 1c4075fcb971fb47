//! Rate limits and budgets: windows, periods and the verdict given counter values.

use serde::{Deserialize, Serialize};

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 60 * MINUTE_MS;
const DAY_MS: u64 = 24 * HOUR_MS;

/// The scope a limit or counter belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// One virtual key.
    Key,
    /// A team: shared by its keys.
    Team,
    /// An organization: shared by all its teams and keys.
    Org,
}

impl Scope {
    /// Short name used in counter keys and messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Key => "key",
            Scope::Team => "team",
            Scope::Org => "org",
        }
    }
}

/// A rate-limited quantity over a fixed window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Requests per minute.
    Rpm,
    /// Requests per hour.
    Rph,
    /// Requests per day.
    Rpd,
    /// Tokens per minute.
    Tpm,
    /// Tokens per day.
    Tpd,
}

impl Metric {
    /// Every metric, requests first.
    pub const ALL: [Metric; 5] = [
        Metric::Rpm,
        Metric::Rph,
        Metric::Rpd,
        Metric::Tpm,
        Metric::Tpd,
    ];

    /// Field name, as in the org config (`rpm`, `tpm`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Metric::Rpm => "rpm",
            Metric::Rph => "rph",
            Metric::Rpd => "rpd",
            Metric::Tpm => "tpm",
            Metric::Tpd => "tpd",
        }
    }

    /// Whether the metric counts tokens rather than requests.
    pub const fn counts_tokens(self) -> bool {
        matches!(self, Metric::Tpm | Metric::Tpd)
    }

    /// Length of the fixed window, aligned to UTC.
    pub const fn window_ms(self) -> u64 {
        match self {
            Metric::Rpm | Metric::Tpm => MINUTE_MS,
            Metric::Rph => HOUR_MS,
            Metric::Rpd | Metric::Tpd => DAY_MS,
        }
    }

    /// The window containing `now_ms`.
    pub const fn window(self, now_ms: u64) -> Window {
        let len = self.window_ms();
        Window {
            index: now_ms / len,
            resets_in_ms: len - now_ms % len,
        }
    }
}

/// One fixed window of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Window number since the Unix epoch; part of the counter key.
    pub index: u64,
    /// Milliseconds until the next window starts.
    pub resets_in_ms: u64,
}

/// Rate limits of one scope; `None` is not enforced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Requests per hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rph: Option<u64>,
    /// Requests per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpd: Option<u64>,
    /// Tokens per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Tokens per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpd: Option<u64>,
}

impl Limits {
    /// The configured limit for `metric`.
    pub const fn get(&self, metric: Metric) -> Option<u64> {
        match metric {
            Metric::Rpm => self.rpm,
            Metric::Rph => self.rph,
            Metric::Rpd => self.rpd,
            Metric::Tpm => self.tpm,
            Metric::Tpd => self.tpd,
        }
    }

    /// The configured limits, as (metric, limit).
    pub fn configured(&self) -> impl Iterator<Item = (Metric, u64)> + '_ {
        Metric::ALL
            .into_iter()
            .filter_map(|m| self.get(m).map(|l| (m, l)))
    }

    /// Whether no limit is configured.
    pub fn is_empty(&self) -> bool {
        self.configured().next().is_none()
    }
}

/// A rate limit that a request would exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    /// Scope whose limit tripped.
    pub scope: Scope,
    /// Metric that tripped.
    pub metric: Metric,
    /// The configured limit.
    pub limit: u64,
    /// Whole seconds until the window resets (at least 1), for `Retry-After`.
    pub retry_after_secs: u64,
}

/// Checks one limit given the counter value after counting this request
/// (requests) or the value already used (tokens).
pub fn check(
    scope: Scope,
    metric: Metric,
    limit: u64,
    counted: u64,
    now_ms: u64,
) -> Result<(), Exceeded> {
    let over = if metric.counts_tokens() {
        // Tokens are known only after the response: deny once the window is used up.
        counted >= limit
    } else {
        counted > limit
    };
    if over {
        Err(Exceeded {
            scope,
            metric,
            limit,
            retry_after_secs: metric.window(now_ms).resets_in_ms.div_ceil(1000).max(1),
        })
    } else {
        Ok(())
    }
}

/// One configured limit of one scope: a counter the request touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meter<'a> {
    /// Scope of the counter.
    pub scope: Scope,
    /// Id of the key, team or org.
    pub id: &'a str,
    /// What is counted.
    pub metric: Metric,
    /// The configured limit.
    pub limit: u64,
}

impl Meter<'_> {
    /// Checks the counter value (see [`check`]).
    pub fn check(&self, counted: u64, now_ms: u64) -> Result<(), Exceeded> {
        check(self.scope, self.metric, self.limit, counted, now_ms)
    }

    /// What is left in the current window once `counted` is used.
    pub fn headroom(&self, counted: u64, now_ms: u64) -> Headroom {
        Headroom {
            limit: self.limit,
            remaining: self.limit.saturating_sub(counted),
            reset_ms: self.metric.window(now_ms).resets_in_ms,
        }
    }
}

/// The tightest configured limit of one kind, for OpenAI's `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headroom {
    /// `x-ratelimit-limit-*`.
    pub limit: u64,
    /// `x-ratelimit-remaining-*`.
    pub remaining: u64,
    /// Milliseconds until it resets, for `x-ratelimit-reset-*`.
    pub reset_ms: u64,
}

impl Headroom {
    /// The tighter of two: the one with less remaining (then the later reset).
    pub fn tighter(self, other: Headroom) -> Headroom {
        match self.remaining.cmp(&other.remaining) {
            std::cmp::Ordering::Less => self,
            std::cmp::Ordering::Greater => other,
            std::cmp::Ordering::Equal if other.reset_ms > self.reset_ms => other,
            std::cmp::Ordering::Equal => self,
        }
    }

    /// `x-ratelimit-reset-*` in OpenAI's duration format: `20ms`, `1s`, `6m0s`, `1h2m3s`.
    pub fn reset_header(&self) -> String {
        let ms = self.reset_ms;
        if ms < 1000 {
            return format!("{ms}ms");
        }
        let secs = ms.div_ceil(1000);
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        match (h, m) {
            (0, 0) => format!("{s}s"),
            (0, _) => format!("{m}m{s}s"),
            _ => format!("{h}h{m}m{s}s"),
        }
    }
}

/// The `x-ratelimit-*` headers of one response: the tightest configured limit of
/// each kind, `None` when no limit of that kind applies (the headers are omitted:
/// there is no limit to report).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateHeaders {
    /// Request limits (RPM, RPH, RPD).
    pub requests: Option<Headroom>,
    /// Token limits (TPM, TPD).
    pub tokens: Option<Headroom>,
}

impl RateHeaders {
    /// Takes a meter's headroom into account.
    pub fn observe(&mut self, meter: &Meter<'_>, counted: u64, now_ms: u64) {
        let h = meter.headroom(counted, now_ms);
        let slot = if meter.metric.counts_tokens() {
            &mut self.tokens
        } else {
            &mut self.requests
        };
        *slot = Some(slot.map_or(h, |old| old.tighter(h)));
    }

    /// `(name, value)` pairs in OpenAI's header names, requests first.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, String)> {
        let kind = |h: Option<Headroom>, names: [&'static str; 3]| {
            h.into_iter().flat_map(move |h| {
                [
                    (names[0], h.limit.to_string()),
                    (names[1], h.remaining.to_string()),
                    (names[2], h.reset_header()),
                ]
            })
        };
        kind(
            self.requests,
            [
                "x-ratelimit-limit-requests",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
            ],
        )
        .chain(kind(
            self.tokens,
            [
                "x-ratelimit-limit-tokens",
                "x-ratelimit-remaining-tokens",
                "x-ratelimit-reset-tokens",
            ],
        ))
    }
}

/// Output tokens assumed for a generating request that sets no `max_tokens`, to
/// reserve budget before the real usage is known (settled afterwards).
pub const DEFAULT_OUTPUT_TOKENS: u64 = 1024;
/// Request-body bytes per estimated prompt token: about four characters per token
/// in English text, and JSON framing only adds bytes, so this rarely under-estimates.
pub const BYTES_PER_TOKEN: u64 = 4;

/// Tokens a request is expected to use, before the provider reports the real usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimate {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
}

impl Estimate {
    /// From the body size, `max_tokens`/`max_completion_tokens` (else `default_output`,
    /// the org's ceiling, else [`DEFAULT_OUTPUT_TOKENS`]) for each of `choices`
    /// completions (`n`, `best_of`); `generates` is false for endpoints that
    /// produce no tokens (embeddings).
    pub fn of_request(
        body_len: usize,
        max_output_tokens: Option<u64>,
        default_output: Option<u64>,
        choices: u64,
        generates: bool,
    ) -> Self {
        let per_choice = max_output_tokens
            .or(default_output)
            .unwrap_or(DEFAULT_OUTPUT_TOKENS);
        Estimate {
            input_tokens: (body_len as u64).div_ceil(BYTES_PER_TOKEN),
            output_tokens: if generates {
                per_choice.saturating_mul(choices.max(1))
            } else {
                0
            },
        }
    }

    /// Prompt plus completion.
    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// How often a budget resets, on calendar boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriod {
    /// Every day at 00:00.
    Daily,
    /// Every Monday at 00:00.
    Weekly,
    /// The first of every month at 00:00.
    Monthly,
}

/// A spend cap of one scope, in micro-units of the org's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Cap in millionths of the currency unit (exact integer money).
    pub limit_micros: u64,
    /// Reset period.
    pub period: BudgetPeriod,
    /// Offset of the org's timezone from UTC in minutes (calendar boundaries there).
    #[serde(default)]
    pub utc_offset_minutes: i32,
}

impl Budget {
    /// Start and end (Unix ms, end exclusive) of the period containing `now_ms`.
    pub fn period_bounds(&self, now_ms: u64) -> (u64, u64) {
        let offset = i64::from(self.utc_offset_minutes) * MINUTE_MS as i64;
        let local = now_ms as i64 + offset;
        let day = local.div_euclid(DAY_MS as i64);
        let (start_day, end_day) = match self.period {
            BudgetPeriod::Daily => (day, day + 1),
            BudgetPeriod::Weekly => {
                // 1970-01-01 was a Thursday: Monday-based weekday is (day + 3) mod 7.
                let start = day - (day + 3).rem_euclid(7);
                (start, start + 7)
            }
            BudgetPeriod::Monthly => {
                let (y, m, _) = civil_from_days(day);
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                (days_from_civil(y, m, 1), days_from_civil(ny, nm, 1))
            }
        };
        let to_utc = |d: i64| (d * DAY_MS as i64 - offset).max(0) as u64;
        (to_utc(start_day), to_utc(end_day))
    }

    /// Whether spending `spent_micros` leaves no room for another request.
    pub fn exhausted(&self, spent_micros: u64) -> bool {
        spent_micros >= self.limit_micros
    }

    /// Whether a request reserving `estimate_micros` may go ahead when
    /// `spent_micros` (settled spend plus other requests' reservations) is already
    /// taken: only if the budget is not spent and the reservation fits, so
    /// concurrent requests cannot overrun it together.
    pub fn admits(&self, spent_micros: u64, estimate_micros: u64) -> bool {
        !self.exhausted(spent_micros)
            && spent_micros.saturating_add(estimate_micros) <= self.limit_micros
    }

    /// Whole seconds until the next period starts (at least 1), for `Retry-After`.
    pub fn retry_after_secs(&self, now_ms: u64) -> u64 {
        let (_, end) = self.period_bounds(now_ms);
        end.saturating_sub(now_ms).div_ceil(1000).max(1)
    }
}

// Howard Hinnant's civil-calendar algorithms (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // 2026-11-23T10:15:30Z, a Monday.
    const NOW: u64 = 1_795_428_930_000;

    #[test]
    fn request_limits_allow_exactly_the_limit() {
        assert!(check(Scope::Org, Metric::Rpm, 20, 20, NOW).is_ok());
        let e = check(Scope::Org, Metric::Rpm, 20, 21, NOW).unwrap_err();
        assert_eq!((e.scope, e.metric, e.limit), (Scope::Org, Metric::Rpm, 20));
        assert_eq!(e.retry_after_secs, 30);
    }

    #[test]
    fn token_limits_deny_once_used_up() {
        assert!(check(Scope::Key, Metric::Tpm, 100, 99, NOW).is_ok());
        assert!(check(Scope::Key, Metric::Tpm, 100, 100, NOW).is_err());
        let e = check(Scope::Key, Metric::Tpd, 100, 100, NOW).unwrap_err();
        // 10:15:30 → 13h44m30s to midnight.
        assert_eq!(e.retry_after_secs, 13 * 3600 + 44 * 60 + 30);
    }

    #[test]
    fn windows_align_to_utc() {
        let w = Metric::Rph.window(NOW);
        assert_eq!(w.index, NOW / HOUR_MS);
        assert_eq!(w.resets_in_ms, 44 * MINUTE_MS + 30_000);
        let l = Limits {
            rpm: Some(5),
            tpd: Some(9),
            ..Default::default()
        };
        assert_eq!(
            l.configured().collect::<Vec<_>>(),
            vec![(Metric::Rpm, 5), (Metric::Tpd, 9)]
        );
        assert!(Limits::default().is_empty());
    }

    #[test]
    fn meter_headroom_and_the_tightest_limit() {
        let rpm = Meter {
            scope: Scope::Key,
            id: "k",
            metric: Metric::Rpm,
            limit: 10,
        };
        let rpd = Meter {
            scope: Scope::Org,
            id: "o",
            metric: Metric::Rpd,
            limit: 1000,
        };
        let a = rpm.headroom(7, NOW);
        let b = rpd.headroom(998, NOW);
        assert_eq!(
            a,
            Headroom {
                limit: 10,
                remaining: 3,
                reset_ms: 30_000
            }
        );
        assert_eq!(a.tighter(b), b);
        assert_eq!(b.tighter(a), b);
        assert_eq!(rpm.headroom(12, NOW).remaining, 0);
        assert!(rpm.check(10, NOW).is_ok() && rpm.check(11, NOW).is_err());
    }

    #[test]
    fn reset_header_uses_openai_durations() {
        let h = |reset_ms| {
            Headroom {
                limit: 1,
                remaining: 0,
                reset_ms,
            }
            .reset_header()
        };
        assert_eq!(h(20), "20ms");
        assert_eq!(h(1_000), "1s");
        assert_eq!(h(1_001), "2s");
        assert_eq!(h(360_000), "6m0s");
        assert_eq!(h(3_723_000), "1h2m3s");
    }

    fn budget(period: BudgetPeriod, off: i32) -> Budget {
        Budget {
            limit_micros: 1_000_000,
            period,
            utc_offset_minutes: off,
        }
    }

    #[test]
    fn calendar_periods() {
        let day = 1_795_392_000_000; // 2026-11-23T00:00Z
        assert_eq!(
            budget(BudgetPeriod::Daily, 0).period_bounds(NOW),
            (day, day + DAY_MS)
        );
        // Monday: the week starts today.
        assert_eq!(
            budget(BudgetPeriod::Weekly, 0).period_bounds(NOW),
            (day, day + 7 * DAY_MS)
        );
        let nov1 = days_from_civil(2026, 11, 1) as u64 * DAY_MS;
        let dec1 = days_from_civil(2026, 12, 1) as u64 * DAY_MS;
        assert_eq!(
            budget(BudgetPeriod::Monthly, 0).period_bounds(NOW),
            (nov1, dec1)
        );
        // UTC+14: it is already 00:15 on Tuesday the 24th there.
        let (s, e) = budget(BudgetPeriod::Daily, 14 * 60).period_bounds(NOW);
        assert_eq!(
            (s, e),
            (day + DAY_MS - 14 * HOUR_MS, day + 2 * DAY_MS - 14 * HOUR_MS)
        );
        // December rolls into the next year.
        let dec15 = days_from_civil(2026, 12, 15) as u64 * DAY_MS;
        let jan1 = days_from_civil(2027, 1, 1) as u64 * DAY_MS;
        assert_eq!(
            budget(BudgetPeriod::Monthly, 0).period_bounds(dec15).1,
            jan1
        );
    }

    #[test]
    fn rate_headers_keep_the_tightest_of_each_kind() {
        let meter = |scope, metric, limit| Meter {
            scope,
            id: "x",
            metric,
            limit,
        };
        let mut h = RateHeaders::default();
        assert_eq!(h.pairs().count(), 0);
        h.observe(&meter(Scope::Key, Metric::Rpm, 10), 3, NOW);
        h.observe(&meter(Scope::Org, Metric::Rpd, 100), 99, NOW);
        h.observe(&meter(Scope::Org, Metric::Tpm, 1000), 400, NOW);
        let pairs: Vec<_> = h.pairs().collect();
        assert_eq!(
            pairs,
            vec![
                ("x-ratelimit-limit-requests", "100".to_string()),
                ("x-ratelimit-remaining-requests", "1".to_string()),
                ("x-ratelimit-reset-requests", "13h44m30s".to_string()),
                ("x-ratelimit-limit-tokens", "1000".to_string()),
                ("x-ratelimit-remaining-tokens", "600".to_string()),
                ("x-ratelimit-reset-tokens", "30s".to_string()),
            ]
        );
    }

    #[test]
    fn estimates_from_body_size_and_max_tokens() {
        let e = Estimate::of_request(81, Some(5), None, 1, true);
        assert_eq!((e.input_tokens, e.output_tokens, e.total()), (21, 5, 26));
        assert_eq!(
            Estimate::of_request(8, None, None, 1, true).output_tokens,
            DEFAULT_OUTPUT_TOKENS
        );
        assert_eq!(
            Estimate::of_request(8, None, Some(8000), 1, true).output_tokens,
            8000
        );
        // Every one of `n` completions may reach the cap; `n: 0` is still one.
        assert_eq!(
            Estimate::of_request(8, Some(100), Some(8000), 4, true).output_tokens,
            400
        );
        assert_eq!(
            Estimate::of_request(8, Some(7), None, 0, true).output_tokens,
            7
        );
        assert_eq!(
            Estimate::of_request(8, Some(u64::MAX), None, 3, true).output_tokens,
            u64::MAX
        );
        assert_eq!(
            Estimate::of_request(8, Some(9), None, 2, false).output_tokens,
            0
        );
    }

    #[test]
    fn budgets_admit_only_reservations_that_fit() {
        let b = budget(BudgetPeriod::Daily, 0);
        assert!(b.admits(0, 1_000_000));
        assert!(b.admits(950_000, 50_000));
        assert!(!b.admits(950_001, 50_000));
        // A model without a price reserves nothing: denied once the budget is spent.
        assert!(b.admits(999_999, 0));
        assert!(!b.admits(1_000_000, 0));
        // 10:15:30 → 13h44m30s to the next UTC midnight.
        assert_eq!(b.retry_after_secs(NOW), 13 * 3600 + 44 * 60 + 30);
    }

    proptest! {
        #[test]
        fn civil_round_trip(days in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }

        #[test]
        fn period_contains_now(now in 0u64..4_000_000_000_000, off in -720i32..=840, p in 0..3u8) {
            let period = [BudgetPeriod::Daily, BudgetPeriod::Weekly, BudgetPeriod::Monthly][p as usize];
            let (s, e) = budget(period, off).period_bounds(now);
            prop_assert!(s <= now && now < e, "{s} <= {now} < {e}");
        }
    }
}
