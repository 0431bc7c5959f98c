//! Shared by the adapter tests: clients pointed at moto, and unique resource names.

use shared::adapters::aws::AwsClients;

/// Clients for the emulator `scripts/test` started, or `None` when it did not (then the AWS
/// tests pass without running, unless `CONNECTOR_REQUIRE_AWS_TESTS=1`, as in CI, makes that an
/// error).
#[allow(dead_code)]
pub async fn aws_clients() -> Option<AwsClients> {
    AwsClients::emulator_from_env().await.map(|(_, clients)| clients)
}

#[allow(dead_code)]
pub fn unique(prefix: &str) -> String {
    AwsClients::emulator_name(prefix)
}

/// A new FIFO queue on the emulator; its URL.
#[allow(dead_code)] // not every test binary that includes this module uses it
pub async fn fifo_queue(c: &AwsClients, prefix: &str) -> String {
    let out = c
        .sqs
        .create_queue()
        .queue_name(format!("{}.fifo", unique(prefix)))
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .unwrap();
    out.queue_url().unwrap_or_default().to_string()
}

/// A scheduler on a new schedule group of the emulator, firing a made-up `timers` function; the
/// group's name.
#[allow(dead_code)] // not every test binary that includes this module uses it
pub async fn eventbridge_scheduler(c: &AwsClients) -> (shared::adapters::aws::EventBridgeScheduler, String) {
    let group = unique("timers");
    c.scheduler.create_schedule_group().name(&group).send().await.unwrap();
    let s = shared::adapters::aws::EventBridgeScheduler::new(
        c.scheduler.clone(),
        group.clone(),
        "arn:aws:lambda:us-east-1:123456789012:function:timers".into(),
        "arn:aws:iam::123456789012:role/s".into(),
    );
    (s, group)
}

/// The world the use cases run in (path tests, load model).
pub mod world;
