//! `Scheduler` on EventBridge Scheduler: one-time `at(...)` schedules in a group, deleted after
//! they fire, named after the timer so arming again replaces instead of adding. A timer whose
//! invocation still fails after a day of retries lands in the timers' dead-letter queue.

use async_trait::async_trait;
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, Target,
};
use time::OffsetDateTime;

use crate::ports::{Cause, Scheduler, SchedulerError, Timer};

pub struct EventBridgeScheduler {
    client: aws_sdk_scheduler::Client,
    group: String,
    /// The `timers` function, which handles every timer.
    target_arn: String,
    role_arn: String,
    /// Where a timer goes when every retry failed (`TIMERS_DLQ_ARN`).
    dead_letter_arn: Option<String>,
}

/// How long and how often Scheduler retries a failed invocation: its maxima, a day.
const RETRY_ATTEMPTS: i32 = 185;
const RETRY_MAX_AGE_SECS: i32 = 86_400;

impl EventBridgeScheduler {
    pub fn new(client: aws_sdk_scheduler::Client, group: String, target_arn: String, role_arn: String) -> Self {
        EventBridgeScheduler { client, group, target_arn, role_arn, dead_letter_arn: None }
    }

    pub fn with_dead_letter(mut self, arn: Option<String>) -> Self {
        self.dead_letter_arn = arn;
        self
    }

    fn target(&self, input: String) -> Result<Target, SchedulerError> {
        let retry = RetryPolicy::builder()
            .maximum_retry_attempts(RETRY_ATTEMPTS)
            .maximum_event_age_in_seconds(RETRY_MAX_AGE_SECS)
            .build();
        let mut target =
            Target::builder().arn(&self.target_arn).role_arn(&self.role_arn).input(input).retry_policy(retry);
        if let Some(arn) = &self.dead_letter_arn {
            target = target.dead_letter_config(DeadLetterConfig::builder().arn(arn).build());
        }
        target.build().map_err(err)
    }
}

fn err(e: impl Into<Cause>) -> SchedulerError {
    SchedulerError::Unavailable(e.into())
}

/// `at(yyyy-mm-ddThh:mm:ss)` in UTC, rounded up to the next second.
pub fn at_expression(at: OffsetDateTime) -> String {
    let at = if at.nanosecond() > 0 { at + time::Duration::seconds(1) } else { at };
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "at({:04}-{:02}-{:02}T{:02}:{:02}:{:02})",
        at.year(),
        at.month() as u8,
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[async_trait]
impl Scheduler for EventBridgeScheduler {
    async fn schedule(&self, timer: &Timer, at: OffsetDateTime) -> Result<(), SchedulerError> {
        // Scheduler refuses a time in the past and fires within the minute: a timer due by then
        // is armed a minute out rather than risk a refusal, and one already due is the caller's.
        let now = OffsetDateTime::now_utc();
        if at <= now {
            return Err(SchedulerError::Past);
        }
        let at = at.max(now + time::Duration::minutes(1));
        let input = serde_json::to_string(timer).map_err(err)?;
        let window = FlexibleTimeWindow::builder().mode(FlexibleTimeWindowMode::Off).build().map_err(err)?;
        let target = self.target(input)?;
        let name = timer.name();
        let created = self
            .client
            .create_schedule()
            .name(&name)
            .group_name(&self.group)
            .schedule_expression(at_expression(at))
            .schedule_expression_timezone("UTC")
            .flexible_time_window(window.clone())
            .target(target.clone())
            .action_after_completion(ActionAfterCompletion::Delete)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conflict_exception()) => {
                self.client
                    .update_schedule()
                    .name(&name)
                    .group_name(&self.group)
                    .schedule_expression(at_expression(at))
                    .schedule_expression_timezone("UTC")
                    .flexible_time_window(window)
                    .target(target)
                    .action_after_completion(ActionAfterCompletion::Delete)
                    .send()
                    .await
                    .map_err(err)?;
                Ok(())
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_validation_exception()) => {
                // Our expressions are well formed: what Scheduler refuses is a time it thinks
                // has passed (its clock ahead of ours).
                tracing::warn!(schedule = %name, error.message = ?e, "Scheduler refused the time; firing now");
                Err(SchedulerError::Past)
            }
            Err(e) => Err(err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn at_expressions_are_utc_and_rounded_up() {
        assert_eq!(at_expression(datetime!(2026-09-20 12:00:00 UTC)), "at(2026-09-20T12:00:00)");
        assert_eq!(at_expression(datetime!(2026-09-20 12:00:00.5 UTC)), "at(2026-09-20T12:00:01)");
        assert_eq!(at_expression(datetime!(2026-09-20 14:00:00 +02:00)), "at(2026-09-20T12:00:00)");
    }
}
