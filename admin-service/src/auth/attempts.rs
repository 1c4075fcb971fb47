//! Per-client-address limit on failed unauthenticated attempts (invitation
//! acceptance): guessing tokens from one address is cut off with 429.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Failed attempts allowed per address and window.
pub const MAX_FAILURES: u32 = 10;
/// Length of the window, in ms.
pub const WINDOW_MS: i64 = 60_000;
/// Addresses tracked before stale windows are swept (bounds memory under a spray).
const SWEEP_AT: usize = 10_000;

/// Failed attempts per client address in fixed windows.
#[derive(Debug, Default)]
pub struct AttemptLimiter {
    windows: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl AttemptLimiter {
    /// Whether `ip` may try now (it has not used up its failures in this window).
    pub fn allowed(&self, ip: IpAddr, now_ms: i64) -> bool {
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        windows
            .get(&ip)
            .is_none_or(|&(start, n)| now_ms - start >= WINDOW_MS || n < MAX_FAILURES)
    }

    /// Records a failed attempt from `ip`.
    pub fn failed(&self, ip: IpAddr, now_ms: i64) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= SWEEP_AT {
            windows.retain(|_, (start, _)| now_ms - *start < WINDOW_MS);
        }
        let w = windows.entry(ip).or_insert((now_ms, 0));
        if now_ms - w.0 >= WINDOW_MS {
            *w = (now_ms, 0);
        }
        w.1 = w.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_cut_off_after_its_failures_until_the_window_ends() {
        let l = AttemptLimiter::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(l.allowed(a, 0));
            l.failed(a, 0);
        }
        assert!(!l.allowed(a, 1));
        assert!(l.allowed(b, 1), "other addresses are unaffected");
        assert!(l.allowed(a, WINDOW_MS));
    }
}
