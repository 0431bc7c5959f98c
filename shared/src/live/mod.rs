//! Live events for client apps (CONTRACT.md section 6): what changed, derived from the writes a
//! commit makes (`changes_of`), who may hear of it (`hub`), and the events each caller gets,
//! rendered at send time from the state as it is then (`render`).

pub mod hub;
pub mod render;
pub mod socket;

use crate::domain::{Conversation, ConversationId, UserId};
pub use crate::ports::change::{changes_of, Change};
use crate::ports::{Item, Key};
use crate::usecases::{contact_threads, Caller, Ports, Result};

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
        self.users.contains(&caller.user_id) || (self.agents && caller.is_agent())
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
