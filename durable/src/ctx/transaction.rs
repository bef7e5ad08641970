//! Transactional steps (guarantee 6): the step's own SQL and its checkpoint commit in one
//! transaction on the store's database, so its writes happen exactly once.
//!
//! Keep network calls out of the body, and keep it short: it runs inside an open transaction
//! (on SQLite, holding the file's write lock), and if the transaction rolls back — a crash, a lost lease, an error — the SQL is
//! undone but a call already made is not. Calls to other systems belong in activities.

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Halt, WorkflowCtx, new_record};
use crate::ActivityError;
use crate::run::{StepKind, StepRecord, StepStatus};
use crate::store::{Checkpoint, Transition};

impl WorkflowCtx {
    /// Runs `body` on the Postgres store's own database, in the transaction that records the
    /// step: its writes commit exactly when the step is recorded, or not at all. Replays return
    /// the recorded result without running it. An error from `body` rolls back and is returned
    /// (nothing is recorded, so a replay runs the body again).
    ///
    /// ```rust,no_run
    /// # use durable::prelude::*;
    /// #[durable::workflow]
    /// async fn open_account(ctx: &WorkflowCtx, owner: String) -> Result<i64, WorkflowError> {
    ///     let id = ctx
    ///         .transaction("insert_account", move |tx| {
    ///             Box::pin(async move {
    ///                 let row = tx
    ///                     .query_one("INSERT INTO accounts (owner) VALUES ($1) RETURNING id", &[&owner])
    ///                     .await?;
    ///                 Ok(row.get::<_, i64>(0))
    ///             })
    ///         })
    ///         .await?;
    ///     Ok(id)
    /// }
    /// ```
    ///
    /// On the SQLite store use [`sqlite_transaction`](Self::sqlite_transaction).
    pub async fn transaction<T, F>(&self, name: &str, body: F) -> Result<T, ActivityError>
    where
        T: Serialize + DeserializeOwned,
        F: for<'t> FnOnce(
            &'t tokio_postgres::Transaction<'t>,
        ) -> BoxFuture<'t, Result<T, ActivityError>>,
    {
        let (seq, recorded) = self.begin_transaction(name).await?;
        if let Some(record) = recorded {
            return self.replayed(&record).await;
        }
        let Some(pg) = self.store().as_postgres() else {
            return Err(ActivityError::terminal(
                "ctx.transaction needs the Postgres store; on SQLite use ctx.sqlite_transaction",
            ));
        };
        let (checkpoint, pending) = self.transaction_checkpoint();
        let step = new_record(seq, name, StepKind::Transaction, StepStatus::Completed);
        let result = pg.transactional(checkpoint, step, body).await;
        self.settle(result, pending)
    }

    /// Like [`transaction`](Self::transaction), on the SQLite store's file: `body` runs on the
    /// store's database thread inside the write transaction that records the step.
    pub async fn sqlite_transaction<T, F>(&self, name: &str, body: F) -> Result<T, ActivityError>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, ActivityError> + Send + 'static,
    {
        let (seq, recorded) = self.begin_transaction(name).await?;
        if let Some(record) = recorded {
            return self.replayed(&record).await;
        }
        let Some(sqlite) = self.store().as_sqlite() else {
            return Err(ActivityError::terminal(
                "ctx.sqlite_transaction needs the SQLite store; on Postgres use ctx.transaction",
            ));
        };
        let (checkpoint, pending) = self.transaction_checkpoint();
        let step = new_record(seq, name, StepKind::Transaction, StepStatus::Completed);
        let result = sqlite.transactional(checkpoint, step, body).await;
        self.settle(result, pending)
    }

    async fn begin_transaction(
        &self,
        name: &str,
    ) -> Result<(u32, Option<StepRecord>), ActivityError> {
        self.begin_step(StepKind::Transaction, name)
            .await
            .map_err(|_| ActivityError::halted())
    }

    async fn replayed<T: DeserializeOwned>(&self, record: &StepRecord) -> Result<T, ActivityError> {
        self.decode_output(record)
            .await
            .map_err(|_| ActivityError::halted())
    }

    /// A checkpoint carrying what is pending; the pending records are handed back if the
    /// transaction does not commit.
    fn transaction_checkpoint(&self) -> (Checkpoint, Vec<StepRecord>) {
        let pending = std::mem::take(&mut self.state().pending);
        let mut checkpoint =
            Checkpoint::transition(self.lease(), Transition::Continue, self.lease_ttl());
        checkpoint.steps = pending.clone();
        (checkpoint, pending)
    }

    fn settle<T>(
        &self,
        result: crate::Result<Result<(T, chrono::DateTime<chrono::Utc>), ActivityError>>,
        pending: Vec<StepRecord>,
    ) -> Result<T, ActivityError> {
        let restore = |ctx: &Self| {
            let mut state = ctx.state();
            let newer = std::mem::take(&mut state.pending);
            state.pending = pending.clone();
            state.pending.extend(newer);
        };
        match result {
            Ok(Ok((value, db_now))) => {
                self.observe_clock(db_now);
                tracing::info!(event = "step_succeeded", "transactional step committed");
                Ok(value)
            }
            Ok(Err(err)) => {
                restore(self);
                tracing::warn!(event = "step_failed", error = %err, "transactional step rolled back");
                Err(err)
            }
            // Lost lease, or an unknown outcome (the commit may have happened): stop here and
            // let the run resume from its history, which says whether the step committed.
            Err(err) => {
                tracing::warn!(error = %err, "transactional step did not complete; abandoning the run here");
                self.halt(Halt::LeaseLost);
                Err(ActivityError::halted())
            }
        }
    }
}
