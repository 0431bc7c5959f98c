//! Releasing held messages, in order, once the contact's consent and window allow it.

use crate::archive::ArchiveKind;
use crate::domain::contact::ConsentState;
use crate::domain::Sender;
use crate::domain::{Message, MessageKind, MessageStatus};
use crate::ports::{Cond, Item, Key, Write};

use super::commit::{execute, Decision, Plan};
use super::{dispatch_effects, load, load_contact, put_versioned, Ports, Result};
use crate::domain::ids::ConversationId;
use crate::domain::Conversation;
use crate::ports::{ItemKind, Versioned};

/// Held messages moved per transaction: three writes (the marker that goes, the message, its
/// place in the outgoing queue) and an outbox entry each, plus the check, the conversation, the
/// archive record and the change: within DynamoDB's 100 actions.
const PAGE: usize = 20;

/// Queues the held messages of one thread, oldest first, while the contact allows it. Returns
/// how many were released. Idempotent: a second run finds nothing left to release.
pub async fn release_held(ports: &Ports, conversation_id: &ConversationId) -> Result<usize> {
    let mut released = 0;
    loop {
        match execute(ports, || release_page(ports, conversation_id)).await? {
            0 => return Ok(released),
            n => released += n,
        }
    }
}

/// Releases up to `PAGE` held messages in one commit: how many (0 when nothing more can go).
async fn release_page(ports: &Ports, conversation_id: &ConversationId) -> Result<Decision<usize>> {
    let now = ports.clock.now();
    let Some(conv) = load::<Conversation>(&*ports.store, &Key::conversation(conversation_id)).await? else {
        return Ok(Decision::Done(0));
    };
    if conv.item.closed || conv.item.pending_count == 0 {
        return Ok(Decision::Done(0));
    }
    let contact = load_contact(&*ports.store, &conv.item.contact_key).await?;
    if contact.item.consent != ConsentState::OptedIn {
        return Ok(Decision::Done(0));
    }
    let window_open = contact.item.window_open(now);
    let held = ports.store.held(conversation_id, PAGE).await?;
    let mut c = conv.item.clone();
    let mut writes = vec![Write::Check { key: Key::contact(&contact.item.key), cond: Cond::Version(contact.version) }];
    let mut batch: Vec<Message> = Vec::new();
    // The held messages in one batch read.
    let keys: Vec<Key> = held
        .iter()
        .filter_map(|h| match &h.item {
            Item::Held { message_id, .. } => Some(Key::message(conversation_id, message_id)),
            _ => None,
        })
        .collect();
    let messages = ports.store.get_many(&keys).await?;
    for (h, found) in held.iter().zip(messages) {
        let Some(m) =
            found.map(|v| Message::from_item(v.item).map(|item| Versioned { item, version: v.version })).transpose()?
        else {
            // A dangling marker: drop it so it cannot block the thread.
            writes.push(Write::Delete { key: h.item.key(), cond: Cond::Version(h.version) });
            continue;
        };
        // Free-form text waits for the window; order is kept, so stop at the first that must wait.
        if !window_open && m.item.body.kind() != MessageKind::Template {
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
        return Ok(Decision::Done(0));
    }
    writes.push(put_versioned(Item::Conversation(c), Some(conv.version)));
    let mut plan = Plan { effects: dispatch_effects(&batch), writes, ..Plan::default() };
    if !batch.is_empty() {
        let ids: Vec<&str> = batch.iter().map(|m| m.id.as_str()).collect();
        plan.archive.push(super::archive::event(
            conversation_id,
            ArchiveKind::QueueRelease,
            Sender::System,
            now,
            serde_json::json!({"message_ids": ids}),
        ));
    }
    Ok(Decision::Commit(plan, batch.len()))
}
