//! Live events for client apps (CONTRACT.md section 6): what changed, derived from the writes a
//! commit makes (`changes_of`), who may hear of it (`hub`), and the events each caller gets,
//! rendered at send time from the state as it is then (`render`).

pub mod hub;
pub mod render;
pub mod socket;

use serde::{Deserialize, Serialize};

use crate::domain::notice;
use crate::domain::{Conversation, ConversationId, MessageId, UserId};
use crate::ports::{Item, Key, Write};
use crate::usecases::{contact_threads, Caller, Ports, Result};

/// One committed change a client app may want to hear of. Only references: what a caller is
/// shown is read, and checked against what they may see, when it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A message was created or changed; `only` names the one user a personal notice is for.
    Message {
        conversation_id: ConversationId,
        message_id: MessageId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        only: Option<UserId>,
    },
    /// A thread's status, participants or activity changed.
    Conversation { conversation_id: ConversationId },
    /// A contact's consent or window changed: every thread with them shows it.
    Contact { contact_key: String },
    /// One employee's read mark moved.
    Read { conversation_id: ConversationId, user_id: UserId },
}

/// The changes a set of writes makes, once each, in write order. A thread whose contact the
/// same writes change is told by the contact's change (it shows every open thread of theirs).
pub fn changes_of(writes: &[Write]) -> Vec<Change> {
    let contacts: Vec<&str> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Put { item: Item::Contact(c), .. } => Some(c.key.as_str()),
            _ => None,
        })
        .collect();
    let mut out: Vec<Change> = Vec::new();
    for w in writes {
        let Write::Put { item, .. } = w else { continue };
        let change = match item {
            Item::Message(m) => Change::Message {
                conversation_id: m.conversation_id.clone(),
                message_id: m.id.clone(),
                only: match m.body.notice().map(|n| &n.audience) {
                    Some(notice::Audience::User(u)) => Some(u.clone()),
                    _ => None,
                },
            },
            Item::Conversation(c) if !c.closed && contacts.contains(&c.contact_key.as_str()) => continue,
            Item::Conversation(c) => Change::Conversation { conversation_id: c.id.clone() },
            Item::Contact(c) => Change::Contact { contact_key: c.key.clone() },
            Item::ReadMark { user_id, conversation_id, .. } => {
                Change::Read { conversation_id: conversation_id.clone(), user_id: user_id.clone() }
            }
            _ => continue,
        };
        if !out.contains(&change) {
            out.push(change);
        }
    }
    out
}

/// Who may hear of a change: worked out once per change, from the state when it is taken in
/// (`render` checks again, per caller, when it sends).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audience {
    /// Participants, or the one user a personal notice is for.
    pub users: Vec<UserId>,
    /// Agents and admins too (a thread nobody claimed).
    pub agents: bool,
    /// For a contact change: the contact's open threads.
    pub threads: Vec<ConversationId>,
}

impl Audience {
    pub fn reaches(&self, caller: &Caller) -> bool {
        self.users.contains(&caller.user_id) || (self.agents && caller.require_agent().is_ok())
    }

    fn add_thread(&mut self, c: Conversation) {
        self.agents |= c.unassigned;
        for p in c.participants {
            if !self.users.contains(&p.user_id) {
                self.users.push(p.user_id);
            }
        }
    }
}

pub async fn audience(ports: &Ports, change: &Change) -> Result<Audience> {
    let mut a = Audience::default();
    let store = &*ports.store;
    match change {
        Change::Message { only: Some(user), .. } => a.users.push(user.clone()),
        Change::Read { user_id, .. } => a.users.push(user_id.clone()),
        Change::Message { conversation_id, .. } | Change::Conversation { conversation_id } => {
            if let Some(Item::Conversation(c)) = store.get(&Key::conversation(conversation_id)).await?.map(|v| v.item) {
                a.add_thread(c);
            }
        }
        Change::Contact { contact_key } => {
            for c in contact_threads(store, contact_key).await? {
                a.threads.push(c.item.id.clone());
                a.add_thread(c.item);
            }
        }
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::notice::{Notice, NoticeKind, Subject};
    use crate::domain::Body;
    use crate::domain::Message;
    use crate::ports::{Cond, Key};
    use time::macros::datetime;

    #[test]
    fn a_commit_names_each_thing_it_changed_once_and_nothing_else() {
        let now = datetime!(2026-12-01 10:00 UTC);
        let m = Message::outbound("m1".into(), "c1".into(), "u1".into(), Body::text("hi"), now);
        let removed = NoticeKind::ParticipantRemoved {
            actor: "Alex".into(),
            subject: Subject { user_id: "u2".into(), name: "Sam".into() },
        };
        let personal = Message::outbound(
            "m2".into(),
            "c1".into(),
            "system".into(),
            Body::Notice(Notice::to(&"u2".into(), removed)),
            now,
        );
        let put = |item| Write::Put { item, cond: Cond::Always };
        let writes = vec![
            put(Item::Message(m.clone())),
            put(Item::Message(m)),
            put(Item::Message(personal)),
            put(Item::Held { conversation_id: "c1".into(), message_id: "m1".into() }),
            Write::Delete { key: Key::membership(&"u2".into(), &"c1".into()), cond: Cond::Always },
        ];
        assert_eq!(
            changes_of(&writes),
            vec![
                Change::Message { conversation_id: "c1".into(), message_id: "m1".into(), only: None },
                Change::Message { conversation_id: "c1".into(), message_id: "m2".into(), only: Some("u2".into()) },
            ]
        );
    }
}
