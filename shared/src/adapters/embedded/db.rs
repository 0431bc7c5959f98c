//! The SQLite connection shared by the embedded adapters, and its schema.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use crate::error::Report;

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
-- The record's search index (`SqliteIndex`): one row per archived message record, its text
-- as shown in an FTS5 index that folds case and accents.
CREATE TABLE IF NOT EXISTS search_messages (
    id INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    sender TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT,
    UNIQUE (conversation_id, seq)
);
CREATE INDEX IF NOT EXISTS search_messages_at ON search_messages (at_ms);
CREATE VIRTUAL TABLE IF NOT EXISTS search_text USING fts5(
    text, content='search_messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS search_messages_added AFTER INSERT ON search_messages
    BEGIN INSERT INTO search_text (rowid, text) VALUES (new.id, new.text); END;
CREATE TRIGGER IF NOT EXISTS search_messages_erased AFTER DELETE ON search_messages
    BEGIN INSERT INTO search_text (search_text, rowid, text) VALUES ('delete', old.id, old.text); END;
";

/// One writer thread and a few reader connections (WAL lets them read while the writer writes).
///
/// Writes go to the writer thread through a channel. Transactions of concurrent callers that
/// arrive while it is busy share one COMMIT (group commit): each checks its conditions before
/// it writes, so one caller's failed condition leaves nothing to undo, and every caller is
/// answered after the COMMIT. A WAL commit costs far more than the few rows of one use case, so this is
/// what lets ingress scale with concurrency on one writer.
///
/// Point reads (a key, a few keys, a bounded query) run on the calling thread: they take tens
/// of microseconds from a warm page cache, less than a hop to another thread and back. Long
/// reads go to tokio's blocking pool.
#[derive(Clone)]
pub struct Db {
    jobs: std::sync::mpsc::Sender<Job>,
    waiting: Arc<Semaphore>,
    inline: Arc<Vec<Mutex<Connection>>>,
    readers: Arc<Vec<Mutex<Connection>>>,
    read_slots: Arc<Semaphore>,
}

/// A job for the writer thread.
enum Job {
    /// Runs alone, outside the writer's group transactions (it may open its own).
    Alone(Box<dyn FnOnce(&mut Connection) + Send>),
    /// Runs inside a group transaction; checks before it writes (see `transact`).
    Grouped(Grouped),
}

/// A grouped job runs its statements and says whether to keep them; what it returns answers the
/// caller with the group's COMMIT outcome.
type Grouped = Box<dyn FnOnce(&Connection) -> (bool, Answer) + Send>;
type Answer = Box<dyn FnOnce(Result<(), Arc<DbError>>) + Send>;

/// At most this many callers' transactions share one COMMIT.
const MAX_GROUP: usize = 256;
/// At most this many jobs wait for the writer; more callers wait in async land.
const MAX_WAITING: usize = 4096;
/// Reader connections for point reads on the calling thread (at least the runtime's workers).
const INLINE_READERS: usize = 4;
/// Prepared statements kept per connection (see `prepare_once`).
const STATEMENTS: usize = 64;
/// Reader connections for long reads on the blocking pool.
const READERS: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("embedded database")]
    Sqlite(#[from] rusqlite::Error),
    #[error("embedded database files")]
    Io(#[from] std::io::Error),
    /// The group transaction this caller's writes were in was not committed.
    #[error("the shared transaction was not committed")]
    Group(#[source] Arc<DbError>),
    /// A job of the group failed after it had written, so the group was rolled back.
    #[error("a transaction failed after writing; its group was rolled back")]
    GroupRolledBack,
    /// The writer dropped the job: it panicked, or the database is closing.
    #[error("the database did not run the write")]
    NotRun,
    #[error("a database read did not finish")]
    Task(#[from] tokio::task::JoinError),
    #[error("a database connection's lock is poisoned")]
    Poisoned,
}

/// Every port the embedded database serves sees its failures as its own `unavailable`.
macro_rules! unavailable_from_db {
    ($($port:path => $make:expr),* $(,)?) => {$(
        impl From<DbError> for $port {
            fn from(e: DbError) -> $port {
                $make(Box::new(e))
            }
        }
    )*};
}
unavailable_from_db!(
    crate::ports::StoreError => crate::ports::StoreError::Unavailable,
    crate::ports::QueueError => crate::ports::QueueError,
    crate::ports::IndexError => crate::ports::IndexError,
    crate::ports::SchedulerError => crate::ports::SchedulerError::Unavailable,
    crate::ports::ArchiveError => crate::ports::ArchiveError,
);

/// Statements are prepared once per connection and kept: a cache large enough for every
/// statement the adapters run (rusqlite keeps 16 by default, fewer than the writer runs), and
/// the query planner's stability guarantee, without which SQLite marks a statement whose plan
/// peeked at a bound value (a partition query's `ORDER BY`, a `LIMIT ?`) for re-preparation
/// each time it is reused.
fn prepare_once(c: &Connection) -> Result<(), rusqlite::Error> {
    c.set_prepared_statement_cache_capacity(STATEMENTS);
    c.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map(|_| ())
}

/// WAL frames (pages) after which the checkpointer is woken.
const CHECKPOINT_AT: i32 = 128;
/// WAL frames after which the writer checkpoints itself, so that the WAL starts over.
const RESTART_AT: i32 = 1000;

/// The writer's side of checkpointing. A thread of its own copies the WAL into the database
/// and syncs both while the writer goes on; but such a checkpoint never catches up with a
/// writer that keeps committing, and the WAL starts over only once every frame is copied. So,
/// once the WAL is `RESTART_AT` frames long, the writer waits for the checkpointer's run to end
/// and copies the few frames left itself (SQLite's own automatic checkpoint, which did all of
/// it on the writer, is off).
struct Checkpoints {
    /// Frames in the WAL after the last commit not yet acted on (SQLite's WAL hook tells).
    frames: Arc<std::sync::atomic::AtomicI32>,
    wake: std::sync::mpsc::SyncSender<()>,
    /// Held by whoever checkpoints.
    turn: Arc<Mutex<()>>,
}

impl Checkpoints {
    fn start(path: &Path, writer: &mut Connection) -> Result<Checkpoints, DbError> {
        let frames = Arc::new(std::sync::atomic::AtomicI32::new(0));
        let counted = frames.clone();
        writer.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages| {
            counted.store(pages, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        }))?;
        let conn = Connection::open(path)?;
        conn.execute_batch("PRAGMA synchronous=NORMAL;")?;
        let turn = Arc::new(Mutex::new(()));
        let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
        let theirs = turn.clone();
        std::thread::Builder::new().name("sqlite-checkpoint".into()).spawn(move || {
            while woken.recv().is_ok() {
                let _turn = theirs.lock().unwrap_or_else(|e| e.into_inner());
                checkpoint(&conn);
            }
        })?;
        Ok(Checkpoints { frames, wake, turn })
    }

    /// After each job of the writer's: acts once per commit (a job that committed nothing finds
    /// no count, and does not checkpoint again what the last one did).
    fn committed(&self, writer: &Connection) {
        let frames = self.frames.swap(0, std::sync::atomic::Ordering::Relaxed);
        if frames >= RESTART_AT {
            let _turn = self.turn.lock().unwrap_or_else(|e| e.into_inner());
            checkpoint(writer);
        } else if frames >= CHECKPOINT_AT {
            // Full when a run is pending already: that one copies this commit too.
            let _ = self.wake.try_send(());
        }
    }
}

/// A PASSIVE checkpoint: it copies what no reader still needs, and never waits.
fn checkpoint(conn: &Connection) {
    if let Err(e) = conn.wal_checkpoint_v2(None::<&str>, rusqlite::wal::CheckpointMode::PASSIVE) {
        tracing::warn!(error.message = %Report(&e), "WAL checkpoint failed");
    }
}

fn reader(path: &Path) -> Result<Mutex<Connection>, rusqlite::Error> {
    let r = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    r.execute_batch("PRAGMA busy_timeout=5000;")?;
    prepare_once(&r)?;
    Ok(Mutex::new(r))
}

impl Db {
    /// Opens (creating if needed) `dir/connector.db` in WAL mode, and starts its writer thread
    /// (which ends when the last clone of this `Db` is dropped).
    pub fn open(dir: &Path) -> Result<Db, DbError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("connector.db");
        let mut conn = Connection::open(&path)?;
        // WAL with synchronous=NORMAL keeps every committed transaction across a killed process
        // (only an OS crash can lose the last ones); busy_timeout covers a second process.
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=OFF;",
        )?;
        conn.execute_batch(SCHEMA)?;
        prepare_once(&conn)?;
        let inline = (0..INLINE_READERS).map(|_| reader(&path)).collect::<Result<Vec<_>, _>>()?;
        let readers = (0..READERS).map(|_| reader(&path)).collect::<Result<Vec<_>, _>>()?;
        let checkpoints = Checkpoints::start(&path, &mut conn)?;
        let (jobs, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new().name("sqlite-writer".into()).spawn(move || writer(conn, rx, checkpoints))?;
        Ok(Db {
            jobs,
            waiting: Arc::new(Semaphore::new(MAX_WAITING)),
            inline: Arc::new(inline),
            readers: Arc::new(readers),
            read_slots: Arc::new(Semaphore::new(READERS)),
        })
    }

    /// Runs a short read-only `f` (point reads, bounded queries) on a free reader connection on
    /// this thread; on the blocking pool when every such connection is busy.
    pub async fn read_now<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, DbError> + Send + 'static,
    {
        let f = match self.inline.iter().find_map(|r| r.try_lock().ok()) {
            Some(conn) => return f(&conn),
            None => f,
        };
        self.read(f).await
    }

    /// Runs a read-only `f` on a reader connection on the blocking pool.
    pub async fn read<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, DbError> + Send + 'static,
    {
        let readers = self.readers.clone();
        // The semaphore is never closed.
        let slot = self.read_slots.clone().acquire_owned().await.map_err(|_| DbError::NotRun)?;
        tokio::task::spawn_blocking(move || {
            // The slot guarantees one reader is free.
            let guard = readers
                .iter()
                .find_map(|r| r.try_lock().ok())
                .map_or_else(|| readers[0].lock().map_err(|_| DbError::Poisoned), Ok)?;
            let out = f(&guard);
            drop(guard);
            drop(slot);
            out
        })
        .await?
    }

    /// Runs `f` on the writer's connection, alone.
    pub async fn call<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(Job::Alone(Box::new(move |c| {
            let _ = tx.send(f(c));
        })))
        .await?;
        rx.await.map_err(|_| DbError::NotRun)?
    }

    /// Runs `f` inside a transaction it may share with other callers' (see `Db`). `f` answers
    /// `Ok` to keep its writes, `Err` when it wrote nothing (it checks before it writes); either
    /// is returned once the shared transaction is committed. An `Err` after a write fails the
    /// whole group. An `Err` from the outer result means nothing of this call was committed.
    pub async fn transact<T, E, F>(&self, f: F) -> Result<Result<T, E>, DbError>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(Job::Grouped(Box::new(move |c| {
            let out = f(c);
            let keep = out.is_ok();
            let answer: Answer = Box::new(move |committed| {
                let _ = tx.send(committed.map(|()| out).map_err(DbError::Group));
            });
            (keep, answer)
        })))
        .await?;
        rx.await.map_err(|_| DbError::NotRun)?
    }

    async fn submit(&self, job: Job) -> Result<(), DbError> {
        // The semaphore is never closed.
        let permit = self.waiting.clone().acquire_owned().await.map_err(|_| DbError::NotRun)?;
        // The permit goes back once the writer has taken the job off the channel.
        let job = match job {
            Job::Alone(f) => Job::Alone(Box::new(move |c| {
                drop(permit);
                f(c)
            })),
            Job::Grouped(f) => Job::Grouped(Box::new(move |c| {
                drop(permit);
                f(c)
            })),
        };
        self.jobs.send(job).map_err(|_| DbError::NotRun)
    }

    pub async fn setting(&self, key: &'static str) -> Result<Option<String>, DbError> {
        self.call(move |c| {
            use rusqlite::OptionalExtension;
            Ok(c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()?)
        })
        .await
    }

    pub async fn set_setting(&self, key: &'static str, value: String) -> Result<(), DbError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                rusqlite::params![key, value],
            )?;
            Ok(())
        })
        .await
    }
}

