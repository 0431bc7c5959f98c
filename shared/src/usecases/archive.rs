//! What goes into the compliance archive, and the admins' export, verification and audit.
//! Every message is journaled by the commit that writes it (`commit::commit`); use cases add
//! the events that are not messages (consent, statuses, participant changes, queue releases,
//! DLP actions); the archiver (`archiver`) makes them records.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::archive::{
    missing_across, parse_batch, verify_complete_across, ArchiveEvent, ArchiveKind, ArchiveRecord, Erased, Source,
    Verification,
};
use crate::domain::{Conversation, Sender};
use crate::ports::{ConsentChange, Item, Key, Write};

use super::{load, new_ulid, put_new, Caller, Ports, Result, Settings, UseCaseError};
use crate::domain::ids::ConversationId;

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

/// A consent change on the record (CONTRACT.md section 7): what it became, and its source
/// (`button`, `keyword`, `stop`, `meta_131050`, `user_preferences`, ...).
pub fn consent_event(
    conversation_id: &ConversationId,
    contact: &crate::domain::Contact,
    consent: &str,
    source: &str,
    at: OffsetDateTime,
) -> ArchiveEvent {
    event(
        conversation_id,
        ArchiveKind::Consent,
        Sender::Contact,
        at,
        serde_json::json!({ "consent": consent, "source": source, "contact": contact.key }),
    )
}

/// The same change in the contact's consent history (`GET /admin/contacts/{phone}/consent`),
/// written by the commit that makes it, whether or not a thread carries it.
pub fn consent_change(
    contact: &crate::domain::Contact,
    consent: &str,
    source: &str,
    conversation_id: Option<&ConversationId>,
    at: OffsetDateTime,
) -> Write {
    put_new(Item::ConsentChange(ConsentChange {
        contact_key: contact.key.clone(),
        id: new_ulid(),
        consent: consent.to_string(),
        source: source.to_string(),
        at,
        conversation_id: conversation_id.cloned(),
    }))
}

/// `GET /admin/contacts/{phone}/consent`: where the contact stands and every change, oldest
/// first (admin, compliance).
pub async fn consent_history(ports: &Ports, caller: &Caller, contact_key: &str) -> Result<ConsentHistory> {
    require_record_reader(caller)?;
    let contact = load::<crate::domain::Contact>(&*ports.store, &Key::contact(contact_key)).await?;
    let pk = Key::consent_history(contact_key);
    let mut history = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = ports.store.query(&pk, "AT#", after.as_deref(), 500, true).await?;
        let full = page.len() == 500;
        for v in page {
            if let Item::ConsentChange(c) = v.item {
                after = Some(format!("AT#{}", c.id));
                history.push(c);
            }
        }
        if !full {
            break;
        }
    }
    match contact {
        Some(c) => Ok(ConsentHistory::of(contact_key, Some(&c.item), history)),
        None if history.is_empty() => Err(UseCaseError::NotFound),
        None => Ok(ConsentHistory::of(contact_key, None, history)),
    }
}

/// A contact's consent and how it came to be.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConsentHistory {
    pub phone: String,
    pub consent: crate::domain::ConsentState,
    pub history: Vec<ConsentChange>,
}

impl ConsentHistory {
    fn of(key: &str, contact: Option<&crate::domain::Contact>, history: Vec<ConsentChange>) -> ConsentHistory {
        ConsentHistory {
            phone: contact.and_then(|c| c.phone.clone()).unwrap_or_else(|| format!("+{key}")),
            consent: contact.map_or(crate::domain::ConsentState::Unknown, |c| c.consent),
            history,
        }
    }
}

pub(crate) fn require_record_reader(caller: &Caller) -> Result<()> {
    if caller.reads_the_record() {
        Ok(())
    } else {
        Err(UseCaseError::Forbidden("this needs the admin or compliance role"))
    }
}

/// How long a read of the archive waits for the archiver to pass every change committed before
/// it began, before it answers `ArchiveBehind`; and how long it waits once no new record
/// comes (an archiver that moves on does so within seconds: the stream's batching window).
pub const SETTLE: std::time::Duration = std::time::Duration::from_secs(20);
pub const STALLED: std::time::Duration = std::time::Duration::from_secs(5);

