//! Billing: per-agent monthly revenue (the agent's effective rate, pro-rated by the
//! days the agent was assigned to the org that month) against the token cost of its
//! usage, with margins; the same records as JSON and CSV. All amounts are integers
//! (rates in minor units, costs in micros); months are UTC calendar months.

pub mod fx;
pub mod money;
pub mod rate_history;
pub mod usage;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::billing::money::{Cents, Micros, SignedMicros, TotalCents, TotalMicros};
use crate::billing::rate_history::Rates;
use crate::errors::{ApiError, ApiResult};
use crate::store;
use crate::store::db::{Db, now_ms};

// Assignment history is written where agents move and orgs are deleted; the SQL
// lives in the store, callers keep this path.
pub use crate::store::billing::{delete_history, has_history, record_assignment};

const DAY_MS: i64 = 86_400_000;
/// Longest range one request may ask for.
const MAX_MONTHS: i64 = 120;
/// Micros per minor unit (every supported currency has two decimals).
const MICROS_PER_MINOR: i128 = 10_000;

/// A UTC calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    year: i32,
    month: u8,
}

impl Month {
    /// Parses `YYYY-MM`.
    pub fn parse(text: &str) -> Option<Month> {
        let (y, m) = text.split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let month = Month {
            year: y.parse().ok()?,
            month: m.parse().ok()?,
        };
        (1..=12).contains(&month.month).then_some(month)
    }

    /// The month containing a Unix-ms instant.
    pub fn of(ms: i64) -> Month {
        let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        Month {
            year: t.year(),
            month: u8::from(t.month()),
        }
    }

    fn first_day(self) -> time::Date {
        let m = time::Month::try_from(self.month).expect("validated month");
        time::Date::from_calendar_date(self.year, m, 1).expect("valid first day")
    }

    /// The following month.
    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// Unix ms of 00:00 UTC on the first day.
    pub fn start_ms(self) -> i64 {
        self.first_day().midnight().assume_utc().unix_timestamp() * 1000
    }

    /// Days in the month.
    pub fn days(self) -> i64 {
        (self.next().start_ms() - self.start_ms()) / DAY_MS
    }

    /// Months since year 0 (January 0000 is 0).
    fn index(self) -> i64 {
        i64::from(self.year) * 12 + i64::from(self.month) - 1
    }

    /// The month `index` counts to.
    fn from_index(index: i64) -> Month {
        Month {
            year: i32::try_from(index.div_euclid(12)).unwrap_or(i32::MAX),
            month: index.rem_euclid(12) as u8 + 1,
        }
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl utoipa::PartialSchema for Month {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[0-9]{4}-(0[1-9]|1[0-2])$"))
            .description(Some("A calendar month, YYYY-MM"))
            .into()
    }
}

impl utoipa::ToSchema for Month {}

impl Serialize for Month {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One agent's billing in one month.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgentBilling {
    /// The month.
    pub month: Month,
    /// The agent.
    pub agent_id: String,
    /// Its name.
    pub agent_name: String,
    /// Monthly rate in force on the agent's last billed day of the month: its own
    /// `billingRate`, else the org's default (revenue follows each day's rate).
    pub rate: Cents,
    /// Days of the month the agent belonged to this org (a move day counts for the new org).
    pub days_assigned: i64,
    /// Days in the month.
    pub days_in_month: i64,
    /// Prompt tokens of its usage in this org.
    pub input_tokens: u64,
    /// Completion tokens of its usage in this org.
    pub output_tokens: u64,
    /// Token cost of that usage.
    pub token_cost: Micros,
    /// Sum over the days assigned of that day's rate, `/ days_in_month`, rounded
    /// half up to the minor unit (`rate × days_assigned / days_in_month` while the
    /// rate holds).
    pub revenue: Cents,
    /// `revenue − token_cost`.
    pub margin: SignedMicros,
}

/// One month of an org's billing.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MonthSummary {
    /// The month.
    pub month: Month,
    /// Sum of the agents' revenue.
    pub revenue: TotalCents,
    /// Token cost of all the org's usage that month (agents' and agent-less keys').
    pub token_cost: TotalMicros,
    /// Part of `token_cost` from keys bound to no agent.
    pub unattributed_token_cost: TotalMicros,
    /// `revenue − token_cost`.
    pub margin: SignedMicros,
    /// Margin as a percentage of revenue, one decimal (`null` without revenue).
    pub margin_percent: Option<String>,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Per-agent breakdown.
    pub agents: Vec<AgentBilling>,
}

/// Range of months asked for.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MonthRange {
    /// First month, `YYYY-MM` (default: the org's first month with history).
    #[serde(default)]
    from: Option<String>,
    /// Last month, `YYYY-MM` (default: the current month).
    #[serde(default)]
    to: Option<String>,
}

/// The org's billing: currency and months, computed from history.
pub struct Billing {
    /// Org currency.
    pub currency: String,
    /// Months, oldest first.
    pub months: Vec<MonthSummary>,
}

