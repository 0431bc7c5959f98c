//! E-discovery exports (CONTRACT.md section 8): `start` commits the job, its place on the record
//! and a timer that fires two seconds later (the timers function runs it, for up to 15 minutes); `run` (the timer) writes the ZIP as it streams to the media
//! store, thread by thread and file by file, never holding it whole; `status` and `download`
//! read it back. A job runs again harmlessly: the ZIP is written again whole, and the job is
//! settled once, under its version.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_zip::base::write::ZipFileWriter;
use async_zip::{Compression, ZipEntryBuilder};
use futures_lite::io::AsyncWriteExt as _;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt as _;

use crate::archive::ArchiveRecord;
use crate::domain::search::{ExportAsk, Scope};
use crate::domain::{Caller, ConversationId, DomainError};
use crate::export::{anchor, files_of, window, ExportJob, ExportStatus, Manifest, MediaEntry, ThreadEntry};
use crate::ports::{ByteStream, Effect, Item, Key, Timer, Versioned};

use super::commit::{execute, Decision, Plan};
use super::search::record_use;
use super::{load, new_ulid, put_new, put_versioned, Ports, Result, UseCaseError};

/// How long after it is asked an export starts: long enough for the scheduler to take the
/// timer (one due already would run in the request that asked).
const START_AFTER: time::Duration = time::Duration::seconds(2);

impl crate::ports::ItemKind for ExportJob {
    fn from_item(item: Item) -> std::result::Result<Self, crate::ports::StoreError> {
        match item {
            Item::Export(job) => Ok(job),
            other => Err(crate::ports::StoreError::Corrupt(format!("not an export: {other:?}").into())),
        }
    }
}

/// `POST /admin/exports`: the job, running (admin, compliance). The request is on the record in
/// the same commit.
pub async fn start(ports: &Ports, caller: &Caller, ask: &ExportAsk) -> Result<ExportJob> {
    super::archive::require_record_reader(caller)?;
    let now = ports.clock.now();
    let scope = Scope::of(ask, now)?;
    let job = ExportJob {
        id: new_ulid(),
        by: caller.user_id.clone(),
        scope,
        status: ExportStatus::Running,
        records: 0,
        media: 0,
        bytes: 0,
        created_at: now,
        finished_at: None,
        error: None,
    };
    let used =
        super::search::use_event(caller, now, json!({ "action": "export", "export_id": job.id, "scope": job.scope }));
    execute(ports, || {
        let (job, used) = (job.clone(), used.clone());
        async move {
            let plan = Plan {
                writes: vec![put_new(Item::Export(job.clone()))],
                archive: vec![used],
                // A moment ahead, so the scheduler (not this request) runs it.
                effects: vec![Effect::Timer { timer: Timer::Export { id: job.id.clone() }, at: now + START_AFTER }],
                ..Plan::default()
            };
            Ok(Decision::Commit(plan, job))
        }
    })
    .await
}

/// `GET /admin/exports/{id}`.
pub async fn status(ports: &Ports, caller: &Caller, id: &str) -> Result<ExportJob> {
    super::archive::require_record_reader(caller)?;
    Ok(load::<ExportJob>(&*ports.store, &Key::export(id)).await?.ok_or(UseCaseError::NotFound)?.item)
}

/// Where a finished export is read from.
pub enum Download {
    /// A presigned URL (AWS).
    Url(String),
    /// The bytes (locally).
    Bytes(ByteStream),
}

