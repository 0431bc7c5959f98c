//! `Archive` on SQLite: an append-only table (triggers refuse updates and deletes), one hash
//! chain per thread, linked inside the writer's transaction.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

use super::Db;
use crate::archive::{link, ArchiveEvent, ArchiveRecord};
use crate::ports::{Archive, ArchiveError};

#[derive(Clone)]
pub struct SqliteArchive {
    db: Db,
}

impl SqliteArchive {
    pub fn new(db: Db) -> SqliteArchive {
        SqliteArchive { db }
    }
}

#[async_trait]
impl Archive for SqliteArchive {
    async fn append(&self, events: Vec<ArchiveEvent>) -> Result<(), ArchiveError> {
        if events.is_empty() {
            return Ok(());
        }
        self.db
            .call(move |c| {
                let tx =
                    c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| e.to_string())?;
                for event in events {
                    let last: Option<(i64, String)> = tx
                        .prepare_cached(
                            "SELECT seq, hash FROM archive WHERE conversation_id = ?1 ORDER BY seq DESC LIMIT 1",
                        )
                        .and_then(|mut s| {
                            s.query_row([&event.conversation_id], |r| Ok((r.get(0)?, r.get(1)?))).optional()
                        })
                        .map_err(|e| e.to_string())?;
                    let record = link(last.as_ref().map(|(s, h)| (*s as u64, h.as_str())), event);
                    let body = serde_json::to_string(&record).map_err(|e| e.to_string())?;
                    tx.prepare_cached("INSERT INTO archive (conversation_id, seq, hash, body) VALUES (?1, ?2, ?3, ?4)")
                        .and_then(|mut s| {
                            s.execute(params![record.event.conversation_id, record.seq as i64, record.hash, body])
                        })
                        .map_err(|e| e.to_string())?;
                }
                tx.commit().map_err(|e| e.to_string())
            })
            .await
            .map_err(ArchiveError)
    }

    async fn read(&self, conversation_id: &str) -> Result<Vec<ArchiveRecord>, ArchiveError> {
        let id = conversation_id.to_string();
        let bodies = self
            .db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached("SELECT body FROM archive WHERE conversation_id = ?1 ORDER BY seq")
                    .map_err(|e| e.to_string())?;
                let rows = stmt.query_map([id], |r| r.get::<_, String>(0)).map_err(|e| e.to_string())?;
                rows.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())
            })
            .await
            .map_err(ArchiveError)?;
        bodies
            .iter()
            .map(|b| serde_json::from_str(b).map_err(|e| ArchiveError(format!("unreadable record: {e}"))))
            .collect()
    }
}
