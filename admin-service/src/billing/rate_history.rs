//! Billing rates over time. A rate change applies from its effective UTC day on
//! (today unless the owner names a day of the current month), so months already
//! billed keep the rates they were billed at; the `billing_rate_minor` columns hold
//! the rate in force, for reads.

use std::collections::HashMap;

use crate::billing::usage::utc_day;
use crate::errors::{ApiError, ApiResult};
use crate::store;
use crate::store::db::Db;

// The writes live with the other billing SQL; callers keep this path.
pub use crate::store::billing::{set_agent_rate, set_org_rate};

/// Effective day of the rates an org or agent had before rate history existed.
pub const SINCE_ALWAYS: &str = "0000-01-01";

/// The effective day of a rate change: `requested` (`YYYY-MM-DD`) or today, never
/// before the first day of the current UTC month (closed months are not rewritten)
/// nor after today (the rate shown is the rate in force).
pub fn effective_day(field: &str, requested: Option<&str>, now_ms: i64) -> ApiResult<String> {
    let today = utc_day(now_ms);
    let Some(day) = requested else {
        return Ok(today);
    };
    let format = time::macros::format_description!("[year]-[month]-[day]");
    if time::Date::parse(day, &format).is_err() {
        return Err(ApiError::invalid(
            field,
            format!("{day:?} is not a date (YYYY-MM-DD)"),
        ));
    }
    let month_start = format!("{}-01", &today[..7]);
    if *day < *month_start.as_str() {
        return Err(ApiError::invalid(
            field,
            format!("must not be before {month_start}: past months are billed and stay as billed"),
        ));
    }
    if *day > *today.as_str() {
        return Err(ApiError::invalid(
            field,
            format!("must not be after today ({today})"),
        ));
    }
    Ok(day.to_string())
}

/// One org's rate history and that of the agents billed in it.
#[derive(Debug, Default)]
pub struct Rates {
    /// `(effective_day, rate)`, oldest first.
    org: Vec<(String, i64)>,
    /// Agent → `(effective_day, own rate or none)`, oldest first.
    agents: HashMap<String, Vec<(String, Option<i64>)>>,
}

impl Rates {
    /// Loads the org's history and its agents' (every agent ever assigned or billed).
    pub async fn load(pool: &Db, org_id: &str) -> Result<Rates, sqlx::Error> {
        let mut agents: HashMap<String, Vec<(String, Option<i64>)>> = HashMap::new();
        for r in store::billing::agent_rate_history(pool, org_id).await? {
            agents
                .entry(r.agent_id)
                .or_default()
                .push((r.effective_day, r.rate_minor));
        }
        Ok(Rates {
            org: store::billing::org_rate_history(pool, org_id).await?,
            agents,
        })
    }

    /// The monthly rate of `agent_id` in force on `day` (`YYYY-MM-DD`): its own if
    /// set, else the org's.
    pub fn on(&self, agent_id: &str, day: &str) -> i64 {
        let own = self
            .agents
            .get(agent_id)
            .and_then(|h| in_force(h, day))
            .flatten();
        own.or_else(|| in_force(&self.org, day)).unwrap_or(0)
    }
}

/// The value of the latest entry effective on or before `day`.
fn in_force<T: Copy>(history: &[(String, T)], day: &str) -> Option<T> {
    history
        .iter()
        .rev()
        .find(|(from, _)| from.as_str() <= day)
        .map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_23_2026_MS: i64 = 1_795_392_000_000 + 12 * 3_600_000;

    #[test]
    fn effective_days_stay_inside_the_open_month() {
        assert_eq!(utc_day(NOV_23_2026_MS), "2026-11-23");
        let day = |d| effective_day("billing_rate_effective_from", d, NOV_23_2026_MS);
        assert_eq!(day(None).unwrap(), "2026-11-23");
        assert_eq!(day(Some("2026-11-01")).unwrap(), "2026-11-01");
        for bad in ["2026-10-31", "2026-11-24", "2026-13-01", "yesterday"] {
            assert!(day(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn agent_rate_falls_back_to_the_org_rate_in_force() {
        let rates = Rates {
            org: vec![(SINCE_ALWAYS.into(), 100), ("2026-11-10".into(), 200)],
            agents: HashMap::from([(
                "a".to_string(),
                vec![
                    (SINCE_ALWAYS.into(), None),
                    ("2026-11-15".into(), Some(500)),
                    ("2026-11-20".into(), None),
                ],
            )]),
        };
        assert_eq!(rates.on("a", "2026-11-09"), 100);
        assert_eq!(rates.on("a", "2026-11-10"), 200);
        assert_eq!(rates.on("a", "2026-11-15"), 500);
        assert_eq!(rates.on("a", "2026-11-20"), 200);
        assert_eq!(rates.on("unknown", "2026-11-01"), 100);
    }
}
