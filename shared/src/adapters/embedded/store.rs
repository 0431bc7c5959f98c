//! `Store` on SQLite: items as JSON rows, conditions checked inside one IMMEDIATE transaction.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use time::OffsetDateTime;

use std::sync::Arc;

use tokio::sync::Notify;

use super::db::{Db, DbError};
use crate::archive::Position;
use crate::live::Change;
use crate::ports::{
    ChangeEntry, ChangeStream, Cond, Feed, Item, Key, Store, StoreError, StreamEntry, Transaction, Versioned, Write,
};

#[derive(Clone)]
pub struct SqliteStore {
    db: Db,
    changed: Arc<Notify>,
    archivable: Arc<Notify>,
}

/// Commits whose changes are kept for live streams to resume from (the sweep drops older ones).
const CHANGES_KEPT: i64 = 100_000;

/// A change's position in the feed: its commit's row number, then its place in the commit (a
/// commit makes fewer changes than a transaction has writes, at most 100).
const PER_ROW: u64 = 128;

/// Queries of at most this many rows run on the calling thread (a contact's partition, a page).
const SHORT_QUERY: usize = 1001;

impl SqliteStore {
    pub fn new(db: Db) -> SqliteStore {
        SqliteStore { db, changed: Arc::new(Notify::new()), archivable: Arc::new(Notify::new()) }
    }

    /// Deletes expired items (dedupe marks past their TTL), and the feed's rows the live
    /// streams no longer resume from and the archiver has read; the local runner calls it hourly.
    pub async fn sweep_expired(&self, now: OffsetDateTime) -> Result<usize, StoreError> {
        let now = now.unix_timestamp();
        let archiver = Key::archiver();
        self.db
            .call(move |c| {
                let n = c.execute("DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at <= ?1", [now]);
                c.execute(
                    "DELETE FROM changes WHERE seq <= (SELECT MAX(seq) FROM changes) - ?1
                     AND seq <= COALESCE((SELECT CAST(json_extract(body, '$.position') AS INTEGER)
                                          FROM items WHERE pk = ?2 AND sk = ?3), 0)",
                    params![CHANGES_KEPT, archiver.pk, archiver.sk],
                )
                .and(n)
                .map_err(DbError::from)
            })
            .await
            .map_err(StoreError::from)
    }
}

fn decode(body: &str, version: i64) -> Result<Versioned<Item>, StoreError> {
    let item = serde_json::from_str(body).map_err(|e| StoreError::Corrupt(Box::new(e)))?;
    Ok(Versioned { item, version: version as u64 })
}

fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The live version under `key`, if any (an expired item is absent).
fn current_version(tx: &Connection, key: &Key) -> rusqlite::Result<Option<i64>> {
    tx.prepare_cached(
        "SELECT version FROM items WHERE pk = ?1 AND sk = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
    )?
    .query_row(params![key.pk, key.sk, now_secs()], |r| r.get(0))
    .optional()
}

fn holds(cond: Cond, current: Option<i64>) -> bool {
    cond.holds(current.map(|v| v as u64))
}

enum TxError {
    Conflict(usize),
    Db(rusqlite::Error),
}

/// A write with its body serialized, on the caller's thread: the writer thread, which every
/// transaction goes through, only checks and stores.
enum Row {
    /// A commit's change entry goes to the feed's log as one row, numbered in commit order.
    Changes {
        body: String,
    },
    Put {
        key: Key,
        cond: Cond,
        expires: Option<i64>,
        body: String,
    },
    Delete {
        key: Key,
        cond: Cond,
    },
    Check {
        key: Key,
        cond: Cond,
    },
}

impl Row {
    fn of(w: &Write) -> Result<Row, serde_json::Error> {
        Ok(match w {
            Write::Put { item, cond } => Row::Put {
                key: item.key(),
                cond: *cond,
                expires: item.expires_at().map(|t| t.unix_timestamp()),
                body: serde_json::to_string(item)?,
            },
            Write::Delete { key, cond } => Row::Delete { key: key.clone(), cond: *cond },
            Write::Check { key, cond } => Row::Check { key: key.clone(), cond: *cond },
        })
    }

    /// Its size as DynamoDB would count it (keys and body), for the limits every store keeps.
    fn size(&self) -> usize {
        match self {
            Row::Changes { body } => body.len(),
            Row::Put { key, body, .. } => key.pk.len() + key.sk.len() + body.len(),
            Row::Delete { key, .. } | Row::Check { key, .. } => key.pk.len() + key.sk.len(),
        }
    }
}

