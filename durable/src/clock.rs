//! The database clock as seen from a worker: the last time the database reported, advanced
//! by the worker's monotonic clock. A worker's wall clock is never read, so a worker whose
//! clock is off cannot move timers or leases.

use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Utc};

#[derive(Debug)]
pub(crate) struct DbClock {
    anchor: Mutex<(DateTime<Utc>, Instant)>,
}

impl DbClock {
    pub(crate) fn new(db_now: DateTime<Utc>) -> Self {
        Self {
            anchor: Mutex::new((db_now, Instant::now())),
        }
    }

    /// The database's time now, estimated.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        let (at, seen) = *self.anchor.lock().unwrap_or_else(|e| e.into_inner());
        at + seen.elapsed()
    }

    /// Re-anchors on a fresh reading from the database.
    pub(crate) fn observe(&self, db_now: DateTime<Utc>) {
        *self.anchor.lock().unwrap_or_else(|e| e.into_inner()) = (db_now, Instant::now());
    }
}
