//! `POST /conversations/{id}/messages`: compose, then hold or queue by the contact's consent and
//! window, asking once per pause for the conversation to resume.

use crate::archive::ArchiveKind;
use serde_json::json;

use crate::dlp::{Policy, Verdict};
use crate::domain::contact::SendGate;
use crate::domain::message::{FileFacts, FileKind, Location, SystemPurpose, TemplateSpec};
use crate::domain::notice::{Notice, NoticeKind};
use crate::domain::{Body, Contact, Conversation, Direction, DomainError, Message, MessageKind, MessageStatus, Sender};
use crate::ports::{Cond, Effect, Item, Key, StoreError, Timer, Versioned, Write};
use time::OffsetDateTime as Time;

use super::archive;
use super::commit::{execute, Decision, Plan};
use super::media;
use super::views::MessageView;
use super::{
    dispatch_effects, load, load_contact, notice_message, participant_conversation, put_new, put_versioned,
    system_template, Caller, Ports, Result, Settings, UseCaseError,
};
use crate::domain::ids::{ConversationId, MessageId};
use crate::domain::media::MAX_CAPTION_CHARS;
use crate::ports::MediaRecord;

/// Longest text Meta accepts, counted in characters.
pub const MAX_TEXT_CHARS: usize = 4096;
/// Bounds of a template send, within Meta's own (a body of 1,024 characters, names of 512).
pub const MAX_TEMPLATE_NAME: usize = 512;
pub const MAX_TEMPLATE_PARAMS: usize = 20;
pub const MAX_TEMPLATE_PARAM_CHARS: usize = 1024;

#[derive(Debug, Clone)]
pub enum Content {
    Text(String),
    Template(TemplateSpec),
    /// A file the caller uploaded, or one already in the thread, sent as `kind`: a picture,
    /// a document (any file; its name and a caption), an audio, a video or a sticker.
    File {
        kind: FileKind,
        media_id: String,
        caption: Option<String>,
        filename: Option<String>,
    },
    Location(Location),
}

#[derive(Debug, Clone)]
pub struct SendCommand {
    pub content: Content,
    pub client_id: Option<String>,
    /// A message of the thread this one answers: the contact sees it quoted.
    pub reply_to: Option<MessageId>,
}

/// A send's content once DLP has screened it, with what its author wrote (for the archive).
#[derive(Debug, Clone)]
pub struct Screened {
    pub content: Content,
    /// The redaction rules that applied (a blocked send never gets here).
    pub dlp_rules: Vec<String>,
    pub written: String,
    pub client_id: Option<String>,
    pub reply_to: Option<MessageId>,
}

/// What a send reads before it plans.
#[derive(Debug, Clone)]
pub struct SendState {
    pub conv: Versioned<Conversation>,
    pub contact: Versioned<Contact>,
    /// The file a file send names, if it exists.
    pub media: Option<Versioned<MediaRecord>>,
    /// The message a reply answers, if it is one of the thread's.
    pub quoted: Option<Message>,
}

/// One send's plan and its message, as committed.
#[derive(Debug)]
pub struct SendPlan {
    pub plan: Plan,
    pub msg: Message,
    pub held: bool,
}

