//! The parameters of the checkpoint statement, owned, so the same checkpoint can run on a
//! pooled connection or inside a caller's transaction.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{int_param, millis};
use crate::run::{RunId, StepRecord};
use crate::store::{Checkpoint, Transition, waiting_topic};
use crate::{Error, Result};

/// Everything [`super::sql::CHECKPOINT`] binds, in parameter order.
pub(super) struct CheckpointArgs {
    run_id: uuid::Uuid,
    epoch: i64,
    transition: TransitionParams,
    lease_millis: f64,
    steps: StepColumns,
    consumed_ids: Vec<i64>,
    consumed_seqs: Vec<i32>,
    event_keys: Vec<String>,
    event_values: Vec<Value>,
    child_outcome: Option<Value>,
    cancel_seen: bool,
}

impl CheckpointArgs {
    pub(super) fn new(cp: &Checkpoint) -> Result<Self> {
        let (consumed_ids, consumed_seqs) = cp
            .consumed
            .iter()
            .map(|&(id, seq)| Ok((id, int_param(seq, "step sequence number")?)))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .unzip();
        let (event_keys, event_values) = cp.events.iter().cloned().unzip();
        Ok(Self {
            run_id: cp.lease.run_id.0,
            epoch: cp.lease.epoch,
            transition: TransitionParams::from(&cp.transition),
            lease_millis: millis(cp.lease_ttl),
            steps: StepColumns::new(&cp.steps)?,
            consumed_ids,
            consumed_seqs,
            event_keys,
            event_values,
            child_outcome: cp.transition.child_outcome(),
            cancel_seen: cp.cancel_seen,
        })
    }

    pub(super) fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let t = &self.transition;
        let run: [&(dyn ToSql + Sync); 7] = [
            &self.run_id,
            &self.epoch,
            &t.status,
            &t.output,
            &t.error,
            &t.wake_at,
            &self.lease_millis,
        ];
        let rest: [&(dyn ToSql + Sync); 8] = [
            &t.finished,
            &t.waiting_topic,
            &self.consumed_ids,
            &self.consumed_seqs,
            &self.event_keys,
            &self.event_values,
            &self.child_outcome,
            &self.cancel_seen,
        ];
        [&run[..], &self.steps.params(), &rest].concat()
    }
}

/// Everything [`super::sql::CHECKPOINT_BATCH`] binds: one entry per checkpoint in the run
/// columns, one per step in the step columns (each naming its run).
#[derive(Default)]
pub(super) struct BatchArgs {
    run_id: Vec<uuid::Uuid>,
    epoch: Vec<i64>,
    status: Vec<&'static str>,
    output: Vec<Option<Value>>,
    error: Vec<Option<String>>,
    wake_at: Vec<Option<DateTime<Utc>>>,
    cancel_seen: Vec<bool>,
    finished: Vec<bool>,
    lease_millis: Vec<f64>,
    step_run_id: Vec<uuid::Uuid>,
    steps: StepColumns,
}

impl BatchArgs {
    pub(super) fn new<'a>(checkpoints: impl IntoIterator<Item = &'a Checkpoint>) -> Result<Self> {
        let mut args = Self::default();
        for cp in checkpoints {
            let t = TransitionParams::from(&cp.transition);
            args.run_id.push(cp.lease.run_id.0);
            args.epoch.push(cp.lease.epoch);
            args.status.push(t.status);
            args.output.push(t.output);
            args.error.push(t.error);
            args.wake_at.push(t.wake_at);
            args.cancel_seen.push(cp.cancel_seen);
            args.finished.push(t.finished);
            args.lease_millis.push(millis(cp.lease_ttl));
            for step in &cp.steps {
                args.step_run_id.push(cp.lease.run_id.0);
                args.steps.push(step)?;
            }
        }
        Ok(args)
    }

    pub(super) fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let runs: [&(dyn ToSql + Sync); 10] = [
            &self.run_id,
            &self.epoch,
            &self.status,
            &self.output,
            &self.error,
            &self.wake_at,
            &self.cancel_seen,
            &self.finished,
            &self.lease_millis,
            &self.step_run_id,
        ];
        [&runs[..], &self.steps.params()].concat()
    }
}

/// The database clock of an accepted checkpoint, or `LeaseLost` when it changed nothing.
pub(super) fn acknowledged(rows: &[Row], run: RunId) -> Result<DateTime<Utc>> {
    match rows.first() {
        Some(row) => Ok(row.try_get("db_now")?),
        None => Err(Error::LeaseLost(run)),
    }
}

/// The run columns a checkpoint writes, derived from its transition.
struct TransitionParams {
    status: &'static str,
    output: Option<Value>,
    error: Option<String>,
    wake_at: Option<DateTime<Utc>>,
    waiting_topic: Option<String>,
    finished: bool,
}

impl From<&Transition> for TransitionParams {
    fn from(t: &Transition) -> Self {
        use Transition as T;
        let mut params = Self {
            status: t.status().as_str(),
            output: None,
            error: None,
            wake_at: None,
            waiting_topic: None,
            finished: !matches!(
                t,
                T::Continue | T::Sleep { .. } | T::Wait { .. } | T::Release
            ),
        };
        match t {
            T::Sleep { wake_at } => params.wake_at = Some(*wake_at),
            T::Wait { topics, wake_at } => {
                params.wake_at = Some(*wake_at);
                params.waiting_topic = Some(waiting_topic(topics));
            }
            T::Complete { output } => params.output = Some(output.clone()),
            T::Fail { error } => params.error = Some(error.clone()),
            T::Park { reason } | T::Cancel { reason } => params.error = Some(reason.clone()),
            T::Continue | T::Release => {}
        }
        params
    }
}

/// Steps as parallel arrays, the shape `unnest` takes.
#[derive(Default)]
struct StepColumns {
    seq: Vec<i32>,
    name: Vec<String>,
    kind: Vec<&'static str>,
    status: Vec<&'static str>,
    output: Vec<Option<Value>>,
    error: Vec<Option<Value>>,
    attempts: Vec<i32>,
    wake_at: Vec<Option<DateTime<Utc>>>,
    first_attempt_at: Vec<Option<DateTime<Utc>>>,
}

impl StepColumns {
    /// The columns in the order both checkpoint statements bind them.
    fn params(&self) -> [&(dyn ToSql + Sync); 9] {
        let s = self;
        [
            &s.seq,
            &s.name,
            &s.kind,
            &s.status,
            &s.output,
            &s.error,
            &s.attempts,
            &s.wake_at,
            &s.first_attempt_at,
        ]
    }

    fn new(steps: &[StepRecord]) -> Result<Self> {
        let mut c = Self::default();
        for s in steps {
            c.push(s)?;
        }
        Ok(c)
    }

    /// Appends a step; fails, changing nothing, when a number does not fit its column.
    fn push(&mut self, s: &StepRecord) -> Result<()> {
        let seq = int_param(s.seq, "step sequence number")?;
        let attempts = int_param(s.attempts, "attempt count")?;
        self.seq.push(seq);
        self.name.push(s.name.clone());
        self.kind.push(s.kind.as_str());
        self.status.push(s.status.as_str());
        self.output.push(s.output.clone());
        self.error.push(s.error.clone());
        self.attempts.push(attempts);
        self.wake_at.push(s.wake_at);
        self.first_attempt_at.push(s.first_attempt_at);
        Ok(())
    }
}
