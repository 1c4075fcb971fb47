//! The real clock, as runtimes that read it themselves (Spin, edge processes) see
//! it: minute windows, `Retry-After` and bursts that must stay inside one window.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One rate-limit minute.
pub const MINUTE_MS: u64 = 60_000;

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// Whole seconds until the minute containing `ms` ends, as `Retry-After` counts them.
pub fn secs_left_in_minute(ms: u64) -> u64 {
    (MINUTE_MS - ms % MINUTE_MS).div_ceil(1000)
}

/// Waits for the next minute when less than 15 s of this one are left, so a burst
/// started now does not straddle a window boundary.
pub async fn clear_of_minute_end() {
    let into = now_ms() % MINUTE_MS;
    if into > 45_000 {
        tokio::time::sleep(Duration::from_millis(MINUTE_MS - into + 200)).await;
    }
}