/// A thread's records as the write-once store holds them, in chain order: read through its
/// segments (each names the object holding some of them). A record that two objects hold (a
/// batch written again) is read once.
pub async fn records(ports: &Ports, conversation_id: &ConversationId) -> Result<Vec<ArchiveRecord>> {
    let segments = ports.store.segments(conversation_id, usize::MAX / 2, true).await?;
    records_in(ports, conversation_id, &segments).await
}

/// The thread's records that `segments` (in chain order) say where to find.
pub async fn records_in(
    ports: &Ports,
    conversation_id: &ConversationId,
    segments: &[crate::archive::Segment],
) -> Result<Vec<ArchiveRecord>> {
    let mut objects: BTreeMap<String, Vec<ArchiveRecord>> = BTreeMap::new();
    let mut out: Vec<ArchiveRecord> = Vec::new();
    for s in segments {
        if !objects.contains_key(&s.object) {
            let body = ports.vault.get(&s.object).await?;
            // A missing or unreadable object leaves its records out: the chain then breaks there.
            let found = body.as_deref().and_then(parse_batch).unwrap_or_default();
            objects.insert(s.object.clone(), found);
        }
        let held = objects[&s.object]
            .iter()
            .filter(|r| r.event.conversation_id == *conversation_id && (s.first..=s.last).contains(&r.seq));
        for r in held {
            if out.last().is_none_or(|l| l.seq < r.seq) {
                out.push(r.clone());
            }
        }
    }
    Ok(out)
}

/// The thread's records once the archiver has passed every change `counts` (its items' counts,
/// read first) names, but those of the runs the sweep `erased`; what it holds when `SETTLE`
/// passed, or `STALLED` without a new record.
pub async fn settled(
    ports: &Ports,
    conversation_id: &ConversationId,
    counts: &BTreeMap<String, u64>,
    erased: &[Erased],
) -> Result<Vec<ArchiveRecord>> {
    let start = tokio::time::Instant::now();
    let (mut seen, mut moved) = (0, start);
    let mut pause = std::time::Duration::from_millis(20);
    loop {
        let records = records(ports, conversation_id).await?;
        let now = tokio::time::Instant::now();
        if records.len() > seen {
            (seen, moved) = (records.len(), now);
        }
        if missing_across(&records, counts, erased).is_empty() || now - start >= SETTLE || now - moved >= STALLED {
            return Ok(records);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(500));
    }
}

/// `GET /admin/conversations/{id}/archive`: the thread's records, oldest first, including
/// every change committed before the request.
pub async fn export(ports: &Ports, caller: &Caller, conversation_id: &ConversationId) -> Result<Vec<ArchiveRecord>> {
    require_chain(ports, caller, conversation_id, "read").await?;
    let counts = super::archiver::counts(ports, conversation_id).await?;
    let erased = super::retention::erased(ports, conversation_id).await?;
    let records = settled(ports, conversation_id, &counts, &erased).await?;
    match missing_across(&records, &counts, &erased).is_empty() {
        true => Ok(records),
        false => Err(UseCaseError::ArchiveBehind),
    }
}

/// `GET /admin/conversations/{id}/archive?verify=true`: the chain under the archive key, and
/// the thread's items' counts against it, once the archiver has had its time: a change
/// committed and not archived, or records removed from the chain's end, break it. Runs the
/// retention sweep erased (on the record of use) stand in for their records.
pub async fn verify_chain(ports: &Ports, caller: &Caller, conversation_id: &ConversationId) -> Result<Verification> {
    require_chain(ports, caller, conversation_id, "verify").await?;
    let key = archive_key(ports)?;
    let counts = super::archiver::counts(ports, conversation_id).await?;
    let erased = super::retention::erased(ports, conversation_id).await?;
    let records = settled(ports, conversation_id, &counts, &erased).await?;
    Ok(verify_complete_across(&key, &records, &counts, &erased))
}

