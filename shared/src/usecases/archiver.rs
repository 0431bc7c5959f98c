//! The archiver: the only writer of each thread's chain. It reads the change stream in order
//! (on AWS the table's stream brings it batches; locally and in memory it pulls the feed from
//! its position), links each archive event onto its thread's chain under the archive key,
//! writes the batch's records as one write-once object, then one `Segment` per thread saying
//! where they are. A segment is written only where none starts at the same place, so a second
//! writer of a chain is refused (and tries again from the new head). An event is archived once,
//! by its source: one after a thread's head (the stream's order) is new; one at or before it
//! (a retry, a crash before the segments, a redelivery, an operator's replay of a range out of
//! order) is looked up in the chain itself.

use std::collections::BTreeMap;

use crate::archive::{batch, link, ArchiveRecord, Journaled, Position, Segment, Source};
use crate::domain::ConversationId;
use crate::ports::{ChangeStream, Cond, Item, Key, StoreError, StreamEntry, Versioned, Write};

use super::{Ports, Result, UseCaseError};

/// What one batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Archived {
    pub records: usize,
    pub threads: usize,
    /// The object the records went to (none when every event was archived before).
    pub object: Option<String>,
    /// How long after its event the oldest record of the batch was archived.
    pub lag: Option<time::Duration>,
}

/// Entries pulled at a time.
pub const PULL: usize = 500;

/// Archives `entries` (in stream order). A thread's chain is written by one batch at a time:
/// a concurrent writer of the same thread makes this one fail with `Contention` (its records
/// are then written again, identically, by the next attempt).
pub async fn archive(ports: &Ports, entries: &[StreamEntry]) -> Result<Archived> {
    let key =
        ports.settings.archive_key.clone().ok_or(UseCaseError::Unconfigured("the archiver holds no archive key"))?;
    let mut threads: Vec<(ConversationId, Vec<(&Position, &Journaled)>)> = Vec::new();
    for entry in entries {
        for j in &entry.records {
            let id = &j.event.conversation_id;
            match threads.iter_mut().find(|(t, _)| t == id) {
                Some((_, events)) => events.push((&entry.position, j)),
                None => threads.push((id.clone(), vec![(&entry.position, j)])),
            }
        }
    }
    let mut records: Vec<ArchiveRecord> = Vec::new();
    let mut segments: Vec<Segment> = Vec::new();
    // Records found archived already: the search index takes them again (a crash may have
    // come between the chain's segments and the index).
    let mut archived_before: Vec<ArchiveRecord> = Vec::new();
    for (thread, events) in threads {
        let head = ports.store.segments(&thread, 1, false).await?.into_iter().next();
        let mut prev = head.as_ref().map(Segment::head);
        let passed = head.as_ref().map(|h| h.position.clone());
        // Entries at or before the head's place were archived, unless they come out of order
        // (an operator's replay of a range): then the chain itself says which.
        let behind = |at: &Position| passed.as_ref().is_some_and(|p| at <= p);
        let earliest = events.iter().map(|(at, _)| *at).filter(|at| behind(at)).min();
        let held: BTreeMap<Source, ArchiveRecord> = match earliest {
            // A segment's place is at or past each of its events', and never goes back along
            // the chain: the ones at or past the earliest such entry's hold all it could find.
            Some(from) => {
                let mut recent: Vec<Segment> = ports.store.segments(&thread, usize::MAX / 2, false).await?;
                recent.retain(|s| s.position >= *from);
                recent.reverse();
                let found = super::archive::records_in(ports, &thread, &recent).await?;
                found.into_iter().map(|r| (r.source.clone(), r)).collect()
            }
            None => BTreeMap::new(),
        };
        let mut linked: Vec<ArchiveRecord> = Vec::new();
        let mut position = passed.clone();
        for (at, j) in events {
            if let Some(r) = held.get(&j.source).filter(|_| behind(at)) {
                archived_before.push(r.clone());
                continue;
            }
            if position.as_ref().is_none_or(|p| at > p) {
                position = Some(at.clone());
            }
            if skipped_by_plant(j) {
                continue;
            }
            let record = link(&key, prev.as_ref(), j.clone());
            prev = Some(record.head());
            linked.push(record);
        }
        let (Some(first), Some(last), Some(position)) = (linked.first(), linked.last(), position) else { continue };
        segments.push(Segment {
            conversation_id: thread,
            first: first.seq,
            last: last.seq,
            head: last.hash.clone(),
            position,
            object: String::new(),
        });
        records.extend(linked);
    }
    if records.is_empty() {
        ports.index.add(&archived_before).await?;
        ports.journal.publish(&archived_before).await?;
        return Ok(Archived::default());
    }
    let now = ports.clock.now();
    // The record's own uses in an object of their own: the retention sweep erases threads'
    // objects, and these prove what it erased.
    let (uses, theirs): (Vec<ArchiveRecord>, Vec<ArchiveRecord>) =
        records.iter().cloned().partition(|r| r.event.conversation_id.as_str() == crate::archive::RECORD_USE);
    let mut objects: Vec<String> = Vec::new();
    for group in [uses, theirs].iter().filter(|g| !g.is_empty()) {
        let (name, body) = batch(group, now);
        ports.vault.put(&name, body).await?;
        objects.push(name);
    }
    let object_of = |thread: &ConversationId| {
        let uses = thread.as_str() == crate::archive::RECORD_USE;
        objects.iter().find(|o| o.starts_with(crate::archive::USES) == uses).cloned().unwrap_or_default()
    };
    for mut segment in segments.iter().cloned() {
        segment.object = object_of(&segment.conversation_id);
        let cond =
            if crate::plant::active(crate::plant::Bug::SecondChainWriter) { Cond::Always } else { Cond::NotExists };
        match ports.store.transact(vec![Write::Put { item: Item::ArchiveSegment(segment), cond }]).await {
            Ok(()) => {}
            // Another writer linked this place first: read the heads again.
            Err(StoreError::Conflict { .. } | StoreError::Busy) => return Err(UseCaseError::Contention),
            Err(e) => return Err(e.into()),
        }
    }
    // An object holding records of a thread under a legal hold is held once its segments say
    // so: a hold placed meanwhile either is read here or finds those segments itself.
    let held = super::holds::held_threads(ports).await?;
    for segment in segments.iter().filter(|s| held.contains(&s.conversation_id)) {
        ports.vault.hold(&object_of(&segment.conversation_id), true).await?;
    }
    let lag = records.iter().map(|r| now - r.event.at).max();
    let object = objects.last().cloned();
    let done = Archived { records: records.len(), threads: segments.len(), object, lag };
    // Only once the chain holds them: a writer refused above linked other records at its places.
    archived_before.extend(records);
    ports.index.add(&archived_before).await?;
    ports.journal.publish(&archived_before).await?;
    Ok(done)
}