/// The writer thread: takes jobs in order; runs grouped jobs that are waiting together in one
/// transaction.
fn writer(mut conn: Connection, jobs: std::sync::mpsc::Receiver<Job>, checkpoints: Checkpoints) {
    let mut next = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        match job {
            // A job that panics drops its caller's channel; the writer goes on.
            Job::Alone(f) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut conn)));
            }
            Job::Grouped(first) => {
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match jobs.try_recv() {
                        Ok(Job::Grouped(g)) => group.push(g),
                        Ok(alone) => {
                            next = Some(alone);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                run_group(&conn, group);
            }
        }
        checkpoints.committed(&conn);
    }
}

/// BEGIN IMMEDIATE, each job in turn, COMMIT; then every job is answered with the COMMIT's
/// outcome. A job that fails before writing is simply left out. One that fails (or panics)
/// after writing cannot be undone alone without a savepoint per job (which costs every job a
/// copy of each page it touches), so the whole group is rolled back and every caller told that
/// nothing of theirs was written: only the database's own errors get there (see `transact`).
fn run_group(conn: &Connection, group: Vec<Grouped>) {
    let mut answers = Vec::with_capacity(group.len());
    let mut outcome = exec(conn, "BEGIN IMMEDIATE");
    let mut jobs = group.into_iter();
    if outcome.is_ok() {
        for job in jobs.by_ref() {
            let before = conn.total_changes();
            // A job that panics drops its caller's channel with it.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(conn)));
            let kept = matches!(ran, Ok((true, _)));
            answers.extend(ran.ok().map(|(_, answer)| answer));
            if !kept && conn.total_changes() != before {
                outcome = Err(Arc::new(DbError::GroupRolledBack));
                break;
            }
        }
    }
    if outcome.is_ok() {
        outcome = exec(conn, "COMMIT");
    }
    if outcome.is_err() && !conn.is_autocommit() {
        let _ = exec(conn, "ROLLBACK");
    }
    for answer in answers {
        answer(outcome.clone());
    }
    // Jobs a failure kept from running are dropped with their channels: their callers learn
    // that nothing of theirs was written.
    drop(jobs);
}

