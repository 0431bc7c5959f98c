//! Starting a thread (and asking for consent), resending the opt-in request, claiming a
//! contact-started thread, reading threads.

use crate::archive::ArchiveKind;
use crate::domain::message::SystemPurpose;
use crate::domain::notice::{Notice, NoticeKind};
use crate::domain::{Contact, Conversation, DomainError, Participant, Phone};
use crate::ports::{Cond, Item, Key, Write};

use serde_json::json;

use super::archive;
use super::commit::{execute, Decision, Plan};
use super::read_state::unread_counts;
use super::views::ConversationView;
use super::{
    dispatch_effects, load, load_contact, notice_message, participant_conversation, put_new, put_versioned,
    readable_conversation, system_template, Caller, Ports, Result, UseCaseError,
};
use crate::domain::ids::ConversationId;

pub struct StartConversation {
    pub phone: Phone,
    pub name: Option<String>,
}

/// Asks the contact for consent from `conv` when it is due (not answered, not asked from any
/// thread in the last 24 hours): the template, its notice and its effect join `plan`.
pub(crate) fn ask_consent(
    settings: &super::Settings,
    conv: &mut Conversation,
    contact: &mut Contact,
    plan: &mut Plan,
    now: time::OffsetDateTime,
) -> bool {
    let unanswered =
        matches!(contact.consent, crate::domain::ConsentState::Unknown | crate::domain::ConsentState::Requested);
    let due = contact.optin_due(now) || (unanswered && crate::plant::active(crate::plant::Bug::OptinEveryThread));
    if !due {
        return false;
    }
    let optin = system_template(conv, SystemPurpose::OptinRequest, settings, now);
    contact.optin_requested(now);
    conv.optin_sent(optin.id.clone(), now);
    plan.effects.extend(dispatch_effects([&optin]));
    plan.writes.push(put_new(Item::Message(optin)));
    plan.writes.push(put_new(Item::Message(notice_message(&conv.id, Notice::to_all(NoticeKind::OptinRequested), now))));
    plan.writes.push(archive::consent_change(contact, "requested", "optin_request", Some(&conv.id), now));
    true
}

pub(crate) fn participant(caller: &Caller, now: time::OffsetDateTime) -> Participant {
    Participant {
        user_id: caller.user_id.clone(),
        name: caller.name.clone(),
        locale: caller.locale.clone(),
        joined_at: now,
        history_from: None,
    }
}

/// `POST /conversations`: a new thread with the caller; the opt-in request goes out unless the
/// contact already answered (opted in, or opted out: then sends get `opted_out`) or was asked
/// less than 24 hours ago from another thread.
pub async fn start(ports: &Ports, caller: &Caller, cmd: StartConversation) -> Result<ConversationView> {
    let contact_key = &cmd.phone.digits().to_string();
    let cmd = &cmd;
    let (view, id, asked) = execute(ports, || async move {
        let now = ports.clock.now();
        let existing = load::<Contact>(&*ports.store, &Key::contact(contact_key)).await?;
        let version = existing.as_ref().map(|c| c.version);
        let mut contact = existing.map(|c| c.item).unwrap_or_else(|| {
            Contact::new(contact_key.clone(), Some(cmd.phone.as_str().to_string()), cmd.name.clone())
        });
        if contact.name.is_none() {
            contact.name = cmd.name.clone();
        }
        let mut conv = Conversation::new(ConversationId::generate(), &contact, caller.locale.clone(), now);
        conv.contact_phone = Some(cmd.phone.as_str().to_string());
        conv.contact_name = cmd.name.clone().or_else(|| contact.name.clone());
        conv.participants = vec![participant(caller, now)];
        let mut plan = Plan::default();
        let asked = ask_consent(&ports.settings, &mut conv, &mut contact, &mut plan, now);
        plan.writes.splice(
            0..0,
            [
                put_versioned(Item::Contact(contact.clone()), version),
                put_new(Item::Conversation(conv.clone())),
                put_new(Item::Membership { user_id: caller.user_id.clone(), conversation_id: conv.id.clone() }),
                super::new_thread_link(&conv),
            ],
        );
        plan.archive.push(archive::event(
            &conv.id,
            ArchiveKind::ConversationStarted,
            caller.sender(),
            now,
            json!({"contact": contact_key, "consent": contact.consent, "optin_requested": asked}),
        ));
        Ok(Decision::Commit(plan, (ConversationView::new(&conv, &contact, now), conv.id, asked)))
    })
    .await?;
    tracing::info!(conversation_id = %id, optin = asked, "conversation started");
    Ok(view)
}

/// `POST /conversations/{id}/optin`: at most once per 24 hours, and only while unanswered.
pub async fn resend_optin(
    ports: &Ports,
    caller: &Caller,
    conversation_id: &ConversationId,
) -> Result<ConversationView> {
    execute(ports, || async move {
        let now = ports.clock.now();
        let conv = participant_conversation(&*ports.store, caller, conversation_id).await?;
        let contact = load_contact(&*ports.store, &conv.item.contact_key).await?;
        conv.item.check_optin_resend(&contact.item, now)?;
        let (mut c, mut k) = (conv.item.clone(), contact.item.clone());
        let optin = system_template(&c, SystemPurpose::OptinRequest, &ports.settings, now);
        c.optin_sent(optin.id.clone(), now);
        k.optin_requested(now);
        let mut e = archive::event(
            &c.id,
            ArchiveKind::Consent,
            caller.sender(),
            now,
            json!({"consent": "requested", "resend": true}),
        );
        e.message_id = Some(optin.id.clone());
        let plan = Plan {
            effects: dispatch_effects([&optin]),
            writes: vec![
                put_versioned(Item::Conversation(c.clone()), Some(conv.version)),
                put_versioned(Item::Contact(k.clone()), Some(contact.version)),
                put_new(Item::Message(optin)),
                put_new(Item::Message(notice_message(&c.id, Notice::to_all(NoticeKind::OptinRequested), now))),
                archive::consent_change(&k, "requested", "optin_resend", Some(&c.id), now),
            ],
            archive: vec![e],
            ..Plan::default()
        };
        Ok(Decision::Commit(plan, ConversationView::new(&c, &k, now)))
    })
    .await
}