/// `GET /admin/exports/{id}/download`: the ZIP of a finished export; the download is on the
/// record.
pub async fn download(ports: &Ports, caller: &Caller, id: &str) -> Result<Download> {
    let job = status(ports, caller, id).await?;
    if job.status != ExportStatus::Done {
        return Err(UseCaseError::Domain(DomainError::Invalid(format!(
            "export {id} is {}; it can be downloaded once done",
            serde_json::to_value(job.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
        ))));
    }
    record_use(ports, caller, json!({ "action": "download", "export_id": id })).await?;
    if let Some(url) = ports.media.download_url(&job.file(), std::time::Duration::from_secs(300)).await? {
        return Ok(Download::Url(url));
    }
    ports.media.open(&job.file()).await?.map(Download::Bytes).ok_or(UseCaseError::NotFound)
}

/// The export timer: writes the job's ZIP and settles it (`done` with its counts, or `failed`
/// with why). A job already settled is left alone.
pub async fn run(ports: &Ports, id: &str) -> Result<()> {
    let Some(Versioned { item: job, .. }) = load::<ExportJob>(&*ports.store, &Key::export(id)).await? else {
        return Ok(());
    };
    if job.status != ExportStatus::Running {
        return Ok(());
    }
    let outcome = write(ports, &job).await;
    let (status, error, counts) = match outcome {
        Ok(counts) => (ExportStatus::Done, None, counts),
        // The store could not be read or written: the timer fires again.
        Err(e @ (UseCaseError::Store(_) | UseCaseError::Archive(_))) => return Err(e),
        Err(e) => (ExportStatus::Failed, Some(crate::error::Report(&e).to_string()), Counts::default()),
    };
    let finished_at = ports.clock.now();
    execute(ports, || {
        let error = error.clone();
        async move {
            let Some(current) = load::<ExportJob>(&*ports.store, &Key::export(id)).await? else {
                return Ok(Decision::Done(()));
            };
            if current.item.status != ExportStatus::Running {
                return Ok(Decision::Done(()));
            }
            let settled = ExportJob {
                status,
                records: counts.records,
                media: counts.media,
                bytes: counts.bytes,
                finished_at: Some(finished_at),
                error,
                ..current.item
            };
            Ok(Decision::Commit(Plan::of(vec![put_versioned(Item::Export(settled), Some(current.version))]), ()))
        }
    })
    .await
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    records: u64,
    media: u64,
    bytes: u64,
}

fn zip_failed(e: impl Into<crate::error::Cause>) -> UseCaseError {
    UseCaseError::Export(e.into())
}

/// The threads `scope` covers: its thread, or its contact's or participant's (both: the threads
/// of both), else every thread with records in objects of the period's days (and the day
/// after: a record is archived within a day of its event).
async fn threads(ports: &Ports, scope: &Scope) -> Result<Vec<ConversationId>> {
    let mut threads: Option<Vec<ConversationId>> = scope.conversation_id.clone().map(|t| vec![t]);
    let mut narrow = |found: Vec<ConversationId>| {
        threads = Some(match threads.take() {
            Some(t) => t.into_iter().filter(|id| found.contains(id)).collect(),
            None => found,
        });
    };
    if let Some(phone) = &scope.contact {
        let found = super::contact_with_all_threads(&*ports.store, phone.digits()).await?;
        narrow(found.map(|(_, all)| all.into_iter().map(|c| c.item.id).collect()).unwrap_or_default());
    }
    if let Some(user) = &scope.user {
        narrow(ports.store.memberships(user, usize::MAX / 2).await?);
    }
    if let Some(t) = threads {
        return Ok(t);
    }
    let mut found = std::collections::BTreeSet::new();
    let mut day = scope.from.date();
    let last = (scope.to + time::Duration::days(1)).date();
    while day <= last {
        let prefix = format!("records/{:04}/{:02}/{:02}/", day.year(), u8::from(day.month()), day.day());
        for object in ports.vault.list(&prefix).await? {
            let body = ports.vault.get(&object).await?;
            let records = body.as_deref().and_then(crate::archive::parse_batch).unwrap_or_default();
            found.extend(records.into_iter().map(|r| r.event.conversation_id));
        }
        day = match day.next_day() {
            Some(d) => d,
            None => break,
        };
    }
    Ok(found.into_iter().collect())
}

/// Writes the job's ZIP to the media store as it is made: records, then files, then manifest.
async fn write(ports: &Ports, job: &ExportJob) -> Result<Counts> {
    let key =
        ports.settings.archive_key.clone().ok_or(UseCaseError::Unconfigured("the export needs the archive key"))?;
    let (sink, source) = tokio::io::duplex(256 * 1024);
    let written = Arc::new(AtomicU64::new(0));
    let counter = written.clone();
    let body: ByteStream = tokio_util::io::ReaderStream::new(source)
        .inspect_ok(move |chunk| {
            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        })
        .boxed();
    let upload = job.file();
    let stored = ports.media.put_upload(&upload, body, u64::MAX);
    let made = async move {
        let mut zip = ZipFileWriter::with_tokio(sink);
        let counts = fill(ports, job, &key, &mut zip).await;
        // Closing the ZIP ends the stream; on a failure, dropping it ends it short.
        if counts.is_ok() {
            let mut sink = zip.close().await.map_err(zip_failed)?.into_inner();
            sink.shutdown().await.map_err(zip_failed)?;
        }
        counts
    };
    let (stored, made) = tokio::join!(stored, made);
    let counts = match (stored, made) {
        (Ok(true), Ok(counts)) => counts,
        (_, Err(e)) => {
            let _ = ports.media.discard_upload(&upload).await;
            return Err(e);
        }
        (Ok(false), Ok(_)) => return Err(zip_failed("the store refused the export's size")),
        (Err(e), Ok(_)) => return Err(e.into()),
    };
    ports.media.keep(&upload, &upload, "application/zip").await?;
    ports.media.discard_upload(&upload).await?;
    Ok(Counts { bytes: written.load(Ordering::Relaxed), ..counts })
}

type Zip = ZipFileWriter<tokio_util::compat::Compat<tokio::io::DuplexStream>>;

async fn fill(ports: &Ports, job: &ExportJob, key: &[u8], zip: &mut Zip) -> Result<Counts> {
    let mut counts = Counts::default();
    let mut entries: Vec<ThreadEntry> = Vec::new();
    let mut files: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    {
        let records = ZipEntryBuilder::new(crate::export::RECORDS.into(), Compression::Deflate);
        let mut out = zip.write_entry_stream(records).await.map_err(zip_failed)?;
        for thread in threads(ports, &job.scope).await? {
            let all: Vec<ArchiveRecord> = super::archive::records(ports, &thread).await?;
            let run = window(&all, job.scope.from, job.scope.to);
            let (Some(first), Some(last)) = (run.first(), run.last()) else { continue };
            for r in run {
                let mut line = serde_json::to_vec(r).map_err(zip_failed)?;
                line.push(b'\n');
                out.write_all(&line).await.map_err(zip_failed)?;
                if let Some((sha, id)) = files_of(r) {
                    files.entry(sha).or_insert(id);
                }
            }
            counts.records += run.len() as u64;
            entries.push(ThreadEntry {
                anchor: anchor(key, &thread, first.seq, last.seq, &last.hash),
                conversation_id: thread,
                first: first.seq,
                last: last.seq,
                head: last.hash.clone(),
            });
        }
        out.close().await.map_err(zip_failed)?;
    }
    let mut media = Vec::new();
    for (sha, id) in files {
        let Some(mut bytes) = ports.media.open(&id).await? else {
            media.push(MediaEntry { sha256: sha, media_id: id, missing: true });
            continue;
        };
        let name = format!("{}{sha}", crate::export::MEDIA_DIR);
        let mut out =
            zip.write_entry_stream(ZipEntryBuilder::new(name.into(), Compression::Stored)).await.map_err(zip_failed)?;
        let mut hasher = Sha256::new();
        while let Some(chunk) = bytes.try_next().await.map_err(zip_failed)? {
            hasher.update(&chunk);
            out.write_all(&chunk).await.map_err(zip_failed)?;
        }
        out.close().await.map_err(zip_failed)?;
        if hex::encode(hasher.finalize()) != sha {
            return Err(zip_failed(format!("file {id} no longer hashes to {sha}")));
        }
        counts.media += 1;
        media.push(MediaEntry { sha256: sha, media_id: id, missing: false });
    }
    let manifest = Manifest {
        id: job.id.clone(),
        by: job.by.clone(),
        scope: job.scope.clone(),
        created_at: job.created_at,
        records: counts.records,
        threads: entries,
        media,
    };
    let body = serde_json::to_vec_pretty(&manifest).map_err(zip_failed)?;
    let entry = ZipEntryBuilder::new(crate::export::MANIFEST.into(), Compression::Deflate);
    zip.write_entry_whole(entry, &body).await.map_err(zip_failed)?;
    Ok(counts)
}
