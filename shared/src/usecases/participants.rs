//! Group changes: add, remove, leave, transfer. Each is one conditional write of the
//! conversation (so two adds racing for the last seat cannot both win), with its notices to
//! the employees and a message telling the contact.

use crate::archive::ArchiveKind;
use time::OffsetDateTime;

use crate::domain::contact::ConsentState;
use crate::domain::conversation::Added;
use crate::domain::notice::{Audience, Notice, NoticeKind, ParticipantChange, Subject};
use crate::domain::{Contact, Conversation, DomainError, Message, Participant};
use crate::ports::{Cond, DirectoryUser, Item, Key, Versioned, Write};

use serde_json::json;

use super::archive;
use super::commit::{execute, Decision, Plan};
use super::directory::addable;
use super::views::ConversationView;
use super::{
    dispatch_effects, load, load_contact, notice_message, participant_conversation, participant_update, put_new,
    put_versioned, Caller, Ports, Result, UseCaseError,
};
use crate::domain::ids::{ConversationId, MessageId, UserId};

/// The result of a change: the thread as the caller now sees it (if still in it).
pub struct Changed {
    pub conversation: Conversation,
    pub view: ConversationView,
}

/// What one change does, for `commit`.
struct Change {
    conv: Conversation,
    writes: Vec<Write>,
    to_queue: Vec<Message>,
}

impl Change {
    fn new(conv: Conversation) -> Change {
        Change { conv, writes: Vec::new(), to_queue: Vec::new() }
    }

    fn notice(&mut self, n: Notice, now: OffsetDateTime) {
        self.writes.push(put_new(Item::Message(notice_message(&self.conv.id, n, now))));
    }

    /// Tells the contact, if they may be written to at all (consent given).
    fn tell_contact(
        &mut self,
        contact: &Contact,
        change: ParticipantChange,
        name: &str,
        ports: &Ports,
        now: OffsetDateTime,
    ) {
        if contact.consent != ConsentState::OptedIn || self.conv.closed {
            return;
        }
        let m = participant_update(&self.conv, change, name, contact.window_open(now), &ports.settings, now);
        self.writes.push(put_new(Item::Message(m.clone())));
        self.to_queue.push(m);
    }
}

fn subject(p: &Participant) -> Subject {
    Subject { user_id: p.user_id.clone(), name: p.name.clone() }
}

/// The same notice, to its subject alone (it then speaks to them: "... removed you").
fn personal(n: Notice) -> Notice {
    let user_id = n.subject().map(|s| s.user_id.clone()).unwrap_or_default();
    Notice { audience: Audience::User(user_id), ..n }
}

async fn addable_user(ports: &Ports, caller: &Caller, user_id: &UserId) -> Result<DirectoryUser> {
    let user = load::<DirectoryUser>(&*ports.store, &Key::profile(user_id))
        .await?
        .ok_or_else(|| DomainError::NotAddable(super::directory::not_addable(user_id)))?
        .item;
    addable(caller, &user).map_err(DomainError::NotAddable)?;
    Ok(user)
}

fn joiner(user: &DirectoryUser, share_history: bool, now: OffsetDateTime) -> Participant {
    Participant {
        user_id: user.user_id.clone(),
        name: user.name.clone(),
        locale: user.locale.clone(),
        joined_at: now,
        // Ids grow with time: everything made from now on is at or after this one.
        history_from: (!share_history).then(MessageId::generate),
    }
}

/// Reads, lets `f` change a copy, and writes it back under the version read; retried on conflict.
async fn change_thread<F>(ports: &Ports, caller: &Caller, conversation_id: &ConversationId, f: F) -> Result<Changed>
where
    F: Fn(&mut Change, &Contact, OffsetDateTime) -> Result<()>,
{
    let f = &f;
    execute(ports, || async move {
        let now = ports.clock.now();
        let conv: Versioned<Conversation> = participant_conversation(&*ports.store, caller, conversation_id).await?;
        let contact = load_contact(&*ports.store, &conv.item.contact_key).await?;
        let mut change = Change::new(conv.item.clone());
        f(&mut change, &contact.item, now)?;
        if change.conv == conv.item {
            return Ok(Decision::Done(Changed {
                view: ConversationView::new(&conv.item, &contact.item, now),
                conversation: conv.item,
            }));
        }
        let mut writes = vec![put_versioned(Item::Conversation(change.conv.clone()), Some(conv.version))];
        writes.extend(super::thread_link_change(&conv.item, &change.conv));
        writes.append(&mut change.writes);
        let before: Vec<&str> = conv.item.participants.iter().map(|p| p.user_id.as_str()).collect();
        let after: Vec<&str> = change.conv.participants.iter().map(|p| p.user_id.as_str()).collect();
        let e = archive::event(
            &change.conv.id,
            ArchiveKind::Participants,
            caller.sender(),
            now,
            json!({"before": before, "after": after, "closed": change.conv.closed}),
        );
        let plan = Plan { effects: dispatch_effects(&change.to_queue), writes, archive: vec![e], ..Plan::default() };
        let view = ConversationView::new(&change.conv, &contact.item, now);
        Ok(Decision::Commit(plan, Changed { view, conversation: change.conv }))
    })
    .await
}

