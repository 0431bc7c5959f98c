//! The receipts queue's consumer: one status webhook per message.

use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use shared::meta::webhook::StatusEvent;
use shared::ports::{Disposition, ReceiptsJob};
use shared::usecases::receipts::{apply_status, ReceiptResult};
use shared::usecases::{media, Ports, UseCaseError};

/// Receives after which a status for an unknown wamid is dropped (it overtook the record of
/// the send at first; after this long it belongs to no message of ours).
const UNKNOWN_WAMID_RECEIVES: u32 = 5;

/// One job of the receipts queue: a status, or a contact's picture to fetch.
pub async fn handle(ports: &Ports, job: &ReceiptsJob, receives: u32) -> Result<Disposition, UseCaseError> {
    match job {
        ReceiptsJob::Status(status) => handle_status(ports, status, receives).await,
        ReceiptsJob::FetchMedia(fetch) => media::fetch_inbound(ports, fetch, receives).await,
    }
}

async fn handle_status(ports: &Ports, status: &StatusEvent, receives: u32) -> Result<Disposition, UseCaseError> {
    Ok(match apply_status(ports, status).await? {
        ReceiptResult::UnknownWamid if receives < UNKNOWN_WAMID_RECEIVES => {
            Disposition::RetryAfter(Duration::from_millis(200 * u64::from(receives.max(1))))
        }
        ReceiptResult::UnknownWamid => {
            tracing::warn!(wamid = %status.wamid, "status for an unknown message dropped");
            Disposition::Done
        }
        _ => Disposition::Done,
    })
}

/// An SQS batch: every record is processed; failed ones are reported for redelivery.
pub async fn function_handler(ports: &Ports, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let receives = record.attributes.get("ApproximateReceiveCount").and_then(|v| v.parse().ok()).unwrap_or(1);
        let outcome = match record.body.as_deref().map(serde_json::from_str::<ReceiptsJob>) {
            Some(Ok(job)) => handle(ports, &job, receives).await,
            _ => {
                tracing::error!(message_id = %id, "receipt record is not a status; dropped");
                Ok(Disposition::Done)
            }
        };
        match outcome {
            Ok(Disposition::Done) => {}
            Ok(Disposition::RetryAfter(_)) => failures.push(item_failure(id)),
            Err(e) => {
                tracing::error!(message_id = %id, error.message = %e, "receipt failed");
                failures.push(item_failure(id));
            }
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
