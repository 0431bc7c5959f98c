//! The outbound FIFO queue's consumer: sends each message through the Graph API, in order per
//! conversation.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_entry::Ordering;
use shared::ports::{Disposition, OutboundJob};
use shared::usecases::{dispatch, Ports, UseCaseError};

pub async fn handle(ports: &Ports, job: &OutboundJob) -> Result<Disposition, UseCaseError> {
    dispatch::dispatch(ports, job).await
}

/// A FIFO batch: in order, and a group stops at its first failure.
pub async fn function_handler(ports: &Ports, event: SqsEvent) -> SqsBatchResponse {
    lambda_entry::process_sqs(event, Ordering::Fifo, |job: OutboundJob, _| async move { handle(ports, &job).await })
        .await
}