pub async fn send(
    ports: &Ports,
    caller: &Caller,
    conversation_id: &ConversationId,
    cmd: SendCommand,
) -> Result<MessageView> {
    validate(&cmd.content)?;
    // The participant check comes first: only a participant's attempt is archived. What it
    // read serves the first attempt; a retry reads again.
    let mut first_read = Some(participant_conversation(&*ports.store, caller, conversation_id).await?);
    if let Content::Template(t) = &cmd.content {
        super::templates::check(ports, t).await?;
    }
    let written = written_text(&cmd.content);
    let (content, dlp_rules) = match screen(&ports.settings.dlp, cmd.content) {
        Err(UseCaseError::Domain(DomainError::DlpBlocked(rules))) => {
            let mut e = archive::event(
                conversation_id,
                ArchiveKind::Dlp,
                caller.sender(),
                ports.clock.now(),
                json!({"action": "block", "rules": rules}),
            );
            e.text_as_written = Some(archive::original(&ports.settings, &written)?);
            archive_only(ports, e).await?;
            return Err(DomainError::DlpBlocked(rules).into());
        }
        other => other?,
    };
    let screened = &Screened { content, dlp_rules, written, client_id: cmd.client_id, reply_to: cmd.reply_to };
    let sent = execute(ports, || {
        let first_read = first_read.take();
        async move {
            let conv = match first_read {
                Some(conv) => conv,
                None => participant_conversation(&*ports.store, caller, conversation_id).await?,
            };
            if let Some(client_id) =
                screened.client_id.as_ref().filter(|_| !crate::plant::active(crate::plant::Bug::ClientIdIgnored))
            {
                if let Some(existing) = replay(ports, caller, conversation_id, client_id).await? {
                    return Ok(Decision::Done(Sent::Replayed(existing)));
                }
            }
            let contact = load_contact(&*ports.store, &conv.item.contact_key).await?;
            let media = match &screened.content {
                Content::File { media_id, .. } => load::<MediaRecord>(&*ports.store, &Key::media(media_id)).await?,
                _ => None,
            };
            let quoted = match &screened.reply_to {
                Some(id) => load::<Message>(&*ports.store, &Key::message(conversation_id, id)).await?.map(|v| v.item),
                None => None,
            };
            let state = SendState { conv, contact, media, quoted };
            // Planned after the versioned reads: the message's id sorts in commit order.
            let SendPlan { plan, msg, held } = plan_send(&state, caller, screened, &ports.settings, ports.clock.now())?;
            let releases = plan.effects.iter().any(|e| matches!(e, Effect::ReleaseHeld { .. }));
            Ok(Decision::Commit(plan, Sent::New { msg, held, releases }))
        }
    })
    .await?;
    let (msg, held, releases) = match sent {
        Sent::Replayed(view) => return Ok(view),
        Sent::New { msg, held, releases } => (msg, held, releases),
    };
    tracing::info!(conversation_id = %msg.conversation_id, message_id = %msg.id, held, "message accepted");
    // The release the commit's effects ran may have moved this message on already.
    let msg = match releases {
        true => {
            load::<Message>(&*ports.store, &Key::message(&msg.conversation_id, &msg.id)).await?.map_or(msg, |v| v.item)
        }
        false => msg,
    };
    Ok(MessageView::new(&msg, &caller.locale))
}

/// What one send came to: a new message, or the one an earlier call with its `client_id` made.
// One per send, moved once: boxing either would only allocate.
#[allow(clippy::large_enum_variant)]
enum Sent {
    Replayed(MessageView),
    New { msg: Message, held: bool, releases: bool },
}

/// Longest file name sent with a document, in characters.
pub const MAX_FILENAME_CHARS: usize = 240;

/// What the API refuses before anything is read: empty or over-long text, over-long templates,
/// a location off the globe, a caption or file name where the kind takes none.
fn validate(content: &Content) -> Result<()> {
    let invalid = |m: &str| -> Result<()> { Err(DomainError::Invalid(m.into()).into()) };
    match content {
        Content::Location(l) => {
            let (lat, lon) = (l.latitude.as_f64().unwrap_or(f64::NAN), l.longitude.as_f64().unwrap_or(f64::NAN));
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                return invalid("a location needs a latitude of -90 to 90 and a longitude of -180 to 180");
            }
            if [&l.name, &l.address].iter().any(|w| w.as_ref().is_some_and(|w| w.chars().count() > MAX_CAPTION_CHARS)) {
                return invalid("a location's name or address is too long");
            }
        }
        Content::File { kind: FileKind::Audio | FileKind::Sticker, caption: Some(_), .. } => {
            return invalid("an audio or a sticker takes no caption");
        }
        Content::File { kind, filename: Some(name), .. } => {
            if *kind != FileKind::Document {
                return invalid("only a document takes a filename");
            }
            if name.trim().is_empty() || name.chars().count() > MAX_FILENAME_CHARS || name.contains(['/', '\\']) {
                return invalid("a filename is 1 to 240 characters, without / or \\");
            }
        }
        _ => {}
    }
    if let Content::Text(t) = content {
        if t.trim().is_empty() {
            return Err(DomainError::Invalid("text must not be empty".into()).into());
        }
        if t.chars().count() > MAX_TEXT_CHARS {
            return Err(DomainError::Invalid(format!("text is longer than {MAX_TEXT_CHARS} characters")).into());
        }
    }
    if let Content::Template(t) = content {
        let long = |s: &str, max: usize| s.chars().count() > max;
        if long(&t.name, MAX_TEMPLATE_NAME) || long(&t.language, 16) {
            return Err(DomainError::Invalid("the template's name or language is too long".into()).into());
        }
        if t.params.len() > MAX_TEMPLATE_PARAMS || t.params.iter().any(|p| long(p, MAX_TEMPLATE_PARAM_CHARS)) {
            return Err(DomainError::Invalid(format!(
                "a template takes at most {MAX_TEMPLATE_PARAMS} parameters of {MAX_TEMPLATE_PARAM_CHARS} characters"
            ))
            .into());
        }
    }
    Ok(())
}

