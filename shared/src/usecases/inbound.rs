//! Inbound messages from the contact: consent answers, the window, routing to a thread, and
//! releasing what was held.

use crate::archive::ArchiveKind;
use serde_json::json;

use crate::domain::contact::{text_intent, ConsentState, InboundIntent, InboundOutcome};
use crate::domain::message::{FileFacts, Interactive, Reaction, SystemPurpose};
use crate::domain::notice::{Notice, NoticeKind};
use crate::domain::{Body, Contact, Conversation, Direction, Message, MessageStatus, Sender};
use crate::meta::webhook::{InboundContent, InboundMessage};
use crate::ports::{Cond, Effect, Item, Key, MediaFetch, ReceiptsJob, Versioned, Write};
use time::OffsetDateTime as Time;

use super::archive;
use super::commit::{execute, Decision, Guard, Plan};
use super::{
    contact_with_threads, dispatch_effects, new_ulid, notice_message, payload, put_new, put_versioned, system_template,
    Ports, Result, Settings, UseCaseError,
};
use crate::domain::ids::{ConversationId, MessageId};

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
/// replies to, else the contact's open thread with the latest outbound activity; and the
/// message of that thread it replies to, when it quotes one of ours.
async fn route(
    ports: &Ports,
    threads: &[Versioned<Conversation>],
    named: Option<&str>,
    context_id: Option<&str>,
) -> Result<(Option<Versioned<Conversation>>, Option<MessageId>)> {
    let quoted = match context_id {
        Some(ctx) => match ports.store.get(&Key::wamid(ctx)).await?.map(|v| v.item) {
            Some(Item::Wamid { conversation_id, message_id, .. }) => Some((conversation_id, message_id)),
            _ => None,
        },
        None => None,
    };
    let thread = named
        .and_then(|id| threads.iter().find(|c| c.item.id == id))
        .or_else(|| quoted.as_ref().and_then(|(conv, _)| threads.iter().find(|c| &c.item.id == conv)))
        .or(threads.first())
        .cloned();
    let reply_to = quoted
        .filter(|(conv, _)| thread.as_ref().is_some_and(|t| &t.item.id == conv))
        .map(|(_, message_id)| message_id);
    Ok((thread, reply_to))
}

/// An inbound message as employees see it: everything in it that carries words redacted,
/// when the policy covers inbound messages.
fn screen_inbound(settings: &Settings, msg: &mut Message) {
    if !settings.dlp.inbound {
        return;
    }
    let mut hit = std::collections::BTreeSet::new();
    for words in msg.body.words_mut() {
        match settings.dlp.apply(words) {
            crate::dlp::Verdict::Clean => {}
            crate::dlp::Verdict::Redacted { text, rules } => {
                *words = text;
                hit.extend(rules);
            }
            crate::dlp::Verdict::Blocked { rules } => {
                *words = format!("[BLOCKED:{}]", rules.join(","));
                hit.extend(rules);
            }
        }
    }
    msg.dlp_rules = hit.into_iter().collect();
}

/// Everything in `body` that carries words, one line each: what the DLP record compares.
fn all_words(body: &mut Body) -> String {
    body.words_mut().into_iter().map(|w| w.as_str()).collect::<Vec<_>>().join("\n")
}

fn stored_message(conv_id: &ConversationId, m: &InboundMessage, now: time::OffsetDateTime) -> Message {
    let body = match &m.content {
        InboundContent::Text { body } => Body::text(body.as_str()),
        // The file is fetched from Meta after the 200; `media_id` is set once it is kept.
        InboundContent::File { kind, mime_type, sha256, caption, filename, voice, .. } => Body::File {
            kind: *kind,
            media_id: None,
            caption: caption.clone(),
            prefix: None,
            facts: FileFacts {
                mime_type: mime_type.clone(),
                size: None,
                sha256: sha256.clone(),
                filename: filename.clone(),
                voice: *voice,
            },
        },
        InboundContent::Location(l) => Body::Location(l.clone()),
        InboundContent::Contacts(cards) => Body::Contacts(cards.clone()),
        InboundContent::Button { payload, text } => {
            Body::Interactive(Interactive { kind: "button".into(), id: payload.clone(), title: text.clone() })
        }
        InboundContent::Reply { kind, id, title } => {
            Body::Interactive(Interactive { kind: kind.clone(), id: id.clone(), title: title.clone() })
        }
        InboundContent::Reaction { message_id, emoji } => {
            Body::Reaction(Reaction { message_id: message_id.clone(), emoji: emoji.clone() })
        }
        InboundContent::Unsupported { kind, content, .. } => {
            Body::Unsupported { type_name: kind.clone(), content: content.clone() }
        }
        InboundContent::System { body, .. } => Body::text(body.as_str()),
    };
    let mut msg = Message::outbound(MessageId::generate(), conv_id.clone(), Sender::Contact, body, now);
    msg.direction = Direction::Inbound;
    msg.status = MessageStatus::Delivered;
    msg.wamid = Some(m.wamid.clone());
    msg.status_at.delivered = Some(m.timestamp);
    msg
}

