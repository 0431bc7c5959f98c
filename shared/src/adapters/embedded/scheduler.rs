//! `Scheduler` on SQLite: a table of due timers, one row per timer name (re-arming replaces).

use async_trait::async_trait;
use rusqlite::params;
use time::OffsetDateTime;

use super::db::{Db, DbError};
use crate::ports::{Scheduler, SchedulerError, Timer};

#[derive(Clone)]
pub struct SqliteScheduler {
    db: Db,
}

impl SqliteScheduler {
    pub fn new(db: Db) -> SqliteScheduler {
        SqliteScheduler { db }
    }

    /// The timers due at `now`, earliest first, each with the time it was due; they stay armed
    /// until `fired` (a process killed while firing them fires them again when it restarts).
    pub async fn due(&self, now: OffsetDateTime) -> Result<Vec<(Timer, i64)>, SchedulerError> {
        let now = now.unix_timestamp();
        let rows = self
            .db
            .call(move |c| {
                let mut stmt =
                    c.prepare_cached("SELECT body, due_at FROM timers WHERE due_at <= ?1 ORDER BY due_at, name")?;
                let rows = stmt.query_map([now], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
                rows.collect::<Result<Vec<_>, _>>().map_err(DbError::from)
            })
            .await?;
        Ok(rows.into_iter().filter_map(|(b, at)| serde_json::from_str(&b).ok().map(|t| (t, at))).collect())
    }

    /// Disarms `timer`, fired for its time `due_at`, unless it was armed again since.
    pub async fn fired(&self, timer: &Timer, due_at: i64) -> Result<(), SchedulerError> {
        let name = timer.name();
        self.db
            .call(move |c| {
                c.execute("DELETE FROM timers WHERE name = ?1 AND due_at = ?2", params![name, due_at])
                    .map(|_| ())
                    .map_err(DbError::from)
            })
            .await
            .map_err(SchedulerError::from)
    }
}

#[async_trait]
impl Scheduler for SqliteScheduler {
    async fn schedule(&self, timer: &Timer, at: OffsetDateTime) -> Result<(), SchedulerError> {
        let name = timer.name();
        let body = serde_json::to_string(timer).map_err(|e| SchedulerError::Unavailable(Box::new(e)))?;
        let due = at.unix_timestamp();
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT INTO timers (name, due_at, body) VALUES (?1, ?2, ?3)
                     ON CONFLICT(name) DO UPDATE SET due_at = excluded.due_at, body = excluded.body",
                    params![name, due, body],
                )
                .map(|_| ())
                .map_err(DbError::from)
            })
            .await
            .map_err(SchedulerError::from)
    }
}
