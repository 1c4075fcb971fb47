//! Bounds on guest time through wasmtime's epoch interruption: one process-wide
//! ticker advances the engine's epoch, and each instance's deadline callback
//! charges the ticks it ran through against its CPU limit and checks its
//! response deadline, trapping with [`DeadlineExceeded`] when either is spent.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use wasmtime::{Engine, Store, UpdateDeadline};

/// One epoch tick: the granularity of both limits.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// Why a guest was interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DeadlineExceeded {
    /// It executed for longer than its CPU limit.
    #[error("the guest exceeded its CPU limit")]
    Cpu,
    /// It had not answered with a response head by its response deadline.
    #[error("the guest did not answer by its response deadline")]
    Response,
}

/// Starts the ticker (once per process; the engine is too).
pub(crate) fn start_ticker(engine: &Engine) {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let engine = engine.clone();
        std::thread::Builder::new()
            .name("tollgate-epoch".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch ticker thread");
    });
}

/// One instance's time account.
pub(crate) struct GuestBudget {
    started: Instant,
    last_tick: Instant,
    cpu_used: Duration,
    cpu_limit: Duration,
    response_deadline: Duration,
    answered: Arc<AtomicBool>,
}

impl GuestBudget {
    /// A fresh account starting now.
    pub(crate) fn new(cpu_limit: Duration, response_deadline: Duration) -> GuestBudget {
        let now = Instant::now();
        GuestBudget {
            started: now,
            last_tick: now,
            cpu_used: Duration::ZERO,
            cpu_limit,
            response_deadline,
            answered: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Set once the guest has handed over its response head: from then on
    /// only CPU counts (a stream may rightly last minutes).
    pub(crate) fn answered_flag(&self) -> Arc<AtomicBool> {
        self.answered.clone()
    }

    /// Called at each tick the guest runs into. Ticks arriving back to back mean
    /// it ran through them; a longer gap means it was waiting on the host
    /// (upstream, store, client), which costs no CPU.
    fn on_tick(&mut self) -> Result<UpdateDeadline, DeadlineExceeded> {
        let now = Instant::now();
        let gap = now - self.last_tick;
        self.last_tick = now;
        if gap <= 2 * TICK {
            self.cpu_used += gap;
        }
        if self.cpu_used > self.cpu_limit {
            return Err(DeadlineExceeded::Cpu);
        }
        if !self.answered.load(Ordering::Relaxed) && now - self.started > self.response_deadline {
            return Err(DeadlineExceeded::Response);
        }
        // Yielding lets a busy guest share its worker thread with other requests.
        Ok(UpdateDeadline::Yield(1))
    }
}

/// Arms `store`'s epoch deadline; `budget` finds the instance's account.
pub(crate) fn arm<T: Send + 'static>(store: &mut Store<T>, budget: fn(&mut T) -> &mut GuestBudget) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut ctx| Ok(budget(ctx.data_mut()).on_tick()?));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(cpu: Duration, response: Duration) -> GuestBudget {
        GuestBudget::new(cpu, response)
    }

    #[test]
    fn back_to_back_ticks_spend_cpu_until_the_limit() {
        let mut b = budget(Duration::from_millis(25), Duration::from_secs(60));
        let mut trapped = None;
        for i in 0..10 {
            std::thread::sleep(TICK);
            if let Err(e) = b.on_tick() {
                trapped = Some((i, e));
                break;
            }
        }
        let (i, e) = trapped.expect("a guest running through ticks is stopped");
        assert_eq!(e, DeadlineExceeded::Cpu);
        assert!(i >= 2, "stopped after {i} ticks, before 25 ms of CPU");
    }

    #[test]
    fn waiting_costs_no_cpu_but_the_response_deadline_runs() {
        let mut b = budget(Duration::from_millis(1), Duration::from_millis(50));
        // A long wait (upstream, store) between ticks is not guest CPU.
        std::thread::sleep(TICK * 3);
        assert!(b.on_tick().is_ok());
        std::thread::sleep(Duration::from_millis(40));
        assert!(matches!(b.on_tick(), Err(DeadlineExceeded::Response)));
        // Once answered, only CPU counts: a stream may take its time.
        b.answered_flag().store(true, Ordering::Relaxed);
        std::thread::sleep(TICK * 3);
        assert!(b.on_tick().is_ok());
    }
}
