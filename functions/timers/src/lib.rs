//! Timers (EventBridge Scheduler's payload is the `Timer` itself): window expiry, opt-in retry,
//! delivery deadline, held expiry, exports, and the recurring outbox and retention sweeps. The
//! handler re-checks state, so a stale timer is harmless.
//!
//! A timer whose handler fails (the table briefly unavailable) arms itself again a little later
//! and reports success: Lambda's own retries of an asynchronous invocation are two, then the
//! dead letters, which a passing outage would fill. Only when it cannot even re-arm does the
//! failure go to Lambda (then the dead letters: docs/aws.md "Dead letters").

use shared::error::Report;
use shared::ports::Timer;
use shared::usecases::{timers, Ports, UseCaseError};

/// How long a failed timer waits before it fires again.
pub const AGAIN_AFTER: time::Duration = time::Duration::minutes(2);

pub async fn function_handler(ports: &Ports, timer: Timer) -> Result<(), UseCaseError> {
    tracing::info!(timer = %timer.name(), "timer fired");
    match timers::fire(ports, &timer).await {
        Ok(()) => Ok(()),
        // The sweeps recur anyway (the outbox's every minute, retention's hourly).
        Err(e) if matches!(timer, Timer::OutboxSweep | Timer::RetentionSweep) => Err(e),
        Err(e) => {
            tracing::warn!(timer = %timer.name(), error.message = %Report(&e), "timer failed; armed again");
            let at = ports.clock.now() + AGAIN_AFTER;
            ports.scheduler.schedule(&timer, at).await.map_err(|again| {
                tracing::error!(timer = %timer.name(), error.message = %Report(&again), "timer failed and could not be armed again");
                e
            })?;
            Ok(())
        }
    }
}
