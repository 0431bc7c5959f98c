//! The e-discovery export's format (CONTRACT.md section 8): one ZIP holding `records.jsonl` (the
//! archive records, each thread's in chain order, with their chain fields), `media/<sha256>` (every
//! file the records name) and `manifest.json` (what was asked, the counts, and for each thread its
//! first and last `seq`, head hash and anchor). It is written as it streams to the store, and
//! checked offline by `verify` (`connector-local archive verify-export FILE`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use futures_lite::io::{AsyncBufReadExt, AsyncReadExt};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::archive::{hash, ArchiveKind, ArchiveRecord, GENESIS};
use crate::domain::search::Scope;
use crate::domain::{ConversationId, UserId};

pub const RECORDS: &str = "records.jsonl";
pub const MANIFEST: &str = "manifest.json";
pub const MEDIA_DIR: &str = "media/";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportStatus {
    Running,
    Done,
    Failed,
}

/// An export job (`POST /admin/exports`): who asked for what, and how far it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportJob {
    pub id: String,
    pub by: UserId,
    pub scope: Scope,
    pub status: ExportStatus,
    pub records: u64,
    pub media: u64,
    pub bytes: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ExportJob {
    /// The name of its ZIP in the media store.
    pub fn file(&self) -> String {
        format!("export{}", self.id)
    }
}

/// One thread in the manifest: the records of it the export holds (`first..=last`, the last
/// one's hash `head`), and the anchor that seals them under the archive key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadEntry {
    pub conversation_id: ConversationId,
    pub first: u64,
    pub last: u64,
    pub head: String,
    pub anchor: String,
}

/// A file the records name: its hash (its name in the ZIP), size and our id of it; `missing`
/// when the store no longer held it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaEntry {
    pub sha256: String,
    pub media_id: String,
    #[serde(default)]
    pub missing: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub id: String,
    pub by: UserId,
    pub scope: Scope,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub records: u64,
    pub threads: Vec<ThreadEntry>,
    pub media: Vec<MediaEntry>,
}

