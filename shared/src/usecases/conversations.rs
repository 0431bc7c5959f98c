//! Starting a thread (and asking for consent), resending the opt-in request, reading threads.

use crate::domain::contact::ConsentState;
use crate::domain::message::SystemPurpose;
use crate::domain::notice::{Notice, NoticeCode};
use crate::domain::{Contact, Conversation, Participant, Phone};
use crate::ports::{Item, Key, StoreError};

use serde_json::json;

use super::archive;
use super::views::ConversationView;
use super::{
    enqueue_all, load, load_contact, new_id, notice_message, participant_conversation, put_new, put_versioned,
    system_template, Caller, Ports, Result, UseCaseError, MAX_CONFLICT_RETRIES,
};

pub struct StartConversation {
    pub phone: Phone,
    pub name: Option<String>,
}

/// `POST /conversations`: a new thread with the caller; the opt-in request goes out unless the
/// contact already answered (opted in, or opted out: then sends get `opted_out`).
pub async fn start(ports: &Ports, caller: &Caller, cmd: StartConversation) -> Result<ConversationView> {
    let contact_key = cmd.phone.digits().to_string();
    for _ in 0..MAX_CONFLICT_RETRIES {
        let now = ports.clock.now();
        let existing = load::<Contact>(&*ports.store, &Key::contact(&contact_key)).await?;
        let version = existing.as_ref().map(|c| c.version);
        let mut contact = existing.map(|c| c.item).unwrap_or_else(|| {
            Contact::new(contact_key.clone(), Some(cmd.phone.as_str().to_string()), cmd.name.clone())
        });
        if contact.name.is_none() {
            contact.name = cmd.name.clone();
        }
        let mut conv = Conversation {
            id: new_id(),
            contact_key: contact_key.clone(),
            contact_phone: Some(cmd.phone.as_str().to_string()),
            contact_name: cmd.name.clone().or_else(|| contact.name.clone()),
            participants: vec![Participant {
                user_id: caller.user_id.clone(),
                name: caller.name.clone(),
                locale: caller.locale.clone(),
                joined_at: now,
                history_from: None,
            }],
            language: caller.locale.clone(),
            closed: false,
            optin: Default::default(),
            pending_count: 0,
            created_at: now,
            last_activity_at: now,
            last_outbound_at: None,
        };
        let mut to_queue = Vec::new();
        let mut extra = Vec::new();
        if matches!(contact.consent, ConsentState::Unknown | ConsentState::Requested) {
            let optin = system_template(&conv, SystemPurpose::OptinRequest, &ports.settings, now);
            contact.optin_requested(now);
            conv.optin_sent(optin.id.clone(), now);
            extra.push(put_new(Item::Message(notice_message(
                &conv.id,
                Notice::to_all(NoticeCode::OptinRequested),
                now,
            ))));
            to_queue.push(optin);
        }
        let mut writes = vec![
            put_versioned(Item::Contact(contact.clone()), version),
            put_new(Item::Conversation(conv.clone())),
            put_new(Item::Membership { user_id: caller.user_id.clone(), conversation_id: conv.id.clone() }),
            put_new(Item::ContactThread { contact_key: contact_key.clone(), conversation_id: conv.id.clone() }),
        ];
        writes.extend(to_queue.iter().map(|m| put_new(Item::Message(m.clone()))));
        writes.extend(extra);
        match ports.store.transact(writes).await {
            Ok(()) => {
                let e = archive::event(
                    &conv.id,
                    "conversation_started",
                    &caller.user_id,
                    now,
                    json!({"contact": contact_key, "consent": contact.consent, "optin_requested": !to_queue.is_empty()}),
                );
                archive::record(ports, vec![e]).await;
                enqueue_all(&*ports.queue, &to_queue.iter().collect::<Vec<_>>()).await?;
                tracing::info!(conversation_id = %conv.id, optin = !to_queue.is_empty(), "conversation started");
                return Ok(ConversationView::new(&conv, &contact, now));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(UseCaseError::Contention)
}

/// `POST /conversations/{id}/optin`: at most once per 24 hours, and only while unanswered.
pub async fn resend_optin(ports: &Ports, caller: &Caller, conversation_id: &str) -> Result<ConversationView> {
    for _ in 0..MAX_CONFLICT_RETRIES {
        let now = ports.clock.now();
        let conv = participant_conversation(&*ports.store, caller, conversation_id).await?;
        let contact = load_contact(&*ports.store, &conv.item.contact_key).await?;
        conv.item.check_optin_resend(&contact.item, now)?;
        let (mut c, mut k) = (conv.item.clone(), contact.item.clone());
        let optin = system_template(&c, SystemPurpose::OptinRequest, &ports.settings, now);
        c.optin_sent(optin.id.clone(), now);
        k.optin_requested(now);
        let writes = vec![
            put_versioned(Item::Conversation(c.clone()), Some(conv.version)),
            put_versioned(Item::Contact(k.clone()), Some(contact.version)),
            put_new(Item::Message(optin.clone())),
            put_new(Item::Message(notice_message(&c.id, Notice::to_all(NoticeCode::OptinRequested), now))),
        ];
        match ports.store.transact(writes).await {
            Ok(()) => {
                let mut e = archive::event(
                    &c.id,
                    "consent",
                    &caller.user_id,
                    now,
                    json!({"consent": "requested", "resend": true}),
                );
                e.message_id = Some(optin.id.clone());
                archive::record(ports, vec![e]).await;
                enqueue_all(&*ports.queue, &[&optin]).await?;
                return Ok(ConversationView::new(&c, &k, now));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(UseCaseError::Contention)
}

/// `GET /conversations/{id}`.
pub async fn get(ports: &Ports, caller: &Caller, conversation_id: &str) -> Result<ConversationView> {
    let conv = participant_conversation(&*ports.store, caller, conversation_id).await?;
    let contact = load_contact(&*ports.store, &conv.item.contact_key).await?;
    Ok(ConversationView::new(&conv.item, &contact.item, ports.clock.now()))
}

/// `GET /conversations`: the caller's threads, newest activity first.
pub async fn list(ports: &Ports, caller: &Caller) -> Result<Vec<ConversationView>> {
    let now = ports.clock.now();
    let links = ports.store.query(&format!("USER#{}", caller.user_id), "CONV#", None, 1000, true).await?;
    let mut out = Vec::with_capacity(links.len());
    for link in links {
        let Item::Membership { conversation_id, .. } = link.item else {
            continue;
        };
        let Some(conv) = load::<Conversation>(&*ports.store, &Key::conversation(&conversation_id)).await? else {
            continue;
        };
        if !conv.item.is_participant(&caller.user_id) {
            continue;
        }
        let contact = load_contact(&*ports.store, &conv.item.contact_key).await?;
        out.push(ConversationView::new(&conv.item, &contact.item, now));
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.last_activity_at));
    Ok(out)
}
