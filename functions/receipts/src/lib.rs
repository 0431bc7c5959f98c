//! The receipts queue's consumer: one status webhook per message.

use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_entry::{Ordering, QueueSpec};
use shared::meta::webhook::StatusEvent;
use shared::ports::{Disposition, QueueKind, ReceiptsJob};
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

/// The receipts queue: standard; a picture fetch makes two Graph API calls.
pub const QUEUE: QueueSpec = QueueSpec {
    kind: QueueKind::Receipts,
    ordering: Ordering::Standard,
    per_record: std::time::Duration::from_secs(65),
};

/// An SQS batch: every record is processed; failed ones are reported for redelivery.
pub async fn function_handler(
    ports: &Ports,
    event: SqsEvent,
    deadline: Option<std::time::Instant>,
) -> SqsBatchResponse {
    lambda_entry::process_sqs(event, QUEUE, &*ports.queue, deadline, |job: ReceiptsJob, receives| async move {
        handle(ports, &job, receives).await
    })
    .await
}
