//! The wall clock the guest reads (`wasi:clocks/wall-clock`): it places requests
//! in rate-limit windows and budget periods.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime_wasi::HostWallClock;

/// The system clock shifted by an adjustable offset: zero in production; tests
/// and drills move it across window and period boundaries instead of waiting.
/// Clones share the offset, so moving it affects every instance started from then on.
#[derive(Debug, Clone, Default)]
pub struct GuestClock {
    offset_ms: Arc<AtomicI64>,
}

impl GuestClock {
    /// The system clock as it is.
    pub fn system() -> GuestClock {
        GuestClock::default()
    }

    /// Sets how far the guest's clock is ahead of the system's (negative: behind).
    pub fn set_offset_ms(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::SeqCst);
    }

    /// Moves the guest's clock forward.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(by, Ordering::SeqCst);
    }

    /// The guest's time, Unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        u64::try_from(system.saturating_add(self.offset_ms.load(Ordering::SeqCst))).unwrap_or(0)
    }

    /// Sets the offset so the guest's clock reads `unix_ms` now.
    pub fn set_now_ms(&self, unix_ms: u64) {
        let system = GuestClock::system().now_ms();
        let offset = i128::from(unix_ms) - i128::from(system);
        self.set_offset_ms(i64::try_from(offset).unwrap_or(0));
    }
}

impl HostWallClock for GuestClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(self.now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_moves_every_clone() {
        let clock = GuestClock::system();
        let view = clock.clone();
        let before = view.now_ms();
        clock.advance(Duration::from_secs(86_400));
        let after = view.now_ms();
        assert!(after >= before + 86_400_000 && after < before + 86_460_000);
        clock.set_now_ms(1_000_000);
        assert!((1_000_000..1_060_000).contains(&view.now_ms()));
        assert_eq!(HostWallClock::now(&view).as_millis() / 60_000, 16);
    }
}