/// The anchor of a thread's records `first..=last` ending in `head`: their keyed hash, so a
/// manifest edited to hide records cut from either end does not verify without the key.
pub fn anchor(key: &[u8], thread: &ConversationId, first: u64, last: u64, head: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(format!("export-anchor\n{thread}\n{first}\n{last}\n{head}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The run of `records` (one thread's, in chain order) inside `from..=to`: from the first at or
/// after `from` to the last at or before `to`, with every record between, so the chain holds.
pub fn window(records: &[ArchiveRecord], from: OffsetDateTime, to: OffsetDateTime) -> &[ArchiveRecord] {
    let Some(start) = records.iter().position(|r| r.event.at >= from) else { return &[] };
    let Some(end) = records.iter().rposition(|r| r.event.at <= to) else { return &[] };
    if end < start {
        return &[];
    }
    &records[start..=end]
}

/// The files `record` names: `(sha256, our id)`: a message's own (ours, sent), or a contact's
/// file as kept (its `media` record).
pub fn files_of(record: &ArchiveRecord) -> Option<(String, String)> {
    let d = &record.event.details;
    let (sha, id) = match record.event.kind {
        ArchiveKind::Media => (d.get("sha256"), d.get("media_id")),
        ArchiveKind::Message => (d.pointer("/file/sha256"), d.get("media_id")),
        _ => return None,
    };
    Some((sha?.as_str()?.to_string(), id?.as_str()?.to_string()))
}

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExportCheck {
    pub valid: bool,
    pub records: u64,
    pub threads: usize,
    pub media: usize,
    /// The first thing that does not hold, named.
    pub problem: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportReadError {
    #[error("not a readable ZIP")]
    Zip(#[from] async_zip::error::ZipError),
    #[error("reading the export")]
    Io(#[from] std::io::Error),
}

/// Each thread's chain as `verify` reads it, record by record.
struct Chain {
    first: u64,
    last: u64,
    head: String,
}

/// Checks the export at `path` under the archive key: every record's keyed hash and link, each
/// thread's run against its manifest entry and anchor, every file against its hash and the
/// manifest, and the counts. Reads one entry at a time; holds one line, or one chunk of a file.
pub async fn verify(path: &Path, key: &[u8]) -> Result<ExportCheck, ExportReadError> {
    let zip = async_zip::tokio::read::fs::ZipFileReader::new(path).await?;
    let names: Vec<String> =
        zip.file().entries().iter().map(|e| e.filename().as_str().unwrap_or("").to_string()).collect();
    let fail = |check: &ExportCheck, why: String| Ok(ExportCheck { valid: false, problem: Some(why), ..check.clone() });
    let mut check = ExportCheck::default();
    let Some(m) = names.iter().position(|n| n == MANIFEST) else { return fail(&check, "no manifest.json".into()) };
    let mut text = String::new();
    zip.reader_with_entry(m).await?.read_to_string_checked(&mut text).await?;
    let manifest: Manifest = match serde_json::from_str(&text) {
        Ok(m) => m,
        Err(e) => return fail(&check, format!("manifest.json does not parse: {e}")),
    };
    let Some(r) = names.iter().position(|n| n == RECORDS) else { return fail(&check, "no records.jsonl".into()) };
    let mut chains: BTreeMap<ConversationId, Chain> = BTreeMap::new();
    let mut named: BTreeSet<String> = BTreeSet::new();
    let mut lines = futures_lite::io::BufReader::new(zip.reader_with_entry(r).await?).lines();
    use futures_lite::StreamExt;
    while let Some(line) = lines.next().await {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        check.records += 1;
        let record: ArchiveRecord = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => return fail(&check, format!("records.jsonl line {} does not parse: {e}", check.records)),
        };
        let thread = record.event.conversation_id.clone();
        let at = format!("{thread} seq {}", record.seq);
        if record.hash != hash(key, record.seq, &record.prev_hash, &record.source, &record.event) {
            return fail(
                &check,
                format!("{at}: its hash is not the archive key's hash of it (changed, or another key)"),
            );
        }
        match chains.get_mut(&thread) {
            None => {
                if record.seq == 1 && record.prev_hash != GENESIS {
                    return fail(&check, format!("{at}: the first record does not start the chain"));
                }
                chains.insert(thread, Chain { first: record.seq, last: record.seq, head: record.hash.clone() });
            }
            Some(chain) => {
                if record.seq != chain.last + 1 || record.prev_hash != chain.head {
                    return fail(
                        &check,
                        format!("{at}: does not follow seq {} (a record removed, moved or changed)", chain.last),
                    );
                }
                chain.last = record.seq;
                chain.head = record.hash.clone();
            }
        }
        if let Some((sha, _)) = files_of(&record) {
            named.insert(sha);
        }
    }
    check.threads = chains.len();
    if check.records != manifest.records {
        return fail(
            &check,
            format!("the manifest counts {} records; records.jsonl holds {}", manifest.records, check.records),
        );
    }
    for t in &manifest.threads {
        let Some(chain) = chains.remove(&t.conversation_id) else {
            return fail(&check, format!("{}: in the manifest, with no records", t.conversation_id));
        };
        if (chain.first, chain.last, chain.head.as_str()) != (t.first, t.last, t.head.as_str()) {
            return fail(
                &check,
                format!(
                    "{}: the records run {}..={}, the manifest says {}..={}",
                    t.conversation_id, chain.first, chain.last, t.first, t.last
                ),
            );
        }
        if t.anchor != anchor(key, &t.conversation_id, t.first, t.last, &t.head) {
            return fail(&check, format!("{}: the anchor is not the archive key's", t.conversation_id));
        }
    }
    if let Some((thread, _)) = chains.into_iter().next() {
        return fail(&check, format!("{thread}: records the manifest does not name"));
    }
    let listed: BTreeMap<&str, &MediaEntry> = manifest.media.iter().map(|m| (m.sha256.as_str(), m)).collect();
    if let Some(sha) = named.iter().find(|s| !listed.contains_key(s.as_str())) {
        return fail(&check, format!("media/{sha}: named by a record, not in the manifest"));
    }
    for (i, name) in names.iter().enumerate() {
        let Some(sha) = name.strip_prefix(MEDIA_DIR) else { continue };
        let mut file = zip.reader_with_entry(i).await?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        if hex::encode(hasher.finalize()) != sha {
            return fail(&check, format!("{name}: its bytes do not hash to its name"));
        }
        check.media += 1;
    }
    for m in &manifest.media {
        let held = names.iter().any(|n| n.strip_prefix(MEDIA_DIR) == Some(m.sha256.as_str()));
        if !held {
            let why = if m.missing { "the store no longer held it when exported" } else { "not in the export" };
            return fail(&check, format!("media/{}: {why}", m.sha256));
        }
    }
    check.valid = true;
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{link, ArchiveEvent, Journaled, Source};
    use time::macros::datetime;

    fn chain(n: u64, start: OffsetDateTime) -> Vec<ArchiveRecord> {
        let mut out: Vec<ArchiveRecord> = Vec::new();
        for i in 0..n {
            let event = ArchiveEvent {
                conversation_id: "c".into(),
                kind: ArchiveKind::Message,
                actor: "u1".into(),
                at: start + time::Duration::minutes(i as i64),
                message_id: Some(format!("m{i}").as_str().into()),
                wamid: None,
                text_as_sent: Some(format!("text {i}")),
                text_as_written: None,
                details: serde_json::Value::Null,
            };
            let prev = out.last().map(ArchiveRecord::head);
            out.push(link(b"k", prev.as_ref(), Journaled { source: Source { item: "META".into(), n: i + 1 }, event }));
        }
        out
    }

    #[test]
    fn a_period_takes_a_whole_run_of_the_chain_so_its_links_still_check() {
        let t = datetime!(2026-12-01 10:00 UTC);
        let c = chain(5, t);
        let seqs = |w: &[ArchiveRecord]| w.iter().map(|r| r.seq).collect::<Vec<_>>();
        assert_eq!(seqs(window(&c, t + time::Duration::minutes(1), t + time::Duration::minutes(3))), vec![2, 3, 4]);
        assert_eq!(seqs(window(&c, t - time::Duration::DAY, t + time::Duration::DAY)), vec![1, 2, 3, 4, 5]);
        assert!(window(&c, t + time::Duration::DAY, t + time::Duration::DAY * 2).is_empty());
        assert!(window(&c, t - time::Duration::DAY * 2, t - time::Duration::DAY).is_empty());
    }

    #[test]
    fn an_anchor_is_the_key_s_and_names_the_run() {
        let a = anchor(b"k", &"c".into(), 1, 5, "h");
        assert_eq!(a, anchor(b"k", &"c".into(), 1, 5, "h"));
        assert_ne!(a, anchor(b"k", &"c".into(), 1, 4, "h"));
        assert_ne!(a, anchor(b"other", &"c".into(), 1, 5, "h"));
    }
}