/// What one send changes, from the state read (pure): the message, held (for consent or the
/// window, or behind held text) or queued; a resume request once per pause; the thread's
/// counters; a check of the contact's version that the decision rests on; the DLP notice and
/// record; the held message's expiry timer.
pub fn plan_send(
    state: &SendState,
    caller: &Caller,
    screened: &Screened,
    settings: &Settings,
    now: Time,
) -> Result<SendPlan> {
    let Screened { content, dlp_rules, written, client_id, reply_to } = screened;
    let (conv, contact) = (&state.conv, &state.contact);
    conv.item.check_writable()?;
    let (mut c, mut k) = (conv.item.clone(), contact.item.clone());
    let (mut msg, media_write) = compose(&c, caller, content, state.media.as_ref(), now)?;
    msg.client_id = client_id.clone();
    if reply_to.is_some() {
        // Only a message the caller may see, of this thread, that is not a notice.
        let quoted = state
            .quoted
            .as_ref()
            .filter(|q| {
                q.direction != Direction::Notice && c.participant(&caller.user_id).is_none_or(|p| p.may_see(&q.id))
            })
            .ok_or_else(|| DomainError::Invalid("reply_to is not a message of this thread".into()))?;
        msg.reply_to = Some(quoted.id.clone());
        msg.context_wamid = quoted.wamid.clone();
    }

    let mut extra = Vec::new();
    let mut to_queue = Vec::new();
    msg.dlp_rules = dlp_rules.clone();
    let gate = k.gate_send(msg.body.kind() == MessageKind::Template, now);
    let hold = match gate.clone() {
        SendGate::Refuse(e) => return Err(e.into()),
        // Held text goes first: new text waits behind it. A template need not wait.
        SendGate::Deliver => {
            msg.body.kind() != MessageKind::Template
                && c.pending_count > 0
                && !crate::plant::active(crate::plant::Bug::NewTextOvertakesHeld)
        }
        SendGate::HoldForConsent => true,
        SendGate::HoldForWindow { request_resume } => {
            if request_resume {
                let resume = system_template(&c, SystemPurpose::ResumeRequest, settings, now);
                extra.push(put_new(Item::Message(notice_message(
                    &c.id,
                    Notice::to_all(NoticeKind::ResumeRequested),
                    now,
                ))));
                to_queue.push(resume);
            }
            true
        }
    };
    if hold {
        if c.pending_count >= settings.max_held {
            return Err(DomainError::QueueFull(settings.max_held).into());
        }
        msg.status = MessageStatus::Pending;
        c.pending_count += 1;
        extra.push(put_new(Item::Held { conversation_id: c.id.clone(), message_id: msg.id.clone() }));
    } else {
        to_queue.insert(0, msg.clone());
    }
    if !dlp_rules.is_empty() {
        let n = Notice::to(&caller.user_id, NoticeKind::DlpRedacted { message_id: msg.id.clone() });
        extra.push(put_new(Item::Message(notice_message(&c.id, n, now))));
    }
    c.last_activity_at = now;
    c.last_outbound_at = Some(now);
    // The advisor of record: written only when another employee wrote last.
    k.advisor = Some(caller.user_id.clone());

    let mut writes =
        vec![put_versioned(Item::Conversation(c.clone()), Some(conv.version)), put_new(Item::Message(msg.clone()))];
    if k != contact.item {
        writes.push(put_versioned(Item::Contact(k.clone()), Some(contact.version)));
    } else if hold {
        // Held on the contact's consent and window as read: a change to them in the meantime
        // (an opt-in, a reply that opens the window, whose release may already have run) means
        // deciding again. A text queued needs no such check: dispatch decides again at the
        // claim (a STOP fails it, a closed window holds it).
        writes.push(Write::Check { key: Key::contact(&k.key), cond: Cond::Version(contact.version) });
    }
    if let Some(client_id) = client_id.as_ref().filter(|_| !crate::plant::active(crate::plant::Bug::ClientIdIgnored)) {
        writes.push(put_new(Item::ClientId {
            conversation_id: c.id.clone(),
            user_id: caller.user_id.clone(),
            client_id: client_id.clone(),
            message_id: msg.id.clone(),
        }));
    }
    writes.extend(to_queue.iter().filter(|m| m.id != msg.id).map(|m| put_new(Item::Message(m.clone()))));
    writes.extend(extra);
    writes.extend(media_write);
    let mut plan = Plan { effects: dispatch_effects(&to_queue), writes, ..Plan::default() };
    if hold {
        let timer = Timer::HeldExpiry { conversation_id: c.id.clone(), message_id: msg.id.clone() };
        plan.effects.push(Effect::Timer { timer, at: now + settings.held_ttl });
    }
    if !dlp_rules.is_empty() {
        let mut e = archive::event(
            &c.id,
            ArchiveKind::Dlp,
            caller.sender(),
            now,
            json!({"action": "redact", "rules": dlp_rules}),
        );
        e.message_id = Some(msg.id.clone());
        e.text_as_written = Some(archive::original(settings, written)?);
        e.text_as_sent = Some(written_text(content));
        plan.archive.push(e);
    }
    if hold && gate == SendGate::Deliver {
        // Held behind earlier messages while the contact allows sending: release them all.
        plan.effects.push(Effect::ReleaseHeld { conversation_ids: vec![c.id.clone()] });
    }
    Ok(SendPlan { plan, msg, held: hold })
}

