//! Inbound messages from the contact: consent answers, the window, routing to a thread, and
//! releasing what was held.

use serde_json::json;

use crate::domain::contact::{text_intent, ConsentState, InboundIntent};
use crate::domain::message::{Reaction, SystemPurpose};
use crate::domain::notice::{Notice, NoticeCode};
use crate::domain::{Contact, Conversation, Direction, Message, MessageKind, MessageStatus};
use crate::meta::webhook::{InboundContent, InboundMessage};
use crate::ports::{Cond, Item, Key, MediaFetch, ReceiptsJob, StoreError, Timer, Versioned, Write};

use super::archive;
use super::receipts::dedupe_mark;
use super::{
    after_conflict, contact_with_threads, enqueue_all, new_id, notice_message, payload, put_new, put_versioned,
    release, system_template, Ports, Result, UseCaseError, MAX_CONFLICT_RETRIES,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundResult {
    Applied,
    Duplicate,
    /// From someone no thread is open with: the window is noted, nothing else.
    NoThread,
}

/// What the message means, and the thread its button names, if any.
fn intent_of(content: &InboundContent) -> (InboundIntent, Option<&str>) {
    match content {
        InboundContent::Text { body } => (text_intent(body), None),
        InboundContent::Button { payload: p, text } => {
            let (action, conv) = payload::split(p);
            let intent = match action {
                payload::OPT_IN_YES => InboundIntent::Accept,
                payload::OPT_IN_NO | payload::STOP => InboundIntent::Reject,
                payload::RESUME => InboundIntent::Resume,
                _ => text_intent(text),
            };
            (intent, conv)
        }
        InboundContent::Reaction { .. } | InboundContent::System { .. } => (InboundIntent::Passive, None),
        _ => (InboundIntent::Message, None),
    }
}

/// The contact who wrote, by number or by business-scoped id, with their open threads.
async fn find_contact(
    ports: &Ports,
    m: &InboundMessage,
) -> Result<Option<(Versioned<Contact>, Vec<Versioned<Conversation>>)>> {
    let store = &*ports.store;
    if let Some(wa_id) = &m.wa_id {
        if let Some(found) = contact_with_threads(store, wa_id).await? {
            return Ok(Some(found));
        }
    }
    if let Some(user_id) = &m.user_id {
        let key = match store.get(&Key::contact_alias(user_id)).await?.map(|v| v.item) {
            Some(Item::ContactAlias { contact_key, .. }) => contact_key,
            _ => user_id.clone(),
        };
        return contact_with_threads(store, &key).await;
    }
    Ok(None)
}

/// The thread a message goes to: the one its button names, the one holding the message it
/// replies to, else the contact's open thread with the latest outbound activity.
async fn route(
    ports: &Ports,
    threads: &[Versioned<Conversation>],
    named: Option<&str>,
    context_id: Option<&str>,
) -> Result<Option<Versioned<Conversation>>> {
    if let Some(id) = named {
        if let Some(c) = threads.iter().find(|c| c.item.id == id) {
            return Ok(Some(c.clone()));
        }
    }
    if let Some(ctx) = context_id {
        if let Some(Item::Wamid { conversation_id, .. }) = ports.store.get(&Key::wamid(ctx)).await?.map(|v| v.item) {
            if let Some(c) = threads.iter().find(|c| c.item.id == conversation_id) {
                return Ok(Some(c.clone()));
            }
        }
    }
    Ok(threads.first().cloned())
}

/// Inbound text as employees see it: redacted when the policy covers inbound messages.
fn screen_inbound(ports: &Ports, msg: &mut Message) {
    if !ports.settings.dlp.inbound {
        return;
    }
    let Some(text) = &msg.text else { return };
    match ports.settings.dlp.apply(text) {
        crate::dlp::Verdict::Clean => {}
        crate::dlp::Verdict::Redacted { text, rules } => {
            msg.text = Some(text);
            msg.dlp_rules = rules;
        }
        crate::dlp::Verdict::Blocked { rules } => {
            msg.text = Some(format!("[BLOCKED:{}]", rules.join(",")));
            msg.dlp_rules = rules;
        }
    }
}

fn stored_message(conv_id: &str, m: &InboundMessage, now: time::OffsetDateTime) -> Message {
    let mut msg = Message::outbound(new_id(), conv_id.to_string(), "contact".into(), MessageKind::Text, now);
    msg.direction = Direction::Inbound;
    msg.status = MessageStatus::Delivered;
    msg.wamid = Some(m.wamid.clone());
    msg.status_at.delivered = Some(m.timestamp);
    match &m.content {
        InboundContent::Text { body } => msg.text = Some(body.clone()),
        InboundContent::Button { text, .. } => msg.text = Some(text.clone()),
        InboundContent::Reply { title, .. } => msg.text = Some(title.clone()),
        InboundContent::Image { caption, .. } => {
            // The picture is fetched from Meta after the 200; `media_id` is set once it is stored.
            msg.kind = MessageKind::Image;
            msg.text = caption.clone();
        }
        InboundContent::Reaction { message_id, emoji } => {
            msg.kind = MessageKind::Reaction;
            msg.text = emoji.clone();
            msg.reaction = Some(Reaction { message_id: message_id.clone(), emoji: emoji.clone() });
        }
        InboundContent::Unsupported { kind, .. } => msg.text = Some(format!("[unsupported message: {kind}]")),
        InboundContent::System { body, .. } => msg.text = Some(body.clone()),
        InboundContent::Other { kind } => msg.text = Some(format!("[{kind}]")),
    }
    msg
}

pub async fn apply_inbound(ports: &Ports, m: &InboundMessage) -> Result<InboundResult> {
    let dedupe_id = format!("msg#{}", m.wamid);
    let (intent, named) = intent_of(&m.content);
    for attempt in 0..MAX_CONFLICT_RETRIES {
        let now = ports.clock.now();
        let Some((contact, threads)) = find_contact(ports, m).await? else {
            tracing::info!(wamid = %m.wamid, "inbound message from a contact without a thread");
            return Ok(InboundResult::NoThread);
        };
        let routed = route(ports, &threads, named, m.context_id.as_deref()).await?;

        let mut k = contact.item.clone();
        if k.user_id.is_none() {
            k.user_id = m.user_id.clone();
        }
        if k.name.is_none() {
            k.name = m.profile_name.clone();
        }
        let outcome = k.inbound(intent, m.timestamp, now);
        if let Some(at) = k.arm_window_timer(now) {
            // Armed before the write: a timer with no record is harmless, the reverse is not.
            ports.scheduler.schedule(&Timer::WindowExpiry { contact_key: k.key.clone() }, at).await?;
        }

        let mut writes = vec![
            dedupe_mark(dedupe_id.clone(), now, ports),
            put_versioned(Item::Contact(k.clone()), Some(contact.version)),
        ];
        if let (None, Some(user_id)) = (&contact.item.user_id, &k.user_id) {
            // Learn the business-scoped id, so later messages without a number still find them.
            writes.push(Write::Put {
                item: Item::ContactAlias { user_id: user_id.clone(), contact_key: k.key.clone() },
                cond: Cond::Always,
            });
        }
        let mut to_queue = Vec::new();
        let mut events = Vec::new();
        let mut fetches = Vec::new();
        if let Some(change) = outcome.consent_changed {
            for t in &threads {
                let mut e =
                    archive::event(&t.item.id, "consent", "contact", now, json!({"consent": change, "contact": k.key}));
                e.wamid = Some(m.wamid.clone());
                events.push(e);
            }
        }
        if let Some(conv) = &routed {
            let mut c = conv.item.clone();
            c.last_activity_at = now;
            let mut msg = stored_message(&c.id, m, now);
            let original = msg.text.clone();
            screen_inbound(ports, &mut msg);
            if !msg.dlp_rules.is_empty() {
                // Employees see the redacted text; the archive keeps the original, marked.
                let mut e = archive::event(
                    &c.id,
                    "dlp",
                    "contact",
                    now,
                    json!({"action": "redact_inbound", "rules": msg.dlp_rules}),
                );
                e.message_id = Some(msg.id.clone());
                e.wamid = Some(m.wamid.clone());
                e.text_as_written = original;
                e.text_as_sent = msg.text.clone();
                events.push(e);
            }
            if let InboundContent::Image { media_id, sha256, .. } = &m.content {
                fetches.push(MediaFetch {
                    conversation_id: c.id.clone(),
                    message_id: msg.id.clone(),
                    media_id: new_id(),
                    meta_id: media_id.clone(),
                    sha256: sha256.clone(),
                });
            }
            writes.push(put_new(Item::Message(msg)));
            if outcome.consent_changed == Some(ConsentState::OptedOut) {
                let confirm = system_template(&c, SystemPurpose::OptOutConfirmation, &ports.settings, now);
                writes.push(put_new(Item::Message(confirm.clone())));
                to_queue.push(confirm);
            }
            writes.push(put_versioned(Item::Conversation(c), Some(conv.version)));
        }
        let notice = match outcome.consent_changed {
            Some(ConsentState::OptedIn) => Some(NoticeCode::OptinAccepted),
            Some(ConsentState::OptedOut) => Some(NoticeCode::OptinRejected),
            _ if outcome.reopened && k.consent == ConsentState::OptedIn => Some(NoticeCode::Resumed),
            _ => None,
        };
        if let Some(code) = notice {
            for t in &threads {
                writes.push(put_new(Item::Message(notice_message(&t.item.id, Notice::to_all(code), now))));
            }
        }
        match ports.store.transact(writes).await {
            Ok(()) => {}
            // The dedupe mark is the first write: this message was applied before.
            Err(StoreError::Conflict { index: 0 }) => return Ok(InboundResult::Duplicate),
            Err(StoreError::Conflict { .. }) => {
                after_conflict(attempt).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        archive::record(ports, events).await;
        for f in fetches {
            ports.queue.send_receipt(ReceiptsJob::FetchMedia(f)).await?;
        }
        enqueue_all(&*ports.queue, &to_queue.iter().collect::<Vec<_>>()).await?;
        if outcome.release_held {
            for t in &threads {
                release::release_held(ports, &t.item.id).await?;
            }
        }
        tracing::info!(wamid = %m.wamid, conversation_id = ?routed.as_ref().map(|c| &c.item.id), ?intent, "inbound message applied");
        return Ok(if routed.is_some() { InboundResult::Applied } else { InboundResult::NoThread });
    }
    Err(UseCaseError::Contention)
}
