//! Per-client limits on unauthenticated attempts: guessing invitation tokens from
//! one address is cut off with 429, and so is asking for sign-in links to one
//! email address too often.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

/// Failed attempts allowed per address and window.
pub const MAX_FAILURES: u32 = 10;
/// Length of the window, in ms.
pub const WINDOW_MS: i64 = 60_000;
/// Keys tracked before stale windows are swept (bounds memory under a spray).
const SWEEP_AT: usize = 10_000;

/// Counted attempts per key (a client address by default) in fixed windows.
#[derive(Debug)]
pub struct AttemptLimiter<K = IpAddr> {
    windows: Mutex<HashMap<K, (i64, u32)>>,
    max: u32,
    window_ms: i64,
}

impl<K> Default for AttemptLimiter<K> {
    /// [`MAX_FAILURES`] per [`WINDOW_MS`].
    fn default() -> Self {
        AttemptLimiter::new(MAX_FAILURES, WINDOW_MS)
    }
}

impl<K> AttemptLimiter<K> {
    /// `max` attempts per key in each window of `window_ms`.
    pub fn new(max: u32, window_ms: i64) -> Self {
        AttemptLimiter {
            windows: Mutex::new(HashMap::new()),
            max,
            window_ms,
        }
    }
}

impl<K: Hash + Eq> AttemptLimiter<K> {
    /// Whether `key` may try now (it has not used up its attempts in this window).
    pub fn allowed(&self, key: &K, now_ms: i64) -> bool {
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        windows
            .get(key)
            .is_none_or(|&(start, n)| now_ms - start >= self.window_ms || n < self.max)
    }

    /// Counts an attempt of `key` (a failed one, where only failures count).
    pub fn count(&self, key: K, now_ms: i64) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= SWEEP_AT {
            windows.retain(|_, (start, _)| now_ms - *start < self.window_ms);
        }
        let w = windows.entry(key).or_insert((now_ms, 0));
        if now_ms - w.0 >= self.window_ms {
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
        let l: AttemptLimiter = AttemptLimiter::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(l.allowed(&a, 0));
            l.count(a, 0);
        }
        assert!(!l.allowed(&a, 1));
        assert!(l.allowed(&b, 1), "other addresses are unaffected");
        assert!(l.allowed(&a, WINDOW_MS));
    }
}
