//! What goes into the compliance archive, and the admins' export and verification. Every
//! message is archived by the commit that writes it (`commit::commit`); use cases add the
//! events that are not messages (consent, participant changes, queue releases, DLP actions).

use serde_json::json;
use time::OffsetDateTime;

use crate::archive::{
    check_anchor, holds, verify_with_head, Anchor, ArchiveEvent, ArchiveKind, ArchiveRecord, ChainHead, Verification,
};
use crate::domain::{Body, Conversation, Message, Notice, Sender};
use crate::ports::{Item, Key, Store, StoreError, Versioned};

use super::commit::{execute, Decision, Plan};
use super::{load, put_versioned, Caller, Ports, Result, Settings, UseCaseError};
use crate::domain::ids::ConversationId;

/// The archive record of a message as it was stored (the text as sent).
pub fn message_event(m: &Message) -> ArchiveEvent {
    let text = match &m.body {
        Body::Notice(n) => Some(n.render("en")),
        Body::Template(t) => Some(format!("[template {} ({})] {}", t.name, t.language, t.params.join(" | "))),
        Body::Reaction(r) => r.emoji.clone(),
        Body::Text { .. } | Body::Image { .. } => m.body.as_sent(),
    };
    ArchiveEvent {
        conversation_id: m.conversation_id.clone(),
        kind: ArchiveKind::Message,
        actor: m.sender.clone(),
        at: m.created_at,
        message_id: Some(m.id.clone()),
        wamid: m.wamid.clone(),
        text_as_written: m.body.words().map(str::to_string),
        text_as_sent: text,
        details: json!({
            "direction": m.direction,
            "kind": m.body.kind(),
            "status": m.status.public(),
            "system": m.system,
            "notice": m.body.notice().map(Notice::code),
            "media_id": m.body.media_id(),
            "dlp_rules": m.dlp_rules,
        }),
    }
}

/// What the archive keeps of a text that DLP redacted or blocked: what was written, with each
/// finding as its kind, last four and keyed fingerprint (`Policy::fingerprinted`), so no card
/// number is stored in clear, and an auditor with the key can still match one. A function
/// without the key fails rather than archive what it cannot fingerprint.
pub fn original(settings: &Settings, written: &str) -> Result<String> {
    let key =
        settings.archive_key.as_deref().ok_or(UseCaseError::Unconfigured("this function holds no archive key"))?;
    Ok(settings.dlp.fingerprinted(written, key))
}

