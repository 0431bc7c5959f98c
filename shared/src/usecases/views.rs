//! What clients read: conversations and messages as CONTRACT.md shapes them, notices rendered
//! in the reader's language.

use serde::Serialize;
use time::OffsetDateTime;

use crate::domain::message::StatusTimes;
use crate::domain::notice::{failure_text, Audience, Lang};
use crate::domain::{Body, Contact, Conversation, ConversationId, Message, MessageId, Participant, UserId};
use crate::ports::Item;

use super::{readable_conversation, Caller, Ports, Result};

#[derive(Debug, Clone, Serialize)]
pub struct ContactView {
    pub phone: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ParticipantView {
    pub user_id: UserId,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
}

impl From<&Participant> for ParticipantView {
    fn from(p: &Participant) -> Self {
        ParticipantView { user_id: p.user_id.clone(), name: p.name.clone(), joined_at: p.joined_at }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ConversationView {
    pub id: ConversationId,
    pub contact: ContactView,
    pub status: crate::domain::ConversationStatus,
    pub consent: &'static str,
    #[serde(with = "time::serde::rfc3339::option")]
    pub window_open_until: Option<OffsetDateTime>,
    pub pending_count: u32,
    /// The contact's messages after the reader's read mark.
    pub unread_count: u64,
    pub participants: Vec<ParticipantView>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_activity_at: OffsetDateTime,
}

impl ConversationView {
    pub fn new(conv: &Conversation, contact: &Contact, now: OffsetDateTime) -> ConversationView {
        ConversationView {
            id: conv.id.clone(),
            contact: ContactView {
                phone: conv.contact_phone.clone(),
                name: conv.contact_name.clone().or_else(|| contact.name.clone()),
            },
            status: conv.status(contact, now),
            consent: conv.consent_view(contact),
            window_open_until: if contact.paused { None } else { contact.window_open_until.filter(|u| *u > now) },
            pending_count: conv.pending_count,
            unread_count: 0,
            participants: conv.participants.iter().map(ParticipantView::from).collect(),
            created_at: conv.created_at,
            last_activity_at: conv.last_activity_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorView {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NoticeView {
    pub code: crate::domain::NoticeCode,
    pub audience: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_fallback: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_user_id: Option<UserId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<MessageId>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TemplateView {
    pub name: String,
    pub language: String,
    pub params: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReactionView {
    pub message_id: String,
    pub emoji: Option<String>,
}

/// A message's file (CONTRACT.md section 7): `id` is `media_id`, once the bytes are kept.
#[derive(Debug, Clone, Serialize)]
pub struct MediaView {
    pub id: Option<String>,
    pub mime_type: Option<String>,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub filename: Option<String>,
    pub voice: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnsupportedView {
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub direction: crate::domain::Direction,
    pub sender: String,
    pub kind: crate::domain::MessageKind,
    pub text: Option<String>,
    pub media_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<crate::domain::message::Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interactive: Option<crate::domain::message::Interactive>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsupported: Option<UnsupportedView>,
    /// The message of the thread it answers.
    pub reply_to: Option<MessageId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reaction: Option<ReactionView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<crate::domain::message::SystemPurpose>,
    pub status: &'static str,
    pub status_at: StatusTimes,
    /// Data-loss prevention rules that redacted the text.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dlp_rules: Vec<String>,
    pub error: Option<ErrorView>,
    pub notice: Option<NoticeView>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub client_id: Option<String>,
}

impl MessageView {
    /// `m` as `locale` reads it.
    pub fn new(m: &Message, locale: &str) -> MessageView {
        let lang = Lang::of(locale);
        let text = match &m.body {
            Body::Notice(n) => Some(n.render(locale)),
            Body::Unsupported { .. } => Some(crate::domain::notice::unsupported_text(lang).to_string()),
            Body::Contacts(_) => m.body.card_names(),
            body => body.words().map(str::to_string),
        };
        MessageView {
            id: m.id.clone(),
            conversation_id: m.conversation_id.clone(),
            direction: m.direction,
            sender: m.sender.to_string(),
            kind: m.body.kind(),
            text,
            media_id: m.body.media_id().map(str::to_string),
            media: m.body.file().map(|(_, f)| MediaView {
                id: m.body.media_id().map(str::to_string),
                mime_type: f.mime_type.clone(),
                size: f.size,
                sha256: f.sha256.clone(),
                filename: f.filename.clone(),
                voice: f.voice,
            }),
            location: m.body.location().cloned(),
            contacts: m.body.contacts().map(<[_]>::to_vec),
            interactive: m.body.interactive().cloned(),
            unsupported: m.body.unsupported().map(|(t, _)| UnsupportedView { kind: t.to_string() }),
            reply_to: m.reply_to.clone(),
            template: m.body.template().map(|t| TemplateView {
                name: t.name.clone(),
                language: t.language.clone(),
                params: t.params.clone(),
            }),
            reaction: m
                .body
                .reaction()
                .map(|r| ReactionView { message_id: r.message_id.clone(), emoji: r.emoji.clone() }),
            system: m.system,
            status: m.status.public(),
            status_at: m.status_at.clone(),
            dlp_rules: m.dlp_rules.clone(),
            error: m.error.as_ref().map(|e| ErrorView {
                code: e.code.clone(),
                message: match e.reason {
                    Some(r) => failure_text(r, lang).to_string(),
                    None => e.detail.clone(),
                },
            }),
            notice: m.body.notice().map(|n| NoticeView {
                code: n.code(),
                audience: n.audience.public().to_string(),
                sms_fallback: n.sms_fallback().then_some(true),
                subject_user_id: n.subject().map(|s| s.user_id.clone()),
                message_id: n.message_id().cloned(),
            }),
            created_at: m.created_at,
            client_id: m.client_id.clone(),
        }
    }
}

/// Whether `user_id` may see `m`: notices addressed to one user are theirs alone.
pub fn visible_to(m: &Message, user_id: &UserId) -> bool {
    match m.body.notice().map(|n| &n.audience) {
        Some(Audience::User(u)) => u == user_id,
        _ => true,
    }
}

pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 500;

/// `GET /conversations/{id}/messages`: oldest first, strictly after `after`, at most `limit`.
pub async fn history(
    ports: &Ports,
    caller: &Caller,
    conversation_id: &ConversationId,
    after: Option<&MessageId>,
    limit: usize,
) -> Result<Vec<MessageView>> {
    let conv = readable_conversation(&*ports.store, caller, conversation_id).await?.item;
    // An agent reading an unclaimed thread is no participant and sees all of it.
    let me = conv.participant(&caller.user_id);
    let limit = limit.clamp(1, MAX_PAGE);
    let mut out = Vec::new();
    let mut cursor = after.cloned();
    // Pages skip notices meant for someone else, so read until `limit` visible ones are found.
    loop {
        let page = ports.store.messages(conversation_id, cursor.as_ref(), limit, true).await?;
        let full = page.len() == limit;
        for v in page {
            if let Item::Message(m) = v.item {
                cursor = Some(m.id.clone());
                if visible_to(&m, &caller.user_id) && me.is_none_or(|p| p.may_see(&m.id)) && out.len() < limit {
                    out.push(MessageView::new(&m, &caller.locale));
                }
            }
        }
        if !full || out.len() >= limit {
            return Ok(out);
        }
    }
}
