//! Transactional steps: the user's SQL and the step's checkpoint commit together.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;

use super::PgStore;
use super::checkpoint::{CheckpointArgs, acknowledged};
use crate::run::StepRecord;
use crate::store::Checkpoint;
use crate::{ActivityError, Error, Result};

/// Whether the lease is current. It takes no lock: a long body must not block heartbeats;
/// the checkpoint at the end checks the lease again, under the row lock, before commit.
const LEASE_HELD: &str = "
SELECT 1 FROM durable.runs WHERE id = $1 AND epoch = $2 AND status = 'running'";

impl PgStore {
    /// Runs `body` in one transaction with `checkpoint`, whose last step records the body's
    /// output. A worker whose lease is gone does not run the body, and one that loses it while
    /// the body runs has everything rolled back by the fenced checkpoint; if the body fails,
    /// everything rolls back and its error is returned inside.
    pub(crate) async fn transactional<T, F>(
        &self,
        mut checkpoint: Checkpoint,
        mut step: StepRecord,
        body: F,
    ) -> Result<Result<(T, DateTime<Utc>), ActivityError>>
    where
        T: Serialize,
        F: for<'t> FnOnce(
            &'t tokio_postgres::Transaction<'t>,
        ) -> BoxFuture<'t, Result<T, ActivityError>>,
    {
        let run = checkpoint.lease.run_id;
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let held = tx.prepare_cached(LEASE_HELD).await?;
        if tx
            .query_opt(&held, &[&run.0, &checkpoint.lease.epoch])
            .await?
            .is_none()
        {
            return Err(Error::LeaseLost(run));
        }
        let value = match body(&tx).await {
            Ok(value) => value,
            Err(err) => return Ok(Err(err)),
        };
        step.output = Some(serde_json::to_value(&value)?);
        checkpoint.steps.push(step);
        let args = CheckpointArgs::new(&checkpoint)?;
        let statement = tx.prepare_cached(super::sql::CHECKPOINT).await?;
        let db_now = acknowledged(&tx.query(&statement, &args.params()).await?, run)?;
        tx.commit().await?;
        Ok(Ok((value, db_now)))
    }
}
