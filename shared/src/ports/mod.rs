//! What the outside world gives the use cases: storage with conditional writes (and the stream
//! of what each commit changed), queues, one-time timers, the clock, WhatsApp, pictures' bytes,
//! the write-once vault of the archive, and pushes to live connections. Adapters implement
//! these; use cases only see the traits.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::try_join_all;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{Contact, Conversation, ConversationId, Message, MessageId, UserId};
pub use crate::error::Cause;
use crate::meta::graph::{GraphError, OutboundRequest};
use crate::meta::webhook::StatusEvent;

pub mod change;
pub mod item;
pub use item::{
    directory_partition, directory_prefix, outbox_partition, ConsentChange, DirectoryUser, Item, Key, LegalHold,
    MediaRecord, INDEX_SHARDS, LEGAL_HOLDS, OUTBOX_SHARDS,
};

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

impl Cond {
    /// Whether the condition holds for an item at `current` (its live version, or none).
    pub fn holds(self, current: Option<u64>) -> bool {
        match self {
            Cond::Always => true,
            Cond::NotExists => current.is_none(),
            Cond::Version(v) => current == Some(v),
        }
    }
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

impl Write {
    /// The item it writes or checks.
    pub fn key(&self) -> Key {
        match self {
            Write::Put { item, .. } => item.key(),
            Write::Delete { key, .. } | Write::Check { key, .. } => key.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Write number `index` of the transaction failed its condition; nothing was written.
    #[error("condition failed on write {index}")]
    Conflict { index: usize },
    /// The transaction collided with another one in flight (DynamoDB's `TransactionConflict`)
    /// or was throttled, and nothing was written: no condition failed, so the same plan may be
    /// tried again.
    #[error("the transaction collided with another; nothing was written")]
    Busy,
    /// The transaction may or may not have been written: its answer was lost, or it is still in
    /// progress (DynamoDB's `TransactionInProgress`). Resubmitting the same transaction (same
    /// token) tells which, without writing twice; planning again could.
    #[error("the transaction's outcome is unknown")]
    Unknown(#[source] Cause),
    /// Refused as DynamoDB refuses it: over its limits (100 writes, 4 MB in all, 400 KB an
    /// item), or two writes of one item. Nothing was written, and trying again cannot help.
    #[error("the transaction is refused: {0}")]
    Invalid(String),
    #[error("stored item is corrupt")]
    Corrupt(#[source] Cause),
    /// Nothing was written (or, for a read, nothing was read).
    #[error("store unavailable")]
    Unavailable(#[source] Cause),
}

/// One all-or-nothing set of conditional writes, and the token that makes submitting it again
/// idempotent: a store that can answer `Unknown` answers a resubmission of a transaction that
/// did commit (within `IDEMPOTENCY_WINDOW`) with `Ok`, and writes nothing more (DynamoDB's
/// `ClientRequestToken`).
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    /// At most 36 characters (DynamoDB's limit).
    pub token: String,
    pub writes: Vec<Write>,
    /// What the writes changed, committed with them: the stream's entry of this commit.
    pub entry: ChangeEntry,
    /// Submitted before, with an unknown outcome: a store that cannot check the token (a single
    /// DynamoDB write has none) may then take a failed condition over an item that already is
    /// what this transaction makes as its own write, committed.
    pub resubmitted: bool,
}

impl Transaction {
    /// `writes` under a new token.
    pub fn new(writes: Vec<Write>) -> Transaction {
        Transaction { token: crate::domain::ids::new_ulid(), writes, entry: ChangeEntry::default(), resubmitted: false }
    }

    /// Refuses what DynamoDB would: over `MAX_TRANSACTION_WRITES` writes, an item over
    /// `MAX_ITEM_BYTES`, or over `MAX_TRANSACTION_BYTES` in all (items measured as their JSON
    /// and keys). Every store holds to these, so a plan that fits one fits all.
    pub fn check_limits(&self) -> Result<(), StoreError> {
        self.check_count()?;
        check_sizes(self.writes.iter().map(|w| match w {
            Write::Put { item, .. } => {
                let key = item.key();
                key.pk.len() + key.sk.len() + serde_json::to_vec(item).map_or(0, |b| b.len())
            }
            Write::Delete { key, .. } | Write::Check { key, .. } => key.pk.len() + key.sk.len(),
        }))
    }

    /// The count limit alone, for stores that measure sizes as they serialize.
    pub fn check_count(&self) -> Result<(), StoreError> {
        match self.writes.len() {
            n if n > MAX_TRANSACTION_WRITES => {
                Err(StoreError::Invalid(format!("{n} writes, over the {MAX_TRANSACTION_WRITES} a transaction takes")))
            }
            _ => Ok(()),
        }
    }
}

/// The size limits of `Transaction::check_limits`, over each write's size.
pub fn check_sizes(sizes: impl IntoIterator<Item = usize>) -> Result<(), StoreError> {
    let mut total = 0;
    for size in sizes {
        if size > MAX_ITEM_BYTES {
            return Err(StoreError::Invalid(format!("an item of {size} bytes, over {MAX_ITEM_BYTES}")));
        }
        total += size;
    }
    if total > MAX_TRANSACTION_BYTES {
        return Err(StoreError::Invalid(format!(
            "{total} bytes, over the {MAX_TRANSACTION_BYTES} a transaction takes"
        )));
    }
    Ok(())
}

/// DynamoDB's limits, which every store keeps.
pub const MAX_TRANSACTION_WRITES: usize = 100;
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
pub const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;
/// How long a committed transaction's token is remembered (DynamoDB: 10 minutes).
pub const IDEMPOTENCY_WINDOW: time::Duration = time::Duration::minutes(10);

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
    /// Commits all of `tx.writes` or none (see `Transaction` for resubmission and limits).
    async fn submit(&self, tx: &Transaction) -> Result<(), StoreError>;

    /// `writes` as one transaction of its own.
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.submit(&Transaction::new(writes)).await
    }

    /// A thread's messages in id (= creation) order, strictly after message `after`; newest
    /// first when `!ascending`.
    async fn messages(
        &self,
        conversation_id: &ConversationId,
        after: Option<&MessageId>,
        limit: usize,
        ascending: bool,
    ) -> Result<Vec<Versioned<Item>>, StoreError> {
        let after = after.map(|a| Key::message(conversation_id, a).sk);
        self.query(&Key::conversation(conversation_id).pk, "MSG#", after.as_deref(), limit, ascending).await
    }

    /// A thread's outgoing queue: its messages on their way to Meta, oldest first.
    async fn queued(&self, conversation_id: &ConversationId, limit: usize) -> Result<Vec<MessageId>, StoreError> {
        let found = self.query(&Key::conversation(conversation_id).pk, "QUEUED#", None, limit, true).await?;
        Ok(picked(found, |item| match item {
            Item::Queued { message_id, .. } => Some(message_id),
            _ => None,
        }))
    }

    /// A thread's held markers, oldest first.
    async fn held(&self, conversation_id: &ConversationId, limit: usize) -> Result<Vec<Versioned<Item>>, StoreError> {
        self.query(&Key::conversation(conversation_id).pk, "HELD#", None, limit, true).await
    }

    /// The threads a user is in, newest first, from before the id `before` if given.
    async fn memberships_before(
        &self,
        user_id: &UserId,
        before: Option<&ConversationId>,
        limit: usize,
    ) -> Result<Vec<ConversationId>, StoreError> {
        let after = before.map(|id| format!("CONV#{id}"));
        let found = self.query(&Key::profile(user_id).pk, "CONV#", after.as_deref(), limit, false).await?;
        Ok(picked(found, |item| match item {
            Item::Membership { conversation_id, .. } => Some(conversation_id),
            _ => None,
        }))
    }

    /// Ids of the threads a user belongs to.
    async fn memberships(&self, user_id: &UserId, limit: usize) -> Result<Vec<ConversationId>, StoreError> {
        let found = self.query(&Key::profile(user_id).pk, "CONV#", None, limit, true).await?;
        Ok(picked(found, |item| match item {
            Item::Membership { conversation_id, .. } => Some(conversation_id),
            _ => None,
        }))
    }

    /// A user's open live connections (AWS WebSockets).
    async fn connections(&self, user_id: &UserId) -> Result<Vec<Item>, StoreError> {
        let found = self.query(&Key::profile(user_id).pk, "WS#", None, 1000, true).await?;
        Ok(found.into_iter().map(|v| v.item).collect())
    }

    /// The first `limit` directory entries of one sub-organization and region whose name starts
    /// with `name_start` (any case), by name: only those are read.
    async fn directory(
        &self,
        sub_org: &str,
        region: &str,
        name_start: &str,
        limit: usize,
    ) -> Result<Vec<DirectoryUser>, StoreError> {
        let prefix = directory_prefix(name_start);
        let found = self.query(&directory_partition(sub_org, region), &prefix, None, limit, true).await?;
        Ok(picked(found, |item| match item {
            Item::DirectoryEntry(u) => Some(u),
            _ => None,
        }))
    }

    /// The open live connections of agents and admins (AWS WebSockets), who hear of threads
    /// nobody has claimed.
    async fn agent_connections(&self, limit: usize) -> Result<Vec<Item>, StoreError> {
        let shards: Vec<String> = (0..item::INDEX_SHARDS).map(item::agent_partition).collect();
        let found = try_join_all(shards.iter().map(|pk| self.query(pk, "WS#", None, limit, true))).await?;
        let mut all: Vec<Item> = found.into_iter().flatten().map(|v| v.item).collect();
        all.truncate(limit);
        Ok(all)
    }

    /// A contact's partition: the contact, and a link to each of their threads.
    async fn contact_partition(&self, contact_key: &str, limit: usize) -> Result<Vec<Versioned<Item>>, StoreError> {
        self.query(&Key::contact(contact_key).pk, "", None, limit, true).await
    }

    /// Where a thread's archive records are (`Segment`s), in chain order; newest first when
    /// `!ascending` (the first is then the chain's head).
    async fn segments(
        &self,
        conversation_id: &ConversationId,
        limit: usize,
        ascending: bool,
    ) -> Result<Vec<crate::archive::Segment>, StoreError> {
        let found = self.query(&Key::archive_partition(conversation_id), "SEG#", None, limit, ascending).await?;
        Ok(picked(found, |item| match item {
            Item::ArchiveSegment(s) => Some(s),
            _ => None,
        }))
    }

    /// Entries waiting in one outbox partition, oldest first.
    async fn outbox(&self, shard: u32, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let found = self.query(&outbox_partition(shard), "OUT#", None, limit, true).await?;
        Ok(picked(found, |item| match item {
            Item::Outbox(e) => Some(e),
            _ => None,
        }))
    }

    /// Outbox entries parked after failing too often, oldest first.
    async fn parked(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let found = self.query(item::PARKED, "OUT#", None, limit, true).await?;
        Ok(picked(found, |item| match item {
            Item::Parked(e) => Some(e),
            _ => None,
        }))
    }

    /// Ids of contact-started threads nobody has claimed, newest first, from before the id
    /// `before` if given: every shard read at once, merged.
    async fn query_unassigned(
        &self,
        before: Option<&ConversationId>,
        limit: usize,
    ) -> Result<Vec<ConversationId>, StoreError> {
        let shards: Vec<String> = (0..item::INDEX_SHARDS).map(item::unassigned_partition).collect();
        let after = before.map(|id| format!("CONV#{id}"));
        let found =
            try_join_all(shards.iter().map(|pk| self.query(pk, "CONV#", after.as_deref(), limit, false))).await?;
        let mut ids = picked(found.into_iter().flatten().collect(), |item| match item {
            Item::Unassigned { conversation_id } => Some(conversation_id),
            _ => None,
        });
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.truncate(limit);
        Ok(ids)
    }
}

/// What `pick` takes of the items found, in their order.
fn picked<T>(found: Vec<Versioned<Item>>, pick: impl FnMut(Item) -> Option<T>) -> Vec<T> {
    found.into_iter().map(|v| v.item).filter_map(pick).collect()
}

/// An outbound message to dispatch: FIFO per conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundJob {
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    pub generation: u32,
    /// Times a waiting record carried it and sent it again (its deduplication id changes).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub carried: u32,
}

impl OutboundJob {
    pub fn dedupe_id(&self) -> String {
        match self.carried {
            0 => format!("{}-{}", self.message_id, self.generation),
            n => format!("{}-{}-{n}", self.message_id, self.generation),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("queue unavailable")]
pub struct QueueError(#[source] pub Cause);

/// What a queue consumer did with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Done,
    /// Leave it on the queue, invisible for this long (it keeps its place in its group).
    RetryAfter(Duration),
}

/// The two queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    Outbound,
    Receipts,
}

#[async_trait]
pub trait Queue: Send + Sync {
    /// Onto the outbound FIFO queue: group = conversation, dedupe = message and generation.
    async fn send_outbound(&self, job: OutboundJob) -> Result<(), QueueError>;
    /// Onto the receipts queue: a status, or a contact's picture to fetch.
    async fn send_receipt(&self, job: ReceiptsJob) -> Result<(), QueueError>;
    /// Sends a received record's job (`body`) again, as a new message behind the rest of its
    /// group: a FIFO follower that a waiting record carries (its receive count starts over).
    async fn send_again(&self, kind: QueueKind, body: &str) -> Result<(), QueueError> {
        let unreadable = |e: serde_json::Error| QueueError(Box::new(e));
        match kind {
            QueueKind::Outbound => {
                let mut job: OutboundJob = serde_json::from_str(body).map_err(unreadable)?;
                job.carried += 1;
                self.send_outbound(job).await
            }
            QueueKind::Receipts => self.send_receipt(serde_json::from_str(body).map_err(unreadable)?).await,
        }
    }
    /// Makes a received message (`receipt`: its receipt handle) visible again after `after`
    /// (SQS `ChangeMessageVisibility`), so a retry waits as long as asked rather than the
    /// queue's fixed visibility timeout. Queues that pace redelivery themselves ignore it.
    async fn delay(&self, _queue: QueueKind, _receipt: &str, _after: Duration) -> Result<(), QueueError> {
        Ok(())
    }
}

/// A one-time timer; its name is deterministic so arming it again replaces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Timer {
    WindowExpiry {
        contact_key: String,
    },
    OptinRetry {
        conversation_id: ConversationId,
    },
    /// 15 minutes after a send whose answer was lost: fail it as `delivery_unknown` unless a
    /// status webhook settled it.
    DeliveryDeadline {
        conversation_id: ConversationId,
        message_id: MessageId,
    },
    /// Publish what the outbox still holds (a recurring schedule on AWS, never armed by code).
    OutboxSweep,
    /// `CONNECTOR_HELD_TTL` after a message was held: fail it as `held_expired` if still held.
    HeldExpiry {
        conversation_id: ConversationId,
        message_id: MessageId,
    },
    /// `CONNECTOR_WINDOW_REMINDER_SECS` before the contact's window closes: tell their threads.
    WindowReminder {
        contact_key: String,
    },
    /// Run the e-discovery export `id` (`POST /admin/exports` arms it to fire at once).
    Export {
        id: String,
    },
    /// Erase what is past retention and not held (a recurring schedule on AWS, hourly; the
    /// local runner fires it hourly on the connector's clock).
    RetentionSweep,
}

impl Timer {
    pub fn name(&self) -> String {
        match self {
            Timer::WindowExpiry { contact_key } => format!("window-{}", sanitize(contact_key)),
            Timer::OptinRetry { conversation_id } => format!("optin-retry-{conversation_id}"),
            Timer::DeliveryDeadline { message_id, .. } => format!("delivery-{message_id}"),
            Timer::OutboxSweep => "outbox-sweep".into(),
            Timer::HeldExpiry { message_id, .. } => format!("held-{message_id}"),
            Timer::WindowReminder { contact_key } => format!("reminder-{}", sanitize(contact_key)),
            Timer::Export { id } => format!("export-{}", sanitize(id)),
            Timer::RetentionSweep => "retention-sweep".into(),
        }
    }
}

/// Schedule names allow `[0-9a-zA-Z-_.]`; business-scoped ids may hold other characters.
fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' { c } else { '_' }).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The time has passed: EventBridge Scheduler refuses a one-time schedule in the past (the
    /// caller fires the timer itself instead).
    #[error("the timer's time has passed")]
    Past,
    #[error("scheduler unavailable")]
    Unavailable(#[source] Cause),
}

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
    /// `POST /{phone-number-id}/media` (multipart, streamed: `size` bytes); Meta's media id.
    async fn upload_media(&self, body: ByteStream, size: u64, mime_type: &str) -> Result<String, GraphError>;
    /// `GET /{media-id}`: where to download a contact's picture (valid 5 minutes).
    async fn media_info(&self, meta_id: &str) -> Result<MediaInfo, GraphError>;
    /// Downloads `url` with the bearer token, as it arrives; refuses up front a file that says
    /// it is over `max` bytes (the reader counts what actually comes).
    async fn download(&self, url: &str, max: usize) -> Result<ByteStream, GraphError>;
    /// The approved message templates (an adapter may cache them for a few minutes).
    async fn templates(&self) -> Result<Vec<TemplateInfo>, GraphError>;
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The client disconnected: forget the connection.
    #[error("the connection is gone")]
    Gone,
    #[error("push failed")]
    Failed(#[source] Cause),
}

/// Sends one message to a client's live connection (API Gateway's WebSocket management API).
#[async_trait]
pub trait Push: Send + Sync {
    async fn post(&self, connection_id: &str, payload: &[u8]) -> Result<(), PushError>;
}

/// An approved template as `GET /templates` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateInfo {
    pub name: String,
    pub language: String,
    pub category: String,
    /// How many body parameters it takes.
    pub params: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("media store unavailable")]
pub struct MediaStoreError(#[source] pub Cause);

/// A file's bytes as they come, in chunks: never a whole file in memory.
pub type ByteStream = futures_util::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>;

/// `bytes` as a `ByteStream` (a file already in memory: a small upload, a test's).
pub fn byte_stream(bytes: impl Into<bytes::Bytes>) -> ByteStream {
    let bytes = bytes.into();
    Box::pin(futures_util::stream::once(async move { Ok(bytes) }))
}

/// Where file bytes live: the local disk, or S3. Every file comes in as an upload (named by
/// `upload`: a client's, or a download from Meta), is read back to be checked, and is then
/// kept under its id by `keep`; bytes stream both ways, so memory stays flat whatever the size.
#[async_trait]
pub trait MediaStore: Send + Sync {
    /// Writes an upload from `body`; `Ok(false)` (and nothing kept) once it passes `max` bytes.
    async fn put_upload(&self, upload: &str, body: ByteStream, max: u64) -> Result<bool, MediaStoreError>;
    async fn open_upload(&self, upload: &str) -> Result<Option<ByteStream>, MediaStoreError>;
    /// Keeps the upload as the file `id` (the upload stays until `discard_upload`); doing it
    /// again is harmless.
    async fn keep(&self, upload: &str, id: &str, mime_type: &str) -> Result<(), MediaStoreError>;
    async fn discard_upload(&self, upload: &str) -> Result<(), MediaStoreError>;
    async fn open(&self, id: &str) -> Result<Option<ByteStream>, MediaStoreError>;
    /// Erases the file `id` (past its retention); erasing one that is gone is no error.
    async fn remove(&self, id: &str) -> Result<(), MediaStoreError>;
    /// A URL the client may PUT the upload to itself (with `mime_type` as its Content-Type),
    /// valid for `ttl`; `None` where the API takes the bytes itself.
    async fn upload_url(
        &self,
        _upload: &str,
        _mime_type: &str,
        _ttl: std::time::Duration,
    ) -> Result<Option<String>, MediaStoreError> {
        Ok(None)
    }
    /// A URL the client may GET the file from itself, valid for `ttl`; `None` where the API
    /// serves the bytes itself.
    async fn download_url(&self, _id: &str, _ttl: std::time::Duration) -> Result<Option<String>, MediaStoreError> {
        Ok(None)
    }
}

/// A contact's file to fetch from Meta, on the receipts queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaFetch {
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    /// Our id for it.
    pub media_id: String,
    pub meta_id: String,
    pub sha256: Option<String>,
    /// Absent from jobs queued when only pictures were fetched.
    #[serde(default = "picture")]
    pub kind: crate::domain::message::FileKind,
}

fn picture() -> crate::domain::message::FileKind {
    crate::domain::message::FileKind::Image
}

/// What the receipts queue carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptsJob {
    Status(StatusEvent),
    FetchMedia(MediaFetch),
}

