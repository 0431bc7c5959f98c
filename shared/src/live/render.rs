//! The events one caller gets for one change, rendered from the state as it is when they are
//! sent, and only what the caller may see then.

use serde::Serialize;

use crate::domain::Conversation;
use crate::ports::{Item, Key};
use crate::usecases::read_state::unread_counts;
use crate::usecases::views::{visible_to, ConversationView, MessageView};
use crate::usecases::{load_contact, Caller, Ports, Result};

use super::Change;

/// One event of the live API (CONTRACT.md section 6).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Event {
    Message(MessageView),
    Conversation(ConversationView),
    Removed { conversation_id: String, notice: MessageView },
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
pub async fn events_for(ports: &Ports, caller: &Caller, change: &Change, threads: &[String]) -> Result<Vec<Event>> {
    Ok(match change {
        Change::Message { conversation_id, message_id, only } => {
            if only.as_ref().is_some_and(|u| *u != caller.user_id) {
                return Ok(Vec::new());
            }
            let Some(conv) = conversation(ports, conversation_id).await? else { return Ok(Vec::new()) };
            let Some(found) = ports.store.get(&Key::message(conversation_id, message_id)).await? else {
                return Ok(Vec::new());
            };
            let Item::Message(m) = found.item else { return Ok(Vec::new()) };
            if !visible_to(&m, &caller.user_id) {
                return Ok(Vec::new());
            }
            let view = MessageView::new(&m, &caller.locale);
            match conv.participant(&caller.user_id) {
                Some(p) if p.may_see(&m.id) => vec![Event::Message(view)],
                Some(_) => Vec::new(),
                // A personal notice to someone no longer in the thread: they were taken out.
                None if m.notice.as_ref().is_some_and(|n| n.personal) => {
                    vec![Event::Removed { conversation_id: conversation_id.clone(), notice: view }]
                }
                None if may_read(&conv, caller) => vec![Event::Message(view)],
                None => Vec::new(),
            }
        }
        Change::Conversation { conversation_id } => {
            thread_events(ports, caller, std::slice::from_ref(conversation_id)).await?
        }
        Change::Read { conversation_id, user_id } if *user_id == caller.user_id => {
            thread_events(ports, caller, std::slice::from_ref(conversation_id)).await?
        }
        Change::Read { .. } => Vec::new(),
        Change::Contact { .. } => thread_events(ports, caller, threads).await?,
    })
}

async fn conversation(ports: &Ports, id: &str) -> Result<Option<Conversation>> {
    Ok(match ports.store.get(&Key::conversation(id)).await? {
        Some(v) => match v.item {
            Item::Conversation(c) => Some(c),
            _ => None,
        },
        None => None,
    })
}

/// Participants read their threads; agents and admins also the unclaimed ones.
fn may_read(conv: &Conversation, caller: &Caller) -> bool {
    conv.is_participant(&caller.user_id) || (conv.unassigned && !conv.closed && caller.require_agent().is_ok())
}

/// The caller's view of each of `ids` they may read.
async fn thread_events(ports: &Ports, caller: &Caller, ids: &[String]) -> Result<Vec<Event>> {
    let mut out = Vec::new();
    for id in ids {
        let Some(conv) = conversation(ports, id).await? else { continue };
        if !may_read(&conv, caller) {
            continue;
        }
        out.push(Event::Conversation(view_for(ports, caller, &conv).await?));
    }
    Ok(out)
}

/// A thread as `GET /conversations/{id}` shows it to `caller`, unread count included.
pub async fn view_for(ports: &Ports, caller: &Caller, conv: &Conversation) -> Result<ConversationView> {
    let contact = load_contact(&*ports.store, &conv.contact_key).await?;
    let mut view = ConversationView::new(conv, &contact.item, ports.clock.now());
    if conv.is_participant(&caller.user_id) {
        view.unread_count = unread_counts(ports, &caller.user_id, &[conv]).await?[0];
    }
    Ok(view)
}
