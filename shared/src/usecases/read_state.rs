//! Read state: how far each employee has read each thread, and what is left unread.

use crate::domain::{Conversation, Direction};
use crate::ports::{Item, Key, StoreError, Versioned};

use super::commit::{execute, Decision, Plan};
use super::{participant_conversation, put_versioned, Caller, Ports, Result, UseCaseError};
use crate::domain::ids::{ConversationId, MessageId, UserId};

/// Messages read per page while counting.
const PAGE: usize = 500;

/// `POST /conversations/{id}/read {"up_to"}`: the caller has read the thread up to that
/// message. The mark never moves back: an older `up_to` leaves it where it is. Returns the
/// caller's unread count.
pub async fn mark_read(
    ports: &Ports,
    caller: &Caller,
    conversation_id: &ConversationId,
    up_to: &MessageId,
) -> Result<u64> {
    execute(ports, || async move {
        let conv = participant_conversation(&*ports.store, caller, conversation_id).await?;
        if ports.store.get(&Key::message(conversation_id, up_to)).await?.is_none() {
            return Err(UseCaseError::NotFound);
        }
        let key = Key::read_mark(&caller.user_id, conversation_id);
        let current = ports.store.get(&key).await?;
        let (version, seen_before, up_to_before) = match current {
            Some(Versioned { item: Item::ReadMark { inbound_seen, up_to, .. }, version }) => {
                (Some(version), inbound_seen, Some(up_to))
            }
            Some(_) => return Err(StoreError::Corrupt("read mark of another kind".into()).into()),
            None => (None, 0, None),
        };
        if up_to_before.as_ref().is_some_and(|b| b >= up_to) {
            return Ok(Decision::Done(unread(&conv.item, seen_before)));
        }
        let seen = inbound_through(ports, conversation_id, up_to).await?;
        let mark = Item::ReadMark {
            user_id: caller.user_id.clone(),
            conversation_id: conversation_id.clone(),
            up_to: up_to.clone(),
            inbound_seen: seen.max(seen_before),
        };
        Ok(Decision::Commit(Plan::of(vec![put_versioned(mark, version)]), unread(&conv.item, seen.max(seen_before))))
    })
    .await
}

/// How many of the contact's messages in the thread are at or before message `up_to`.
async fn inbound_through(ports: &Ports, conversation_id: &ConversationId, up_to: &MessageId) -> Result<u64> {
    let mut count = 0;
    let mut after: Option<MessageId> = None;
    loop {
        let page = ports.store.messages(conversation_id, after.as_ref(), PAGE, true).await?;
        let full = page.len() == PAGE;
        for v in page {
            let Item::Message(m) = v.item else { continue };
            if m.id > *up_to {
                return Ok(count);
            }
            if m.direction == Direction::Inbound {
                count += 1;
            }
            after = Some(m.id);
        }
        if !full {
            return Ok(count);
        }
    }
}

fn unread(conv: &Conversation, seen: u64) -> u64 {
    conv.inbound_count.saturating_sub(seen)
}

/// Each thread's unread count for `user_id`, in the order given (one batch read).
pub async fn unread_counts(ports: &Ports, user_id: &UserId, convs: &[&Conversation]) -> Result<Vec<u64>> {
    let keys: Vec<Key> = convs.iter().map(|c| Key::read_mark(user_id, &c.id)).collect();
    let marks = ports.store.get_many(&keys).await?;
    Ok(convs.iter().zip(marks).map(|(c, mark)| unread_after(c, mark.map(|v| v.item).as_ref())).collect())
}

/// A thread's unread count after the reader's read mark (`None`: nothing read yet).
pub fn unread_after(conv: &Conversation, mark: Option<&Item>) -> u64 {
    match mark {
        Some(Item::ReadMark { inbound_seen, .. }) => unread(conv, *inbound_seen),
        _ => unread(conv, 0),
    }
}
