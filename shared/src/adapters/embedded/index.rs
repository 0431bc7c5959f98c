//! `RecordIndex` on SQLite FTS5: the archiver adds each batch's message records to
//! `search_messages`, whose triggers keep the `search_text` full-text index (case and accents
//! folded by the `unicode61 remove_diacritics 2` tokenizer) in step.

use async_trait::async_trait;
use rusqlite::params;
use time::OffsetDateTime;

use crate::archive::{hit, ArchiveRecord};
use crate::domain::search::{millis as ms, Filter, Hit};
use crate::domain::ConversationId;
use crate::ports::{IndexError, RecordIndex};

use super::{Db, DbError};

#[derive(Clone)]
pub struct SqliteIndex {
    db: Db,
}

impl SqliteIndex {
    pub fn new(db: Db) -> SqliteIndex {
        SqliteIndex { db }
    }
}

#[async_trait]
impl RecordIndex for SqliteIndex {
    async fn add(&self, records: &[ArchiveRecord]) -> Result<(), IndexError> {
        let hits: Vec<Hit> = records.iter().filter_map(hit).collect();
        if hits.is_empty() {
            return Ok(());
        }
        self.db
            .call(move |c| {
                let tx = c.transaction()?;
                {
                    let mut insert = tx.prepare_cached(
                        "INSERT OR IGNORE INTO search_messages
                         (conversation_id, seq, message_id, at_ms, sender, kind, text) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )?;
                    for h in &hits {
                        insert.execute(params![
                            h.conversation_id.as_str(),
                            h.seq as i64,
                            h.message_id.as_str(),
                            ms(h.at),
                            h.sender,
                            h.kind,
                            h.text
                        ])?;
                    }
                }
                tx.commit()?;
                Ok(())
            })
            .await
            .map_err(IndexError::from)
    }

    async fn forget(&self, records: &[ArchiveRecord]) -> Result<(), IndexError> {
        let gone: Vec<(String, i64)> =
            records.iter().map(|r| (r.event.conversation_id.as_str().to_string(), r.seq as i64)).collect();
        if gone.is_empty() {
            return Ok(());
        }
        self.db
            .call(move |c| {
                let tx = c.transaction()?;
                {
                    // The delete trigger takes each row out of the full-text index too.
                    let mut delete =
                        tx.prepare_cached("DELETE FROM search_messages WHERE conversation_id = ?1 AND seq = ?2")?;
                    for (thread, seq) in &gone {
                        delete.execute(params![thread, seq])?;
                    }
                }
                tx.commit()?;
                Ok(())
            })
            .await
            .map_err(IndexError::from)
    }

    async fn search(&self, filter: &Filter, threads: Option<&[ConversationId]>) -> Result<Vec<Hit>, IndexError> {
        // Each word quoted: FTS5 reads them as plain terms (a query's words are letters and
        // digits only), every one required.
        let matching = filter.words.iter().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(" ");
        let threads = threads.map(|t| serde_json::to_string(t).unwrap_or_default());
        let (from, to, limit) = (ms(filter.from), ms(filter.to), filter.limit as i64 + 1);
        let after = filter.after.clone();
        self.db
            .read(move |c| {
                let (source, words) = if matching.is_empty() {
                    ("search_messages m", "?1 = ''")
                } else {
                    ("search_text JOIN search_messages m ON m.id = search_text.rowid", "search_text MATCH ?1")
                };
                let sql = format!(
                    "SELECT m.conversation_id, m.seq, m.message_id, m.at_ms, m.sender, m.kind, m.text FROM {source}
                     WHERE {words}
                       AND m.at_ms BETWEEN ?2 AND ?3
                       AND (?4 IS NULL OR m.conversation_id IN (SELECT value FROM json_each(?4)))
                       AND (?5 IS NULL OR (m.at_ms, m.conversation_id, m.message_id) < (?5, ?6, ?7))
                     ORDER BY m.at_ms DESC, m.conversation_id DESC, m.message_id DESC LIMIT ?8"
                );
                let mut stmt = c.prepare_cached(&sql)?;
                let rows = stmt.query_map(
                    params![
                        matching,
                        from,
                        to,
                        threads,
                        after.as_ref().map(|a| a.at_ms),
                        after.as_ref().map(|a| a.conversation_id.to_string()),
                        after.as_ref().map(|a| a.message_id.to_string()),
                        limit
                    ],
                    |row| {
                        let at_ms: i64 = row.get(3)?;
                        Ok(Hit {
                            conversation_id: row.get::<_, String>(0)?.as_str().into(),
                            seq: row.get::<_, i64>(1)? as u64,
                            message_id: row.get::<_, String>(2)?.as_str().into(),
                            at: OffsetDateTime::from_unix_timestamp_nanos(at_ms as i128 * 1_000_000)
                                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                            sender: row.get(4)?,
                            kind: row.get(5)?,
                            text: row.get(6)?,
                        })
                    },
                )?;
                rows.collect::<Result<Vec<_>, _>>().map_err(DbError::from)
            })
            .await
            .map_err(IndexError::from)
    }
}
