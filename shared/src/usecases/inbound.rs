//! Inbound messages from the contact: consent answers, the window, routing to a thread, and
//! releasing what was held.

use serde_json::json;

use crate::domain::contact::{text_intent, ConsentState, InboundIntent};
use crate::domain::message::{Reaction, SystemPurpose};
use crate::domain::notice::{Notice, NoticeCode};
use crate::domain::{Contact, Conversation, Direction, Message, MessageKind, MessageStatus};
use crate::meta::webhook::{InboundContent, InboundMessage};
use crate::ports::{Cond, Effect, Item, Key, MediaFetch, ReceiptsJob, StoreError, Versioned, Write};

use super::archive;
use super::commit::{commit, retry, Attempt, Plan};
use super::receipts::dedupe_mark;
use super::{
    contact_with_threads, dispatch_effects, new_id, notice_message, payload, put_new, put_versioned, system_template,
    Ports, Result,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundResult {
    Applied,
    Duplicate,
    /// From someone no thread is open with: a new unassigned thread holds it.
    Unassigned,
    /// Nobody to attach it to (neither a number nor a user id).
    NoThread,
    /// Written longer ago than the dedupe marks are kept: Meta stops retrying after 7 days, so
    /// this is a replay, which could apply a message (a STOP, a "yes") twice.
    TooOld,
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

/// A contact-started thread for a message that routes to no open thread: open, unclaimed,
/// in the language the contact's profile does not give (the business default, English).
fn unassigned_thread(contact: &Contact, now: time::OffsetDateTime) -> Conversation {
    let mut c = Conversation::new(new_id(), contact, "en".into(), now);
    c.unassigned = true;
    c
}

/// A contact we never heard of, by number or else by business-scoped id.
fn new_contact(m: &InboundMessage) -> Option<Contact> {
    let key = m.wa_id.clone().or_else(|| m.user_id.clone())?;
    Some(Contact::new(key, m.wa_id.as_ref().map(|d| format!("+{d}")), m.profile_name.clone()))
}

pub async fn apply_inbound(ports: &Ports, m: &InboundMessage) -> Result<InboundResult> {
    if m.timestamp < ports.clock.now() - ports.settings.dedupe_ttl {
        tracing::warn!(wamid = %m.wamid, timestamp = %m.timestamp, "inbound message older than the dedupe horizon ignored");
        return Ok(InboundResult::TooOld);
    }
    let dedupe_id = &format!("msg#{}", m.wamid);
    let (intent, named) = intent_of(&m.content);
    retry(|| async move {
        let now = ports.clock.now();
        let (contact, contact_version, threads) = match find_contact(ports, m).await? {
            Some((c, threads)) => (c.item, Some(c.version), threads),
            None => match new_contact(m) {
                Some(c) => (c, None, Vec::new()),
                None => {
                    tracing::warn!(wamid = %m.wamid, "inbound message with neither a number nor a user id");
                    return Ok(Attempt::Done(InboundResult::NoThread));
                }
            },
        };
        let routed = route(ports, &threads, named, m.context_id.as_deref()).await?;

        let mut k = contact.clone();
        if k.user_id.is_none() {
            k.user_id = m.user_id.clone();
        }
        if k.name.is_none() {
            k.name = m.profile_name.clone();
        }
        let outcome = k.inbound(intent, m.timestamp, now);
        let mut plan = Plan::default();
        if let Some(at) = k.arm_window_timer(now) {
            plan.effects.extend(super::timers::window_timers(&ports.settings, &k.key, at));
        }
        // The dedupe mark is write 0: a conflict there means this message was applied before.
        plan.writes.push(dedupe_mark(dedupe_id.clone(), now, ports));
        plan.writes.push(put_versioned(Item::Contact(k.clone()), contact_version));
        if let (None, Some(user_id)) = (&contact.user_id, &k.user_id) {
            // Learn the business-scoped id, so later messages without a number still find them.
            plan.writes.push(Write::Put {
                item: Item::ContactAlias { user_id: user_id.clone(), contact_key: k.key.clone() },
                cond: Cond::Always,
            });
        }

        // The thread it goes to; a message that routes nowhere opens an unassigned one.
        let (mut c, conv_version) = match &routed {
            Some(v) => (v.item.clone(), Some(v.version)),
            None => {
                let c = unassigned_thread(&k, now);
                plan.writes.push(put_new(Item::ContactThread { contact_key: k.key.clone(), conversation_id: c.id.clone() }));
                plan.writes.push(put_new(Item::Unassigned { conversation_id: c.id.clone() }));
                plan.archive.push(archive::event(&c.id, "conversation_started", "contact", now, json!({"contact": k.key, "unassigned": true})));
                (c, None)
            }
        };
        c.last_activity_at = now;
        c.inbound_count += 1;
        let mut msg = stored_message(&c.id, m, now);
        let original = msg.text.clone();
        screen_inbound(ports, &mut msg);
        if !msg.dlp_rules.is_empty() {
            // Employees see the redacted text; the archive keeps the original, its findings
            // fingerprinted.
            let mut e =
                archive::event(&c.id, "dlp", "contact", now, json!({"action": "redact_inbound", "rules": msg.dlp_rules}));
            e.message_id = Some(msg.id.clone());
            e.wamid = Some(m.wamid.clone());
            e.text_as_written = original.map(|t| archive::original(&ports.settings, &t)).transpose()?;
            e.text_as_sent = msg.text.clone();
            plan.archive.push(e);
        }
        if let InboundContent::Image { media_id, sha256, .. } = &m.content {
            plan.effects.push(Effect::Receipt(ReceiptsJob::FetchMedia(MediaFetch {
                conversation_id: c.id.clone(),
                message_id: msg.id.clone(),
                media_id: new_id(),
                meta_id: media_id.clone(),
                sha256: sha256.clone(),
            })));
        }
        plan.writes.push(put_new(Item::Message(msg)));
        let confirmation = match outcome.consent_changed {
            Some(ConsentState::OptedOut) => Some(SystemPurpose::OptOutConfirmation),
            Some(ConsentState::OptedIn) => Some(SystemPurpose::OptinConfirmation),
            _ => None,
        };
        if let Some(purpose) = confirmation {
            let confirm = system_template(&c, purpose, &ports.settings, now);
            plan.effects.extend(dispatch_effects([&confirm]));
            plan.writes.push(put_new(Item::Message(confirm)));
        }
        plan.writes.push(put_versioned(Item::Conversation(c.clone()), conv_version));

        // Consent and the window belong to the contact: every thread of theirs is told. This
        // thread in this commit; the others through the outbox, so the commit stays small.
        let others: Vec<String> = threads.iter().map(|t| t.item.id.clone()).filter(|id| *id != c.id).collect();
        let consent_event = outcome.consent_changed.map(|change| {
            let mut e = archive::event(&c.id, "consent", "contact", now, json!({"consent": change, "contact": k.key}));
            e.wamid = Some(m.wamid.clone());
            e
        });
        plan.archive.extend(consent_event.clone());
        let notice = match outcome.consent_changed {
            Some(ConsentState::OptedIn) => Some(NoticeCode::OptinAccepted),
            Some(ConsentState::OptedOut) => Some(NoticeCode::OptinRejected),
            _ if outcome.reopened && k.consent == ConsentState::OptedIn => Some(NoticeCode::Resumed),
            _ => None,
        };
        if let Some(code) = notice {
            plan.writes.push(put_new(Item::Message(notice_message(&c.id, Notice::to_all(code), now))));
            if !others.is_empty() {
                plan.effects.push(Effect::Notice {
                    conversation_ids: others.clone(),
                    notice: Notice::to_all(code),
                    archive: consent_event,
                });
            }
        }
        if outcome.release_held {
            let mut all = vec![c.id.clone()];
            all.extend(others);
            plan.effects.push(Effect::ReleaseHeld { conversation_ids: all });
        }
        match commit(ports, plan).await {
            Ok(()) => {}
            Err(StoreError::Conflict { index: 0 }) => return Ok(Attempt::Done(InboundResult::Duplicate)),
            Err(StoreError::Conflict { .. } | StoreError::Busy) => return Ok(Attempt::Retry),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(wamid = %m.wamid, conversation_id = %c.id, unassigned = c.unassigned, ?intent, "inbound message applied");
        Ok(Attempt::Done(if routed.is_some() { InboundResult::Applied } else { InboundResult::Unassigned }))
    })
    .await
}
