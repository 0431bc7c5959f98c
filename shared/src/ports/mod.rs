//! What the outside world gives the use cases: storage with conditional writes, queues, one-time
//! timers, the clock and WhatsApp. Adapters implement these; use cases only see the traits.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{Contact, Conversation, Message};
use crate::meta::graph::{GraphError, OutboundRequest};
use crate::meta::webhook::StatusEvent;

pub mod item;
pub use item::{directory_partition, DirectoryUser, Item, Key, MediaRecord};

/// A stored item and the version a conditional write must name to replace it.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub item: T,
    pub version: u64,
}

/// The condition a write holds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    Always,
    /// No live item under the key (an expired one counts as absent).
    NotExists,
    /// The item exists with exactly this version.
    Version(u64),
}

#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Write {
    Put {
        item: Item,
        cond: Cond,
    },
    Delete {
        key: Key,
        cond: Cond,
    },
    /// Holds the transaction to a condition on an item it does not change.
    Check {
        key: Key,
        cond: Cond,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Write number `index` of the transaction failed its condition; nothing was written.
    #[error("condition failed on write {index}")]
    Conflict { index: usize },
    #[error("stored item is corrupt: {0}")]
    Corrupt(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// Items in one table: `get`, ordered `query` within a partition, and all-or-nothing
/// conditional `transact`. A put increments the version (a new item starts at 1).
#[async_trait]
pub trait Store: Send + Sync {
    async fn get(&self, key: &Key) -> Result<Option<Versioned<Item>>, StoreError>;
    /// Items of partition `pk` whose sort key starts with `prefix`, in sort-key order (reversed
    /// when `!ascending`), strictly after `after` when given.
    async fn query(
        &self,
        pk: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        ascending: bool,
    ) -> Result<Vec<Versioned<Item>>, StoreError>;
    /// Several items at once (a batch read), in the order of `keys`.
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Versioned<Item>>>, StoreError>;
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError>;
}

/// An outbound message to dispatch: FIFO per conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundJob {
    pub conversation_id: String,
    pub message_id: String,
    pub generation: u32,
}

impl OutboundJob {
    pub fn dedupe_id(&self) -> String {
        format!("{}-{}", self.message_id, self.generation)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("queue unavailable: {0}")]
pub struct QueueError(pub String);

/// What a queue consumer did with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Done,
    /// Leave it on the queue, invisible for this long (it keeps its place in its group).
    RetryAfter(Duration),
}

#[async_trait]
pub trait Queue: Send + Sync {
    /// Onto the outbound FIFO queue: group = conversation, dedupe = message and generation.
    async fn send_outbound(&self, job: OutboundJob) -> Result<(), QueueError>;
    /// Onto the receipts queue: a status, or a contact's picture to fetch.
    async fn send_receipt(&self, job: ReceiptsJob) -> Result<(), QueueError>;
}

/// A one-time timer; its name is deterministic so arming it again replaces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Timer {
    WindowExpiry { contact_key: String },
    OptinRetry { conversation_id: String },
}

impl Timer {
    pub fn name(&self) -> String {
        match self {
            Timer::WindowExpiry { contact_key } => format!("window-{}", sanitize(contact_key)),
            Timer::OptinRetry { conversation_id } => format!("optin-retry-{conversation_id}"),
        }
    }
}

/// Schedule names allow `[0-9a-zA-Z-_.]`; business-scoped ids may hold other characters.
fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' { c } else { '_' }).collect()
}

#[derive(Debug, thiserror::Error)]
#[error("scheduler unavailable: {0}")]
pub struct SchedulerError(pub String);

#[async_trait]
pub trait Scheduler: Send + Sync {
    /// Arms (or re-arms) `timer` to fire at `at`.
    async fn schedule(&self, timer: &Timer, at: OffsetDateTime) -> Result<(), SchedulerError>;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// What `GET /{media-id}` tells about a contact's picture.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MediaInfo {
    pub url: String,
    #[serde(default)]
    pub mime_type: String,
    /// As Meta gives it (hex or base64 of SHA-256; both are accepted when checking).
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub file_size: Option<u64>,
}

/// Meta's Cloud API, or the sandbox standing in for it.
#[async_trait]
pub trait WhatsApp: Send + Sync {
    /// Sends one message; the wamid on acceptance.
    async fn send(&self, req: &OutboundRequest) -> Result<String, GraphError>;
    /// `POST /{phone-number-id}/media` (multipart); Meta's media id.
    async fn upload_media(&self, bytes: Vec<u8>, mime_type: &str) -> Result<String, GraphError>;
    /// `GET /{media-id}`: where to download a contact's picture (valid 5 minutes).
    async fn media_info(&self, meta_id: &str) -> Result<MediaInfo, GraphError>;
    /// Downloads `url` with the bearer token, refusing more than `max` bytes.
    async fn download(&self, url: &str, max: usize) -> Result<Vec<u8>, GraphError>;
}

#[derive(Debug, thiserror::Error)]
#[error("media store unavailable: {0}")]
pub struct MediaStoreError(pub String);

/// Where picture bytes live: the local disk, or S3.
#[async_trait]
pub trait MediaStore: Send + Sync {
    async fn put(&self, id: &str, bytes: Vec<u8>, mime_type: &str) -> Result<(), MediaStoreError>;
    async fn get(&self, id: &str) -> Result<Option<Vec<u8>>, MediaStoreError>;
}

/// A contact's picture to fetch from Meta, on the receipts queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaFetch {
    pub conversation_id: String,
    pub message_id: String,
    /// Our id for it.
    pub media_id: String,
    pub meta_id: String,
    pub sha256: Option<String>,
}

/// What the receipts queue carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptsJob {
    Status(StatusEvent),
    FetchMedia(MediaFetch),
}

#[derive(Debug, thiserror::Error)]
#[error("archive unavailable: {0}")]
pub struct ArchiveError(pub String);

/// The compliance archive: append-only, one hash chain per thread.
#[async_trait]
pub trait Archive: Send + Sync {
    /// Appends the events, in order, each to its thread's chain.
    async fn append(&self, events: Vec<crate::archive::ArchiveEvent>) -> Result<(), ArchiveError>;
    /// A thread's records, oldest first.
    async fn read(&self, conversation_id: &str) -> Result<Vec<crate::archive::ArchiveRecord>, ArchiveError>;
}

/// Typed views of the items, for use cases that read one kind.
pub trait ItemKind: Sized {
    fn from_item(item: Item) -> Result<Self, StoreError>;
}

macro_rules! item_kind {
    ($t:ty, $variant:ident) => {
        impl ItemKind for $t {
            fn from_item(item: Item) -> Result<Self, StoreError> {
                match item {
                    Item::$variant(v) => Ok(v),
                    other => Err(StoreError::Corrupt(format!(
                        concat!("expected ", stringify!($variant), ", found {:?}"),
                        other.key()
                    ))),
                }
            }
        }
    };
}
item_kind!(Contact, Contact);
item_kind!(Conversation, Conversation);
item_kind!(Message, Message);
item_kind!(DirectoryUser, Profile);
item_kind!(MediaRecord, Media);
