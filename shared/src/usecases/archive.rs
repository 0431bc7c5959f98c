//! What goes into the compliance archive, and the admins' export and verification. Every
//! message is archived by the commit that writes it (`commit::commit`); use cases add the
//! events that are not messages (consent, participant changes, queue releases, DLP actions).

use serde_json::json;
use time::OffsetDateTime;

use crate::archive::{verify_with_head, ArchiveEvent, ArchiveRecord, Verification};
use crate::domain::{Conversation, Message};
use crate::ports::{Item, Key, Store, StoreError};

use super::{load, Caller, Ports, Result, Settings, UseCaseError};

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

/// What the archive keeps of a text that DLP redacted or blocked: what was written, with each
/// finding as its kind, last four and keyed fingerprint (`Policy::fingerprinted`), so no card
/// number is stored in clear, and an auditor with the key can still match one.
pub fn original(settings: &Settings, written: &str) -> String {
    settings.dlp.fingerprinted(written, &settings.archive_key)
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

fn require_admin(caller: &Caller) -> Result<()> {
    if caller.has_role("admin") {
        Ok(())
    } else {
        Err(UseCaseError::Forbidden("this needs the admin role"))
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

/// `GET /admin/conversations/{id}/archive?verify=true`: the chain, and its end against the head
/// the commits moved (so records cut from the end are found too).
pub async fn verify_chain(ports: &Ports, caller: &Caller, conversation_id: &str) -> Result<Verification> {
    let records = export(ports, caller, conversation_id).await?;
    Ok(verify_against_head(&*ports.store, conversation_id, &records).await?)
}

/// `verify`, then the last record against the thread's stored chain head.
pub async fn verify_against_head(
    store: &dyn Store,
    conversation_id: &str,
    records: &[ArchiveRecord],
) -> Result<Verification, StoreError> {
    let head = match store.get(&Key::conversation(conversation_id)).await?.map(|v| v.item) {
        Some(Item::Conversation(c)) => c.archive_head,
        _ => None,
    };
    Ok(verify_with_head(records, head.as_ref()))
}
