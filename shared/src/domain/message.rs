//! Messages of a thread (outbound, inbound, notices) and their receipts, which only move
//! forward: queued < sent < delivered < read < played (a voice note's first play), with
//! `failed` apart.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::notice::Notice;
use super::{ConversationId, MessageId, Time, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Outbound,
    Inbound,
    Notice,
}

/// What kind of message it is, as clients and the record name it (CONTRACT.md section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Text,
    Image,
    Document,
    Audio,
    Video,
    Sticker,
    Location,
    Contacts,
    Reaction,
    Interactive,
    Template,
    Notice,
    Unsupported,
}

/// Where a message is in its life. `Sending` and `Accepted` show as `queued` to clients: the
/// `sent` status and its time come from Meta's webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Held: waiting for consent or for the window.
    Pending,
    Queued,
    /// Claimed by dispatch until `lease_until`.
    Sending,
    /// The Graph API accepted it and gave a wamid.
    Accepted,
    Sent,
    Delivered,
    Read,
    /// A voice note the contact played.
    Played,
    Failed,
    /// Taken back by its sender before it was handed to Meta.
    Recalled,
}

impl MessageStatus {
    pub fn public(self) -> &'static str {
        match self {
            MessageStatus::Pending => "pending",
            MessageStatus::Queued | MessageStatus::Sending | MessageStatus::Accepted => "queued",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Read => "read",
            MessageStatus::Played => "played",
            MessageStatus::Failed => "failed",
            MessageStatus::Recalled => "recalled",
        }
    }

    /// Position on the forward-only ladder; `None` for `failed`, which stands apart.
    fn rank(self) -> Option<u8> {
        match self {
            MessageStatus::Pending => Some(0),
            MessageStatus::Queued => Some(1),
            MessageStatus::Sending => Some(2),
            MessageStatus::Accepted => Some(3),
            MessageStatus::Sent => Some(4),
            MessageStatus::Delivered => Some(5),
            MessageStatus::Read => Some(6),
            MessageStatus::Played => Some(7),
            MessageStatus::Failed | MessageStatus::Recalled => None,
        }
    }
}

/// The statuses Meta reports in webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    Sent,
    Delivered,
    Read,
    /// The first play of a voice note.
    Played,
    Failed,
}

impl ReceiptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptStatus::Sent => "sent",
            ReceiptStatus::Delivered => "delivered",
            ReceiptStatus::Read => "read",
            ReceiptStatus::Played => "played",
            ReceiptStatus::Failed => "failed",
        }
    }
    fn as_status(self) -> MessageStatus {
        match self {
            ReceiptStatus::Sent => MessageStatus::Sent,
            ReceiptStatus::Delivered => MessageStatus::Delivered,
            ReceiptStatus::Read => MessageStatus::Read,
            ReceiptStatus::Played => MessageStatus::Played,
            ReceiptStatus::Failed => MessageStatus::Failed,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusTimes {
    // Absent rather than null: a message item that stays under 1 KB costs half a write.
    #[serde(with = "time::serde::rfc3339::option", default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<Time>,
    #[serde(with = "time::serde::rfc3339::option", default, skip_serializing_if = "Option::is_none")]
    pub delivered: Option<Time>,
    #[serde(with = "time::serde::rfc3339::option", default, skip_serializing_if = "Option::is_none")]
    pub read: Option<Time>,
    #[serde(with = "time::serde::rfc3339::option", default, skip_serializing_if = "Option::is_none")]
    pub played: Option<Time>,
    #[serde(with = "time::serde::rfc3339::option", default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<Time>,
    /// When its sender took it back (only then present).
    #[serde(with = "time::serde::rfc3339::option", default, skip_serializing_if = "Option::is_none")]
    pub recalled: Option<Time>,
}

impl StatusTimes {
    fn slot(&mut self, s: ReceiptStatus) -> &mut Option<Time> {
        match s {
            ReceiptStatus::Sent => &mut self.sent,
            ReceiptStatus::Delivered => &mut self.delivered,
            ReceiptStatus::Read => &mut self.read,
            ReceiptStatus::Played => &mut self.played,
            ReceiptStatus::Failed => &mut self.failed,
        }
    }
}

/// Why a message failed: Meta's code (or ours) and the catalog entry the employee reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageError {
    pub code: String,
    /// Meta's own words, for operators; clients read the localized text of `reason`.
    pub detail: String,
    pub reason: Option<super::meta_error::FailureReason>,
}

/// Templates the connector sends on its own; their outcomes drive the consent and window flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemPurpose {
    OptinRequest,
    ResumeRequest,
    OptOutConfirmation,
    /// Tells the contact their opt-in was recorded.
    OptinConfirmation,
    /// Tells the contact that a participant joined, was removed or left.
    ParticipantUpdate(super::notice::ParticipantChange),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateSpec {
    pub name: String,
    pub language: String,
    #[serde(default)]
    pub params: Vec<String>,
    /// Quick-reply payloads, one per button, in order.
    #[serde(default)]
    pub buttons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub message_id: String,
    pub emoji: Option<String>,
}

/// The kinds of file a message carries, each with Meta's limits (`domain::media`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Image,
    Document,
    Audio,
    Video,
    Sticker,
}