#[derive(Debug, thiserror::Error)]
#[error("archive unavailable")]
pub struct ArchiveError(#[source] pub Cause);

/// Write-once storage for the archive's records: on AWS an S3 bucket under Object Lock in
/// compliance mode, where no one, the account's root included, can change or delete an object
/// before its retention ends; locally the data directory's vault. A name is written once: a
/// second put of the same bytes is a no-op, of other bytes an error.
#[async_trait]
pub trait Vault: Send + Sync {
    async fn put(&self, name: &str, body: Vec<u8>) -> Result<(), ArchiveError>;
    /// The object, or `None` when there is none by that name.
    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, ArchiveError>;
    /// The names that start with `prefix`, in order.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, ArchiveError>;
    /// Puts a legal hold on `name`, or lifts it (S3 Object Lock's: no version of it can be
    /// deleted while it is on, whatever its retention). Where the store keeps none (locally),
    /// nothing: the table's holds are what the record's tools read there.
    async fn hold(&self, _name: &str, _on: bool) -> Result<(), ArchiveError> {
        Ok(())
    }
    /// Whether `name` is under a legal hold; `None` where the store keeps none.
    async fn held(&self, _name: &str) -> Result<Option<bool>, ArchiveError> {
        Ok(None)
    }
    /// Up to `limit` names that start with `prefix` and sort after `after`, in order.
    async fn list_after(&self, prefix: &str, after: &str, limit: usize) -> Result<Vec<String>, ArchiveError> {
        let names = self.list(prefix).await?;
        Ok(names.into_iter().filter(|n| n.as_str() > after).take(limit).collect())
    }
    /// Erases `name` past its retention, every version of it: the retention sweep's alone. On
    /// S3, Object Lock refuses it within retention or under a legal hold, whoever asks.
    async fn erase(&self, name: &str) -> Result<(), ArchiveError>;
}

/// The record's search index failed (the engine could not be reached, or refused the query).
#[derive(Debug, thiserror::Error)]
#[error("search unavailable")]
pub struct IndexError(#[source] pub Cause);

/// The compliance officer's search over the record (CONTRACT.md section 8): message records by
/// the text they showed. Locally SQLite FTS5, fed by the archiver; on AWS Amazon Athena over the
/// archive's objects themselves, so there is nothing to feed.
#[async_trait]
pub trait RecordIndex: Send + Sync {
    /// Takes in the message records among `records`; a record taken twice is found once.
    async fn add(&self, records: &[crate::archive::ArchiveRecord]) -> Result<(), IndexError>;
    /// Up to `filter.limit + 1` hits of `filter` (its words and period, past its cursor) among
    /// `threads` (every thread when `None`), newest first (`search::Hit::order`).
    async fn search(
        &self,
        filter: &crate::domain::search::Filter,
        threads: Option<&[ConversationId]>,
    ) -> Result<Vec<crate::domain::search::Hit>, IndexError>;
    /// Drops the message records among `records` (the retention sweep's); where the engine
    /// reads the archive's objects themselves (Athena), erasing them is enough.
    async fn forget(&self, records: &[crate::archive::ArchiveRecord]) -> Result<(), IndexError>;
}

/// The journal could not take records.
#[derive(Debug, thiserror::Error)]
#[error("journal unavailable")]
pub struct JournalError(#[source] pub Cause);

/// The journal for archive vendors: every record, once the chain holds it, as one event a
/// vendor's connector subscribes to (EventBridge on AWS, a JSON Lines file locally). At least
/// once: a batch archived again publishes its records again (a vendor keeps one per
/// `conversation_id` and `seq`).
#[async_trait]
pub trait RecordJournal: Send + Sync {
    async fn publish(&self, records: &[crate::archive::ArchiveRecord]) -> Result<(), JournalError>;
}

/// No journal (none configured, or a function that archives nothing): takes every record.
pub struct NoJournal;

#[async_trait]
impl RecordJournal for NoJournal {
    async fn publish(&self, _: &[crate::archive::ArchiveRecord]) -> Result<(), JournalError> {
        Ok(())
    }
}

/// What a commit asks to happen once it has committed: written in the same transaction as the
/// state (the outbox), then published at least once by the relay. Every effect is idempotent
/// downstream: queue messages carry dedupe ids, timers have deterministic names, notices and
/// releases re-check the state they change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", content = "job", rename_all = "snake_case")]
// Entries are built and published one at a time, never held in bulk.
#[allow(clippy::large_enum_variant)]
pub enum Effect {
    /// Onto the outbound FIFO queue.
    Outbound(OutboundJob),
    /// Onto the receipts queue (a contact's picture to fetch).
    Receipt(ReceiptsJob),
    /// Arm a one-time timer.
    Timer {
        timer: Timer,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Queue these threads' held messages, in order, if the contact now allows it.
    ReleaseHeld { conversation_ids: Vec<ConversationId> },
    /// Post a notice (and archive why: `archive`, re-addressed to each thread) in threads other
    /// than the one the commit changed, one commit each, so a commit's size does not grow with
    /// the contact's number of threads.
    Notice {
        conversation_ids: Vec<ConversationId>,
        notice: crate::domain::notice::Notice,
        archive: Option<crate::archive::ArchiveEvent>,
    },
}

impl Effect {
    /// The same notice in each of these threads: one entry each, so that a thread that cannot
    /// take it now holds back no other.
    pub fn notices(
        conversation_ids: Vec<ConversationId>,
        notice: crate::domain::notice::Notice,
        archive: Option<crate::archive::ArchiveEvent>,
    ) -> Vec<Effect> {
        conversation_ids
            .into_iter()
            .map(|id| Effect::Notice { conversation_ids: vec![id], notice: notice.clone(), archive: archive.clone() })
            .collect()
    }

    /// The held messages of each of these threads released: one entry each.
    pub fn releases(conversation_ids: Vec<ConversationId>) -> Vec<Effect> {
        conversation_ids.into_iter().map(|id| Effect::ReleaseHeld { conversation_ids: vec![id] }).collect()
    }

    /// What its order matters against: a thread's effects are published in commit order.
    pub fn order_key(&self) -> Option<&str> {
        match self {
            Effect::Outbound(job) => Some(job.conversation_id.as_str()),
            Effect::Receipt(ReceiptsJob::FetchMedia(f)) => Some(f.conversation_id.as_str()),
            Effect::ReleaseHeld { conversation_ids } | Effect::Notice { conversation_ids, .. } => {
                conversation_ids.first().map(ConversationId::as_str)
            }
            Effect::Receipt(ReceiptsJob::Status(_)) | Effect::Timer { .. } => None,
        }
    }
}

/// One effect waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// A ULID: entries sort in commit order within a partition.
    pub id: String,
    /// Its partition: that of its `order_key` (or its own id), so one thread's entries share a
    /// partition and the sweep publishes them in order.
    pub shard: u32,
    pub effect: Effect,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Failed publishes so far (the sweep parks it at `relay::MAX_PUBLISH_ATTEMPTS`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl OutboxEntry {
    pub fn new(id: String, effect: Effect, created_at: OffsetDateTime) -> OutboxEntry {
        let shard = item::outbox_shard(effect.order_key().unwrap_or(&id));
        OutboxEntry { id, shard, effect, created_at, attempts: 0 }
    }
}

/// What one commit changed, written in the same transaction as its state: references for the
/// live feed (`changes`), and the events its archive records are made of (`records`, each with
/// the item of its thread that carried it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeEntry {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<change::Change>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<crate::archive::Journaled>,
}

impl ChangeEntry {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.records.is_empty()
    }
}

/// A commit's archive events at their place in the change stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEntry {
    pub position: crate::archive::Position,
    pub records: Vec<crate::archive::Journaled>,
}

/// The committed changes in commit order, each at a position that only grows (the live events'
/// cursor).
#[async_trait]
pub trait Feed: Send + Sync {
    /// Up to `limit` changes after position `cursor`, oldest first.
    async fn after(&self, cursor: u64, limit: usize) -> Result<Vec<(u64, change::Change)>, StoreError>;
    /// The position of the newest change (0 when none).
    async fn head(&self) -> Result<u64, StoreError>;
    /// Notified after a commit that added changes (in this process).
    fn notify(&self) -> std::sync::Arc<tokio::sync::Notify>;
}

/// The archive's side of the change stream, where the archiver pulls it (the embedded store,
/// the memory store); on AWS the table's stream pushes the same entries to the archiver.
#[async_trait]
pub trait ChangeStream: Send + Sync {
    /// Up to `limit` entries with archive events after `position` (from the first when
    /// `None`), oldest first. Entries may be left out once archived (`release`).
    async fn entries_after(
        &self,
        position: Option<&crate::archive::Position>,
        limit: usize,
    ) -> Result<Vec<StreamEntry>, StoreError>;
    /// Notified after a commit with archive events (in this process).
    fn archive_notify(&self) -> std::sync::Arc<tokio::sync::Notify>;
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
                    other => Err(StoreError::Corrupt(
                        format!(concat!("expected ", stringify!($variant), ", found {:?}"), other.key()).into(),
                    )),
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
