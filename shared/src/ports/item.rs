//! The items of the one table and their keys (DESIGN.md "State"). Adapters persist an `Item`
//! however suits them; the keys and the conditional semantics are the same everywhere.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{Contact, Conversation, ConversationId, Message, MessageId, UserId};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn contact(contact_key: &str) -> Key {
        Key { pk: format!("CONTACT#{contact_key}"), sk: "CONTACT".into() }
    }
    /// The partition of a contact's consent history: one item per change, oldest first.
    pub fn consent_history(contact_key: &str) -> String {
        format!("CONSENT#{contact_key}")
    }
    pub fn consent_change(contact_key: &str, id: &str) -> Key {
        Key { pk: Key::consent_history(contact_key), sk: format!("AT#{id}") }
    }
    pub fn contact_alias(user_id: &str) -> Key {
        Key { pk: format!("BSUID#{user_id}"), sk: "BSUID".into() }
    }
    pub fn conversation(id: &ConversationId) -> Key {
        Key { pk: format!("CONV#{id}"), sk: "META".into() }
    }
    pub fn message(conv: &ConversationId, msg: &MessageId) -> Key {
        Key { pk: format!("CONV#{conv}"), sk: format!("MSG#{msg}") }
    }
    pub fn held(conv: &ConversationId, msg: &MessageId) -> Key {
        Key { pk: format!("CONV#{conv}"), sk: format!("HELD#{msg}") }
    }
    /// A thread's message on its way to Meta (queued, or claimed and not yet settled), in the
    /// thread's outgoing queue, which dispatch sends in order.
    pub fn queued(conv: &ConversationId, msg: &MessageId) -> Key {
        Key { pk: format!("CONV#{conv}"), sk: format!("QUEUED#{msg}") }
    }
    pub fn client_id(conv: &ConversationId, user: &UserId, client_id: &str) -> Key {
        Key { pk: format!("CONV#{conv}"), sk: format!("CLIENT#{user}#{client_id}") }
    }
    pub fn wamid(wamid: &str) -> Key {
        Key { pk: format!("WAMID#{wamid}"), sk: "WAMID".into() }
    }
    pub fn membership(user: &UserId, conv: &ConversationId) -> Key {
        Key { pk: format!("USER#{user}"), sk: format!("CONV#{conv}") }
    }
    pub fn contact_thread(contact_key: &str, conv: &ConversationId) -> Key {
        Key { pk: format!("CONTACT#{contact_key}"), sk: format!("CONV#{conv}") }
    }
    pub fn profile(user: &UserId) -> Key {
        Key { pk: format!("USER#{user}"), sk: "PROFILE".into() }
    }
    /// A user's entry in their sub-organization and region, sorted by name (any case) so that a
    /// search reads only the names starting with what was typed.
    pub fn directory_entry(u: &DirectoryUser) -> Key {
        Key {
            pk: directory_partition(&u.sub_org, &u.region),
            sk: format!("{}\u{1}{}", directory_prefix(&u.name), u.user_id),
        }
    }
    pub fn media(id: &str) -> Key {
        Key { pk: format!("MEDIA#{id}"), sk: "MEDIA".into() }
    }
    /// Zero-padded so segments sort by their first sequence number.
    pub fn archive_segment(conv: &ConversationId, first: u64) -> Key {
        Key { pk: Key::archive_partition(conv), sk: format!("SEG#{first:012}") }
    }
    /// How far the archiver has read the change stream, where it pulls it (embedded, memory).
    pub fn legal_hold(id: &str) -> Key {
        Key { pk: LEGAL_HOLDS.into(), sk: format!("HOLD#{id}") }
    }
    /// How far the retention sweep has gone through the archive's objects, in name order.
    pub fn retention_mark() -> Key {
        Key { pk: RETENTION.into(), sk: "MARK".into() }
    }
    /// An object past retention that a legal hold kept: the sweep asks again each time.
    pub fn kept_object(object: &str) -> Key {
        Key { pk: RETENTION.into(), sk: format!("KEPT#{object}") }
    }
    pub fn export(id: &str) -> Key {
        Key { pk: format!("EXPORT#{id}"), sk: "META".into() }
    }
    pub fn archiver() -> Key {
        Key { pk: "ARCHIVER".into(), sk: "POSITION".into() }
    }
    pub fn dedupe(id: &str) -> Key {
        Key { pk: format!("DEDUPE#{id}"), sk: "DEDUPE".into() }
    }
    /// The index of contact-started threads nobody has claimed, spread over `INDEX_SHARDS`.
    pub fn unassigned(conv: &ConversationId) -> Key {
        Key { pk: unassigned_partition(shard_of(conv.as_str(), INDEX_SHARDS)), sk: format!("CONV#{conv}") }
    }
    /// The partition of a thread's archive segments (where its records are; the last is its head).
    pub fn archive_partition(conv: &ConversationId) -> String {
        format!("ARCHIVE#{conv}")
    }
    /// A user's read mark in one thread (beside their memberships, outside the `CONV#` prefix).
    pub fn read_mark(user: &UserId, conv: &ConversationId) -> Key {
        Key { pk: format!("USER#{user}"), sk: format!("READ#{conv}") }
    }
    /// One of a user's live WebSocket connections (AWS), beside their memberships.
    pub fn connection(user: &UserId, connection_id: &str) -> Key {
        Key { pk: format!("USER#{user}"), sk: format!("WS#{connection_id}") }
    }
    /// An agent's or admin's connection, in the index the unclaimed threads' changes go to,
    /// spread over `INDEX_SHARDS`.
    pub fn agent_connection(connection_id: &str) -> Key {
        Key { pk: agent_partition(shard_of(connection_id, INDEX_SHARDS)), sk: format!("WS#{connection_id}") }
    }
    /// Whose a WebSocket connection is (`$disconnect` knows only its id).
    pub fn connection_owner(connection_id: &str) -> Key {
        Key { pk: format!("WS#{connection_id}"), sk: "OWNER".into() }
    }
    /// An outbox entry in its partition (see `OutboxEntry::shard`), sorted by its ULID.
    pub fn outbox(shard: u32, id: &str) -> Key {
        Key { pk: outbox_partition(shard), sk: format!("OUT#{id}") }
    }
    /// An outbox entry parked after failing too often, by its ULID.
    pub fn parked(id: &str) -> Key {
        Key { pk: PARKED.into(), sk: format!("OUT#{id}") }
    }
}