impl FileKind {
    pub const ALL: [FileKind; 5] =
        [FileKind::Image, FileKind::Document, FileKind::Audio, FileKind::Video, FileKind::Sticker];

    /// Meta's name for it (`messages[].type`, and the send's object).
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Image => "image",
            FileKind::Document => "document",
            FileKind::Audio => "audio",
            FileKind::Video => "video",
            FileKind::Sticker => "sticker",
        }
    }

    pub fn named(name: &str) -> Option<FileKind> {
        FileKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    fn message_kind(self) -> MessageKind {
        match self {
            FileKind::Image => MessageKind::Image,
            FileKind::Document => MessageKind::Document,
            FileKind::Audio => MessageKind::Audio,
            FileKind::Video => MessageKind::Video,
            FileKind::Sticker => MessageKind::Sticker,
        }
    }
}

/// What is known of a message's file beside our id of it: what Meta said when the message came
/// (type, SHA-256, name, voice note), then what the bytes are once kept (type, size, SHA-256).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Lower-case hex, of the bytes kept (Meta's own, base64, until then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// An audio recorded in WhatsApp as a voice note.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub voice: bool,
}

impl FileFacts {
    fn is_empty(&self) -> bool {
        *self == FileFacts::default()
    }
}

/// A place a contact shared (or an employee sends). Coordinates as Meta wrote them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub latitude: serde_json::Number,
    pub longitude: serde_json::Number,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl Location {
    /// In one line: its name and address, then its coordinates.
    pub fn line(&self) -> String {
        let words: Vec<&str> = self.name.iter().chain(self.address.iter()).map(String::as_str).collect();
        let at = format!("({}, {})", self.latitude, self.longitude);
        if words.is_empty() {
            at
        } else {
            format!("{} {at}", words.join(", "))
        }
    }
}

/// A tap on a button of a template or an interactive message, or on a list's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interactive {
    /// `button` (a template's quick reply), `button_reply` or `list_reply`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The payload or the row's id.
    pub id: String,
    pub title: String,
}

/// What a message says: one kind, with what that kind has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// A text: an employee's, a contact's, or one the connector writes to the contact.
    /// `prefix`: `*Name*: `, put before it for the contact in a group thread.
    Text {
        text: String,
        prefix: Option<String>,
    },
    /// A picture, document, audio, video or sticker, with its caption. `media_id` is ours,
    /// once the bytes are kept (a contact's file is fetched from Meta after its message is
    /// written).
    File {
        kind: FileKind,
        media_id: Option<String>,
        caption: Option<String>,
        prefix: Option<String>,
        facts: FileFacts,
    },
    Location(Location),
    /// Contact cards, as Meta sent them (`name.formatted_name`, `phones[].phone`, ...).
    Contacts(Vec<serde_json::Value>),
    Interactive(Interactive),
    Template(TemplateSpec),
    Reaction(Reaction),
    Notice(Notice),
    /// A kind the connector does not show (Meta's `unsupported`, or one Meta adds later),
    /// kept with Meta's name for it and what Meta sent.
    Unsupported {
        type_name: String,
        content: serde_json::Value,
    },
}

impl Body {
    pub fn text(text: impl Into<String>) -> Body {
        Body::Text { text: text.into(), prefix: None }
    }

    /// A picture as employees send it.
    pub fn image(media_id: Option<String>, caption: Option<String>, prefix: Option<String>) -> Body {
        Body::File { kind: FileKind::Image, media_id, caption, prefix, facts: FileFacts::default() }
    }