fn parse_month(field: &str, v: Option<&str>) -> Result<Option<Month>, ApiError> {
    v.map(|t| {
        Month::parse(t)
            .ok_or_else(|| ApiError::invalid(field, format!("{t:?} is not a month (YYYY-MM)")))
    })
    .transpose()
}

/// Rounds `num / den` half up (both non-negative, `den > 0`).
fn div_round(num: i128, den: i128) -> i128 {
    (2 * num + den) / (2 * den)
}

fn percent(margin: i128, revenue: i128) -> Option<String> {
    if revenue <= 0 {
        return None;
    }
    // Tenths of a percent, rounded half away from zero.
    let tenths = margin * 1000;
    let den = revenue;
    let t = if tenths < 0 {
        -div_round(-tenths, den)
    } else {
        div_round(tenths, den)
    };
    let sign = if t < 0 { "-" } else { "" };
    Some(format!("{sign}{}.{}", t.abs() / 10, t.abs() % 10))
}

struct Interval {
    from_ms: i64,
    to_ms: Option<i64>,
}

struct AgentInfo {
    name: String,
    intervals: Vec<Interval>,
}

impl AgentInfo {
    /// Days (1-based) of `m` whose last instant falls in one of the intervals.
    fn days_in(&self, m: Month) -> Vec<i64> {
        let start = m.start_ms();
        (1..=m.days())
            .filter(|d| {
                let t = start + d * DAY_MS - 1;
                self.intervals
                    .iter()
                    .any(|i| i.from_ms <= t && i.to_ms.is_none_or(|to| t < to))
            })
            .collect()
    }
}

#[derive(Default, Clone, Copy)]
struct Used {
    input: u64,
    output: u64,
    cost: u64,
}