/// The partition of the retention sweep's progress and of the objects holds kept.
pub const RETENTION: &str = "RETENTION";

/// Partitions the unassigned threads, and the agents' connections, are each spread over: no
/// hot key when a business's contacts write first in bulk or its agents reconnect at once. A
/// listing reads every shard.
pub const INDEX_SHARDS: u32 = 16;

/// One partition of the unassigned-threads index.
pub fn unassigned_partition(shard: u32) -> String {
    format!("UNASSIGNED#{shard:02}")
}

/// One partition of the agents' connections.
pub fn agent_partition(shard: u32) -> String {
    format!("WSAGENTS#{shard:02}")
}

/// The partition of parked outbox entries.
pub const PARKED: &str = "PARKED";

/// Partitions the outbox is spread over (the relay's sweep reads each).
pub const OUTBOX_SHARDS: u32 = 64;

pub fn outbox_partition(shard: u32) -> String {
    format!("OUTBOX#{shard}")
}

/// The outbox partition for entries ordered by `key`: the same key, the same partition.
pub fn outbox_shard(key: &str) -> u32 {
    shard_of(key, OUTBOX_SHARDS)
}

/// Which of `shards` partitions `key` goes to.
pub fn shard_of(key: &str, shards: u32) -> u32 {
    // FNV-1a: stable across processes and builds, unlike the std hasher.
    let h = key.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ b as u32).wrapping_mul(0x0100_0193));
    h % shards
}

/// The partition listing the users of one sub-organization and region.
pub fn directory_partition(sub_org: &str, region: &str) -> String {
    format!("DIR#{sub_org}#{region}")
}

/// The sort-key prefix of every directory entry whose name starts with `name_start` (any
/// case). U+0001 ends the name: it sorts before any character a name holds, so "Al" lists
/// before "Alan", and a user id cannot be read as the end of a name.
pub fn directory_prefix(name_start: &str) -> String {
    format!("NAME#{}", name_start.to_lowercase())
}

/// An employee as the directory knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryUser {
    pub user_id: UserId,
    pub name: String,
    pub sub_org: String,
    pub region: String,
    pub locale: String,
    pub whatsapp_enabled: bool,
    /// Written by an admin (`PUT /directory/users/{id}`): then this profile, not the user's
    /// token, says their sub-organization, region and whether they may use WhatsApp.
    #[serde(default)]
    pub managed: bool,
}