/// A contact-started thread for a message that routes to no open thread: open, unclaimed,
/// in the language the contact's profile does not give (the business default, English).
fn unassigned_thread(contact: &Contact, now: time::OffsetDateTime) -> Conversation {
    let mut c = Conversation::new(ConversationId::generate(), contact, "en".into(), now);
    c.unassigned = true;
    c
}

/// A contact we never heard of, by number or else by business-scoped id.
fn new_contact(m: &InboundMessage) -> Option<Contact> {
    let key = m.wa_id.clone().or_else(|| m.user_id.clone())?;
    Some(Contact::new(key, m.wa_id.as_ref().map(|d| format!("+{d}")), m.profile_name.clone()))
}

/// What inbound reads before it plans.
#[derive(Debug, Clone)]
pub struct InboundState {
    /// As stored, or new when the contact was never heard of.
    pub contact: Contact,
    /// `None` for a new contact.
    pub contact_version: Option<u64>,
    /// Their open threads.
    pub threads: Vec<Versioned<Conversation>>,
    /// The open thread the message routes to; `None` opens an unassigned one.
    pub routed: Option<Versioned<Conversation>>,
    /// The message of that thread it replies to.
    pub reply_to: Option<MessageId>,
    /// When it routes to no open thread: the contact's advisor of record, still enabled, whom
    /// a new thread goes to before the unassigned inbox.
    pub advisor: Option<crate::ports::DirectoryUser>,
}

/// One inbound message's plan, and the thread it goes to.
#[derive(Debug)]
pub struct InboundPlan {
    pub plan: Plan,
    pub conversation_id: ConversationId,
}

/// The dedupe mark of an inbound message: the plan's `AlreadyApplied` guard (it is there when
/// the message was applied before).
fn dedupe_mark(wamid: &str, settings: &Settings, now: Time) -> Write {
    put_new(Item::Dedupe { id: format!("msg#{wamid}"), expires_at: now + settings.dedupe_ttl })
}

pub async fn apply_inbound(ports: &Ports, m: &InboundMessage) -> Result<InboundResult> {
    if m.timestamp < ports.clock.now() - ports.settings.dedupe_ttl {
        tracing::warn!(wamid = %m.wamid, timestamp = %m.timestamp, "inbound message older than the dedupe horizon ignored");
        return Ok(InboundResult::TooOld);
    }
    let (intent, _) = intent_of(&m.content);
    let applied = execute(ports, || async move {
        let Some(state) = read_state(ports, m).await? else {
            tracing::warn!(wamid = %m.wamid, "inbound message with neither a number nor a user id");
            return Ok(Decision::Done(None));
        };
        let routed = state.routed.is_some() || state.advisor.is_some();
        let InboundPlan { plan, conversation_id } = plan_inbound(&state, m, &ports.settings, ports.clock.now())?;
        Ok(Decision::Commit(plan, Some((conversation_id, routed))))
    })
    .await;
    match applied {
        Ok(Some((conversation_id, routed))) => {
            tracing::info!(wamid = %m.wamid, %conversation_id, unassigned = !routed, ?intent, "inbound message applied");
            Ok(if routed { InboundResult::Applied } else { InboundResult::Unassigned })
        }
        Ok(None) => Ok(InboundResult::NoThread),
        Err(UseCaseError::Guarded(Guard::AlreadyApplied)) => Ok(InboundResult::Duplicate),
        Err(e) => Err(e),
    }
}