/// Computes the org's billing for the months in `range`.
pub async fn compute(pool: &Db, org_id: &str, range: &MonthRange) -> ApiResult<Billing> {
    let currency = store::billing::org_currency(pool, org_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;

    let to = parse_month("to", range.to.as_deref())?.unwrap_or_else(|| Month::of(now_ms()));
    let from = match parse_month("from", range.from.as_deref())? {
        Some(m) => m,
        None => {
            let first = store::usage::first_activity_ms(pool, org_id).await?;
            first.map_or(to, Month::of).min(to)
        }
    };
    if from > to {
        return Err(ApiError::invalid("from", "must not be after `to`"));
    }
    let from = if to.index() - from.index() >= MAX_MONTHS {
        if range.from.is_some() {
            return Err(ApiError::invalid(
                "from",
                format!("at most {MAX_MONTHS} months per request"),
            ));
        }
        // Default range: the most recent MAX_MONTHS months.
        Month::from_index(to.index() - (MAX_MONTHS - 1))
    } else {
        from
    };
    let (start, end) = (from.start_ms(), to.next().start_ms());

    let mut agents: BTreeMap<String, AgentInfo> = BTreeMap::new();
    for a in store::billing::assignments(pool, org_id, start, end).await? {
        let info = agents.entry(a.agent_id).or_insert(AgentInfo {
            name: a.agent_name,
            intervals: Vec::new(),
        });
        info.intervals.push(Interval {
            from_ms: a.from_ms,
            to_ms: a.to_ms,
        });
    }

    // Usage per (month, agent); agents seen only in usage still get a row.
    let mut used: BTreeMap<(String, Option<String>), Used> = BTreeMap::new();
    for u in store::usage::by_month_and_agent(pool, org_id, start, end).await? {
        if let Some(a) = &u.agent_id
            && !agents.contains_key(a)
        {
            agents.insert(
                a.clone(),
                AgentInfo {
                    name: u.agent_name.unwrap_or_default(),
                    intervals: Vec::new(),
                },
            );
        }
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        used.insert(
            (u.month, u.agent_id),
            Used {
                input: n(u.input_tokens),
                output: n(u.output_tokens),
                cost: n(u.cost_micros),
            },
        );
    }

    let rates = Rates::load(pool, org_id).await?;
    let mut months = Vec::new();
    let mut m = from;
    while m <= to {
        months.push(month_summary(m, &agents, &used, &rates));
        m = m.next();
    }
    Ok(Billing { currency, months })
}

fn month_summary(
    m: Month,
    agents: &BTreeMap<String, AgentInfo>,
    used: &BTreeMap<(String, Option<String>), Used>,
    rates: &Rates,
) -> MonthSummary {
    let key = m.to_string();
    let dim = m.days();
    let mut rows = Vec::new();
    for (id, info) in agents {
        let billed = info.days_in(m);
        let days = billed.len() as i64;
        let u = used
            .get(&(key.clone(), Some(id.clone())))
            .copied()
            .unwrap_or_default();
        if days == 0 && u.cost == 0 && u.input == 0 && u.output == 0 {
            continue;
        }
        // Each billed day earns 1/dim of the rate in force that day.
        let day = |d: i64| format!("{key}-{d:02}");
        let earned: i128 = billed
            .iter()
            .map(|&d| i128::from(rates.on(id, &day(d)).max(0)))
            .sum();
        let revenue = div_round(earned, i128::from(dim)) as u64;
        let shown_day = billed.last().copied().unwrap_or(dim);
        let rate = u64::try_from(rates.on(id, &day(shown_day))).unwrap_or(0);
        rows.push(AgentBilling {
            month: m,
            agent_id: id.clone(),
            agent_name: info.name.clone(),
            rate: Cents(rate),
            days_assigned: days,
            days_in_month: dim,
            input_tokens: u.input,
            output_tokens: u.output,
            token_cost: Micros(u.cost),
            revenue: Cents(revenue),
            margin: SignedMicros(i128::from(revenue) * MICROS_PER_MINOR - i128::from(u.cost)),
        });
    }
    let none = used.get(&(key, None)).copied().unwrap_or_default();
    // Sums in u128: each term is bounded, their number is not.
    let revenue: u128 = rows.iter().map(|r| u128::from(r.revenue.0)).sum();
    let cost: u128 = rows
        .iter()
        .map(|r| u128::from(r.token_cost.0))
        .sum::<u128>()
        + u128::from(none.cost);
    // Both below 2^64 × (agents + 1) × 10^4, far inside i128.
    let revenue_micros = revenue as i128 * MICROS_PER_MINOR;
    let margin = revenue_micros - cost as i128;
    MonthSummary {
        month: m,
        revenue: TotalCents(revenue),
        token_cost: TotalMicros(cost),
        unattributed_token_cost: TotalMicros(u128::from(none.cost)),
        margin: SignedMicros(margin),
        margin_percent: percent(margin, revenue_micros),
        input_tokens: rows.iter().map(|r| r.input_tokens).sum::<u64>() + none.input,
        output_tokens: rows.iter().map(|r| r.output_tokens).sum::<u64>() + none.output,
        agents: rows,
    }
}

/// Columns of the CSV export, in order.
pub const CSV_HEADER: [&str; 13] = [
    "month",
    "agent_id",
    "agent_name",
    "currency",
    "rate",
    "days_assigned",
    "days_in_month",
    "input_tokens",
    "output_tokens",
    "token_cost",
    "revenue",
    "margin",
    "org_id",
];

/// The billing records as CSV ([`CSV_HEADER`] first), for export before an org
/// is deleted.
pub fn to_csv(b: &Billing, org_id: &str) -> ApiResult<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let write = |w: &mut csv::Writer<Vec<u8>>, row: &[String]| {
        w.write_record(row).map_err(|e| {
            tracing::error!(error = %e, "writing billing CSV");
            ApiError::internal()
        })
    };
    write(&mut w, &CSV_HEADER.map(String::from))?;
    for r in b.months.iter().flat_map(|m| &m.agents) {
        write(
            &mut w,
            &[
                r.month.to_string(),
                r.agent_id.clone(),
                r.agent_name.clone(),
                b.currency.clone(),
                r.rate.to_string(),
                r.days_assigned.to_string(),
                r.days_in_month.to_string(),
                r.input_tokens.to_string(),
                r.output_tokens.to_string(),
                r.token_cost.to_string(),
                r.revenue.to_string(),
                r.margin.to_string(),
                org_id.to_string(),
            ],
        )?;
    }
    w.into_inner().map_err(|_| ApiError::internal())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_days() {
        let feb = Month::parse("2028-02").unwrap();
        assert_eq!(feb.days(), 29);
        assert_eq!(
            Month::parse("2026-12").unwrap().next().to_string(),
            "2027-01"
        );
        assert_eq!(Month::of(feb.start_ms()), feb);
        assert_eq!(Month::of(feb.start_ms() - 1).to_string(), "2028-01");
        assert!(Month::parse("2026-13").is_none() && Month::parse("26-01").is_none());
        for m in ["2026-01", "2026-12", "0001-06"] {
            let m = Month::parse(m).unwrap();
            assert_eq!(Month::from_index(m.index()), m);
            assert_eq!(Month::from_index(m.index() + 1), m.next());
        }
    }

    #[test]
    fn a_move_day_counts_for_the_new_org() {
        let nov = Month::parse("2026-11").unwrap();
        let moved = nov.start_ms() + 10 * DAY_MS + 12 * 3_600_000; // Nov 11, noon
        let old = AgentInfo {
            name: "a".into(),
            intervals: vec![Interval {
                from_ms: 0,
                to_ms: Some(moved),
            }],
        };
        let new = AgentInfo {
            name: "a".into(),
            intervals: vec![Interval {
                from_ms: moved,
                to_ms: None,
            }],
        };
        assert_eq!(old.days_in(nov), (1..=10).collect::<Vec<_>>());
        assert_eq!(new.days_in(nov), (11..=30).collect::<Vec<_>>());
    }

    #[test]
    fn percent_rounds_half_away_from_zero() {
        // The seed: $99 revenue, $3 token cost.
        assert_eq!(percent(96_000_000, 99_000_000).as_deref(), Some("97.0"));
        assert_eq!(percent(-1_000_000, 3_000_000).as_deref(), Some("-33.3"));
        assert_eq!(percent(5, 0), None);
        assert_eq!(div_round(5, 2), 3);
    }
}