/// Runs one statement from the connection's cache (parsing it once, not per transaction).
fn exec(conn: &Connection, sql: &str) -> Result<(), Arc<DbError>> {
    conn.prepare_cached(sql).and_then(|mut s| s.execute([])).map(|_| ()).map_err(|e| Arc::new(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Holds the writer busy until `release` is sent, so the jobs submitted meanwhile form one
    /// group.
    async fn hold_writer(db: &Db) -> std::sync::mpsc::Sender<()> {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started, is_started) = tokio::sync::oneshot::channel();
        let db = db.clone();
        tokio::spawn(async move {
            db.call(move |_| {
                let _ = started.send(());
                wait.recv().map_err(|_| DbError::NotRun)
            })
            .await
        });
        is_started.await.unwrap();
        release
    }

    fn insert(c: &Connection, key: &str) -> rusqlite::Result<usize> {
        c.execute("INSERT INTO settings (key, value) VALUES (?1, 'v')", [key])
    }

    async fn stored(db: &Db, key: &'static str) -> bool {
        db.setting(key).await.unwrap().is_some()
    }

    async fn put_blob(db: &Db, key: String, bytes: usize) {
        let value = "x".repeat(bytes);
        db.transact(move |c| c.execute("INSERT INTO settings (key, value) VALUES (?1, ?2)", [key, value]).map(|_| ()))
            .await
            .unwrap()
            .unwrap();
    }

    fn size(path: &Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commits_reach_the_database_file_before_the_writer_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        // 256 pages: a quarter of what makes the writer checkpoint on its own.
        put_blob(&db, "blob".into(), 1 << 20).await;
        let file = dir.path().join("connector.db");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while size(&file) < 1 << 20 {
            assert!(std::time::Instant::now() < deadline, "the checkpointer never copied the commit");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_under_a_steady_stream_of_commits() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        for i in 0..200 {
            put_blob(&db, format!("k{i}"), 256 << 10).await;
        }
        // 50 MB committed; the WAL is reused from its start, not appended to forever.
        let wal = size(&dir.path().join("connector.db-wal"));
        assert!(wal < 16 << 20, "WAL of {wal} bytes");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_that_fails_before_writing_leaves_its_group_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let release = hold_writer(&db).await;
        let ok = tokio::spawn({
            let db = db.clone();
            async move { db.transact(|c| insert(c, "a").map(|_| ())).await }
        });
        let refused = tokio::spawn({
            let db = db.clone();
            async move { db.transact(|_| Err::<(), _>("condition failed")).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        release.send(()).unwrap();
        assert!(matches!(ok.await.unwrap(), Ok(Ok(()))));
        assert!(matches!(refused.await.unwrap(), Ok(Err("condition failed"))));
        assert!(stored(&db, "a").await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_that_fails_after_writing_fails_its_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let release = hold_writer(&db).await;
        let mut tasks = Vec::new();
        for (key, fail) in [("a", false), ("b", true), ("c", false)] {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                let out = db
                    .transact(move |c| {
                        insert(c, key).map_err(|e| e.to_string())?;
                        if fail {
                            Err("failed after writing".to_string())
                        } else {
                            Ok(())
                        }
                    })
                    .await;
                (key, out)
            }));
            // Submitted in this order, so "c" comes after the failure.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        release.send(()).unwrap();
        for t in tasks {
            let (key, out) = t.await.unwrap();
            assert!(out.is_err(), "{key}: {out:?}");
        }
        for key in ["a", "b", "c"] {
            assert!(!stored(&db, key).await, "{key} was kept");
        }
        // The writer goes on.
        assert!(matches!(db.transact(|c| insert(c, "d").map(|_| ())).await, Ok(Ok(()))));
        assert!(stored(&db, "d").await);
    }
}
