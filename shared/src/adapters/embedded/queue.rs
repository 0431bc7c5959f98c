//! `Queue` on SQLite: the outbound FIFO queue (one group per conversation, only the head of a
//! group is ever handed out) and the receipts queue, with visibility timeouts like SQS.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::params;
use time::OffsetDateTime;
use tokio::sync::Notify;

use super::db::{Db, DbError};
use crate::ports::{Clock, OutboundJob, Queue, QueueError, ReceiptsJob};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueName {
    Outbound,
    Receipts,
}

impl QueueName {
    fn as_str(self) -> &'static str {
        match self {
            QueueName::Outbound => "outbound",
            QueueName::Receipts => "receipts",
        }
    }
}

/// A message handed to a consumer; it stays invisible until acknowledged or retried.
#[derive(Debug, Clone)]
pub struct ReceivedJob {
    pub seq: i64,
    pub body: String,
    /// How many times it has been handed out, this time included.
    pub receives: u32,
    /// Its FIFO group (the outbound queue's: the conversation).
    pub group: Option<String>,
}

#[derive(Clone)]
pub struct SqliteQueue {
    db: Db,
    wake: Arc<[Notify; 2]>,
    /// The connector's clock (the dev clock when it runs): visibility is measured by it.
    clock: Arc<dyn Clock>,
}

/// How long a handed-out message stays invisible if its consumer dies.
const VISIBILITY: Duration = Duration::from_secs(30);

fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

impl SqliteQueue {
    pub fn new(db: Db, clock: Arc<dyn Clock>) -> SqliteQueue {
        SqliteQueue { db, wake: Arc::new([Notify::new(), Notify::new()]), clock }
    }

    fn notify(&self, q: QueueName) -> &Notify {
        &self.wake[q as usize]
    }

    /// Waits until something is sent to `q` or `timeout` passes.
    pub async fn wait(&self, q: QueueName, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.notify(q).notified()).await;
    }

    async fn push(
        &self,
        q: QueueName,
        group: Option<String>,
        dedupe: Option<String>,
        body: String,
    ) -> Result<(), QueueError> {
        self.db
            .call(move |c| {
                // A duplicate dedupe id is dropped, as SQS FIFO does.
                c.execute(
                    "INSERT OR IGNORE INTO queue (queue, group_key, dedupe_id, body, visible_at) VALUES (?1, ?2, ?3, ?4, 0)",
                    params![q.as_str(), group, dedupe, body],
                )
                .map(|_| ())
                .map_err(DbError::from)
            })
            .await?;
        self.notify(q).notify_one();
        Ok(())
    }

    /// Hands out up to `max` visible messages; on the outbound queue only the head of each group.
    pub async fn receive(&self, q: QueueName, now: OffsetDateTime, max: usize) -> Result<Vec<ReceivedJob>, QueueError> {
        let now_ms = ms(now);
        let hidden_until = now_ms + VISIBILITY.as_millis() as i64;
        self.db
            .call(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let jobs = {
                    let mut stmt = tx
                        .prepare_cached(
                            "SELECT seq, body, receives, group_key FROM queue q WHERE queue = ?1 AND visible_at <= ?2
                             AND (group_key IS NULL OR NOT EXISTS (
                                 SELECT 1 FROM queue p WHERE p.queue = q.queue AND p.group_key = q.group_key AND p.seq < q.seq))
                             ORDER BY seq LIMIT ?3",
                        )?;
                    let rows = stmt
                        .query_map(params![q.as_str(), now_ms, max as i64], |r| {
                            Ok(ReceivedJob {
                                seq: r.get(0)?,
                                body: r.get(1)?,
                                receives: r.get::<_, u32>(2)? + 1,
                                group: r.get(3)?,
                            })
                        })?;
                    rows.collect::<Result<Vec<_>, _>>()?
                };
                for j in &jobs {
                    tx.execute(
                        "UPDATE queue SET visible_at = ?1, receives = receives + 1 WHERE seq = ?2",
                        params![hidden_until, j.seq],
                    )?;
                }
                tx.commit()?;
                Ok(jobs)
            })
            .await
            .map_err(QueueError::from)
    }

    pub async fn ack(&self, seq: i64) -> Result<(), QueueError> {
        self.db
            .call(move |c| c.execute("DELETE FROM queue WHERE seq = ?1", [seq]).map(|_| ()).map_err(DbError::from))
            .await
            .map_err(QueueError::from)
    }

    /// Makes the message visible again at `at` (it keeps its place in its group).
    pub async fn retry_at(&self, seq: i64, at: OffsetDateTime) -> Result<(), QueueError> {
        let at = ms(at);
        self.db
            .call(move |c| {
                c.execute("UPDATE queue SET visible_at = ?1 WHERE seq = ?2", params![at, seq])
                    .map(|_| ())
                    .map_err(DbError::from)
            })
            .await
            .map_err(QueueError::from)
    }

    /// Messages waiting or in flight (for tests and the status line).
    pub async fn depth(&self, q: QueueName) -> Result<u64, QueueError> {
        self.db
            .call(move |c| {
                c.query_row("SELECT COUNT(*) FROM queue WHERE queue = ?1", [q.as_str()], |r| r.get::<_, i64>(0))
                    .map(|n| n as u64)
                    .map_err(DbError::from)
            })
            .await
            .map_err(QueueError::from)
    }
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn send_outbound(&self, job: OutboundJob) -> Result<(), QueueError> {
        let body = serde_json::to_string(&job).map_err(|e| QueueError(Box::new(e)))?;
        self.push(QueueName::Outbound, Some(job.conversation_id.to_string()), Some(job.dedupe_id()), body).await
    }

    async fn send_receipt(&self, job: ReceiptsJob) -> Result<(), QueueError> {
        let body = serde_json::to_string(&job).map_err(|e| QueueError(Box::new(e)))?;
        self.push(QueueName::Receipts, None, None, body).await
    }

    /// `receipt` is the message's sequence number (what the local consumer hands the runner).
    async fn delay(&self, _: crate::ports::QueueKind, receipt: &str, after: Duration) -> Result<(), QueueError> {
        let seq: i64 = receipt.parse().map_err(|e| QueueError(Box::new(e)))?;
        self.retry_at(seq, self.clock.now() + after).await
    }
}
