//! The local runner's dev clock: system time plus an offset that `POST /dev/clock` moves
//! forward and that survives restarts.

use std::sync::atomic::{AtomicI64, Ordering};

use time::{Duration, OffsetDateTime};

use super::db::{Db, DbError};
use crate::ports::Clock;

const OFFSET_KEY: &str = "dev_clock_offset_secs";

/// System time shifted forward by a persisted number of seconds.
pub struct DevClock {
    offset_secs: AtomicI64,
    db: Db,
}

/// The furthest the dev clock runs ahead: a century keeps every date within what the clock's
/// arithmetic and the stores' timestamps can hold.
pub const DEV_CLOCK_MAX_OFFSET_SECS: i64 = 100 * 366 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum DevClockError {
    #[error("the dev clock runs at most {DEV_CLOCK_MAX_OFFSET_SECS} s ahead")]
    TooFar,
    #[error("the dev clock's offset could not be saved")]
    Db(#[from] DbError),
}

impl DevClock {
    pub async fn load(db: Db) -> Result<DevClock, DbError> {
        let offset: i64 = db.setting(OFFSET_KEY).await?.and_then(|v| v.parse().ok()).unwrap_or(0);
        let offset = offset.clamp(0, DEV_CLOCK_MAX_OFFSET_SECS);
        Ok(DevClock { offset_secs: AtomicI64::new(offset), db })
    }

    /// Moves the clock forward by `secs` and persists the new offset; refuses (changing
    /// nothing) a move past `DEV_CLOCK_MAX_OFFSET_SECS`.
    pub async fn advance(&self, secs: i64) -> Result<OffsetDateTime, DevClockError> {
        let moved = self.offset_secs.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
            now.checked_add(secs).filter(|t| (0..=DEV_CLOCK_MAX_OFFSET_SECS).contains(t))
        });
        let total = match moved {
            Ok(before) => before + secs,
            Err(_) => return Err(DevClockError::TooFar),
        };
        self.db.set_setting(OFFSET_KEY, total.to_string()).await?;
        Ok(self.now())
    }
}

impl Clock for DevClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + Duration::seconds(self.offset_secs.load(Ordering::SeqCst))
    }
}
