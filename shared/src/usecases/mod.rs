//! One async function per verb, written against the ports: each reads and decides with a pure
//! planner, and the executor (`commit::execute`) commits the plan in one transaction, reading and
//! planning again on a conflict. This module holds what they share: the ports, the settings,
//! the error, and the reads and writes every use case makes the same way.

pub mod archive;
pub mod archiver;
pub mod commit;
pub mod conversations;
pub mod directory;
pub mod dispatch;
pub mod export;
pub mod holds;
pub mod inbound;
pub mod media;
pub mod outcomes;
pub mod participants;
pub mod read_state;
pub mod receipts;
pub mod relay;
pub mod release;
pub mod retention;
pub mod search;
pub mod send;
pub mod templates;
pub mod timers;
pub mod views;

pub use crate::domain::caller::{known_roles, Caller, NO_SCOPE, ROLES};

/// Agents and admins handle contact-started threads.
pub(crate) fn require_agent(caller: &Caller) -> Result<()> {
    match caller.is_agent() {
        true => Ok(()),
        false => Err(UseCaseError::Forbidden("this needs the agent role")),
    }
}

use std::sync::Arc;

use time::OffsetDateTime;

use crate::domain::message::{SystemPurpose, TemplateSpec};
use crate::domain::notice::{self, ContactText, Lang, Notice, ParticipantChange};
use crate::domain::{Body, Contact, Conversation, ConversationId, DomainError, Message, MessageId, MessageStatus};
use crate::ports::{
    Clock, Cond, Item, ItemKind, Key, OutboundJob, Queue, QueueError, Scheduler, SchedulerError, Store, StoreError,
    Versioned, WhatsApp, Write,
};

pub use crate::config::Settings;

/// Everything a use case may touch.
#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    pub scheduler: Arc<dyn Scheduler>,
    pub clock: Arc<dyn Clock>,
    pub whatsapp: Arc<dyn WhatsApp>,
    pub media: Arc<dyn crate::ports::MediaStore>,
    /// The archive's write-once store (AWS: `ARCHIVE_BUCKET`; locally the data dir's vault).
    pub vault: Arc<dyn crate::ports::Vault>,
    /// The record's search index (AWS: Athena over the archive bucket; locally SQLite FTS5).
    pub index: Arc<dyn crate::ports::RecordIndex>,
    /// The archive vendors' journal (AWS: EventBridge; locally `<data dir>/journal.jsonl`).
    pub journal: Arc<dyn crate::ports::RecordJournal>,
    pub settings: Arc<Settings>,
}