/// The new message from what the caller sends (text and caption under the speaker's prefix in
/// a group), and, for a picture, the media record shared with this thread.
fn compose(
    c: &Conversation,
    caller: &Caller,
    content: &Content,
    media: Option<&Versioned<MediaRecord>>,
    now: Time,
) -> Result<(Message, Option<Write>)> {
    let id = MessageId::generate();
    let mut media_write = None;
    let speaker = c.participant(&caller.user_id).map_or(caller.name.as_str(), |p| p.name.as_str());
    let body = match content {
        Content::Text(t) => {
            let prefix = c.speaker_prefix(speaker);
            fits(prefix.as_deref(), t, "text", MAX_TEXT_CHARS)?;
            Body::Text { text: t.clone(), prefix }
        }
        Content::Template(t) => Body::Template(t.clone()),
        Content::Location(l) => Body::Location(l.clone()),
        Content::File { kind, media_id, caption, filename } => {
            let media = media.ok_or(UseCaseError::NotFound)?;
            media::sendable(&media.item, caller, &c.id)?;
            let (is, _) = crate::domain::media::accepted(&media.item.mime_type)
                .ok_or_else(|| DomainError::UnsupportedMedia(format!("{} cannot be sent", media.item.mime_type)))?;
            // Any file goes as a document; otherwise the file must be of the kind it is sent as.
            if *kind != FileKind::Document && is != *kind {
                return Err(DomainError::UnsupportedMedia(format!(
                    "a {} file cannot be sent as {}",
                    media.item.mime_type,
                    kind.as_str()
                ))
                .into());
            }
            let prefix = caption.as_ref().and_then(|_| c.speaker_prefix(speaker));
            if let Some(caption) = caption {
                fits(prefix.as_deref(), caption, "caption", MAX_CAPTION_CHARS)?;
            }
            // Once sent, the thread's participants who may see this message may fetch it.
            let mut shared_with = media.item.clone();
            if !shared_with.conversations.contains(&c.id) {
                shared_with.conversations.push(c.id.clone());
            }
            shared_with.latest_message.insert(c.id.clone(), id.clone());
            media_write = Some(put_versioned(Item::Media(shared_with), Some(media.version)));
            let facts = FileFacts {
                mime_type: Some(media.item.mime_type.clone()),
                size: Some(media.item.size),
                sha256: Some(media.item.sha256.clone()),
                filename: filename.clone(),
                voice: false,
            };
            Body::File { kind: *kind, media_id: Some(media_id.clone()), caption: caption.clone(), prefix, facts }
        }
    };
    let msg = Message::outbound(id, c.id.clone(), Sender::User(caller.user_id.clone()), body, now);
    Ok((msg, media_write))
}

