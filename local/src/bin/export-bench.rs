//! E-discovery export benchmark (issue 29's measure): an archive of 100,000 records in 100
//! threads, 1,000 of them naming a file of 100 KB, on the embedded backend in a fresh data
//! directory; then, in the same run:
//! - baseline: read every record of every thread (as the export does) and every file, writing
//!   nothing;
//! - export: the same, streamed into one ZIP in the media store (`usecases::export::run`).
//!
//! Reports each one's time and peak RSS (VmHWM, reset between them), their ratio, the ZIP's
//! size, and that `export::verify` holds for it.
//!
//! `cargo run --release -p connector-local --bin export-bench [-- RECORDS FILES]`

use std::time::Instant;

use futures_util::TryStreamExt;
use shared::archive::{batch, link, ArchiveEvent, ArchiveKind, ArchiveRecord, Journaled, Segment, Source};
use shared::domain::search::{ExportAsk, Scope};
use shared::export::{ExportJob, ExportStatus};
use shared::ports::{byte_stream, Cond, Item, Key, Write};
use shared::usecases::Ports;
use time::OffsetDateTime;

const THREADS: usize = 100;
const FILE_BYTES: usize = 100 * 1024;

/// Peak RSS in kB since the last `reset_peak` (Linux).
fn peak_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn reset_peak() {
    // "5" resets the peak RSS to the current RSS (Linux 4.0 and later).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let records: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let files: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1_000);
    let dir = std::env::temp_dir().join(format!("export-bench-{}", std::process::id()));
    let env = [("CONNECTOR_DATA_DIR", dir.display().to_string())];
    let config = shared::Config::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
    let (state, _embedded) = shared::app::embedded(config).await.unwrap();
    let ports = &state.ports;
    let key = ports.settings.archive_key.clone().unwrap();

    let started = Instant::now();
    let now = OffsetDateTime::now_utc();
    let per_thread = records / THREADS;
    let every = (records / files.max(1)).max(1);
    let mut n = 0usize;
    for t in 0..THREADS {
        let thread: shared::domain::ConversationId = format!("01BENCHTHREAD{t:05}").as_str().into();
        let mut chain: Vec<ArchiveRecord> = Vec::with_capacity(per_thread);
        for i in 0..per_thread {
            let mut details = serde_json::json!({ "direction": "outbound", "kind": "text" });
            if n.is_multiple_of(every) && n / every < files {
                let id = format!("01BENCHFILE{n:08}");
                let mut bytes = vec![0u8; FILE_BYTES];
                bytes[..8].copy_from_slice(&(n as u64).to_le_bytes());
                let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
                ports.media.put_upload(&id, byte_stream(bytes), u64::MAX).await.unwrap();
                ports.media.keep(&id, &id, "application/pdf").await.unwrap();
                details = serde_json::json!({ "kind": "document", "media_id": id, "file": { "sha256": sha } });
            }
            let event = ArchiveEvent {
                conversation_id: thread.clone(),
                kind: ArchiveKind::Message,
                actor: "bench".into(),
                at: now - time::Duration::seconds((per_thread - i) as i64),
                message_id: Some(format!("01BENCHMSG{n:08}").as_str().into()),
                wamid: None,
                text_as_sent: Some(format!("Message {n} of the benchmark: the quarterly statement is attached.")),
                text_as_written: None,
                details,
            };
            let prev = chain.last().map(ArchiveRecord::head);
            let source = Source { item: "META".into(), n: i as u64 + 1 };
            chain.push(link(&key, prev.as_ref(), Journaled { source, event }));
            n += 1;
        }
        let (name, body) = batch(&chain, now);
        ports.vault.put(&name, body).await.unwrap();
        let last = chain.last().unwrap();
        let segment = Segment {
            conversation_id: thread,
            first: 1,
            last: last.seq,
            head: last.hash.clone(),
            position: shared::archive::Position::of(t as u64 + 1),
            object: name,
        };
        ports
            .store
            .submit(&shared::ports::Transaction::new(vec![Write::Put {
                item: Item::ArchiveSegment(segment),
                cond: Cond::NotExists,
            }]))
            .await
            .unwrap();
    }
    println!(
        "seeded {n} records in {THREADS} threads and {files} files of {FILE_BYTES} B in {:.1?}",
        started.elapsed()
    );

    reset_peak();
    let before = peak_kb();
    let started = Instant::now();
    let (read, bytes) = baseline(ports).await;
    let (baseline_time, baseline_peak) = (started.elapsed(), peak_kb());
    println!("baseline (read every record and file): {read} records, {bytes} file bytes in {baseline_time:.2?}; peak RSS {} MB (from {} MB)", baseline_peak / 1024, before / 1024);

    let ask = ExportAsk {
        from: Some((now - time::Duration::days(1)).format(&time::format_description::well_known::Rfc3339).unwrap()),
        ..ExportAsk::default()
    };
    let job = ExportJob {
        id: "01BENCHEXPORT".into(),
        by: "bench".into(),
        scope: Scope::of(&ask, now + time::Duration::minutes(1)).unwrap(),
        status: ExportStatus::Running,
        records: 0,
        media: 0,
        bytes: 0,
        created_at: now,
        finished_at: None,
        error: None,
    };
    ports
        .store
        .submit(&shared::ports::Transaction::new(vec![Write::Put {
            item: Item::Export(job.clone()),
            cond: Cond::NotExists,
        }]))
        .await
        .unwrap();
    reset_peak();
    let before = peak_kb();
    let started = Instant::now();
    shared::usecases::export::run(ports, &job.id).await.unwrap();
    let (export_time, export_peak) = (started.elapsed(), peak_kb());
    let done = match ports.store.get(&Key::export(&job.id)).await.unwrap().unwrap().item {
        Item::Export(j) => j,
        _ => unreachable!(),
    };
    assert_eq!(done.status, ExportStatus::Done, "{:?}", done.error);
    println!(
        "export: {} records, {} files, {} MB ZIP in {export_time:.2?}; peak RSS {} MB (from {} MB)",
        done.records,
        done.media,
        done.bytes / 1_000_000,
        export_peak / 1024,
        before / 1024
    );
    println!(
        "export / baseline: time {:.2}x, peak RSS {:.2}x",
        export_time.as_secs_f64() / baseline_time.as_secs_f64(),
        export_peak as f64 / baseline_peak.max(1) as f64
    );
    let zip = dir.join("media").join(job.file());
    let started = Instant::now();
    let check = shared::export::verify(&zip, &key).await.unwrap();
    println!(
        "verify-export: {} in {:.2?} ({:?})",
        if check.valid { "valid" } else { "INVALID" },
        started.elapsed(),
        check.problem
    );
    assert!(check.valid);
    let _ = std::fs::remove_dir_all(&dir);
}

/// What the export reads, read and dropped: each thread's records through its segments, then
/// every file they name.
async fn baseline(ports: &Ports) -> (usize, u64) {
    let (mut records, mut bytes) = (0, 0u64);
    let mut ids = Vec::new();
    for t in 0..THREADS {
        let thread: shared::domain::ConversationId = format!("01BENCHTHREAD{t:05}").as_str().into();
        let found = shared::usecases::archive::records(ports, &thread).await.unwrap();
        records += found.len();
        ids.extend(found.iter().filter_map(shared::export::files_of).map(|(_, id)| id));
    }
    for id in ids {
        let mut body = ports.media.open(&id).await.unwrap().unwrap();
        while let Some(chunk) = body.try_next().await.unwrap() {
            bytes += chunk.len() as u64;
        }
    }
    (records, bytes)
}