#[derive(Debug, thiserror::Error)]
pub enum UseCaseError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(&'static str),
    /// The token proves who the caller is but not enough to serve them (401).
    #[error("{0}")]
    Unidentified(&'static str),
    #[error("too many concurrent changes; try again")]
    Contention,
    /// A guard of the plan failed (`commit::Guard`): the use case that named it answers.
    #[error("guard {0:?} failed")]
    Guarded(commit::Guard),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    #[error(transparent)]
    Archive(#[from] crate::ports::ArchiveError),
    #[error(transparent)]
    Index(#[from] crate::ports::IndexError),
    #[error(transparent)]
    Journal(#[from] crate::ports::JournalError),
    /// Writing an export's ZIP failed.
    #[error("the export could not be written")]
    Export(#[source] crate::error::Cause),
    #[error(transparent)]
    Media(#[from] crate::ports::MediaStoreError),
    /// The archiver has not yet passed every change committed before a read of the archive.
    #[error("the archive has not caught up with the changes committed before this read; try again")]
    ArchiveBehind,
    /// This function was not given what the request needs (a secret): a deployment error.
    #[error("not configured: {0}")]
    Unconfigured(&'static str),
    /// WhatsApp could not answer a question the caller asked of it.
    #[error("WhatsApp is unavailable: {0}")]
    Upstream(String),
}

pub type Result<T, E = UseCaseError> = std::result::Result<T, E>;

pub(crate) async fn load<T: ItemKind>(store: &dyn Store, key: &Key) -> Result<Option<Versioned<T>>> {
    match store.get(key).await? {
        Some(v) => Ok(Some(Versioned { item: T::from_item(v.item)?, version: v.version })),
        None => Ok(None),
    }
}

/// A put that replaces exactly the version read (or creates when none was read).
pub(crate) fn put_versioned(item: Item, version: Option<u64>) -> Write {
    Write::Put { item, cond: version.map_or(Cond::NotExists, Cond::Version) }
}

pub(crate) fn put_new(item: Item) -> Write {
    Write::Put { item, cond: Cond::NotExists }
}

pub(crate) use crate::domain::ids::new_ulid;

/// A conversation the caller takes part in, or `NotFound` (same answer for "not yours").
pub(crate) async fn participant_conversation(
    store: &dyn Store,
    caller: &Caller,
    conversation_id: &ConversationId,
) -> Result<Versioned<Conversation>> {
    conversation_where(store, conversation_id, |c| c.is_participant(&caller.user_id)).await
}

/// The conversation, if it passes `may`; `NotFound` otherwise (the same answer as for none).
async fn conversation_where(
    store: &dyn Store,
    conversation_id: &ConversationId,
    may: impl Fn(&Conversation) -> bool,
) -> Result<Versioned<Conversation>> {
    match load::<Conversation>(store, &Key::conversation(conversation_id)).await? {
        Some(c) if may(&c.item) => Ok(c),
        _ => Err(UseCaseError::NotFound),
    }
}

/// A conversation the caller may read: one they take part in, or (agents and admins) a
/// contact-started thread nobody claimed yet. `NotFound` otherwise.
pub(crate) async fn readable_conversation(
    store: &dyn Store,
    caller: &Caller,
    conversation_id: &ConversationId,
) -> Result<Versioned<Conversation>> {
    conversation_where(store, conversation_id, |c| {
        c.is_participant(&caller.user_id) || (c.unassigned && caller.is_agent())
    })
    .await
}

pub(crate) async fn load_contact(store: &dyn Store, key: &str) -> Result<Versioned<Contact>> {
    load::<Contact>(store, &Key::contact(key)).await?.ok_or_else(|| {
        UseCaseError::Store(StoreError::Corrupt(format!("conversation refers to missing contact {key}").into()))
    })
}

/// A notice message for a thread.
pub(crate) fn notice_message(conversation_id: &ConversationId, notice: Notice, now: OffsetDateTime) -> Message {
    let mut m = Message::outbound(
        MessageId::generate(),
        conversation_id.clone(),
        crate::domain::Sender::System,
        Body::Notice(notice),
        now,
    );
    m.direction = crate::domain::Direction::Notice;
    m.status = MessageStatus::Delivered;
    m
}

/// A message the connector sends to the contact on its own: the opt-in or resume request, the
/// opt-out confirmation.
pub(crate) fn system_template(
    conv: &Conversation,
    purpose: SystemPurpose,
    settings: &Settings,
    now: OffsetDateTime,
) -> Message {
    let lang = Lang::of(&conv.language);
    let template = |name: &str, buttons: Vec<String>, params: Vec<String>| TemplateSpec {
        name: name.to_string(),
        language: lang.code().to_string(),
        params,
        buttons,
    };
    let body = match purpose {
        SystemPurpose::OptinRequest => {
            let buttons =
                vec![format!("{}:{}", payload::OPT_IN_YES, conv.id), format!("{}:{}", payload::OPT_IN_NO, conv.id)];
            Body::Template(template(&settings.optin_template, buttons, vec![settings.business_name.clone()]))
        }
        SystemPurpose::ResumeRequest => {
            let buttons = vec![format!("{}:{}", payload::RESUME, conv.id)];
            Body::Template(template(&settings.resume_template, buttons, vec![settings.business_name.clone()]))
        }
        SystemPurpose::OptOutConfirmation => Body::text(notice::contact_text(ContactText::OptedOut, lang)),
        SystemPurpose::OptinConfirmation => Body::text(notice::contact_text(ContactText::OptedIn, lang)),
        // Named updates come from `participant_update`; this is the nameless form.
        SystemPurpose::ParticipantUpdate(change) => {
            Body::text(notice::contact_text(ContactText::Participant(change), lang).replace("{name}", "A colleague"))
        }
    };
    let mut m = Message::outbound(MessageId::generate(), conv.id.clone(), crate::domain::Sender::System, body, now);
    m.system = Some(purpose);
    m
}

/// Tells the contact that `name` joined or left: a text inside the window, the participant
/// template outside it.
pub(crate) fn participant_update(
    conv: &Conversation,
    change: ParticipantChange,
    name: &str,
    window_open: bool,
    settings: &Settings,
    now: OffsetDateTime,
) -> Message {
    let lang = Lang::of(&conv.language);
    let text = notice::contact_text(ContactText::Participant(change), lang).replace("{name}", name);
    let body = match window_open {
        true => Body::text(text),
        false => Body::Template(TemplateSpec {
            name: settings.participant_template.clone(),
            language: lang.code().to_string(),
            params: vec![text],
            buttons: vec![],
        }),
    };
    let mut m = Message::outbound(MessageId::generate(), conv.id.clone(), crate::domain::Sender::System, body, now);
    m.system = Some(SystemPurpose::ParticipantUpdate(change));
    m
}

/// Quick-reply payloads of the connector's templates: `<ACTION>:<conversation id>`.
pub mod payload {
    pub const OPT_IN_YES: &str = "OPT_IN_YES";
    pub const OPT_IN_NO: &str = "OPT_IN_NO";
    pub const RESUME: &str = "RESUME";
    pub const STOP: &str = "STOP";

    /// Splits `OPT_IN_YES:01J...` into the action and the conversation id it names.
    pub fn split(payload: &str) -> (&str, Option<&str>) {
        match payload.split_once(':') {
            Some((action, conv)) if !conv.is_empty() => (action, Some(conv)),
            _ => (payload, None),
        }
    }
}

/// The effects that queue the given messages for dispatch, in order.
pub(crate) fn dispatch_effects<'a>(messages: impl IntoIterator<Item = &'a Message>) -> Vec<crate::ports::Effect> {
    messages
        .into_iter()
        .map(|m| {
            crate::ports::Effect::Outbound(OutboundJob {
                conversation_id: m.conversation_id.clone(),
                message_id: m.id.clone(),
                generation: m.generation,
                carried: 0,
            })
        })
        .collect()
}

/// The open threads of a contact, newest outbound activity first.
pub(crate) async fn contact_threads(store: &dyn Store, contact_key: &str) -> Result<Vec<Versioned<Conversation>>> {
    Ok(contact_with_threads(store, contact_key).await?.map(|(_, t)| t).unwrap_or_default())
}

/// A contact and their open threads (newest outbound activity first), in two reads: the
/// contact's partition holds the contact and a link to each of their threads, and only the
/// threads whose links are open are fetched (a contact of ten years has many closed ones).
pub(crate) async fn contact_with_threads(
    store: &dyn Store,
    contact_key: &str,
) -> Result<Option<(Versioned<Contact>, Vec<Versioned<Conversation>>)>> {
    Ok(contact_and_threads(store, contact_key, false).await?.map(|(contact, all)| (contact, open_newest_first(all))))
}

/// A contact and every thread of theirs, closed ones included, in no order.
pub(crate) async fn contact_with_all_threads(
    store: &dyn Store,
    contact_key: &str,
) -> Result<Option<(Versioned<Contact>, Vec<Versioned<Conversation>>)>> {
    contact_and_threads(store, contact_key, true).await
}

async fn contact_and_threads(
    store: &dyn Store,
    contact_key: &str,
    closed_too: bool,
) -> Result<Option<(Versioned<Contact>, Vec<Versioned<Conversation>>)>> {
    let items = store.contact_partition(contact_key, 1001).await?;
    let mut contact = None;
    let mut keys = Vec::new();
    for v in items {
        match v.item {
            Item::Contact(c) => contact = Some(Versioned { item: c, version: v.version }),
            Item::ContactThread { conversation_id, closed, .. } if closed_too || !closed => {
                keys.push(Key::conversation(&conversation_id))
            }
            _ => {}
        }
    }
    let Some(contact) = contact else { return Ok(None) };
    let mut convs = Vec::with_capacity(keys.len());
    for v in store.get_many(&keys).await?.into_iter().flatten() {
        convs.push(Versioned { item: Conversation::from_item(v.item)?, version: v.version });
    }
    Ok(Some((contact, convs)))
}

/// The contact's link to thread `c`, new.
pub(crate) fn new_thread_link(c: &Conversation) -> Write {
    put_new(Item::ContactThread { contact_key: c.contact_key.clone(), conversation_id: c.id.clone(), closed: false })
}

/// The contact's link to `after`, when the write that changes `before` into it closes or
/// reopens the thread; the thread's versioned put in the same commit guards it.
pub(crate) fn thread_link_change(before: &Conversation, after: &Conversation) -> Option<Write> {
    (before.closed != after.closed).then(|| Write::Put {
        item: Item::ContactThread {
            contact_key: after.contact_key.clone(),
            conversation_id: after.id.clone(),
            closed: after.closed,
        },
        cond: Cond::Always,
    })
}

/// The open ones of `threads`, newest outbound activity first.
pub(crate) fn open_newest_first(mut threads: Vec<Versioned<Conversation>>) -> Vec<Versioned<Conversation>> {
    threads.retain(|c| !c.item.closed);
    threads.sort_by(|a, b| {
        (b.item.last_outbound_at, b.item.last_activity_at).cmp(&(a.item.last_outbound_at, a.item.last_activity_at))
    });
    threads
}