/// `POST /conversations/{id}/claim`: an agent becomes the first participant of a thread a
/// contact started; of racing claims one wins (the conversation's version decides), the others
/// get `already_claimed`. Consent is then asked as for a new thread.
pub async fn claim(ports: &Ports, caller: &Caller, conversation_id: &ConversationId) -> Result<ConversationView> {
    super::require_agent(caller)?;
    let (view, id) = execute(ports, || async move {
        let now = ports.clock.now();
        let conv = load::<Conversation>(&*ports.store, &Key::conversation(conversation_id))
            .await?
            .ok_or(UseCaseError::NotFound)?;
        let contact = load_contact(&*ports.store, &conv.item.contact_key).await?;
        let (mut c, mut k) = (conv.item.clone(), contact.item.clone());
        c.claim(participant(caller, now))?;
        c.language = caller.locale.clone();
        c.last_activity_at = now;
        let mut plan = Plan::default();
        let asked = ask_consent(&ports.settings, &mut c, &mut k, &mut plan, now);
        plan.writes.splice(
            0..0,
            [
                put_versioned(Item::Conversation(c.clone()), Some(conv.version)),
                put_versioned(Item::Contact(k.clone()), Some(contact.version)),
                put_new(Item::Membership { user_id: caller.user_id.clone(), conversation_id: c.id.clone() }),
                Write::Delete { key: Key::unassigned(&c.id), cond: Cond::Always },
            ],
        );
        plan.archive.push(archive::event(
            &c.id,
            ArchiveKind::Claimed,
            caller.sender(),
            now,
            json!({"consent": k.consent, "optin_requested": asked}),
        ));
        Ok(Decision::Commit(plan, (ConversationView::new(&c, &k, now), c.id)))
    })
    .await?;
    tracing::info!(conversation_id = %id, user_id = %caller.user_id, "conversation claimed");
    Ok(view)
}

/// `GET /conversations/{id}`.
pub async fn get(ports: &Ports, caller: &Caller, conversation_id: &ConversationId) -> Result<ConversationView> {
    let conv = readable_conversation(&*ports.store, caller, conversation_id).await?;
    crate::live::render::view_for(ports, caller, &conv.item).await
}

/// Which threads `GET /conversations` lists.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// `?status=unassigned`: contact-started threads nobody claimed (agents and admins).
    pub unassigned: bool,
    /// `?contact=+E164`: only the threads with this contact (its key: the number's digits).
    pub contact: Option<String>,
    /// `?cursor=`: the page after the one that ended with this thread.
    pub cursor: Option<ConversationId>,
    /// `?limit=`: threads per page, 1 to `MAX_PAGE` (the default).
    pub limit: Option<usize>,
}

/// Most threads one page of `GET /conversations` lists.
pub const MAX_PAGE: usize = 1000;

/// One page of threads, and where the next starts when there may be more.
#[derive(Debug)]
pub struct Page {
    pub conversations: Vec<ConversationView>,
    pub next_cursor: Option<ConversationId>,
}

/// `GET /conversations`: the caller's threads (or the unassigned ones), in pages of threads
/// started newest first, each page newest activity first.
pub async fn list(ports: &Ports, caller: &Caller, filter: ListFilter) -> Result<Page> {
    let now = ports.clock.now();
    let limit = filter.limit.unwrap_or(MAX_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(DomainError::Invalid(format!("limit must be 1 to {MAX_PAGE}")).into());
    }
    let before = filter.cursor.as_ref();
    let ids = if filter.unassigned {
        super::require_agent(caller)?;
        ports.store.query_unassigned(before, limit).await?
    } else {
        ports.store.memberships_before(&caller.user_id, before, limit).await?
    };
    let next_cursor = if ids.len() == limit { ids.last().cloned() } else { None };
    let keys: Vec<Key> = ids.iter().map(Key::conversation).collect();
    let mut convs = Vec::with_capacity(keys.len());
    for found in ports.store.get_many(&keys).await?.into_iter().flatten() {
        let Item::Conversation(conv) = found.item else { continue };
        let visible =
            if filter.unassigned { conv.unassigned && !conv.closed } else { conv.is_participant(&caller.user_id) };
        if visible && filter.contact.as_ref().is_none_or(|k| *k == conv.contact_key) {
            convs.push(conv);
        }
    }
    let refs: Vec<&Conversation> = convs.iter().collect();
    let unread = unread_counts(ports, &caller.user_id, &refs).await?;
    let mut out = Vec::with_capacity(convs.len());
    for (conv, unread) in convs.iter().zip(unread) {
        let contact = load_contact(&*ports.store, &conv.contact_key).await?;
        let mut view = ConversationView::new(conv, &contact.item, now);
        view.unread_count = if filter.unassigned { 0 } else { unread };
        out.push(view);
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.last_activity_at));
    Ok(Page { conversations: out, next_cursor })
}
