//! The embedded backend: one SQLite file (WAL) holds the items, the queues, the due timers and
//! the dev clock, so the local runner survives kill -9 with nothing acknowledged lost.

mod clock;
mod db;
mod index;
mod journal;
mod media;
mod queue;
mod scheduler;
mod store;
mod vault;

pub use crate::adapters::clock::{ManualClock, SystemClock};
pub use clock::{DevClock, DevClockError};
pub use db::{Db, DbError};
pub use index::SqliteIndex;
pub use journal::FileJournal;
pub use media::DiskMediaStore;
pub use queue::{QueueName, ReceivedJob, SqliteQueue};
pub use scheduler::SqliteScheduler;
pub use store::SqliteStore;
pub use vault::DiskVault;
