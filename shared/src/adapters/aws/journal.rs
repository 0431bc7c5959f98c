//! `RecordJournal` on EventBridge: each record one event on the journal bus (`JOURNAL_BUS`),
//! source `whatsapp-connector.archive`, detail type `ArchiveRecord`, detail the record as
//! archived; ten to a `PutEvents` call, and entries EventBridge refused sent again.

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::archive::ArchiveRecord;
use crate::ports::{JournalError, RecordJournal};

pub const SOURCE: &str = "whatsapp-connector.archive";
pub const DETAIL_TYPE: &str = "ArchiveRecord";
/// Entries per `PutEvents` call (EventBridge's most).
const PER_CALL: usize = 10;
/// Calls for the entries EventBridge refused before giving up (the archiver retries the batch).
const ATTEMPTS: usize = 3;

pub struct EventBridgeJournal {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeJournal {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: String) -> EventBridgeJournal {
        EventBridgeJournal { client, bus }
    }
}

fn failed(e: impl Into<crate::ports::Cause>) -> JournalError {
    JournalError(e.into())
}

#[async_trait]
impl RecordJournal for EventBridgeJournal {
    async fn publish(&self, records: &[ArchiveRecord]) -> Result<(), JournalError> {
        for chunk in records.chunks(PER_CALL) {
            let mut entries: Vec<PutEventsRequestEntry> = Vec::with_capacity(chunk.len());
            for r in chunk {
                let detail = serde_json::to_string(r).map_err(failed)?;
                entries.push(
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(SOURCE)
                        .detail_type(DETAIL_TYPE)
                        .detail(detail)
                        .time(aws_sdk_eventbridge::primitives::DateTime::from_secs(r.event.at.unix_timestamp()))
                        .build(),
                );
            }
            for attempt in 1..=ATTEMPTS {
                let out = self.client.put_events().set_entries(Some(entries.clone())).send().await.map_err(failed)?;
                if out.failed_entry_count() == 0 {
                    break;
                }
                // The answer lists one result per entry, in order: keep the refused ones.
                let refused: Vec<PutEventsRequestEntry> = entries
                    .iter()
                    .zip(out.entries())
                    .filter(|(_, result)| result.error_code().is_some())
                    .map(|(e, _)| e.clone())
                    .collect();
                if attempt == ATTEMPTS {
                    return Err(failed(format!("EventBridge refused {} journal events", refused.len())));
                }
                entries = refused;
            }
        }
        Ok(())
    }
}
