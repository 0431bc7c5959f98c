//! The retention sweep (CONTRACT.md section 8): hourly on the connector's clock, it erases each
//! archive object whose retention (`CONNECTOR_RETENTION_DAYS` from the time in its name) has
//! passed and that holds nothing a legal hold covers, everywhere its records live: the
//! messages' table items and files, the search index, then the object itself. An object
//! holding one held thread's record stays whole (the others' records in it stay with it) and
//! is asked about again at each sweep, so a release lets it go.
//!
//! What it erases goes on the record of use first, as runs of each chain (`archive::Erased`):
//! a verification then finds each thread's chain whole across the gap, and every change its
//! items counted accounted for. A crash between the record and the erasure leaves the object
//! for the next sweep, which records it again (a run recorded twice is harmless). The record
//! of use itself (`uses/`) is never swept: it is what proves the erasures.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::json;

use crate::archive::{erased_runs, parse_batch, written_at, ArchiveKind, Erased, RECORDS, RECORD_USE};
use crate::domain::{ConversationId, Sender};
use crate::ports::{Cond, Item, Key, StoreError, Write};

use super::{Ports, Result};

/// Objects one sweep looks at, at most: the next sweep goes on from its mark.
pub const OBJECTS_PER_SWEEP: usize = 1000;

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Swept {
    pub objects: usize,
    pub records: usize,
    pub files: usize,
    /// Objects past retention that a hold kept.
    pub kept: usize,
}

pub async fn sweep(ports: &Ports) -> Result<Swept> {
    let now = ports.clock.now();
    let retention = ports.settings.retention;
    let held = super::holds::held_threads(ports).await?;
    let mut swept = Swept::default();
    // Objects a hold kept before: erased once none covers them.
    let kept = ports.store.query(&Key::kept_object("").pk, "KEPT#", None, OBJECTS_PER_SWEEP, true).await?;
    for v in kept {
        let Item::KeptObject { object } = v.item else { continue };
        if erase_unless_held(ports, &object, &held, &mut swept).await? {
            let gone = Write::Delete { key: Key::kept_object(&object), cond: Cond::Version(v.version) };
            settle(ports.store.transact(vec![gone]).await)?;
        }
    }
    let mark = ports.store.get(&Key::retention_mark()).await?;
    let (mut after, mut version) = match mark {
        Some(v) => match v.item {
            Item::RetentionMark { object } => (object, Some(v.version)),
            _ => (String::new(), Some(v.version)),
        },
        None => (String::new(), None),
    };
    let prefix = format!("{RECORDS}/");
    for object in ports.vault.list_after(&prefix, &after, OBJECTS_PER_SWEEP).await? {
        // Names sort by the time in them: the first one still retained ends the sweep.
        if written_at(&object).is_none_or(|at| at + retention > now) {
            break;
        }
        if !erase_unless_held(ports, &object, &held, &mut swept).await? {
            swept.kept += 1;
            let kept = Write::Put { item: Item::KeptObject { object: object.clone() }, cond: Cond::Always };
            ports.store.transact(vec![kept]).await?;
        }
        after = object;
        let moved = Write::Put {
            item: Item::RetentionMark { object: after.clone() },
            cond: version.map_or(Cond::NotExists, Cond::Version),
        };
        match ports.store.transact(vec![moved]).await {
            Ok(()) => version = Some(version.map_or(1, |v| v + 1)),
            // Another sweep moved it meanwhile: it goes on from there.
            Err(StoreError::Conflict { .. } | StoreError::Busy) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if swept != Swept::default() {
        tracing::info!(
            objects = swept.objects,
            records = swept.records,
            files = swept.files,
            kept = swept.kept,
            "retention sweep"
        );
    }
    Ok(swept)
}

/// A write that another sweep made moot is done.
fn settle(done: std::result::Result<(), StoreError>) -> Result<()> {
    match done {
        Ok(()) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Erases `object` and everything its records left elsewhere, unless one of them is of a thread
/// in `held`; `false` when a hold keeps it. An object already gone is done.
async fn erase_unless_held(
    ports: &Ports,
    object: &str,
    held: &BTreeSet<ConversationId>,
    swept: &mut Swept,
) -> Result<bool> {
    let Some(body) = ports.vault.get(object).await? else { return Ok(true) };
    let Some(records) = parse_batch(&body) else {
        let why = format!("{object} does not read as a batch of records: left for an audit");
        return Err(crate::ports::ArchiveError(why.into()).into());
    };
    if records.iter().any(|r| held.contains(&r.event.conversation_id)) {
        return Ok(false);
    }
    // On the record first: an erasure no one can see would read as a deletion.
    let runs = erased_runs(&records);
    let what = json!({ "action": "erase", "object": object, "records": records.len(), "runs": runs });
    let event =
        super::archive::event(&RECORD_USE.into(), ArchiveKind::RecordUse, Sender::System, ports.clock.now(), what);
    super::search::record(ports, event).await?;
    // The table's copies: each message, and each kept file's item.
    let mut gone: Vec<Key> = Vec::new();
    let mut files: Vec<String> = Vec::new();
    for r in &records {
        if let (ArchiveKind::Message, Some(id)) = (&r.event.kind, &r.event.message_id) {
            gone.push(Key::message(&r.event.conversation_id, id));
        }
        if let Some((_, id)) = crate::export::files_of(r) {
            gone.push(Key::media(&id));
            files.push(id);
        }
    }
    for key in gone {
        ports.store.transact(vec![Write::Delete { key, cond: Cond::Always }]).await?;
    }
    ports.index.forget(&records).await?;
    files.sort();
    files.dedup();
    for id in &files {
        ports.media.remove(id).await?;
    }
    ports.vault.erase(object).await?;
    swept.objects += 1;
    swept.records += records.len();
    swept.files += files.len();
    Ok(true)
}

/// The runs of thread `conversation_id` the sweep erased, as the record of use holds them.
pub async fn erased(ports: &Ports, conversation_id: &ConversationId) -> Result<Vec<Erased>> {
    if conversation_id.as_str() == RECORD_USE {
        return Ok(Vec::new());
    }
    let uses = super::archive::records(ports, &RECORD_USE.into()).await?;
    let runs = uses
        .into_iter()
        .filter(|r| r.event.kind == ArchiveKind::RecordUse && r.event.details["action"] == "erase")
        .filter_map(|r| serde_json::from_value::<Vec<Erased>>(r.event.details["runs"].clone()).ok())
        .flatten()
        .filter(|run| run.conversation_id == *conversation_id);
    Ok(runs.collect())
}
