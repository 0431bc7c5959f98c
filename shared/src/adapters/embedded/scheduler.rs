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

    /// Removes and returns the timers due at `now`, earliest first. A timer whose handler then
    /// fails is lost, which is harmless: handlers re-check state and the next event re-arms.
    pub async fn take_due(&self, now: OffsetDateTime) -> Result<Vec<Timer>, SchedulerError> {
        let now = now.unix_timestamp();
        let bodies = self
            .db
            .call(move |c| {
                let tx = c.transaction()?;
                let bodies = {
                    let mut stmt = tx.prepare("SELECT body FROM timers WHERE due_at <= ?1 ORDER BY due_at, name")?;
                    let rows = stmt.query_map([now], |r| r.get::<_, String>(0))?;
                    rows.collect::<Result<Vec<_>, _>>()?
                };
                tx.execute("DELETE FROM timers WHERE due_at <= ?1", [now])?;
                tx.commit()?;
                Ok(bodies)
            })
            .await?;
        Ok(bodies.iter().filter_map(|b| serde_json::from_str(b).ok()).collect())
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