/// A record the planted bug `SkipArchiveRecord` leaves out: messages whose id ends in 0 or 1.
fn skipped_by_plant(j: &Journaled) -> bool {
    crate::plant::active(crate::plant::Bug::SkipArchiveRecord)
        && j.event.kind == crate::archive::ArchiveKind::Message
        && j.event.message_id.as_ref().is_some_and(|id| id.as_str().ends_with(['0', '1']))
}

/// Where the pulling archiver has read to.
pub async fn position(ports: &Ports) -> Result<Option<Versioned<Position>>> {
    Ok(ports.store.get(&Key::archiver()).await?.and_then(|v| match v.item {
        Item::ArchiverPosition { position } => Some(Versioned { item: position, version: v.version }),
        _ => None,
    }))
}

/// Pulls and archives what `stream` holds after the archiver's position, a batch at a time,
/// until it is caught up; moves the position after each batch. Returns the records archived.
/// Safe to run twice at once (both may write a batch's object; one writes its segments).
pub async fn catch_up(ports: &Ports, stream: &dyn ChangeStream) -> Result<usize> {
    let mut total = 0;
    loop {
        let at = position(ports).await?;
        let entries = stream.entries_after(at.as_ref().map(|v| &v.item), PULL).await?;
        let Some(last) = entries.last().map(|e| e.position.clone()) else { return Ok(total) };
        let done = archive(ports, &entries).await?;
        total += done.records;
        if let Some(lag) = done.lag {
            crate::metrics::record_millis("ArchiveLag", lag.whole_milliseconds() as f64);
        }
        let version = at.as_ref().map(|v| v.version);
        let moved = Write::Put {
            item: Item::ArchiverPosition { position: last },
            cond: version.map_or(Cond::NotExists, Cond::Version),
        };
        match ports.store.transact(vec![moved]).await {
            // Another archiver moved it meanwhile: read it again.
            Ok(()) | Err(StoreError::Conflict { .. } | StoreError::Busy) => {}
            Err(e) => return Err(e.into()),
        }
        if entries.len() < PULL {
            return Ok(total);
        }
    }
}

/// Each thread's items and how many changes each carried (`archive::Source`): what its chain
/// must hold.
pub async fn counts(ports: &Ports, thread: &ConversationId) -> Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    let found = ports.store.query(&Key::conversation(thread).pk, "", None, usize::MAX / 2, true).await?;
    for v in found {
        match v.item {
            Item::Conversation(c) => {
                out.insert(Key::conversation(&c.id).sk, c.records);
            }
            Item::Message(m) => {
                out.insert(Key::message(&m.conversation_id, &m.id).sk, m.records);
            }
            Item::RecordTrail { records } => {
                out.insert(Key::conversation(thread).sk, records);
            }
            _ => {}
        }
    }
    Ok(out)
}
