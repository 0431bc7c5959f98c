//! Releasing held messages, in order, once the contact's consent and window allow it.

use crate::domain::contact::ConsentState;
use crate::domain::{Message, MessageKind, MessageStatus};
use crate::ports::{Cond, Item, Key, StoreError, Write};

use super::{enqueue_all, load, load_contact, put_versioned, Ports, Result, UseCaseError, MAX_CONFLICT_RETRIES};
use crate::domain::Conversation;

/// Held messages moved per transaction (two writes each, plus the conversation: DynamoDB
/// transactions take 100 items).
const PAGE: usize = 40;

/// Queues the held messages of one thread, oldest first, while the contact allows it. Returns
/// how many were released.
pub async fn release_held(ports: &Ports, conversation_id: &str) -> Result<usize> {
    let mut released = 0;
    let mut conflicts = 0;
    loop {
        let now = ports.clock.now();
        let Some(conv) = load::<Conversation>(&*ports.store, &Key::conversation(conversation_id)).await? else {
            return Ok(released);
        };
        if conv.item.closed || conv.item.pending_count == 0 {
            return Ok(released);
        }
        let contact = load_contact(&*ports.store, &conv.item.contact_key).await?;
        if contact.item.consent != ConsentState::OptedIn {
            return Ok(released);
        }
        let window_open = contact.item.window_open(now);
        let held = ports.store.query(&format!("CONV#{conversation_id}"), "HELD#", None, PAGE, true).await?;
        let mut c = conv.item.clone();
        let mut writes =
            vec![Write::Check { key: Key::contact(&contact.item.key), cond: Cond::Version(contact.version) }];
        let mut batch: Vec<Message> = Vec::new();
        for h in &held {
            let Item::Held { message_id, .. } = &h.item else {
                continue;
            };
            let Some(m) = load::<Message>(&*ports.store, &Key::message(conversation_id, message_id)).await? else {
                // A dangling marker: drop it so it cannot block the thread.
                writes.push(Write::Delete { key: h.item.key(), cond: Cond::Version(h.version) });
                continue;
            };
            // Free-form text waits for the window; order is kept, so stop at the first that must wait.
            if !window_open && m.item.kind != MessageKind::Template {
                break;
            }
            let mut next = m.item.clone();
            next.status = MessageStatus::Queued;
            next.generation += 1;
            next.lease_until = None;
            writes.push(Write::Delete { key: h.item.key(), cond: Cond::Version(h.version) });
            writes.push(put_versioned(Item::Message(next.clone()), Some(m.version)));
            c.pending_count = c.pending_count.saturating_sub(1);
            batch.push(next);
        }
        if held.is_empty() {
            // The count drifted from the markers (nothing is held): mend it.
            c.pending_count = 0;
        } else if writes.len() == 1 {
            return Ok(released);
        }
        writes.push(put_versioned(Item::Conversation(c), Some(conv.version)));
        match ports.store.transact(writes).await {
            Ok(()) => {
                if !batch.is_empty() {
                    let ids: Vec<&str> = batch.iter().map(|m| m.id.as_str()).collect();
                    let e = super::archive::event(
                        conversation_id,
                        "queue_release",
                        "system",
                        now,
                        serde_json::json!({"message_ids": ids}),
                    );
                    super::archive::record(ports, vec![e]).await;
                }
                enqueue_all(&*ports.queue, &batch.iter().collect::<Vec<_>>()).await?;
                released += batch.len();
                if batch.is_empty() {
                    return Ok(released);
                }
            }
            Err(StoreError::Conflict { .. }) => {
                conflicts += 1;
                if conflicts > MAX_CONFLICT_RETRIES {
                    return Err(UseCaseError::Contention);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}