/// Applies `rows` inside the transaction the caller holds open (the writer's group
/// transaction). Every condition is checked before the first statement that writes, so a
/// conflict leaves nothing behind without a savepoint of its own (see `Db::transact`); an error
/// after that is the database's own, and fails the group.
fn apply(tx: &Connection, rows: &[Row]) -> Result<(), TxError> {
    let other = TxError::Db;
    // Versions as this transaction leaves them, for a key it writes twice; and each put's new one.
    let mut written: Vec<(&Key, Option<i64>)> = Vec::new();
    let mut versions = vec![0; rows.len()];
    for (index, row) in rows.iter().enumerate() {
        let free = match row {
            Row::Changes { .. } => true,
            Row::Put { key, cond, .. } | Row::Delete { key, cond } | Row::Check { key, cond } => {
                let current = match written.iter().rev().find(|(k, _)| *k == key) {
                    Some((_, v)) => *v,
                    None => current_version(tx, key).map_err(other)?,
                };
                let next = matches!(row, Row::Put { .. }).then(|| current.unwrap_or(0) + 1);
                if !matches!(row, Row::Check { .. }) {
                    written.push((key, next));
                }
                versions[index] = next.unwrap_or_default();
                holds(*cond, current)
            }
        };
        if !free {
            return Err(TxError::Conflict(index));
        }
    }
    for (row, version) in rows.iter().zip(versions) {
        match row {
            Row::Changes { body } => tx
                .prepare_cached("INSERT INTO changes (at, body) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute(params![now_secs(), body])),
            Row::Put { key, expires, body, .. } => tx
                .prepare_cached(
                    "INSERT INTO items (pk, sk, version, expires_at, body) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(pk, sk) DO UPDATE SET version = excluded.version,
                         expires_at = excluded.expires_at, body = excluded.body",
                )
                .and_then(|mut s| s.execute(params![key.pk, key.sk, version, expires, body])),
            Row::Delete { key, .. } => tx
                .prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2")
                .and_then(|mut s| s.execute(params![key.pk, key.sk])),
            Row::Check { .. } => Ok(0),
        }
        .map_err(other)?;
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &Key) -> Result<Option<Versioned<Item>>, StoreError> {
        let key = key.clone();
        let row = self
            .db
            .read_now(move |c| {
                c.prepare_cached(
                    "SELECT body, version FROM items WHERE pk = ?1 AND sk = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
                )
                .and_then(|mut s| {
                    s.query_row(params![key.pk, key.sk, now_secs()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                        .optional()
                })
                .map_err(DbError::from)
            })
            .await?;
        row.map(|(body, v)| decode(&body, v)).transpose()
    }

    async fn query(
        &self,
        pk: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        ascending: bool,
    ) -> Result<Vec<Versioned<Item>>, StoreError> {
        let (pk, prefix, after) = (pk.to_string(), prefix.to_string(), after.map(str::to_string));
        let run = move |c: &Connection| {
            let sql = if ascending {
                "SELECT body, version FROM items WHERE pk = ?1 AND sk >= ?2 AND sk < ?3
                 AND (?4 IS NULL OR sk > ?4) AND (expires_at IS NULL OR expires_at > ?5) ORDER BY sk ASC LIMIT ?6"
            } else {
                "SELECT body, version FROM items WHERE pk = ?1 AND sk >= ?2 AND sk < ?3
                 AND (?4 IS NULL OR sk < ?4) AND (expires_at IS NULL OR expires_at > ?5) ORDER BY sk DESC LIMIT ?6"
            };
            // Every key that starts with `prefix` sorts in [prefix, prefix + U+10FFFF).
            let upper = format!("{prefix}\u{10FFFF}");
            let mut stmt = c.prepare_cached(sql)?;
            let rows = stmt.query_map(params![pk, prefix, upper, after, now_secs(), limit as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?;
            rows.collect::<Result<Vec<_>, _>>().map_err(DbError::from)
        };
        // A bounded query is a point read; an unbounded one (a whole archive) goes to the pool.
        let rows = if limit <= SHORT_QUERY { self.db.read_now(run).await } else { self.db.read(run).await }?;
        rows.iter().map(|(b, v)| decode(b, *v)).collect()
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Versioned<Item>>>, StoreError> {
        let keys = keys.to_vec();
        let rows = self
            .db
            .read_now(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT body, version FROM items WHERE pk = ?1 AND sk = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
                    )?;
                let now = now_secs();
                keys.iter()
                    .map(|k| {
                        stmt.query_row(params![k.pk, k.sk, now], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                            .optional()
                            .map_err(DbError::from)
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        rows.into_iter().map(|r| r.map(|(b, v)| decode(&b, v)).transpose()).collect()
    }

    /// Never answers `Unknown`: a commit here is local, and a crash ends the caller with it.
    async fn submit(&self, tx: &Transaction) -> Result<(), StoreError> {
        tx.check_count()?;
        let (changes, records) = (!tx.entry.changes.is_empty(), !tx.entry.records.is_empty());
        let mut rows = tx.writes.iter().map(Row::of).collect::<Result<Vec<_>, _>>();
        if let (Ok(rows), false) = (&mut rows, tx.entry.is_empty()) {
            serde_json::to_string(&tx.entry).map(|body| rows.push(Row::Changes { body })).unwrap_or_else(|e| {
                tracing::error!(error = %e, "a change entry that does not serialize");
            });
        }
        let rows = rows.map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        crate::ports::check_sizes(rows.iter().map(Row::size))?;
        let outcome = match self.db.transact(move |c| apply(c, &rows)).await? {
            Ok(()) => Ok(()),
            Err(TxError::Conflict(i)) => Err(StoreError::Conflict { index: i }),
            Err(TxError::Db(e)) => Err(DbError::from(e).into()),
        };
        if outcome.is_ok() {
            if changes {
                self.changed.notify_one();
            }
            if records {
                self.archivable.notify_one();
            }
        }
        outcome
    }
}

/// A feed row's entry: a change entry, or (rows written before it had records) the changes.
fn entry_of(body: &str) -> Result<ChangeEntry, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(Box::new(e));
    match body.trim_start().starts_with('[') {
        true => Ok(ChangeEntry { changes: serde_json::from_str(body).map_err(corrupt)?, records: Vec::new() }),
        false => serde_json::from_str(body).map_err(corrupt),
    }
}

#[async_trait]
impl Feed for SqliteStore {
    async fn after(&self, cursor: u64, limit: usize) -> Result<Vec<(u64, Change)>, StoreError> {
        let rows = self
            .db
            .read(move |c| {
                let mut stmt =
                    c.prepare_cached("SELECT seq, body FROM changes WHERE seq >= ?1 ORDER BY seq LIMIT ?2")?;
                let rows = stmt
                    // One more row: the first may hold only changes at or before `cursor`.
                    .query_map(params![(cursor / PER_ROW) as i64, limit as i64 + 1], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                    })?;
                rows.collect::<Result<Vec<_>, _>>().map_err(DbError::from)
            })
            .await?;
        let mut out = Vec::new();
        for (seq, body) in rows {
            let changes: Vec<Change> = entry_of(&body)?.changes;
            let first = seq as u64 * PER_ROW;
            out.extend((first..).zip(changes).filter(|(pos, _)| *pos > cursor));
        }
        out.truncate(limit);
        Ok(out)
    }

    async fn head(&self) -> Result<u64, StoreError> {
        self.db
            .read(|c| {
                let sql = "SELECT seq, COALESCE(json_array_length(body, '$.changes'), json_array_length(body))
                           FROM changes ORDER BY seq DESC LIMIT 1";
                c.query_row(sql, [], |r| {
                    Ok((r.get::<_, i64>(0)? as u64 * PER_ROW) + (r.get::<_, i64>(1)?.max(1) as u64 - 1))
                })
                .optional()
                .map(Option::unwrap_or_default)
                .map_err(DbError::from)
            })
            .await
            .map_err(StoreError::from)
    }

    fn notify(&self) -> Arc<Notify> {
        self.changed.clone()
    }
}

#[async_trait]
impl ChangeStream for SqliteStore {
    async fn entries_after(&self, position: Option<&Position>, limit: usize) -> Result<Vec<StreamEntry>, StoreError> {
        let after = position.and_then(Position::number).unwrap_or(0) as i64;
        let rows = self
            .db
            .read(move |c| {
                // Rows of live changes alone are passed over without being parsed in full.
                let mut stmt = c.prepare_cached(
                    "SELECT seq, body FROM changes WHERE seq > ?1 AND body LIKE '%\"records\"%' ORDER BY seq LIMIT ?2",
                )?;
                let rows = stmt
                    .query_map(params![after, limit as i64], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
                rows.collect::<Result<Vec<_>, _>>().map_err(DbError::from)
            })
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (seq, body) in rows {
            let records = entry_of(&body)?.records;
            if !records.is_empty() {
                out.push(StreamEntry { position: Position::of(seq as u64), records });
            }
        }
        Ok(out)
    }

    fn archive_notify(&self) -> Arc<Notify> {
        self.archivable.clone()
    }
}