/// The partition of every legal hold: there are few, and each is read by every archiver batch.
pub const LEGAL_HOLDS: &str = "HOLDS";

/// A legal hold (`POST /admin/legal-holds`): what it covers (a contact's threads, or one
/// thread), why, who placed it and when; and who released it, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalHold {
    pub id: String,
    pub contact: Option<crate::domain::Phone>,
    pub conversation_id: Option<ConversationId>,
    pub reason: String,
    pub by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub released_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_by: Option<UserId>,
}

/// A picture: uploaded by an employee or received from a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaRecord {
    pub id: String,
    /// The uploading user, or the contact.
    pub owner: crate::domain::Sender,
    pub mime_type: String,
    pub size: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// Meta's media id once uploaded, and when (uploaded ids live 30 days).
    pub meta_id: Option<String>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub meta_uploaded_at: Option<OffsetDateTime>,
    /// Threads it was sent or received in: their participants may fetch it.
    pub conversations: Vec<ConversationId>,
    /// Per thread, the newest message that carries it: a participant who joined without the
    /// history may fetch it only if they may see that message.
    #[serde(default)]
    pub latest_message: std::collections::BTreeMap<ConversationId, MessageId>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// One change of a contact's consent, from any source, in a thread or not (CONTRACT.md
/// section 7): the contact's consent history. Written by the commit that makes the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentChange {
    pub contact_key: String,
    /// A ULID: the history's order.
    pub id: String,
    /// What it became: `requested`, `opted_in`, `opted_out`, `marketing_opted_out`.
    pub consent: String,
    /// `optin_request`, `button`, `keyword`, `stop`, `meta_131050`, `user_preferences`, ...
    pub source: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The thread it came through; none for a change while the contact had no thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<ConversationId>,
}

