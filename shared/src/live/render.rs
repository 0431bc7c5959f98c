//! The events one caller gets for one change, rendered from the state as it is when they are
//! sent, and only what the caller may see then. Each rendering reads what it needs in one or
//! two batch reads.

use serde::Serialize;

use crate::domain::{Contact, Conversation, ConversationId, Notice};
use crate::ports::{Item, Key};
use crate::usecases::read_state::unread_after;
use crate::usecases::views::{visible_to, ConversationView, MessageView};
use crate::usecases::{load_contact, Caller, Ports, Result};

use super::Change;

/// One event of the live API (CONTRACT.md section 6).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Event {
    Message(MessageView),
    Conversation(ConversationView),
    Removed { conversation_id: ConversationId, notice: MessageView },
}

impl Event {
    /// The SSE `event:` name.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Message(_) => "message",
            Event::Conversation(_) => "conversation",
            Event::Removed { .. } => "removed",
        }
    }
}

/// What `caller` is told of `change`; `threads` are the contact's threads for a contact change.
pub async fn events_for(
    ports: &Ports,
    caller: &Caller,
    change: &Change,
    threads: &[ConversationId],
) -> Result<Vec<Event>> {
    Ok(match change {
        Change::Message { conversation_id, message_id, only } => {
            if only.as_ref().is_some_and(|u| *u != caller.user_id) {
                return Ok(Vec::new());
            }
            let keys = [Key::conversation(conversation_id), Key::message(conversation_id, message_id)];
            let mut found = ports.store.get_many(&keys).await?.into_iter().map(|v| v.map(|v| v.item));
            let (Some(Some(Item::Conversation(conv))), Some(Some(Item::Message(m)))) = (found.next(), found.next())
            else {
                return Ok(Vec::new());
            };
            if !visible_to(&m, &caller.user_id) {
                return Ok(Vec::new());
            }
            let view = MessageView::new(&m, &caller.locale);
            match conv.participant(&caller.user_id) {
                Some(p) if p.may_see(&m.id) => vec![Event::Message(view)],
                Some(_) => Vec::new(),
                // A personal notice to someone no longer in the thread: they were taken out.
                None if m.body.notice().is_some_and(Notice::personal) => {
                    vec![Event::Removed { conversation_id: conversation_id.clone(), notice: view }]
                }
                None if may_read(&conv, caller) => vec![Event::Message(view)],
                None => Vec::new(),
            }
        }
        Change::Conversation { conversation_id } => {
            thread_events(ports, caller, None, std::slice::from_ref(conversation_id)).await?
        }
        Change::Read { conversation_id, user_id } if *user_id == caller.user_id => {
            thread_events(ports, caller, None, std::slice::from_ref(conversation_id)).await?
        }
        Change::Read { .. } => Vec::new(),
        Change::Contact { contact_key } => thread_events(ports, caller, Some(contact_key), threads).await?,
    })
}

/// Participants read their threads; agents and admins also the unclaimed ones.
fn may_read(conv: &Conversation, caller: &Caller) -> bool {
    conv.is_participant(&caller.user_id) || (conv.unassigned && !conv.closed && caller.is_agent())
}

/// The caller's view of each of `ids` they may read, with the threads, the caller's read marks
/// and (when known) the contact in one batch read.
async fn thread_events(
    ports: &Ports,
    caller: &Caller,
    contact_key: Option<&str>,
    ids: &[ConversationId],
) -> Result<Vec<Event>> {
    let mut keys: Vec<Key> = ids.iter().map(Key::conversation).collect();
    keys.extend(ids.iter().map(|id| Key::read_mark(&caller.user_id, id)));
    keys.extend(contact_key.map(Key::contact));
    let mut found: Vec<Option<Item>> =
        ports.store.get_many(&keys).await?.into_iter().map(|v| v.map(|v| v.item)).collect();
    let contact = match contact_key.and_then(|_| found.pop().flatten()) {
        Some(Item::Contact(c)) => Some(c),
        _ => None,
    };
    let marks = found.split_off(ids.len());
    let mut out = Vec::new();
    for (conv, mark) in found.into_iter().zip(marks) {
        let Some(Item::Conversation(conv)) = conv else { continue };
        if !may_read(&conv, caller) {
            continue;
        }
        let contact = match &contact {
            Some(c) if c.key == conv.contact_key => c.clone(),
            _ => load_contact(&*ports.store, &conv.contact_key).await?.item,
        };
        out.push(Event::Conversation(view(caller, &conv, &contact, mark.as_ref(), ports)));
    }
    Ok(out)
}

fn view(
    caller: &Caller,
    conv: &Conversation,
    contact: &Contact,
    mark: Option<&Item>,
    ports: &Ports,
) -> ConversationView {
    let mut view = ConversationView::new(conv, contact, ports.clock.now());
    if conv.is_participant(&caller.user_id) {
        view.unread_count = unread_after(conv, mark);
    }
    view
}

/// A thread as `GET /conversations/{id}` shows it to `caller`, unread count included.
pub async fn view_for(ports: &Ports, caller: &Caller, conv: &Conversation) -> Result<ConversationView> {
    let keys = [Key::contact(&conv.contact_key), Key::read_mark(&caller.user_id, &conv.id)];
    let mut found = ports.store.get_many(&keys).await?.into_iter().map(|v| v.map(|v| v.item));
    let contact = match found.next().flatten() {
        Some(Item::Contact(c)) => c,
        _ => load_contact(&*ports.store, &conv.contact_key).await?.item,
    };
    Ok(view(caller, conv, &contact, found.next().flatten().as_ref(), ports))
}