pub fn event(
    conversation_id: &ConversationId,
    kind: ArchiveKind,
    actor: Sender,
    at: OffsetDateTime,
    details: serde_json::Value,
) -> ArchiveEvent {
    ArchiveEvent {
        conversation_id: conversation_id.clone(),
        kind,
        actor,
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
pub async fn export(ports: &Ports, caller: &Caller, conversation_id: &ConversationId) -> Result<Vec<ArchiveRecord>> {
    require_admin(caller)?;
    if load::<Conversation>(&*ports.store, &Key::conversation(conversation_id)).await?.is_none() {
        return Err(UseCaseError::NotFound);
    }
    Ok(ports.archive.read(conversation_id).await?)
}

/// `GET /admin/conversations/{id}/archive?verify=true`: the chain, its end against the head
/// the commits moved (so records cut from the end are found too), and, where the thread was
/// anchored, the chain against the head its last anchor holds.
pub async fn verify_chain(ports: &Ports, caller: &Caller, conversation_id: &ConversationId) -> Result<Verification> {
    let records = export(ports, caller, conversation_id).await?;
    let v = verify_against_head(&*ports.store, conversation_id, &records).await?;
    let Some(vault) = &ports.vault else { return Ok(v) };
    let Some(Item::Anchored { object, .. }) = ports.store.get(&Key::anchored(conversation_id)).await?.map(|v| v.item)
    else {
        return Ok(v);
    };
    let stored = vault.get(&object).await?;
    let anchor = stored.and_then(|body| serde_json::from_slice::<Anchor>(&body).ok());
    Ok(check_anchor(v, &records, conversation_id, object, anchor.as_ref()))
}

/// Anchors chain heads (the archive records just written, on AWS from the table's stream):
/// one write-once document with each thread's newest head, then each thread's note of where
/// it was last anchored. Returns the document's name; `None` when there is no vault or
/// nothing to anchor. A failure before every note is written leaves the heads to the next
/// anchor, which a retry of the same heads is.
pub async fn anchor(ports: &Ports, heads: Vec<(ConversationId, ChainHead)>) -> Result<Option<String>> {
    let Some(vault) = &ports.vault else { return Ok(None) };
    let anchor = Anchor::of(heads, ports.clock.now());
    if anchor.heads.is_empty() {
        return Ok(None);
    }
    let (name, body) = anchor.document();
    vault.put(&name, body).await?;
    for (thread, head) in &anchor.heads {
        execute(ports, || note_anchor(ports, thread, head.seq, &name)).await?;
    }
    tracing::info!(object = %name, threads = anchor.heads.len(), "archive heads anchored");
    Ok(Some(name))
}

/// Moves thread `thread`'s note to the anchor `object` of its head `seq`, unless it already
/// names a later one (anchors of one thread may finish out of order).
async fn note_anchor(ports: &Ports, thread: &ConversationId, seq: u64, object: &str) -> Result<Decision<()>> {
    let found = ports.store.get(&Key::anchored(thread)).await?;
    let version = match found {
        Some(Versioned { item: Item::Anchored { seq: noted, .. }, .. }) if noted >= seq => {
            return Ok(Decision::Done(()))
        }
        found => found.map(|v| v.version),
    };
    let note = Item::Anchored { conversation_id: thread.clone(), seq, object: object.to_string() };
    Ok(Decision::Commit(Plan::of(vec![put_versioned(note, version)]), ()))
}

/// What an audit of the anchors found.
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Audit {
    pub anchors: usize,
    /// Thread heads checked (one per thread per anchor).
    pub heads: usize,
    /// Anchored heads the threads' chains no longer hold, and anchors that cannot be read.
    pub mismatches: Vec<Mismatch>,
}

#[derive(Debug, PartialEq, Eq, serde::Serialize)]
pub struct Mismatch {
    pub object: String,
    /// `None`: the anchor itself cannot be read.
    pub conversation_id: Option<ConversationId>,
    pub seq: Option<u64>,
}

/// Checks every anchor whose name starts with `prefix` (`anchors/2026/12/` is one month's)
/// against the chains as the table holds them now. Unlike `verify_chain`, which trusts the
/// table's note of a thread's last anchor, this reads the write-once store alone, so a chain
/// rewritten and then anchored again by someone who can write the table is still found by its
/// older anchors.
pub async fn audit(ports: &Ports, prefix: &str) -> Result<Audit> {
    let Some(vault) = &ports.vault else { return Ok(Audit::default()) };
    let mut report = Audit::default();
    let mut by_thread: std::collections::BTreeMap<ConversationId, Vec<(String, ChainHead)>> = Default::default();
    for object in vault.list(prefix).await? {
        report.anchors += 1;
        let body = vault.get(&object).await?;
        match body.and_then(|b| serde_json::from_slice::<Anchor>(&b).ok()) {
            Some(anchor) => {
                for (thread, head) in anchor.heads {
                    by_thread.entry(thread).or_default().push((object.clone(), head));
                }
            }
            None => report.mismatches.push(Mismatch { object, conversation_id: None, seq: None }),
        }
    }
    for (thread, heads) in by_thread {
        let records = ports.archive.read(&thread).await?;
        for (object, head) in heads {
            report.heads += 1;
            if !holds(&records, &head) {
                report.mismatches.push(Mismatch { object, conversation_id: Some(thread.clone()), seq: Some(head.seq) });
            }
        }
    }
    Ok(report)
}

/// The chain heads of threads `ids` as their items hold them now (an operator anchoring quiet
/// threads by hand, after the anchor's dead-letter queue took a batch).
pub async fn heads_of(ports: &Ports, ids: &[ConversationId]) -> Result<Vec<(ConversationId, ChainHead)>> {
    let keys: Vec<Key> = ids.iter().map(Key::conversation).collect();
    let found = ports.store.get_many(&keys).await?;
    Ok(found
        .into_iter()
        .filter_map(|v| match v.map(|v| v.item) {
            Some(Item::Conversation(c)) => c.archive_head.map(|h| (c.id, h)),
            _ => None,
        })
        .collect())
}

/// `verify`, then the last record against the thread's stored chain head.
pub async fn verify_against_head(
    store: &dyn Store,
    conversation_id: &ConversationId,
    records: &[ArchiveRecord],
) -> Result<Verification, StoreError> {
    let head = match store.get(&Key::conversation(conversation_id)).await?.map(|v| v.item) {
        Some(Item::Conversation(c)) => c.archive_head,
        _ => None,
    };
    Ok(verify_with_head(records, head.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_original_is_fingerprinted_with_the_key_and_refused_without_it() {
        let mut settings = Settings::default();
        let card = "card 4111 1111 1111 1111";
        let kept = original(&settings, card).unwrap();
        assert!(!kept.contains("4111 1111 1111 1111") && kept.contains("1111"), "{kept}");
        settings.archive_key = None;
        assert!(matches!(original(&settings, card), Err(UseCaseError::Unconfigured(_))));
    }
}