/// The contact who wrote (or a new one), their open threads and the one the message routes
/// to; `None` when the message names nobody.
async fn read_state(ports: &Ports, m: &InboundMessage) -> Result<Option<InboundState>> {
    let (contact, contact_version, threads) = match find_contact(ports, m).await? {
        Some((c, threads)) => (c.item, Some(c.version), threads),
        None => match new_contact(m) {
            Some(c) => (c, None, Vec::new()),
            None => return Ok(None),
        },
    };
    let (_, named) = intent_of(&m.content);
    let (routed, reply_to) = route(ports, &threads, named, m.context_id.as_deref()).await?;
    let advisor = match (&routed, &contact.advisor) {
        (None, Some(user_id)) => match ports.store.get(&Key::profile(user_id)).await?.map(|v| v.item) {
            Some(Item::Profile(p)) if p.whatsapp_enabled => Some(p),
            _ => None,
        },
        _ => None,
    };
    Ok(Some(InboundState { contact, contact_version, threads, routed, reply_to, advisor }))
}

/// What one inbound message changes, from the state read (pure): the dedupe mark (write 0), the
/// contact, the message in its thread (a new unassigned one when it routes nowhere), consent
/// confirmations and notices, and the release of held messages when the contact allows it.
pub fn plan_inbound(state: &InboundState, m: &InboundMessage, settings: &Settings, now: Time) -> Result<InboundPlan> {
    let (intent, _) = intent_of(&m.content);
    let contact = &state.contact;
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
        plan.effects.extend(super::timers::window_timers(settings, &k.key, at));
    }
    if !crate::plant::active(crate::plant::Bug::NoDedupeMark) {
        plan.guard(Guard::AlreadyApplied, dedupe_mark(&m.wamid, settings, now));
    }
    plan.writes.push(put_versioned(Item::Contact(k.clone()), state.contact_version));
    if let (None, Some(user_id)) = (&contact.user_id, &k.user_id) {
        // Learn the business-scoped id, so later messages without a number still find them.
        plan.writes.push(Write::Put {
            item: Item::ContactAlias { user_id: user_id.clone(), contact_key: k.key.clone() },
            cond: Cond::Always,
        });
    }

    let (mut c, conv_version) = match (&state.routed, &state.advisor) {
        (Some(v), _) => (v.item.clone(), Some(v.version)),
        // Their advisor of record takes it, as they would claim it; consent is asked as then.
        (None, Some(a)) => {
            let mut c = Conversation::new(ConversationId::generate(), &k, a.locale.clone(), now);
            c.participants = vec![crate::domain::Participant {
                user_id: a.user_id.clone(),
                name: a.name.clone(),
                locale: a.locale.clone(),
                joined_at: now,
                history_from: None,
            }];
            plan.writes.push(super::new_thread_link(&c));
            plan.writes.push(put_new(Item::Membership { user_id: a.user_id.clone(), conversation_id: c.id.clone() }));
            plan.archive.push(archive::event(
                &c.id,
                ArchiveKind::ConversationStarted,
                Sender::Contact,
                now,
                json!({"contact": k.key, "advisor": a.user_id}),
            ));
            if super::conversations::ask_consent(settings, &mut c, &mut k, &mut plan, now) {
                // The contact's write above must carry the request it now records.
                for w in plan.writes.iter_mut() {
                    if let Write::Put { item: Item::Contact(written), .. } = w {
                        *written = k.clone();
                    }
                }
            }
            (c, None)
        }
        (None, None) => {
            let c = unassigned_thread(&k, now);
            plan.writes.push(super::new_thread_link(&c));
            plan.writes.push(put_new(Item::Unassigned { conversation_id: c.id.clone() }));
            plan.archive.push(archive::event(
                &c.id,
                ArchiveKind::ConversationStarted,
                Sender::Contact,
                now,
                json!({"contact": k.key, "unassigned": true}),
            ));
            (c, None)
        }
    };
    c.last_activity_at = now;
    c.inbound_count += 1;
    let mut msg = stored_message(&c.id, m, now);
    msg.reply_to = state.reply_to.clone().filter(|_| state.routed.is_some());
    let original = all_words(&mut msg.body);
    screen_inbound(settings, &mut msg);
    if !msg.dlp_rules.is_empty() {
        // Employees see the redacted text; the archive keeps the original, its findings
        // fingerprinted.
        let mut e = archive::event(
            &c.id,
            ArchiveKind::Dlp,
            Sender::Contact,
            now,
            json!({"action": "redact_inbound", "rules": msg.dlp_rules}),
        );
        e.message_id = Some(msg.id.clone());
        e.wamid = Some(m.wamid.clone());
        e.text_as_written = Some(archive::original(settings, &original)?);
        e.text_as_sent = Some(all_words(&mut msg.body));
        plan.archive.push(e);
    }
    if let InboundContent::File { kind, media_id, sha256, .. } = &m.content {
        plan.effects.push(Effect::Receipt(ReceiptsJob::FetchMedia(MediaFetch {
            conversation_id: c.id.clone(),
            message_id: msg.id.clone(),
            media_id: new_ulid(),
            meta_id: media_id.clone(),
            sha256: sha256.clone(),
            kind: *kind,
        })));
    }
    plan.writes.push(put_new(Item::Message(msg)));
    let confirmation = match outcome.consent_changed {
        Some(ConsentState::OptedOut) => Some(SystemPurpose::OptOutConfirmation),
        Some(ConsentState::OptedIn) => Some(SystemPurpose::OptinConfirmation),
        _ => None,
    };
    if let Some(purpose) = confirmation {
        let confirm = system_template(&c, purpose, settings, now);
        plan.effects.extend(dispatch_effects([&confirm]));
        plan.writes.push(put_new(Item::Message(confirm)));
    }
    plan.writes.push(put_versioned(Item::Conversation(c.clone()), conv_version));

    tell_threads(&mut plan, state, &c, &k, &outcome, m, now);
    Ok(InboundPlan { plan, conversation_id: c.id })
}

