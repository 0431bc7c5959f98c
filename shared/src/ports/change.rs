//! What one commit changed, as client apps and the other readers of the change feed hear of
//! it: references derived from the commit's writes, never the state itself.

use serde::{Deserialize, Serialize};

use super::{Item, Write};
use crate::domain::notice;
use crate::domain::{ConversationId, MessageId, UserId};

/// One committed change a client app may want to hear of. Only references: what a caller is
/// shown is read, and checked against what they may see, when it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