/// That `caller` reads the record and `conversation_id` names a chain (a thread's, or the
/// record's own uses'), and, for a thread's, that they did `action` to it, on the record.
async fn require_chain(ports: &Ports, caller: &Caller, conversation_id: &ConversationId, action: &str) -> Result<()> {
    require_record_reader(caller)?;
    if conversation_id.as_str() == crate::archive::RECORD_USE {
        return Ok(());
    }
    if load::<Conversation>(&*ports.store, &Key::conversation(conversation_id)).await?.is_none() {
        return Err(UseCaseError::NotFound);
    }
    let what = serde_json::json!({ "action": action, "conversation_id": conversation_id });
    super::search::record_use(ports, caller, what).await
}

/// The changes thread `conversation_id`'s items say they carried that its chain does not hold
/// (now: the archiver may simply not have passed them yet; an operator's reconciliation asks
/// again after the stream's batching window).
pub async fn reconcile(ports: &Ports, conversation_id: &ConversationId) -> Result<Vec<Source>> {
    let counts = super::archiver::counts(ports, conversation_id).await?;
    let erased = super::retention::erased(ports, conversation_id).await?;
    Ok(missing_across(&records(ports, conversation_id).await?, &counts, &erased))
}

/// The threads with records in the objects of the last `days` days (by the objects' names).
pub async fn threads_archived_since(ports: &Ports, days: u64) -> Result<Vec<ConversationId>> {
    let today = ports.clock.now().date();
    let mut threads = std::collections::BTreeSet::new();
    for back in 0..days.max(1) {
        let Some(day) = today.checked_sub(time::Duration::days(back as i64)) else { break };
        let prefix = format!("records/{:04}/{:02}/{:02}/", day.year(), u8::from(day.month()), day.day());
        for object in ports.vault.list(&prefix).await? {
            let found = ports.vault.get(&object).await?.as_deref().and_then(parse_batch).unwrap_or_default();
            threads.extend(found.into_iter().map(|r| r.event.conversation_id));
        }
    }
    Ok(threads.into_iter().collect())
}

fn archive_key(ports: &Ports) -> Result<std::sync::Arc<[u8]>> {
    ports.settings.archive_key.clone().ok_or(UseCaseError::Unconfigured("this function holds no archive key"))
}

/// What an audit of the write-once store found.
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Audit {
    pub objects: usize,
    pub records: usize,
    /// Records the write-once store holds that their thread's chain, as the table indexes it,
    /// does not (a segment removed or rewritten), and objects that cannot be read.
    pub mismatches: Vec<Mismatch>,
}

#[derive(Debug, PartialEq, Eq, serde::Serialize)]
pub struct Mismatch {
    pub object: String,
    /// `None`: the object itself cannot be read.
    pub conversation_id: Option<ConversationId>,
    pub seq: Option<u64>,
}

/// Checks every batch object whose name starts with `prefix` (`records/2026/12/` is one
/// month's) against the chains as the table indexes them now. Unlike `verify_chain`, which
/// finds records through the table's segments, this starts from the write-once store, so a
/// record hidden by removing or rewriting a segment is still found.
pub async fn audit(ports: &Ports, prefix: &str) -> Result<Audit> {
    let mut report = Audit::default();
    let mut chains: BTreeMap<ConversationId, Vec<ArchiveRecord>> = BTreeMap::new();
    for object in ports.vault.list(prefix).await? {
        report.objects += 1;
        let Some(found) = ports.vault.get(&object).await?.as_deref().and_then(parse_batch) else {
            report.mismatches.push(Mismatch { object, conversation_id: None, seq: None });
            continue;
        };
        for r in found {
            report.records += 1;
            let thread = r.event.conversation_id.clone();
            if !chains.contains_key(&thread) {
                chains.insert(thread.clone(), records(ports, &thread).await?);
            }
            let chain = &chains[&thread];
            let holds = chain.get(r.seq as usize - 1).is_some_and(|c| c.seq == r.seq && c.hash == r.hash);
            if !holds {
                report.mismatches.push(Mismatch {
                    object: object.clone(),
                    conversation_id: Some(thread),
                    seq: Some(r.seq),
                });
            }
        }
    }
    Ok(report)
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