/// Where a consent change came from: a template's button, an opt-out word (STOP, ARRÊT, ...),
/// another word.
fn consent_source(m: &InboundMessage) -> &'static str {
    match &m.content {
        InboundContent::Button { .. } | InboundContent::Reply { .. } => "button",
        InboundContent::Text { body } if text_intent(body) == InboundIntent::Reject => "stop",
        InboundContent::Text { .. } => "keyword",
        _ => "other",
    }
}

/// Consent and the window belong to the contact, so every thread of theirs is told of a
/// change: thread `c` in this commit; the others through the outbox, so that the commit stays
/// small. Held messages go out from all of them once the contact allows it.
fn tell_threads(
    plan: &mut Plan,
    state: &InboundState,
    c: &Conversation,
    k: &Contact,
    outcome: &InboundOutcome,
    m: &InboundMessage,
    now: Time,
) {
    let others: Vec<ConversationId> =
        state.threads.iter().map(|t| t.item.id.clone()).filter(|id| *id != c.id).collect();
    let consent_event = outcome.consent_changed.map(|change| {
        let mut e = archive::consent_event(&c.id, k, change.as_str(), consent_source(m), now);
        e.wamid = Some(m.wamid.clone());
        plan.writes.push(archive::consent_change(k, change.as_str(), consent_source(m), Some(&c.id), now));
        e
    });
    plan.archive.extend(consent_event.clone());
    // An acceptance or a resume says whether the thread's held messages are going out now.
    let notice = |held: bool| match outcome.consent_changed {
        Some(ConsentState::OptedIn) => Some(Notice::to_all(NoticeKind::OptinAccepted { held })),
        Some(ConsentState::OptedOut) => Some(Notice::to_all(NoticeKind::OptinRejected)),
        _ if outcome.reopened && k.consent == ConsentState::OptedIn => {
            Some(Notice::to_all(NoticeKind::Resumed { held }))
        }
        _ => None,
    };
    let held_in = |t: &Conversation| outcome.release_held && t.pending_count > 0;
    if let Some(n) = notice(held_in(c)) {
        plan.writes.push(put_new(Item::Message(notice_message(&c.id, n, now))));
    }
    for held in [false, true] {
        let ids: Vec<ConversationId> = state
            .threads
            .iter()
            .filter(|t| t.item.id != c.id && held_in(&t.item) == held)
            .map(|t| t.item.id.clone())
            .collect();
        if let (false, Some(n)) = (ids.is_empty(), notice(held)) {
            plan.effects.extend(Effect::notices(ids, n, consent_event.clone()));
        }
    }
    if outcome.release_held {
        let mut all = vec![c.id.clone()];
        all.extend(others);
        plan.effects.extend(Effect::releases(all));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: Time = datetime!(2026-09-20 12:00 UTC);
    const NUMBER: &str = "447700900123";

    fn inbound(wamid: &str, content: InboundContent, at: Time) -> InboundMessage {
        InboundMessage {
            wamid: wamid.into(),
            wa_id: Some(NUMBER.into()),
            user_id: None,
            profile_name: Some("Sam".into()),
            timestamp: at,
            context_id: None,
            content,
        }
    }

    fn text(body: &str, at: Time) -> InboundMessage {
        inbound("wamid.1", InboundContent::Text { body: body.into() }, at)
    }

    /// A contact who accepted at T0 (their window open, its timer armed), with `threads` open
    /// threads; the message routes to the first.
    fn state(threads: usize) -> InboundState {
        let mut contact = Contact::new(NUMBER.into(), Some(format!("+{NUMBER}")), Some("Sam".into()));
        contact.inbound(InboundIntent::Accept, T0, T0);
        contact.window_timer_at = contact.window_open_until;
        let threads: Vec<_> = (0..threads)
            .map(|i| Versioned {
                item: Conversation::new(format!("c{i}").into(), &contact, "en".into(), T0),
                version: 3,
            })
            .collect();
        InboundState {
            contact,
            contact_version: Some(7),
            routed: threads.first().cloned(),
            threads,
            reply_to: None,
            advisor: None,
        }
    }

    fn plan(state: &InboundState, m: &InboundMessage, now: Time) -> InboundPlan {
        plan_inbound(state, m, &Settings::default(), now).unwrap()
    }

    fn put<'a>(p: &'a Plan, pick: impl Fn(&'a Item) -> bool) -> Vec<(&'a Item, &'a Cond)> {
        p.writes
            .iter()
            .filter_map(|w| match w {
                Write::Put { item, cond } if pick(item) => Some((item, cond)),
                _ => None,
            })
            .collect()
    }

    fn messages(p: &Plan) -> Vec<&Message> {
        put(p, |i| matches!(i, Item::Message(_)))
            .into_iter()
            .filter_map(|(i, _)| match i {
                Item::Message(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    fn contact(p: &Plan) -> (&Contact, &Cond) {
        match put(p, |i| matches!(i, Item::Contact(_)))[..] {
            [(Item::Contact(k), cond)] => (k, cond),
            _ => panic!("one contact write expected: {:?}", p.writes),
        }
    }

    fn thread(p: &Plan) -> (&Conversation, &Cond) {
        match put(p, |i| matches!(i, Item::Conversation(_)))[..] {
            [(Item::Conversation(c), cond)] => (c, cond),
            _ => panic!("one thread write expected: {:?}", p.writes),
        }
    }

    #[test]
    fn a_text_into_an_open_thread_writes_its_mark_first_then_the_contact_the_message_and_the_thread() {
        let now = T0 + time::Duration::minutes(5);
        let p = plan(&state(1), &text("Is my order ready?", now), now);
        assert_eq!(p.conversation_id, "c0");
        // A conflict on write 0 is read as "applied before": it must be the mark.
        assert!(
            matches!(&p.plan.writes[0], Write::Put { item: Item::Dedupe { id, .. }, cond: Cond::NotExists } if id == "msg#wamid.1")
        );
        assert_eq!(p.plan.writes.len(), 4, "{:?}", p.plan.writes);
        let (k, cond) = contact(&p.plan);
        assert_eq!(*cond, Cond::Version(7));
        assert_eq!(k.window_open_until, Some(now + time::Duration::hours(24)));
        let (c, cond) = thread(&p.plan);
        assert_eq!(*cond, Cond::Version(3));
        assert_eq!((c.inbound_count, c.last_activity_at), (1, now));
        let [m] = messages(&p.plan)[..] else { panic!() };
        assert_eq!(
            (m.direction, m.body.words(), m.wamid.as_deref()),
            (Direction::Inbound, Some("Is my order ready?"), Some("wamid.1"))
        );
        assert_eq!(m.conversation_id, "c0");
        // The armed timer is not moved by every message, nothing is held, nobody is told.
        assert!(p.plan.effects.is_empty(), "{:?}", p.plan.effects);
        assert!(p.plan.archive.is_empty(), "the message's own record is added by the commit");
    }

    #[test]
    fn a_stranger_lands_in_a_new_unassigned_thread() {
        let m = text("Hello, I want to open an account", T0);
        let stranger = InboundState {
            contact: new_contact(&m).unwrap(),
            contact_version: None,
            threads: Vec::new(),
            routed: None,
            reply_to: None,
            advisor: None,
        };
        let p = plan(&stranger, &m, T0);
        let (k, cond) = contact(&p.plan);
        assert_eq!((k.key.as_str(), k.phone.as_deref(), cond), (NUMBER, Some("+447700900123"), &Cond::NotExists));
        let (c, cond) = thread(&p.plan);
        assert_eq!((c.id.as_str(), c.unassigned, cond), (p.conversation_id.as_str(), true, &Cond::NotExists));
        assert_eq!(put(&p.plan, |i| matches!(i, Item::ContactThread { .. } | Item::Unassigned { .. })).len(), 2);
        assert_eq!(p.plan.archive.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["conversation_started"]);
        // First word from them: the window opens, and its timers are armed.
        assert!(p
            .plan
            .effects
            .iter()
            .any(|e| matches!(e, Effect::Timer { timer: crate::ports::Timer::WindowExpiry { .. }, .. })));
    }

    #[test]
    fn stop_opts_out_confirms_to_the_contact_and_tells_every_thread() {
        let p = plan(&state(2), &text("STOP", T0), T0);
        assert_eq!(contact(&p.plan).0.consent, ConsentState::OptedOut);
        let written = messages(&p.plan);
        let confirmation =
            written.iter().find(|m| m.system == Some(SystemPurpose::OptOutConfirmation)).expect("confirmation");
        assert!(p.plan.effects.iter().any(|e| matches!(e, Effect::Outbound(j) if j.message_id == confirmation.id)));
        assert!(written
            .iter()
            .any(|m| m.body.notice().is_some_and(|n| n.code() == crate::domain::NoticeCode::OptinRejected)));
        // The other thread hears of it through the outbox, with the consent record.
        assert!(p.plan.effects.iter().any(|e| matches!(e,
            Effect::Notice { conversation_ids, archive: Some(a), .. } if conversation_ids == &["c1"] && a.kind == ArchiveKind::Consent)));
        assert_eq!(p.plan.archive.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["consent"]);
        assert!(!p.plan.effects.iter().any(|e| matches!(e, Effect::ReleaseHeld { .. })));
    }

    #[test]
    fn coming_back_to_a_paused_window_resumes_and_releases_every_thread() {
        let mut s = state(2);
        let closed = T0 + time::Duration::hours(30);
        assert_eq!(
            s.contact.window_timer_fired(T0 + time::Duration::hours(24)),
            crate::domain::contact::WindowTimer::Paused
        );
        s.threads[0].item.pending_count = 2;
        s.routed = s.threads.first().cloned();
        let p = plan(&s, &text("Sorry, I was away", closed), closed);
        let (k, _) = contact(&p.plan);
        assert!(!k.paused && k.window_open(closed));
        assert!(messages(&p.plan)
            .iter()
            .any(|m| m.body.notice().is_some_and(|n| n.code() == crate::domain::NoticeCode::Resumed)));
        assert!(p
            .plan
            .effects
            .iter()
            .filter(|e| matches!(e, Effect::ReleaseHeld { .. }))
            .map(|e| match e {
                Effect::ReleaseHeld { conversation_ids } => conversation_ids.clone(),
                _ => unreachable!(),
            })
            .eq([vec!["c0".into()], vec!["c1".into()]] as [Vec<ConversationId>; 2]));
        assert!(p
            .plan
            .effects
            .iter()
            .any(|e| matches!(e, Effect::Timer { at, .. } if *at == closed + time::Duration::hours(24))));
    }

    #[test]
    fn inbound_dlp_redacts_what_employees_see_and_archives_the_original_fingerprinted() {
        let policy =
            r#"{"inbound": true, "rules": [{"name": "project", "pattern": "PRJ-[0-9]{4}", "action": "redact"}]}"#;
        let settings = Settings {
            dlp: std::sync::Arc::new(crate::dlp::Policy::from_json(policy).unwrap()),
            ..Settings::default()
        };
        let written = "about PRJ-1234 please";
        let p = plan_inbound(&state(1), &text(written, T0), &settings, T0).unwrap();
        let [m] = messages(&p.plan)[..] else { panic!() };
        assert_eq!(m.dlp_rules, ["project"]);
        assert!(!m.body.words().unwrap().contains("PRJ-1234"), "{:?}", m.body);
        let [e] = &p.plan.archive[..] else { panic!("{:?}", p.plan.archive) };
        assert_eq!(
            (e.kind.as_str(), e.message_id.as_ref(), e.text_as_sent.as_ref()),
            ("dlp", Some(&m.id), m.body.words().map(str::to_string).as_ref())
        );
        let kept = e.text_as_written.as_deref().unwrap();
        assert!(!kept.contains("PRJ-1234") && kept != m.body.words().unwrap(), "{kept}");

        // Without the fingerprint key the finding cannot be archived: nothing is planned.
        let keyless = Settings { archive_key: None, ..settings };
        assert!(plan_inbound(&state(1), &text(written, T0), &keyless, T0).is_err());
    }

    #[test]
    fn every_file_is_fetched_from_meta_after_the_commit_with_what_meta_said_of_it() {
        use crate::domain::message::FileKind;
        for kind in FileKind::ALL {
            let file = InboundContent::File {
                kind,
                media_id: "meta-media-1".into(),
                mime_type: Some("application/pdf".into()),
                sha256: Some("c2hh".into()),
                caption: Some("the receipt".into()),
                filename: Some("receipt.pdf".into()),
                voice: kind == FileKind::Audio,
                url: None,
            };
            let p = plan(&state(1), &inbound("wamid.2", file, T0), T0);
            let [m] = messages(&p.plan)[..] else { panic!() };
            assert_eq!(m.body.words(), Some("the receipt"));
            let (got, facts) = m.body.file().unwrap();
            assert_eq!(got, kind);
            assert_eq!(
                (facts.filename.as_deref(), facts.sha256.as_deref(), facts.voice),
                (Some("receipt.pdf"), Some("c2hh"), kind == FileKind::Audio)
            );
            assert!(p.plan.effects.iter().any(|e| matches!(e,
                Effect::Receipt(ReceiptsJob::FetchMedia(f)) if f.meta_id == "meta-media-1" && f.message_id == m.id
                    && f.conversation_id == "c0" && f.kind == kind)));
        }
    }

    #[test]
    fn a_reply_to_our_message_names_it_and_inbound_dlp_reaches_every_word() {
        let mut st = state(1);
        st.reply_to = Some("m-ours".into());
        let mut m = inbound(
            "wamid.3",
            InboundContent::Location(crate::domain::message::Location {
                latitude: serde_json::Number::from_f64(51.5).unwrap(),
                longitude: serde_json::Number::from_f64(-0.14).unwrap(),
                name: Some("Card 4111 1111 1111 1111".into()),
                address: Some("ssn 123-45-6789".into()),
            }),
            T0,
        );
        m.context_id = Some("wamid.ours".into());
        let settings = Settings {
            dlp: std::sync::Arc::new(crate::dlp::Policy::from_json(r#"{"inbound": true}"#).unwrap()),
            ..Settings::default()
        };
        let p = plan_inbound(&st, &m, &settings, T0).unwrap();
        let [msg] = messages(&p.plan)[..] else { panic!() };
        assert_eq!(msg.reply_to.as_ref().map(|r| r.as_str()), Some("m-ours"));
        let l = msg.body.location().unwrap();
        assert_eq!(
            (l.name.as_deref(), l.address.as_deref()),
            (Some("Card [REDACTED:card]"), Some("ssn [REDACTED:ssn]"))
        );
        assert_eq!(msg.dlp_rules, ["card", "ssn"]);
        let dlp = p.plan.archive.iter().find(|e| e.kind == ArchiveKind::Dlp).unwrap();
        assert!(dlp.text_as_written.as_deref().is_some_and(|t| t.contains("…1111") && !t.contains("4111")));
    }
}
