//! The SQLite connection shared by the embedded adapters, and its schema.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::Semaphore;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    version INTEGER NOT NULL,
    expires_at INTEGER,
    body TEXT NOT NULL,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_expiry ON items (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    group_key TEXT,
    dedupe_id TEXT,
    body TEXT NOT NULL,
    visible_at INTEGER NOT NULL,
    receives INTEGER NOT NULL DEFAULT 0,
    UNIQUE (queue, dedupe_id)
);
CREATE INDEX IF NOT EXISTS queue_group ON queue (queue, group_key, seq);
CREATE INDEX IF NOT EXISTS queue_ready ON queue (queue, visible_at);
CREATE TABLE IF NOT EXISTS timers (
    name TEXT PRIMARY KEY,
    due_at INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS timers_due ON timers (due_at);
CREATE TABLE IF NOT EXISTS archive (
    conversation_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS archive_no_update BEFORE UPDATE ON archive
    BEGIN SELECT RAISE(ABORT, 'the archive is append-only'); END;
CREATE TRIGGER IF NOT EXISTS archive_no_delete BEFORE DELETE ON archive
    BEGIN SELECT RAISE(ABORT, 'the archive is append-only'); END;
-- Numbered max + 1 in commit order (one writer); only the oldest rows are ever deleted, so a
-- number is never reused and AUTOINCREMENT's bookkeeping is not needed.
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// One writer connection and a few reader connections (WAL lets them read while the writer
/// writes); every call runs on tokio's blocking pool. Callers wait for a free connection in
/// async land (a semaphore per kind), so a slow moment (a checkpoint, a busy disk) queues tasks,
/// not hundreds of blocked threads.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
    readers: Arc<Vec<Mutex<Connection>>>,
    write_slot: Arc<Semaphore>,
    read_slots: Arc<Semaphore>,
}

const READERS: usize = 2;

#[derive(Debug, thiserror::Error)]
#[error("embedded database: {0}")]
pub struct DbError(#[from] pub rusqlite::Error);

impl Db {
    /// Opens (creating if needed) `dir/connector.db` in WAL mode.
    pub fn open(dir: &Path) -> Result<Db, DbError> {
        std::fs::create_dir_all(dir).map_err(|e| DbError(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
        let path = dir.join("connector.db");
        let conn = Connection::open(&path)?;
        // WAL with synchronous=NORMAL keeps every committed transaction across a killed process
        // (only an OS crash can lose the last ones); busy_timeout covers a second process.
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=OFF;",
        )?;
        conn.execute_batch(SCHEMA)?;
        let readers = (0..READERS)
            .map(|_| {
                let r = Connection::open_with_flags(
                    &path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                r.execute_batch("PRAGMA busy_timeout=5000;")?;
                Ok(Mutex::new(r))
            })
            .collect::<Result<Vec<_>, rusqlite::Error>>()?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
            readers: Arc::new(readers),
            write_slot: Arc::new(Semaphore::new(1)),
            read_slots: Arc::new(Semaphore::new(READERS)),
        })
    }

    /// Runs a read-only `f` on a reader connection.
    pub async fn read<T, F>(&self, f: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, String> + Send + 'static,
    {
        let readers = self.readers.clone();
        let slot = self.read_slots.clone().acquire_owned().await.map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(move || {
            // The slot guarantees one reader is free.
            let guard = readers
                .iter()
                .find_map(|r| r.try_lock().ok())
                .map_or_else(|| readers[0].lock().map_err(|_| "database lock poisoned".to_string()), Ok)?;
            let out = f(&guard);
            drop(guard);
            drop(slot);
            out
        })
        .await
        .map_err(|e| format!("database task failed: {e}"))?
    }

    /// Runs `f` on the connection off the async threads.
    pub async fn call<T, F>(&self, f: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, String> + Send + 'static,
    {
        let conn = self.conn.clone();
        let slot = self.write_slot.clone().acquire_owned().await.map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| "database lock poisoned".to_string())?;
            let out = f(&mut guard);
            drop(guard);
            drop(slot);
            out
        })
        .await
        .map_err(|e| format!("database task failed: {e}"))?
    }

    pub async fn setting(&self, key: &'static str) -> Result<Option<String>, String> {
        self.call(move |c| {
            use rusqlite::OptionalExtension;
            c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0))
                .optional()
                .map_err(|e| e.to_string())
        })
        .await
    }

    pub async fn set_setting(&self, key: &'static str, value: String) -> Result<(), String> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                rusqlite::params![key, value],
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
        })
        .await
    }
}
