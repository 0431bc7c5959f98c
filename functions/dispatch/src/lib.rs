//! The outbound FIFO queue's consumer: sends each message through the Graph API, in order per
//! conversation.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use shared::ports::{Disposition, OutboundJob};
use shared::usecases::{dispatch, Ports, UseCaseError};

pub async fn handle(ports: &Ports, job: &OutboundJob) -> Result<Disposition, UseCaseError> {
    dispatch::dispatch(ports, job).await
}

/// A FIFO batch: records in order; after the first failure of a group, that record and every
/// later record of the same group are reported, never run out of order.
pub async fn function_handler(ports: &Ports, event: SqsEvent) -> SqsBatchResponse {
    let mut failed_groups = std::collections::HashSet::new();
    let mut failures = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let group = record.attributes.get("MessageGroupId").cloned().unwrap_or_default();
        if failed_groups.contains(&group) {
            failures.push(item_failure(id));
            continue;
        }
        let outcome = match record.body.as_deref().map(serde_json::from_str::<OutboundJob>) {
            Some(Ok(job)) => handle(ports, &job).await,
            _ => {
                tracing::error!(message_id = %id, "outbound record is not a job; dropped");
                Ok(Disposition::Done)
            }
        };
        if !matches!(outcome, Ok(Disposition::Done)) {
            if let Err(e) = &outcome {
                tracing::error!(message_id = %id, error.message = %e, "dispatch failed");
            }
            failed_groups.insert(group);
            failures.push(item_failure(id));
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

fn item_failure(id: String) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = id;
    f
}
