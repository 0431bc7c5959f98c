//! The receipts queue's consumer: one status webhook per message.

use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_entry::{Ordering, QueueSpec};
use shared::meta::webhook::StatusEvent;
use shared::ports::{Disposition, QueueKind, ReceiptsJob};
use shared::usecases::receipts::{apply_status, ReceiptResult};
use shared::usecases::{media, Ports, UseCaseError};

/// Receives after which a status for an unknown wamid is dropped (it overtook the record of
/// the send at first; after this long, about 70 s of waits doubling from 200 ms up to 5 s, it
/// belongs to no message of ours). A send recorded slowly under load keeps its statuses, and
/// they apply within 5 s of it.
const UNKNOWN_WAMID_RECEIVES: u32 = 19;
const UNKNOWN_WAMID_LONGEST_WAIT: Duration = Duration::from_secs(5);
// Well under the receipts queue's 30 receives before its dead-letter queue (template.yaml):
// a store that fails on the last receives of a wait must not send the status there.
const _: () = assert!(UNKNOWN_WAMID_RECEIVES + 10 <= 30);

/// One job of the receipts queue: a status, or a contact's picture to fetch.
pub async fn handle(ports: &Ports, job: &ReceiptsJob, receives: u32) -> Result<Disposition, UseCaseError> {
    match job {
        ReceiptsJob::Status(status) => handle_status(ports, status, receives).await,
        ReceiptsJob::FetchMedia(fetch) => media::fetch_inbound(ports, fetch, receives).await,
    }
}

async fn handle_status(ports: &Ports, status: &StatusEvent, receives: u32) -> Result<Disposition, UseCaseError> {
    Ok(match apply_status(ports, status).await? {
        ReceiptResult::UnknownWamid => match unknown_wamid_wait(receives) {
            Some(wait) => Disposition::RetryAfter(wait),
            None => {
                tracing::warn!(wamid = %status.wamid, "status for an unknown message dropped");
                Disposition::Done
            }
        },
        _ => Disposition::Done,
    })
}

/// How long a status for a wamid not yet recorded waits before its next try, after `receives`
/// receives; `None` once it has waited long enough to belong to no message of ours.
fn unknown_wamid_wait(receives: u32) -> Option<Duration> {
    (receives < UNKNOWN_WAMID_RECEIVES)
        .then(|| Duration::from_millis(200 << receives.saturating_sub(1).min(5)).min(UNKNOWN_WAMID_LONGEST_WAIT))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_ahead_of_its_send_waits_longer_each_time_then_is_dropped() {
        let waits: Vec<u64> =
            (1..UNKNOWN_WAMID_RECEIVES).map(|r| unknown_wamid_wait(r).unwrap().as_millis() as u64).collect();
        assert_eq!(waits[..6], [200, 400, 800, 1_600, 3_200, 5_000]);
        assert!(waits[6..].iter().all(|&w| w == 5_000), "never longer than 5 s: {waits:?}");
        assert!((70_000..75_000).contains(&waits.iter().sum::<u64>()), "about 70 s in all");
        assert_eq!(unknown_wamid_wait(UNKNOWN_WAMID_RECEIVES), None);
    }
}
