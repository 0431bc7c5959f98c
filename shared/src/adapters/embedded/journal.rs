//! `RecordJournal` as a JSON Lines file (`<data dir>/journal.jsonl`): one line per record, the
//! record as archived, appended and synced before the archiver moves on.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use crate::archive::ArchiveRecord;
use crate::ports::{JournalError, RecordJournal};

#[derive(Clone)]
pub struct FileJournal {
    path: PathBuf,
    /// One append at a time: lines never interleave.
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl FileJournal {
    pub fn new(data_dir: &Path) -> FileJournal {
        FileJournal { path: data_dir.join("journal.jsonl"), lock: Arc::default() }
    }
}

#[async_trait]
impl RecordJournal for FileJournal {
    async fn publish(&self, records: &[ArchiveRecord]) -> Result<(), JournalError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut lines = Vec::new();
        for r in records {
            serde_json::to_writer(&mut lines, r).map_err(|e| JournalError(Box::new(e)))?;
            lines.push(b'\n');
        }
        let _one = self.lock.lock().await;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
            file.write_all(&lines)?;
            file.sync_data()
        })
        .await
        .map_err(|e| JournalError(Box::new(e)))?
        .map_err(|e| JournalError(Box::new(e)))
    }
}
