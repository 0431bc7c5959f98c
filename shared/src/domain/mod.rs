//! The pure core: contacts (consent, 24-hour window), conversations, messages and receipts,
//! notices and Meta's error classes. No I/O and no clock: every rule takes `now` as an argument.

pub mod caller;
pub mod contact;
pub mod conversation;
pub mod ids;
pub mod media;
pub mod message;
pub mod meta_error;
pub mod notice;
pub mod phone;
pub mod search;

pub use caller::{known_roles, Caller, NO_SCOPE, ROLES};
pub use contact::{ConsentState, Contact, InboundIntent, WindowTimer};
pub use conversation::{Conversation, ConversationStatus, Participant};
pub use ids::{ConversationId, MessageId, UserId};
pub use message::{Body, Direction, Message, MessageKind, MessageStatus, ReceiptOutcome, ReceiptStatus, Sender};
pub use notice::{Audience, Notice, NoticeCode, NoticeKind, Subject};
pub use phone::Phone;

use time::{Duration, OffsetDateTime};

/// The customer-service window Meta opens on each message from the contact.
pub const WINDOW: Duration = Duration::hours(24);
/// How long before an employee may resend an unanswered opt-in request, and before a failed
/// opt-in request is retried.
pub const OPTIN_RESEND_AFTER: Duration = Duration::hours(24);

pub type Time = OffsetDateTime;

/// Rule violations a use case reports to its caller; each maps to one contract error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("the contact opted out of messages")]
    OptedOut,
    #[error("the conversation is closed")]
    ConversationClosed,
    #[error("the opt-in request was sent less than 24 hours ago")]
    OptinTooSoon,
    #[error("the contact has already opted in")]
    AlreadyOptedIn,
    #[error("too many held messages in this conversation (limit {0})")]
    QueueFull(u32),
    #[error("someone else claimed this conversation")]
    AlreadyClaimed,
    #[error("the conversation already has the most participants allowed")]
    ThreadFull,
    #[error("{0}")]
    NotAddable(String),
    #[error("blocked by data-loss prevention rules: {}", .0.join(", "))]
    DlpBlocked(Vec<String>),
    #[error("larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    UnsupportedMedia(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the message may already have left for WhatsApp")]
    AlreadySent,
    #[error("{0}")]
    InvalidTemplate(String),
}