/// Refuses a text or caption that, with the sender's name before it, is over `max` characters.
fn fits(prefix: Option<&str>, text: &str, what: &str, max: usize) -> Result<()> {
    if prefix.map_or(0, |p| p.chars().count()) + text.chars().count() > max {
        return Err(
            DomainError::Invalid(format!("{what} and the sender's name are longer than {max} characters")).into()
        );
    }
    Ok(())
}

/// `DELETE /conversations/{id}/messages/{message_id}`: its sender takes back a message still
/// held or queued (not yet claimed for the Graph API); it stays in the history as `recalled`.
pub async fn recall(
    ports: &Ports,
    caller: &Caller,
    conversation_id: &ConversationId,
    message_id: &MessageId,
) -> Result<MessageView> {
    let view = execute(ports, || async move {
        let now = ports.clock.now();
        let conv = participant_conversation(&*ports.store, caller, conversation_id).await?;
        let key = Key::message(conversation_id, message_id);
        let m = load::<Message>(&*ports.store, &key).await?.ok_or(UseCaseError::NotFound)?;
        if !m.item.sender.is_user(&caller.user_id) || m.item.direction != crate::domain::Direction::Outbound {
            return Err(UseCaseError::Forbidden("only its sender can recall a message"));
        }
        let was = m.item.status;
        match was {
            MessageStatus::Recalled => return Ok(Decision::Done(MessageView::new(&m.item, &caller.locale))),
            MessageStatus::Pending | MessageStatus::Queued => {}
            _ => return Err(DomainError::AlreadySent.into()),
        }
        let mut next = m.item.clone();
        next.status = MessageStatus::Recalled;
        next.status_at.recalled = Some(now);
        let mut writes = vec![put_versioned(Item::Message(next.clone()), Some(m.version))];
        if was == MessageStatus::Queued {
            writes.push(Write::Delete { key: Key::queued(conversation_id, message_id), cond: Cond::Always });
        }
        if was == MessageStatus::Pending {
            let mut c = conv.item.clone();
            c.pending_count = c.pending_count.saturating_sub(1);
            writes.push(put_versioned(Item::Conversation(c), Some(conv.version)));
            writes.push(Write::Delete { key: Key::held(conversation_id, message_id), cond: Cond::Always });
        }
        let mut e =
            archive::event(conversation_id, ArchiveKind::Recalled, caller.sender(), now, json!({"was": was.public()}));
        e.message_id = Some(message_id.clone());
        Ok(Decision::Commit(
            Plan { writes, archive: vec![e], ..Plan::default() },
            MessageView::new(&next, &caller.locale),
        ))
    })
    .await?;
    tracing::info!(%conversation_id, %message_id, "message recalled");
    Ok(view)
}

/// Records an attempt that changed nothing else (a blocked send) in the thread's archive.
async fn archive_only(ports: &Ports, event: crate::archive::ArchiveEvent) -> Result<()> {
    let event = &event;
    execute(ports, || async move { Ok(Decision::Commit(Plan { archive: vec![event.clone()], ..Plan::default() }, ())) })
        .await
}

/// The message an earlier call with this `client_id` created, queued again if it never left.
async fn replay(
    ports: &Ports,
    caller: &Caller,
    conversation_id: &ConversationId,
    client_id: &str,
) -> Result<Option<MessageView>> {
    let Some(link) = ports.store.get(&Key::client_id(conversation_id, &caller.user_id, client_id)).await? else {
        return Ok(None);
    };
    let Item::ClientId { message_id, .. } = link.item else {
        return Err(StoreError::Corrupt("client id item of another kind".into()).into());
    };
    let Some(m) = load::<Message>(&*ports.store, &Key::message(conversation_id, &message_id)).await? else {
        return Err(StoreError::Corrupt(format!("client id points at missing message {message_id}").into()).into());
    };
    Ok(Some(MessageView::new(&m.item, &caller.locale)))
}