/// `POST /conversations/{id}/participants`.
pub async fn add(
    ports: &Ports,
    caller: &Caller,
    conversation_id: &ConversationId,
    user_id: &UserId,
    share_history: bool,
) -> Result<Changed> {
    let user = addable_user(ports, caller, user_id).await?;
    change_thread(ports, caller, conversation_id, |change, contact, now| {
        let p = joiner(&user, share_history, now);
        if change.conv.add_participant(p.clone(), now)? == Added::AlreadyIn {
            return Ok(());
        }
        change
            .writes
            .push(put_new(Item::Membership { user_id: p.user_id.clone(), conversation_id: change.conv.id.clone() }));
        change.notice(
            Notice::to_all(NoticeKind::ParticipantAdded { actor: caller.name.clone(), subject: subject(&p) }),
            now,
        );
        change.tell_contact(contact, ParticipantChange::Added, &p.name, ports, now);
        Ok(())
    })
    .await
}

/// `DELETE /conversations/{id}/participants/{user_id}`: remove a colleague (not oneself: leave).
pub async fn remove(
    ports: &Ports,
    caller: &Caller,
    conversation_id: &ConversationId,
    user_id: &UserId,
) -> Result<Changed> {
    if *user_id == caller.user_id {
        return Err(DomainError::Invalid("to take yourself out, leave the conversation".into()).into());
    }
    change_thread(ports, caller, conversation_id, |change, contact, now| {
        let gone = change.conv.remove_participant(user_id, now).ok_or(UseCaseError::NotFound)?;
        change.writes.push(Write::Delete { key: Key::membership(user_id, &change.conv.id), cond: Cond::Always });
        let n = Notice::to_all(NoticeKind::ParticipantRemoved { actor: caller.name.clone(), subject: subject(&gone) });
        change.notice(personal(n.clone()), now);
        change.notice(n, now);
        change.tell_contact(contact, ParticipantChange::Removed, &gone.name, ports, now);
        Ok(())
    })
    .await
}

/// `POST /conversations/{id}/leave`: the last one out closes the thread.
pub async fn leave(ports: &Ports, caller: &Caller, conversation_id: &ConversationId) -> Result<Changed> {
    change_thread(ports, caller, conversation_id, |change, contact, now| {
        leave_in(change, caller, contact, ports, now);
        Ok(())
    })
    .await
}

fn leave_in(change: &mut Change, caller: &Caller, contact: &Contact, ports: &Ports, now: OffsetDateTime) {
    let Some(me) = change.conv.remove_participant(&caller.user_id, now) else { return };
    change.writes.push(Write::Delete { key: Key::membership(&me.user_id, &change.conv.id), cond: Cond::Always });
    let n = Notice::to_all(NoticeKind::ParticipantLeft { subject: subject(&me) });
    change.notice(personal(n.clone()), now);
    if !change.conv.participants.is_empty() {
        change.notice(n, now);
    }
    // Tell the contact before a possible close (the thread closes when nobody is left).
    let closed = std::mem::replace(&mut change.conv.closed, false);
    change.tell_contact(contact, ParticipantChange::Left, &me.name, ports, now);
    change.conv.closed = closed;
}

/// `POST /conversations/{id}/transfer`: `to_user_id` joins and the caller leaves, in one write.
pub async fn transfer(
    ports: &Ports,
    caller: &Caller,
    conversation_id: &ConversationId,
    to_user_id: &UserId,
    share_history: bool,
) -> Result<Changed> {
    if *to_user_id == caller.user_id {
        return Err(DomainError::Invalid("transfer to someone else".into()).into());
    }
    let user = addable_user(ports, caller, to_user_id).await?;
    change_thread(ports, caller, conversation_id, |change, contact, now| {
        change.conv.check_writable()?;
        let p = joiner(&user, share_history, now);
        // The caller's seat is freed in the same write, so a full thread can still be transferred.
        let me = change.conv.remove_participant(&caller.user_id, now).ok_or(UseCaseError::NotFound)?;
        change.conv.closed = false;
        if change.conv.add_participant(p.clone(), now)? == Added::Joined {
            change.writes.push(put_new(Item::Membership {
                user_id: p.user_id.clone(),
                conversation_id: change.conv.id.clone(),
            }));
            change.notice(
                Notice::to_all(NoticeKind::ParticipantAdded { actor: caller.name.clone(), subject: subject(&p) }),
                now,
            );
            change.tell_contact(contact, ParticipantChange::Added, &p.name, ports, now);
        }
        change.conv.participants.retain(|x| x.user_id != me.user_id);
        change.conv.participants.push(me);
        leave_in(change, caller, contact, ports, now);
        Ok(())
    })
    .await
}
