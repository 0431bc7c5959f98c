//! `Archive` for AWS: each thread's chain head and records are items of the table (linked by
//! one conditional transaction, so concurrent appends cannot fork the chain), and every record
//! is put on the EventBridge bus for archive consumers.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::archive::{link, ArchiveEvent, ArchiveRecord};
use crate::ports::{Archive, ArchiveError, Cond, Item, Key, Store, StoreError, Write};

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
                let head = self.store.get(&Key::archive_head(&conv)).await.map_err(err)?;
                let (prev, cond) = match &head {
                    Some(v) => match &v.item {
                        Item::ArchiveHead { seq, hash, .. } => (Some((*seq, hash.clone())), Cond::Version(v.version)),
                        _ => return Err(ArchiveError("archive head of another kind".into())),
                    },
                    None => (None, Cond::NotExists),
                };
                let record = link(prev.as_ref().map(|(s, h)| (*s, h.as_str())), event.clone());
                let writes = vec![
                    Write::Put {
                        item: Item::ArchiveHead {
                            conversation_id: conv.clone(),
                            seq: record.seq,
                            hash: record.hash.clone(),
                        },
                        cond,
                    },
                    Write::Put { item: Item::ArchiveEntry(record.clone()), cond: Cond::NotExists },
                ];
                match self.store.transact(writes).await {
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
