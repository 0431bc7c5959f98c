//! `Archive` on SQLite, read side: the append-only table (triggers refuse updates and deletes)
//! that `SqliteStore` writes archive records to, inside the commit that records the change.

use async_trait::async_trait;

use super::db::{Db, DbError};
use crate::archive::ArchiveRecord;
use crate::domain::ConversationId;
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
    async fn read(&self, conversation_id: &ConversationId) -> Result<Vec<ArchiveRecord>, ArchiveError> {
        let id = conversation_id.to_string();
        let bodies = self
            .db
            .read(move |c| {
                let mut stmt = c.prepare_cached("SELECT body FROM archive WHERE conversation_id = ?1 ORDER BY seq")?;
                let rows = stmt.query_map([id], |r| r.get::<_, String>(0))?;
                rows.collect::<Result<Vec<_>, _>>().map_err(DbError::from)
            })
            .await?;
        bodies.iter().map(|b| serde_json::from_str(b).map_err(|e| ArchiveError(Box::new(e)))).collect()
    }
}
