//! Periodic clean-ups of the admin database (ended key graces, expired request
//! bodies): one loop shape, so each job states only what it does and how often.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;

/// Spawns `run` every `interval` (a slow run delays the next, never bunches them),
/// logging how many rows each run removed under `what`.
pub fn every<F, Fut>(interval: Duration, what: &'static str, mut run: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<u64, sqlx::Error>> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match run().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(removed = n, job = what, "clean-up done"),
                Err(e) => tracing::warn!(error = %e, job = what, "clean-up failed"),
            }
        }
    })
}