    pub fn kind(&self) -> MessageKind {
        match self {
            Body::Text { .. } => MessageKind::Text,
            Body::File { kind, .. } => kind.message_kind(),
            Body::Location(_) => MessageKind::Location,
            Body::Contacts(_) => MessageKind::Contacts,
            Body::Interactive(_) => MessageKind::Interactive,
            Body::Template(_) => MessageKind::Template,
            Body::Reaction(_) => MessageKind::Reaction,
            Body::Notice(_) => MessageKind::Notice,
            Body::Unsupported { .. } => MessageKind::Unsupported,
        }
    }

    /// What it reads as: the text, the caption, the button's title, the reaction's emoji, the
    /// place's name.
    pub fn words(&self) -> Option<&str> {
        match self {
            Body::Text { text, .. } => Some(text),
            Body::File { caption, .. } => caption.as_deref(),
            Body::Interactive(i) => Some(&i.title),
            Body::Reaction(r) => r.emoji.as_deref(),
            Body::Location(l) => l.name.as_deref(),
            Body::Template(_) | Body::Notice(_) | Body::Contacts(_) | Body::Unsupported { .. } => None,
        }
    }

    /// Everything in it that carries words, for data-loss prevention to redact in place: the
    /// text or caption, a file's name, a place's name and address, every string of a contact
    /// card.
    pub fn words_mut(&mut self) -> Vec<&mut String> {
        fn strings<'a>(v: &'a mut serde_json::Value, out: &mut Vec<&'a mut String>) {
            match v {
                serde_json::Value::String(s) => out.push(s),
                serde_json::Value::Array(a) => a.iter_mut().for_each(|v| strings(v, out)),
                serde_json::Value::Object(o) => o.values_mut().for_each(|v| strings(v, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        match self {
            Body::Text { text, .. } => out.push(text),
            Body::File { caption, facts, .. } => out.extend(caption.iter_mut().chain(facts.filename.iter_mut())),
            Body::Location(l) => out.extend(l.name.iter_mut().chain(l.address.iter_mut())),
            Body::Contacts(cards) => cards.iter_mut().for_each(|c| strings(c, &mut out)),
            Body::Interactive(i) => out.push(&mut i.title),
            Body::Template(_) | Body::Reaction(_) | Body::Notice(_) | Body::Unsupported { .. } => {}
        }
        out
    }

    pub fn prefix(&self) -> Option<&str> {
        match self {
            Body::Text { prefix, .. } | Body::File { prefix, .. } => prefix.as_deref(),
            _ => None,
        }
    }

    /// The text or caption as the contact receives it: after the speaker's prefix.
    pub fn as_sent(&self) -> Option<String> {
        let words = match self {
            Body::Text { text, .. } => text,
            Body::File { caption: Some(caption), .. } => caption,
            _ => return None,
        };
        Some(format!("{}{words}", self.prefix().unwrap_or("")))
    }

    pub fn media_id(&self) -> Option<&str> {
        match self {
            Body::File { media_id, .. } => media_id.as_deref(),
            _ => None,
        }
    }

    pub fn file(&self) -> Option<(FileKind, &FileFacts)> {
        match self {
            Body::File { kind, facts, .. } => Some((*kind, facts)),
            _ => None,
        }
    }

    pub fn location(&self) -> Option<&Location> {
        match self {
            Body::Location(l) => Some(l),
            _ => None,
        }
    }

    /// Shared contact cards' names (`name.formatted_name`), as a reader sees them.
    pub fn card_names(&self) -> Option<String> {
        let cards = self.contacts()?;
        let names: Vec<&str> = cards
            .iter()
            .filter_map(|c| c.pointer("/name/formatted_name").and_then(serde_json::Value::as_str))
            .collect();
        Some(names.join(", "))
    }

    pub fn contacts(&self) -> Option<&[serde_json::Value]> {
        match self {
            Body::Contacts(c) => Some(c),
            _ => None,
        }
    }

    pub fn interactive(&self) -> Option<&Interactive> {
        match self {
            Body::Interactive(i) => Some(i),
            _ => None,
        }
    }

    /// Meta's name for a kind the connector does not show, and what Meta sent.
    pub fn unsupported(&self) -> Option<(&str, &serde_json::Value)> {
        match self {
            Body::Unsupported { type_name, content } => Some((type_name, content)),
            _ => None,
        }
    }

    pub fn template(&self) -> Option<&TemplateSpec> {
        match self {
            Body::Template(t) => Some(t),
            _ => None,
        }
    }

    pub fn reaction(&self) -> Option<&Reaction> {
        match self {
            Body::Reaction(r) => Some(r),
            _ => None,
        }
    }

    pub fn notice(&self) -> Option<&Notice> {
        match self {
            Body::Notice(n) => Some(n),
            _ => None,
        }
    }
}

/// A body as stored: its kind, and each thing any kind has (a reaction's emoji is its text, a
/// picture's caption too). Written borrowed from the body, without a copy; read owned.
#[derive(Serialize, Deserialize)]
struct StoredBody<'a> {
    kind: MessageKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prefix: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_id: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<Cow<'a, FileFacts>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    location: Option<Cow<'a, Location>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    contacts: Option<Cow<'a, [serde_json::Value]>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interactive: Option<Cow<'a, Interactive>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    template: Option<Cow<'a, TemplateSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reaction: Option<Cow<'a, Reaction>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    notice: Option<Cow<'a, Notice>>,
    /// An unsupported kind's name and content, as Meta sent them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    type_name: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content: Option<Cow<'a, serde_json::Value>>,
}

impl Serialize for Body {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let unsupported = self.unsupported();
        StoredBody {
            kind: self.kind(),
            // A place's name is its own field; the interactive's title is in `interactive`.
            text: match self {
                Body::Location(_) | Body::Interactive(_) => None,
                _ => self.words().map(Cow::Borrowed),
            },
            prefix: self.prefix().map(Cow::Borrowed),
            media_id: self.media_id().map(Cow::Borrowed),
            file: self.file().map(|(_, f)| f).filter(|f| !f.is_empty()).map(Cow::Borrowed),
            location: self.location().map(Cow::Borrowed),
            contacts: self.contacts().map(Cow::Borrowed),
            interactive: self.interactive().map(Cow::Borrowed),
            template: self.template().map(Cow::Borrowed),
            reaction: self.reaction().map(Cow::Borrowed),
            notice: self.notice().map(Cow::Borrowed),
            type_name: unsupported.map(|(t, _)| Cow::Borrowed(t)),
            content: unsupported.map(|(_, c)| Cow::Borrowed(c)),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Body, D::Error> {
        use serde::de::Error;
        let s = StoredBody::deserialize(d)?;
        let kind = s.kind;
        let missing = |what: &str| D::Error::custom(format!("a {kind:?} message without its {what}"));
        let (text, prefix) = (s.text.map(Cow::into_owned), s.prefix.map(Cow::into_owned));
        let file = |kind: FileKind| Body::File {
            kind,
            media_id: s.media_id.clone().map(Cow::into_owned),
            caption: text.clone(),
            prefix: prefix.clone(),
            facts: s.file.clone().map(Cow::into_owned).unwrap_or_default(),
        };
        Ok(match kind {
            MessageKind::Text => Body::Text { text: text.ok_or_else(|| missing("text"))?, prefix },
            MessageKind::Image => file(FileKind::Image),
            MessageKind::Document => file(FileKind::Document),
            MessageKind::Audio => file(FileKind::Audio),
            MessageKind::Video => file(FileKind::Video),
            MessageKind::Sticker => file(FileKind::Sticker),
            MessageKind::Location => Body::Location(s.location.ok_or_else(|| missing("location"))?.into_owned()),
            MessageKind::Contacts => Body::Contacts(s.contacts.ok_or_else(|| missing("contacts"))?.into_owned()),
            MessageKind::Interactive => {
                Body::Interactive(s.interactive.ok_or_else(|| missing("interactive"))?.into_owned())
            }
            MessageKind::Template => Body::Template(s.template.ok_or_else(|| missing("template"))?.into_owned()),
            MessageKind::Reaction => Body::Reaction(s.reaction.ok_or_else(|| missing("reaction"))?.into_owned()),
            MessageKind::Notice => Body::Notice(s.notice.ok_or_else(|| missing("notice"))?.into_owned()),
            MessageKind::Unsupported => Body::Unsupported {
                type_name: s.type_name.ok_or_else(|| missing("type"))?.into_owned(),
                content: s.content.map(Cow::into_owned).unwrap_or_default(),
            },
        })
    }
}

/// Who wrote a message. Stored and shown as one string: `contact`, `system`, or the employee's
/// user id (no user may have either of the other two as id).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum Sender {
    Contact,
    /// The connector itself: templates it sends, notices.
    System,
    User(UserId),
}

impl Sender {
    /// The ids the connector keeps for itself.
    pub const RESERVED: [&'static str; 2] = ["contact", "system"];

    pub fn as_str(&self) -> &str {
        match self {
            Sender::Contact => "contact",
            Sender::System => "system",
            Sender::User(id) => id.as_str(),
        }
    }

    /// Whether the employee `user_id` wrote it.
    pub fn is_user(&self, user_id: &UserId) -> bool {
        matches!(self, Sender::User(id) if id == user_id)
    }
}

impl From<String> for Sender {
    fn from(s: String) -> Sender {
        match s.as_str() {
            "contact" => Sender::Contact,
            "system" => Sender::System,
            _ => Sender::User(UserId::from(s)),
        }
    }
}

impl From<&str> for Sender {
    fn from(s: &str) -> Sender {
        Sender::from(s.to_string())
    }
}

impl Serialize for Sender {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// ULID: sorts by creation, so a thread's history and its held messages are in order.
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub direction: Direction,
    pub sender: Sender,
    /// What it says. Stored flat beside the other fields, as before it had a type.
    #[serde(flatten)]
    pub body: Body,
    /// The message of the same thread it answers (Meta's `context`), when it is one of ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<MessageId>,
    /// Meta's id of the message it answers, as it goes to Meta (`context.message_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_wamid: Option<String>,
    /// Data-loss prevention rules that redacted this message's text or caption.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dlp_rules: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemPurpose>,
    pub status: MessageStatus,
    pub status_at: StatusTimes,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<MessageError>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Meta's id of the current attempt (outbound) or of the message (inbound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wamid: Option<String>,
    /// Graph API attempts so far (for bounded retries; rate limits do not count).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// Times Meta's rate limits made it wait (its backoff grows with them; it never fails for them).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub waits: u32,
    /// Not to be sent before this (a rate limit's backoff).
    #[serde(with = "time::serde::rfc3339::option", default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Time>,
    /// The dispatch attempt holding the claim (with `lease_until`): a claim whose own write was
    /// submitted twice is still recognised as its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
    /// Bumped each time the message is queued again, so queue dedupe ids stay unique.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u32,
    #[serde(with = "time::serde::rfc3339::option", default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<Time>,
    /// Changes this item carried to the archive (`archive::Source`): its creation, its statuses.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub records: u64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

pub(crate) fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// What a status webhook did to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptOutcome {
    /// Not this message's current attempt, or already known: nothing changes.
    Ignored,
    /// Its time was recorded; the status stays (it arrived late).
    TimeRecorded,
    Advanced,
    /// The message failed just now.
    Failed,
}

impl Message {
    pub fn outbound(id: MessageId, conversation_id: ConversationId, sender: Sender, body: Body, now: Time) -> Message {
        Message {
            id,
            conversation_id,
            direction: Direction::Outbound,
            sender,
            body,
            reply_to: None,
            context_wamid: None,
            dlp_rules: Vec::new(),
            system: None,
            status: MessageStatus::Queued,
            status_at: StatusTimes::default(),
            error: None,
            created_at: now,
            client_id: None,
            wamid: None,
            attempts: 0,
            waits: 0,
            not_before: None,
            claim: None,
            generation: 0,
            lease_until: None,
            records: 0,
        }
    }

    /// Applies Meta's status for attempt `wamid` at Meta's time `at`.
    pub fn apply_receipt(&mut self, wamid: &str, status: ReceiptStatus, at: Time) -> ReceiptOutcome {
        if self.wamid.as_deref() != Some(wamid) || self.direction != Direction::Outbound {
            return ReceiptOutcome::Ignored;
        }
        let slot = self.status_at.slot(status);
        let new_time = slot.is_none();
        if new_time {
            *slot = Some(at);
        }
        let target = status.as_status();
        let advances = match (self.status.rank(), target.rank()) {
            (Some(cur), Some(new)) if crate::plant::active(crate::plant::Bug::StatusMovesBack) => new != cur,
            (Some(cur), Some(new)) => new > cur,
            // Failed overrides only what is not yet delivered.
            (Some(cur), None) => cur < MessageStatus::Delivered.rank().unwrap_or(0),
            (None, _) => false,
        };
        if advances {
            self.status = target;
            self.lease_until = None;
            if status == ReceiptStatus::Failed {
                ReceiptOutcome::Failed
            } else {
                ReceiptOutcome::Advanced
            }
        } else if new_time {
            ReceiptOutcome::TimeRecorded
        } else {
            ReceiptOutcome::Ignored
        }
    }

    /// A dispatch attempt claimed it and neither finished nor settled it before its lease ran
    /// out (the process died mid-call): the attempt may have reached Meta.
    pub fn claim_lapsed(&self, now: Time) -> bool {
        self.status == MessageStatus::Sending && self.lease_until.is_some_and(|l| now >= l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;
    use time::Duration;

    const T0: Time = datetime!(2026-09-20 12:00 UTC);

    #[test]
    fn a_sender_is_stored_and_read_as_the_string_it_always_was() {
        for (sender, stored) in
            [(Sender::Contact, "contact"), (Sender::System, "system"), (Sender::User("u1".into()), "u1")]
        {
            assert_eq!(serde_json::to_value(&sender).unwrap(), serde_json::json!(stored));
            assert_eq!(serde_json::from_value::<Sender>(serde_json::json!(stored)).unwrap(), sender);
            assert_eq!(sender.to_string(), stored);
        }
        assert!(Sender::User("u1".into()).is_user(&"u1".into()));
        assert!(!Sender::System.is_user(&"system".into()) && !Sender::User("u1".into()).is_user(&"u2".into()));
    }

    /// Items written before a message's body had a type read back the same, and are written
    /// in the same shape less what is empty (absent, not null or zero: an item under 1 KB
    /// costs half a write).
    #[test]
    fn a_message_is_stored_flat_as_before_and_read_back_typed() {
        let base = serde_json::json!({
            "id": "01", "conversation_id": "c", "direction": "outbound", "sender": "u1",
            "status": "queued", "created_at": "2026-09-20T12:00:00Z", "attempts": 0, "generation": 0,
            "status_at": {"sent": null, "delivered": null, "read": null, "failed": null}
        });
        let stored = |fields: serde_json::Value| {
            let mut v = base.clone();
            v.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
            v
        };
        let cases = [
            (
                stored(serde_json::json!({"kind": "text", "text": "hi", "prefix": "*Alex*: "})),
                Body::Text { text: "hi".into(), prefix: Some("*Alex*: ".into()) },
            ),
            (
                stored(serde_json::json!({"kind": "image", "text": "the receipt"})),
                Body::image(None, Some("the receipt".into()), None),
            ),
            (
                stored(serde_json::json!({"kind": "reaction", "text": "👍",
                    "reaction": {"message_id": "m0", "emoji": "👍"}})),
                Body::Reaction(Reaction { message_id: "m0".into(), emoji: Some("👍".into()) }),
            ),
            (
                stored(serde_json::json!({"kind": "template",
                    "template": {"name": "optin", "language": "en", "params": ["Acme"], "buttons": ["OPT_IN_YES:c"]}})),
                Body::Template(TemplateSpec {
                    name: "optin".into(),
                    language: "en".into(),
                    params: vec!["Acme".into()],
                    buttons: vec!["OPT_IN_YES:c".into()],
                }),
            ),
        ];
        for (json, body) in cases {
            let m: Message = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(m.body, body);
            let mut compact = json.clone();
            let fields = compact.as_object_mut().unwrap();
            fields.remove("attempts");
            fields.remove("generation");
            fields.insert("status_at".into(), serde_json::json!({}));
            assert_eq!(serde_json::to_value(&m).unwrap(), compact, "written as before, less what is empty");
            assert_eq!(serde_json::from_value::<Message>(compact).unwrap(), m, "and read back the same");
        }
        let lacking = stored(serde_json::json!({"kind": "template"}));
        assert!(serde_json::from_value::<Message>(lacking).is_err(), "a template message without its template");
    }

    fn accepted() -> Message {
        let mut m = Message::outbound("01".into(), "c".into(), "u".into(), Body::text("hi"), T0);
        m.status = MessageStatus::Accepted;
        m.wamid = Some("w1".into());
        m
    }

    #[test]
    fn receipts_in_reverse_order_end_at_read_with_every_time() {
        let mut m = accepted();
        assert_eq!(m.apply_receipt("w1", ReceiptStatus::Read, T0 + Duration::seconds(3)), ReceiptOutcome::Advanced);
        assert_eq!(
            m.apply_receipt("w1", ReceiptStatus::Delivered, T0 + Duration::seconds(2)),
            ReceiptOutcome::TimeRecorded
        );
        assert_eq!(m.apply_receipt("w1", ReceiptStatus::Sent, T0 + Duration::seconds(1)), ReceiptOutcome::TimeRecorded);
        assert_eq!(m.status, MessageStatus::Read);
        assert_eq!(m.status_at.sent, Some(T0 + Duration::seconds(1)));
        assert_eq!(m.status_at.delivered, Some(T0 + Duration::seconds(2)));
    }

    #[test]
    fn a_voice_note_played_is_past_read_and_read_after_it_only_records_its_time() {
        let mut m = accepted();
        assert_eq!(m.apply_receipt("w1", ReceiptStatus::Played, T0 + Duration::seconds(5)), ReceiptOutcome::Advanced);
        assert_eq!(m.apply_receipt("w1", ReceiptStatus::Read, T0 + Duration::seconds(4)), ReceiptOutcome::TimeRecorded);
        assert_eq!((m.status, m.status.public()), (MessageStatus::Played, "played"));
        assert_eq!(
            (m.status_at.read, m.status_at.played),
            (Some(T0 + Duration::seconds(4)), Some(T0 + Duration::seconds(5)))
        );
    }

    #[test]
    fn redelivered_receipt_changes_nothing() {
        let mut m = accepted();
        m.apply_receipt("w1", ReceiptStatus::Sent, T0);
        let before = m.clone();
        assert_eq!(m.apply_receipt("w1", ReceiptStatus::Sent, T0 + Duration::seconds(9)), ReceiptOutcome::Ignored);
        assert_eq!(m, before);
    }

    #[test]
    fn receipt_for_an_old_attempt_is_ignored() {
        let mut m = accepted();
        assert_eq!(m.apply_receipt("w0", ReceiptStatus::Failed, T0), ReceiptOutcome::Ignored);
        assert_eq!(m.status, MessageStatus::Accepted);
    }

    #[test]
    fn failed_stands_apart() {
        let mut m = accepted();
        assert_eq!(m.apply_receipt("w1", ReceiptStatus::Failed, T0), ReceiptOutcome::Failed);
        assert_eq!(m.apply_receipt("w1", ReceiptStatus::Sent, T0), ReceiptOutcome::TimeRecorded);
        assert_eq!(m.status, MessageStatus::Failed);
        let mut d = accepted();
        d.apply_receipt("w1", ReceiptStatus::Delivered, T0);
        assert_eq!(d.apply_receipt("w1", ReceiptStatus::Failed, T0), ReceiptOutcome::TimeRecorded);
        assert_eq!(d.status, MessageStatus::Delivered);
    }

    #[test]
    fn a_claim_lapses_when_its_lease_runs_out_and_only_then() {
        let mut m = accepted();
        m.status = MessageStatus::Sending;
        m.lease_until = Some(T0 + Duration::seconds(60));
        assert!(!m.claim_lapsed(T0));
        assert!(m.claim_lapsed(T0 + Duration::seconds(60)));
        m.lease_until = None;
        assert!(!m.claim_lapsed(T0 + Duration::days(1)), "settled later: waits for a status or its deadline");
    }

    fn receipt() -> impl Strategy<Value = ReceiptStatus> {
        prop_oneof![
            Just(ReceiptStatus::Sent),
            Just(ReceiptStatus::Delivered),
            Just(ReceiptStatus::Read),
            Just(ReceiptStatus::Played),
            Just(ReceiptStatus::Failed)
        ]
    }

    proptest! {
        /// In any order and with any duplicates, the status never moves backwards, and the end
        /// state does not depend on the order (except failed, which only wins before delivery).
        #[test]
        fn status_only_moves_forward(seq in proptest::collection::vec(receipt(), 0..12)) {
            let mut m = accepted();
            for s in &seq {
                let before = m.status;
                m.apply_receipt("w1", *s, T0);
                if let (Some(b), Some(a)) = (before.rank(), m.status.rank()) { prop_assert!(a >= b); }
                if before == MessageStatus::Failed { prop_assert_eq!(m.status, MessageStatus::Failed); }
            }
            let best = seq.iter().filter(|s| **s != ReceiptStatus::Failed).map(|s| s.as_status().rank()).max().flatten();
            if !seq.contains(&ReceiptStatus::Failed) {
                prop_assert_eq!(m.status.rank(), best.or(Some(3)));
            }
        }
    }
}