/// Runs the data-loss prevention rules over what leaves: blocked, or redacted before storage.
fn screen(policy: &Policy, content: Content) -> Result<(Content, Vec<String>)> {
    let mut rules = Vec::new();
    let mut check = |text: String| -> Result<String> {
        match policy.apply(&text) {
            Verdict::Clean => Ok(text),
            Verdict::Blocked { rules } => Err(DomainError::DlpBlocked(rules).into()),
            Verdict::Redacted { text, rules: r } => {
                rules.extend(r);
                Ok(text)
            }
        }
    };
    let content = match content {
        Content::Text(t) => Content::Text(check(t)?),
        Content::Template(mut t) => {
            t.params = t.params.into_iter().map(&mut check).collect::<Result<_>>()?;
            Content::Template(t)
        }
        Content::File { kind, media_id, caption, filename } => Content::File {
            kind,
            media_id,
            caption: caption.map(&mut check).transpose()?,
            filename: filename.map(&mut check).transpose()?,
        },
        Content::Location(mut l) => {
            l.name = l.name.map(&mut check).transpose()?;
            l.address = l.address.map(&mut check).transpose()?;
            Content::Location(l)
        }
    };
    rules.sort();
    rules.dedup();
    Ok((content, rules))
}

/// The text of a message as its author wrote it, for the archive.
fn written_text(content: &Content) -> String {
    match content {
        Content::Text(t) => t.clone(),
        Content::Template(t) => format!("[template {} ({})] {}", t.name, t.language, t.params.join(" | ")),
        Content::File { kind, media_id, caption, filename } => format!(
            "[{} {media_id} {}] {}",
            kind.as_str(),
            filename.as_deref().unwrap_or(""),
            caption.as_deref().unwrap_or("")
        ),
        Content::Location(l) => l.line(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::contact::InboundIntent;
    use time::macros::datetime;

    const T0: Time = datetime!(2026-09-20 12:00 UTC);

    fn caller() -> Caller {
        Caller::new("u1", "Alex", "retail", "eu")
    }

    /// A thread with a contact who accepted at T0 (their window open for 24 hours).
    fn state() -> SendState {
        let mut contact = Contact::new("447700900123".into(), Some("+447700900123".into()), None);
        contact.inbound(InboundIntent::Accept, T0, T0);
        // The caller wrote to them before: the advisor of record already.
        contact.advisor = Some(caller().user_id);
        let conv = Conversation::new("c".into(), &contact, "en".into(), T0);
        SendState {
            conv: Versioned { item: conv, version: 4 },
            contact: Versioned { item: contact, version: 9 },
            media: None,
            quoted: None,
        }
    }

    fn text(t: &str) -> Screened {
        Screened {
            content: Content::Text(t.into()),
            dlp_rules: vec![],
            written: t.into(),
            client_id: None,
            reply_to: None,
        }
    }

    fn plan(state: &SendState, screened: &Screened, now: Time) -> SendPlan {
        plan_send(state, &caller(), screened, &Settings::default(), now).unwrap()
    }

    fn queued(p: &Plan) -> Vec<&str> {
        p.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Outbound(job) => Some(job.message_id.as_str()),
                _ => None,
            })
            .collect()
    }

    fn written(p: &Plan) -> Vec<&Item> {
        p.writes
            .iter()
            .filter_map(|w| match w {
                Write::Put { item, .. } => Some(item),
                _ => None,
            })
            .collect()
    }

    fn thread(p: &Plan) -> &Conversation {
        written(p)
            .into_iter()
            .find_map(|i| match i {
                Item::Conversation(c) => Some(c),
                _ => None,
            })
            .expect("the thread is written")
    }

    fn holds(p: &Plan) -> bool {
        written(p).iter().any(|i| matches!(i, Item::Held { .. }))
    }

    #[test]
    fn inside_the_window_a_text_is_queued_on_the_contacts_version_as_read() {
        let now = T0 + time::Duration::hours(1);
        let p = plan(&state(), &text("Your order is ready"), now);
        assert!(!p.held);
        assert_eq!((p.msg.status, p.msg.body.words()), (MessageStatus::Queued, Some("Your order is ready")));
        assert_eq!(queued(&p.plan), [p.msg.id.as_str()]);
        assert!(!holds(&p.plan));
        assert_eq!(p.plan.writes[0], put_versioned(Item::Conversation(thread(&p.plan).clone()), Some(4)));
        assert_eq!((thread(&p.plan).last_outbound_at, thread(&p.plan).pending_count), (Some(now), 0));
        // Queued: dispatch checks consent and the window again at the claim, so the contact
        // is neither written nor checked.
        assert!(!p.plan.writes.iter().any(|w| w.key() == Key::contact("447700900123")));
    }

    #[test]
    fn another_employees_text_makes_them_the_advisor_of_record_on_the_contacts_version() {
        let mut st = state();
        st.contact.item.advisor = Some("someone-else".into());
        let p = plan(&st, &text("I am taking over"), T0 + time::Duration::hours(1));
        let written = p.plan.writes.iter().find_map(|w| match w {
            Write::Put { item: Item::Contact(k), cond } => Some((k.advisor.clone(), *cond)),
            _ => None,
        });
        assert_eq!(written, Some((Some(caller().user_id), Cond::Version(9))));
    }

    #[test]
    fn before_consent_a_text_is_held_with_its_expiry() {
        let mut s = state();
        s.contact.item = Contact::new("447700900123".into(), None, None);
        s.contact.item.optin_requested(T0);
        let p = plan(&s, &text("Hello"), T0);
        assert!(p.held);
        assert_eq!(p.msg.status, MessageStatus::Pending);
        assert!(queued(&p.plan).is_empty());
        assert!(holds(&p.plan));
        assert_eq!(thread(&p.plan).pending_count, 1);
        let expiry = Settings::default().held_ttl;
        assert!(p.plan.effects.iter().any(|e| matches!(e,
            Effect::Timer { timer: Timer::HeldExpiry { message_id, .. }, at } if *message_id == p.msg.id && *at == T0 + expiry)));
    }

    #[test]
    fn after_the_window_a_text_is_held_and_the_resume_request_goes_once() {
        let late = T0 + time::Duration::hours(25);
        let s = state();
        let first = plan(&s, &text("Are you there?"), late);
        assert!(first.held);
        let resume: Vec<&Message> = written(&first.plan)
            .into_iter()
            .filter_map(|i| match i {
                Item::Message(m) if m.system == Some(SystemPurpose::ResumeRequest) => Some(m),
                _ => None,
            })
            .collect();
        assert_eq!(resume.len(), 1);
        assert_eq!(queued(&first.plan), [resume[0].id.as_str()]);
        assert!(written(&first.plan).iter().any(|i| matches!(i,
            Item::Message(m) if m.body.notice().is_some_and(|n| n.code() == crate::domain::NoticeCode::ResumeRequested))));
        // The contact now says a request went out during this pause, under the version read.
        let asked = first
            .plan
            .writes
            .iter()
            .find_map(|w| match w {
                Write::Put { item: Item::Contact(k), cond: Cond::Version(9) } => Some(k.clone()),
                _ => None,
            })
            .expect("the contact is written");
        assert!(asked.resume_requested && asked.paused);

        let mut again = s.clone();
        again.contact = Versioned { item: asked, version: 10 };
        let second = plan(&again, &text("Hello?"), late);
        assert!(second.held);
        assert!(queued(&second.plan).is_empty(), "one resume request per pause");

        // A template may go out whenever consent is given.
        let template = Screened {
            content: Content::Template(TemplateSpec {
                name: "order_update".into(),
                language: "en".into(),
                params: vec![],
                buttons: vec![],
            }),
            ..text("")
        };
        let t = plan(&again, &template, late);
        assert!(!t.held);
        assert_eq!(queued(&t.plan), [t.msg.id.as_str()]);
    }

    #[test]
    fn text_behind_held_text_is_held_and_releases_the_queue_in_order() {
        let mut s = state();
        s.conv.item.pending_count = 2;
        let p = plan(&s, &text("And one more thing"), T0);
        assert!(p.held);
        assert_eq!(thread(&p.plan).pending_count, 3);
        assert!(p
            .plan
            .effects
            .iter()
            .any(|e| matches!(e, Effect::ReleaseHeld { conversation_ids } if conversation_ids == &["c"])));
    }

    #[test]
    fn refusals_plan_nothing() {
        let settings = Settings::default();
        let mut full = state();
        full.conv.item.pending_count = settings.max_held;
        full.contact.item.optin_requested(T0);
        full.contact.item.consent = crate::domain::contact::ConsentState::Requested;
        assert!(matches!(
            plan_send(&full, &caller(), &text("x"), &settings, T0),
            Err(UseCaseError::Domain(DomainError::QueueFull(_)))
        ));

        let mut out = state();
        out.contact.item.inbound(InboundIntent::Reject, T0, T0);
        assert!(matches!(
            plan_send(&out, &caller(), &text("x"), &settings, T0),
            Err(UseCaseError::Domain(DomainError::OptedOut))
        ));

        let mut closed = state();
        closed.conv.item.closed = true;
        assert!(plan_send(&closed, &caller(), &text("x"), &settings, T0).is_err());

        let file = Content::File { kind: FileKind::Image, media_id: "p1".into(), caption: None, filename: None };
        let picture = Screened { content: file, ..text("") };
        assert!(matches!(plan_send(&state(), &caller(), &picture, &settings, T0), Err(UseCaseError::NotFound)));
    }

    #[test]
    fn a_reply_quotes_a_message_of_the_thread_and_goes_to_meta_with_its_wamid() {
        let mut st = state();
        let mut theirs = Message::outbound("m0".into(), "c".into(), Sender::Contact, Body::text("which one?"), T0);
        theirs.direction = Direction::Inbound;
        theirs.wamid = Some("wamid.THEIRS".into());
        st.quoted = Some(theirs);
        let reply = Screened { reply_to: Some("m0".into()), ..text("this one") };
        let p = plan(&st, &reply, T0);
        assert_eq!(
            (p.msg.reply_to.as_ref().map(|r| r.as_str()), p.msg.context_wamid.as_deref()),
            (Some("m0"), Some("wamid.THEIRS"))
        );
        st.quoted = None;
        let refused = plan_send(&st, &caller(), &reply, &Settings::default(), T0);
        assert!(matches!(refused, Err(UseCaseError::Domain(DomainError::Invalid(_)))), "{refused:?}");
    }

    #[test]
    fn a_file_goes_as_its_own_kind_or_as_a_document_and_nothing_else() {
        let mut st = state();
        let pdf = MediaRecord {
            id: "f1".into(),
            owner: Sender::User("u1".into()),
            mime_type: "application/pdf".into(),
            size: 9,
            sha256: "ab".into(),
            meta_id: None,
            meta_uploaded_at: None,
            conversations: vec![],
            latest_message: Default::default(),
            created_at: T0,
        };
        st.media = Some(Versioned { item: pdf, version: 1 });
        let send = |kind| Screened {
            content: Content::File { kind, media_id: "f1".into(), caption: None, filename: Some("a.pdf".into()) },
            ..text("")
        };
        let p = plan(&st, &send(FileKind::Document), T0);
        let (kind, facts) = p.msg.body.file().unwrap();
        assert_eq!((kind, facts.filename.as_deref(), facts.size), (FileKind::Document, Some("a.pdf"), Some(9)));
        let refused = plan_send(&st, &caller(), &send(FileKind::Image), &Settings::default(), T0);
        assert!(matches!(refused, Err(UseCaseError::Domain(DomainError::UnsupportedMedia(_)))), "{refused:?}");
    }

    #[test]
    fn a_redacted_text_tells_its_author_and_archives_what_they_wrote() {
        let screened = Screened {
            content: Content::Text("card [REDACTED:card]".into()),
            dlp_rules: vec!["card".into()],
            written: "card 4111 1111 1111 1111".into(),
            client_id: Some("k1".into()),
            reply_to: None,
        };
        let p = plan(&state(), &screened, T0);
        assert_eq!(p.msg.dlp_rules, ["card"]);
        assert!(written(&p.plan).iter().any(|i| matches!(i,
            Item::Message(m) if m.body.notice().is_some_and(|n| n.code() == crate::domain::NoticeCode::DlpRedacted
                && n.audience == crate::domain::Audience::User("u1".into())
                && n.message_id() == Some(&p.msg.id)))));
        let [e] = &p.plan.archive[..] else { panic!("{:?}", p.plan.archive) };
        assert_eq!((e.kind.as_str(), e.text_as_sent.as_deref()), ("dlp", Some("card [REDACTED:card]")));
        assert!(!e.text_as_written.as_deref().unwrap().contains("4111"));
        assert!(written(&p.plan).iter().any(|i| matches!(i, Item::ClientId { client_id, message_id, .. } if client_id == "k1" && *message_id == p.msg.id)));
    }
}
