//! Transactional steps on the SQLite file: the user's SQL and the step's checkpoint commit in
//! one write transaction.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Transaction, named_params};
use serde::Serialize;

use super::SqliteStore;
use super::ops::{checkpoint_in, write};
use super::rows::uuid_text;
use crate::run::StepRecord;
use crate::store::{Checkpoint, Lease};
use crate::{ActivityError, Error, Result};

/// Whether `lease` is current (inside a write transaction, so it cannot change under us).
const LEASE_HELD: &str = "
SELECT count(*) > 0 FROM runs WHERE id = :id AND epoch = :epoch AND status = 'running'";

/// The outcome of a transactional step: committed with the database clock, or rolled back
/// with the body's error.
type Committed<T> = Result<std::result::Result<(T, DateTime<Utc>), ActivityError>>;

impl SqliteStore {
    /// Runs `body` in the write transaction that records `checkpoint` plus `step` (holding
    /// the body's output). A fenced worker never runs the body; a failed body rolls back.
    pub(crate) async fn transactional<T, F>(
        &self,
        checkpoint: Checkpoint,
        step: StepRecord,
        body: F,
    ) -> Committed<T>
    where
        T: Serialize + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> std::result::Result<T, ActivityError> + Send + 'static,
    {
        self.inner
            .db
            .call(move |conn| run(conn, checkpoint, step, body))
            .await
    }
}

fn run<T, F>(
    conn: &mut Connection,
    mut checkpoint: Checkpoint,
    mut step: StepRecord,
    body: F,
) -> Committed<T>
where
    T: Serialize,
    F: FnOnce(&Transaction<'_>) -> std::result::Result<T, ActivityError>,
{
    let mut failed = None;
    let committed = write(conn, |tx, now| {
        if !lease_held(tx, &checkpoint.lease)? {
            return Err(Error::LeaseLost(checkpoint.lease.run_id));
        }
        match body(tx) {
            Ok(value) => {
                step.output = Some(serde_json::to_value(&value)?);
                checkpoint.steps.push(step);
                let done = checkpoint_in(tx, &checkpoint, now)?;
                Ok((value, done.db_now))
            }
            Err(err) => {
                failed = Some(err);
                // Any error rolls the write transaction back.
                Err(Error::Invalid("the transactional step failed".into()))
            }
        }
    });
    match (committed, failed) {
        (_, Some(err)) => Ok(Err(err)),
        (committed, None) => committed.map(Ok),
    }
}

fn lease_held(tx: &Transaction<'_>, lease: &Lease) -> Result<bool> {
    Ok(tx.prepare_cached(LEASE_HELD)?.query_row(
        named_params! { ":id": uuid_text(lease.run_id.0), ":epoch": lease.epoch },
        |row| row.get(0),
    )?)
}
