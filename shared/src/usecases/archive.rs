//! What goes into the compliance archive, and the admins' export and verification. Every
//! message is archived where it is written, by `ArchivingStore`; use cases add the events that
//! are not messages (consent, participant changes, queue releases, DLP actions).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use time::OffsetDateTime;

use crate::archive::{verify, ArchiveEvent, ArchiveRecord, Verification};
use crate::domain::{Conversation, Message};
use crate::ports::{Archive, Cond, Item, Key, Store, StoreError, Versioned, Write};

use super::{load, Caller, Ports, Result, UseCaseError};

/// A `Store` that archives every message it creates, once its transaction has committed.
pub struct ArchivingStore {
    inner: Arc<dyn Store>,
    archive: Arc<dyn Archive>,
}

impl ArchivingStore {
    pub fn new(inner: Arc<dyn Store>, archive: Arc<dyn Archive>) -> ArchivingStore {
        ArchivingStore { inner, archive }
    }
}

/// The archive record of a message as it was stored (the text as sent).
pub fn message_event(m: &Message) -> ArchiveEvent {
    let text = match (&m.notice, &m.template) {
        (Some(n), _) => Some(n.render("en")),
        (None, Some(t)) => Some(format!("[template {} ({})] {}", t.name, t.language, t.params.join(" | "))),
        _ => m.text.as_ref().map(|t| format!("{}{t}", m.prefix.as_deref().unwrap_or(""))),
    };
    ArchiveEvent {
        conversation_id: m.conversation_id.clone(),
        kind: "message".into(),
        actor: m.sender.clone(),
        at: m.created_at,
        message_id: Some(m.id.clone()),
        wamid: m.wamid.clone(),
        text_as_written: m.text.clone(),
        text_as_sent: text,
        details: json!({
            "direction": m.direction,
            "kind": m.kind,
            "status": m.status.public(),
            "system": m.system,
            "notice": m.notice.as_ref().map(|n| n.code),
            "media_id": m.media_id,
            "dlp_rules": m.dlp_rules,
        }),
    }
}

pub fn event(
    conversation_id: &str,
    kind: &str,
    actor: &str,
    at: OffsetDateTime,
    details: serde_json::Value,
) -> ArchiveEvent {
    ArchiveEvent {
        conversation_id: conversation_id.to_string(),
        kind: kind.to_string(),
        actor: actor.to_string(),
        at,
        message_id: None,
        wamid: None,
        text_as_sent: None,
        text_as_written: None,
        details,
    }
}

/// Appends events after their change committed. A failure is logged loudly, never undoes the
/// change already made.
pub(crate) async fn record(ports: &Ports, events: Vec<ArchiveEvent>) {
    if events.is_empty() {
        return;
    }
    if let Err(e) = ports.archive.append(events).await {
        tracing::error!(error.message = %e, "archive append failed");
    }
}

#[async_trait]
impl Store for ArchivingStore {
    async fn get(&self, key: &Key) -> Result<Option<Versioned<Item>>, StoreError> {
        self.inner.get(key).await
    }

    async fn query(
        &self,
        pk: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        ascending: bool,
    ) -> Result<Vec<Versioned<Item>>, StoreError> {
        self.inner.query(pk, prefix, after, limit, ascending).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Versioned<Item>>>, StoreError> {
        self.inner.get_many(keys).await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let events: Vec<ArchiveEvent> = writes
            .iter()
            .filter_map(|w| match w {
                Write::Put { item: Item::Message(m), cond: Cond::NotExists } => Some(message_event(m)),
                _ => None,
            })
            .collect();
        self.inner.transact(writes).await?;
        if !events.is_empty() {
            if let Err(e) = self.archive.append(events).await {
                tracing::error!(error.message = %e, "archive append failed");
            }
        }
        Ok(())
    }
}

fn require_admin(caller: &Caller) -> Result<()> {
    if caller.roles.iter().any(|r| r == "admin") {
        Ok(())
    } else {
        Err(UseCaseError::Forbidden("admin"))
    }
}

/// `GET /admin/conversations/{id}/archive`: the thread's records, oldest first.
pub async fn export(ports: &Ports, caller: &Caller, conversation_id: &str) -> Result<Vec<ArchiveRecord>> {
    require_admin(caller)?;
    if load::<Conversation>(&*ports.store, &Key::conversation(conversation_id)).await?.is_none() {
        return Err(UseCaseError::NotFound);
    }
    ports.archive.read(conversation_id).await.map_err(|e| UseCaseError::Store(StoreError::Unavailable(e.0)))
}

/// `GET /admin/conversations/{id}/archive?verify=true`.
pub async fn verify_chain(ports: &Ports, caller: &Caller, conversation_id: &str) -> Result<Verification> {
    Ok(verify(&export(ports, caller, conversation_id).await?))
}
