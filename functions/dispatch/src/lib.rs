//! The outbound FIFO queue's consumer: sends each message through the Graph API, in order per
//! conversation.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_entry::{Ordering, QueueSpec};
use shared::ports::{Disposition, OutboundJob, QueueKind};
use shared::usecases::{dispatch, Ports, UseCaseError};

pub async fn handle(ports: &Ports, job: &OutboundJob) -> Result<Disposition, UseCaseError> {
    dispatch::dispatch(ports, job).await
}

/// The outbound queue: FIFO; a record may make a Graph API call and an upload (30 s time-outs
/// each by default) before its own writes.
pub const QUEUE: QueueSpec =
    QueueSpec { kind: QueueKind::Outbound, ordering: Ordering::Fifo, per_record: std::time::Duration::from_secs(65) };

/// A FIFO batch: in order, and a group stops at its first failure.
pub async fn function_handler(
    ports: &Ports,
    event: SqsEvent,
    deadline: Option<std::time::Instant>,
) -> SqsBatchResponse {
    lambda_entry::process_sqs(event, QUEUE, &*ports.queue, deadline, |job: OutboundJob, _| async move {
        handle(ports, &job).await
    })
    .await
}
