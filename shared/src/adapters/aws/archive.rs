//! `Archive` for AWS: each thread's records are items of the table keyed by their sequence
//! number (the last one is the chain head; a conditional put means concurrent appends cannot
//! fork the chain), and every record is put on the EventBridge bus for archive consumers.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::archive::{link, ArchiveEvent, ArchiveRecord};
use crate::ports::{Archive, ArchiveError, Cond, Item, Store, StoreError, Write};

pub struct EventBridgeArchive {
    store: Arc<dyn Store>,
    events: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeArchive {
    pub fn new(store: Arc<dyn Store>, events: aws_sdk_eventbridge::Client, bus: String) -> EventBridgeArchive {
        EventBridgeArchive { store, events, bus }
    }
}

fn err<E: std::fmt::Display>(e: E) -> ArchiveError {
    ArchiveError(e.to_string())
}

#[async_trait]
impl Archive for EventBridgeArchive {
    async fn append(&self, events: Vec<ArchiveEvent>) -> Result<(), ArchiveError> {
        let mut records = Vec::with_capacity(events.len());
        for event in events {
            let conv = event.conversation_id.clone();
            let record = loop {
                // The last record is the chain head; a record's key is its sequence number, so
                // two appends racing for the same number cannot both land.
                let last = self.store.query(&format!("ARCHIVE#{conv}"), "REC#", None, 1, false).await.map_err(err)?;
                let prev = match last.into_iter().next().map(|v| v.item) {
                    Some(Item::ArchiveEntry(r)) => Some((r.seq, r.hash)),
                    Some(_) => return Err(ArchiveError("archive record of another kind".into())),
                    None => None,
                };
                let record = link(prev.as_ref().map(|(s, h)| (*s, h.as_str())), event.clone());
                let put = Write::Put { item: Item::ArchiveEntry(record.clone()), cond: Cond::NotExists };
                match self.store.transact(vec![put]).await {
                    Ok(()) => break record,
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => return Err(err(e)),
                }
            };
            records.push(record);
        }
        // Up to 10 entries per PutEvents call.
        for chunk in records.chunks(10) {
            let entries = chunk
                .iter()
                .map(|r| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source("whatsapp.connector")
                        .detail_type("ArchiveRecord")
                        .detail(serde_json::to_string(r).unwrap_or_default())
                        .build()
                })
                .collect();
            let out =
                self.events.put_events().set_entries(Some(entries)).send().await.map_err(|e| err(format!("{e:?}")))?;
            if out.failed_entry_count() > 0 {
                return Err(ArchiveError(format!("{} archive events were not accepted", out.failed_entry_count())));
            }
        }
        Ok(())
    }

    async fn read(&self, conversation_id: &str) -> Result<Vec<ArchiveRecord>, ArchiveError> {
        let items = self
            .store
            .query(&format!("ARCHIVE#{conversation_id}"), "REC#", None, usize::MAX / 2, true)
            .await
            .map_err(err)?;
        Ok(items
            .into_iter()
            .filter_map(|v| match v.item {
                Item::ArchiveEntry(r) => Some(r),
                _ => None,
            })
            .collect())
    }
}