/// Every kind of item, tagged so the stored form names its kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// Items are moved one at a time, never held in bulk: boxing would only add allocations.
#[allow(clippy::large_enum_variant)]
#[serde(tag = "item", rename_all = "snake_case")]
pub enum Item {
    Contact(Contact),
    ConsentChange(ConsentChange),
    /// A business-scoped user id pointing at the contact it belongs to.
    ContactAlias {
        user_id: String,
        contact_key: String,
    },
    Conversation(Conversation),
    Message(Message),
    /// A pending message of a conversation, in order (its id is a ULID).
    Held {
        conversation_id: ConversationId,
        message_id: MessageId,
    },
    /// A message on its way to Meta, in its thread's outgoing queue: written with the job that
    /// queues it, gone once dispatch settled it (accepted, failed, held again, or waiting for a
    /// status after a lost answer).
    Queued {
        conversation_id: ConversationId,
        message_id: MessageId,
    },
    /// A `client_id` already used by this user in this conversation.
    ClientId {
        conversation_id: ConversationId,
        user_id: UserId,
        client_id: String,
        message_id: MessageId,
    },
    /// Meta's id of one attempt of one of our messages, or of an inbound message.
    Wamid {
        wamid: String,
        conversation_id: ConversationId,
        message_id: MessageId,
    },
    /// A user's membership of a conversation (their thread list).
    Membership {
        user_id: UserId,
        conversation_id: ConversationId,
    },
    /// A contact-started thread waiting to be claimed.
    Unassigned {
        conversation_id: ConversationId,
    },
    /// A conversation with this contact, marked when it closed: an inbound message reads only
    /// the threads still open.
    ContactThread {
        contact_key: String,
        conversation_id: ConversationId,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        closed: bool,
    },
    /// A user's profile (`USER#<id>`), the source of truth for adds.
    Profile(DirectoryUser),
    /// The same user listed in their sub-organization and region, for directory searches.
    DirectoryEntry(DirectoryUser),
    Media(MediaRecord),
    /// Where some of a thread's archive records are: written by the archiver alone.
    ArchiveSegment(crate::archive::Segment),
    /// A legal hold on a contact's threads or one thread (`HOLDS` / `HOLD#<id>`), kept once
    /// released.
    LegalHold(LegalHold),
    /// An e-discovery export and how far it got (`EXPORT#<id>`).
    Export(crate::export::ExportJob),
    /// The item that carries the record's own uses (searches, exports, holds) onto their chain,
    /// `archive::RECORD_USE`, as a thread's item carries its changes: its count of them.
    RecordTrail {
        records: u64,
    },
    /// The last archive object (by name) the retention sweep erased or kept.
    RetentionMark {
        object: String,
    },
    /// An object past retention that a legal hold kept.
    KeptObject {
        object: String,
    },
    /// How far the archiver has read the change stream (where it pulls it).
    ArchiverPosition {
        position: crate::archive::Position,
    },
    /// An effect committed with the state, for the relay to publish (then delete).
    Outbox(crate::ports::OutboxEntry),
    /// An outbox entry that failed `MAX_PUBLISH_ATTEMPTS` times, kept for an operator.
    Parked(crate::ports::OutboxEntry),
    /// How far one employee has read a thread: up to message `up_to`, which leaves
    /// `inbound_seen` of the thread's inbound messages read.
    ReadMark {
        user_id: UserId,
        conversation_id: ConversationId,
        up_to: MessageId,
        inbound_seen: u64,
    },
    /// A client app's live WebSocket connection, with the identity its `$connect` proved;
    /// API Gateway closes a connection after 2 hours, the item goes soon after.
    Connection {
        connection_id: String,
        caller: crate::domain::Caller,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
    /// The same connection of an agent or admin, listed for the unclaimed threads' changes.
    AgentConnection {
        connection_id: String,
        caller: crate::domain::Caller,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
    /// Whose connection `connection_id` is.
    ConnectionOwner {
        connection_id: String,
        user_id: UserId,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
    /// A webhook message or status already applied; forgotten after `expires_at`.
    Dedupe {
        id: String,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
}

impl Item {
    pub fn key(&self) -> Key {
        match self {
            Item::Contact(c) => Key::contact(&c.key),
            Item::ContactAlias { user_id, .. } => Key::contact_alias(user_id),
            Item::Conversation(c) => Key::conversation(&c.id),
            Item::Message(m) => Key::message(&m.conversation_id, &m.id),
            Item::Held { conversation_id, message_id } => Key::held(conversation_id, message_id),
            Item::Queued { conversation_id, message_id } => Key::queued(conversation_id, message_id),
            Item::ClientId { conversation_id, user_id, client_id, .. } => {
                Key::client_id(conversation_id, user_id, client_id)
            }
            Item::Wamid { wamid, .. } => Key::wamid(wamid),
            Item::Membership { user_id, conversation_id } => Key::membership(user_id, conversation_id),
            Item::Unassigned { conversation_id } => Key::unassigned(conversation_id),
            Item::ContactThread { contact_key, conversation_id, .. } => {
                Key::contact_thread(contact_key, conversation_id)
            }
            Item::Profile(u) => Key::profile(&u.user_id),
            Item::DirectoryEntry(u) => Key::directory_entry(u),
            Item::Media(m) => Key::media(&m.id),
            Item::ConsentChange(c) => Key::consent_change(&c.contact_key, &c.id),
            Item::ArchiveSegment(seg) => Key::archive_segment(&seg.conversation_id, seg.first),
            Item::ArchiverPosition { .. } => Key::archiver(),
            Item::RetentionMark { .. } => Key::retention_mark(),
            Item::KeptObject { object } => Key::kept_object(object),
            Item::Export(job) => Key::export(&job.id),
            Item::LegalHold(h) => Key::legal_hold(&h.id),
            Item::RecordTrail { .. } => Key::conversation(&crate::archive::RECORD_USE.into()),
            Item::Outbox(e) => Key::outbox(e.shard, &e.id),
            Item::Parked(e) => Key::parked(&e.id),
            Item::Dedupe { id, .. } => Key::dedupe(id),
            Item::ReadMark { user_id, conversation_id, .. } => Key::read_mark(user_id, conversation_id),
            Item::Connection { connection_id, caller, .. } => Key::connection(&caller.user_id, connection_id),
            Item::ConnectionOwner { connection_id, .. } => Key::connection_owner(connection_id),
            Item::AgentConnection { connection_id, .. } => Key::agent_connection(connection_id),
        }
    }

    /// When the item stops existing (the DynamoDB TTL attribute; the embedded store's sweep).
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        match self {
            Item::Dedupe { expires_at, .. }
            | Item::Connection { expires_at, .. }
            | Item::ConnectionOwner { expires_at, .. }
            | Item::AgentConnection { expires_at, .. } => Some(*expires_at),
            _ => None,
        }
    }
}
