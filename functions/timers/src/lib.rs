//! Timers (EventBridge Scheduler's payload is the `Timer` itself): window expiry, opt-in retry,
//! delivery deadline, and the recurring outbox sweep. The handler re-checks state, so a stale
//! timer is harmless.

use shared::ports::Timer;
use shared::usecases::{timers, Ports, UseCaseError};

pub async fn function_handler(ports: &Ports, timer: Timer) -> Result<(), UseCaseError> {
    tracing::info!(timer = %timer.name(), "timer fired");
    timers::fire(ports, &timer).await
}
