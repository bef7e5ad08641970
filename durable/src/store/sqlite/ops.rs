//! The store's operations: plain blocking functions on the one connection, called on the
//! store's database thread.
//!
//! Every write runs in a `BEGIN IMMEDIATE` transaction: it takes the database's write lock
//! before reading anything, so what it reads cannot change before it writes, in this process
//! or any other (another writer waits up to the busy timeout). That is what makes a claim
//! atomic across processes; the fencing epoch then does the rest, as on Postgres.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, named_params};

use super::lifecycle;
use super::messages;
use super::rows::{self, micros, micros_after, uuid_text};
use super::sql;
use crate::run::{RunFilter, RunId, RunInfo, RunStatus, StepRecord, WorkspaceId};
use crate::store::{
    Checkpoint, ClaimRequest, ClaimedRun, Lease, NewRun, Renewed, StartedRun, Transition,
    waiting_topic,
};
use crate::{Error, Result};

/// Runs `body` in a write transaction, with the clock read once the write lock is held.
/// An error from `body` rolls everything back.
pub(super) fn write<T>(
    conn: &mut Connection,
    body: impl FnOnce(&Transaction<'_>, DateTime<Utc>) -> Result<T>,
) -> Result<T> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = rows::now();
    let out = body(&tx, now)?;
    tx.commit()?;
    Ok(out)
}

/// Creates a run, or returns the one that owns its workflow id.
pub(super) fn start_run(conn: &mut Connection, run: &NewRun) -> Result<StartedRun> {
    let input = rows::json_text(&run.input)?;
    let workspace_id = uuid_text(run.workspace_id.0);
    write(conn, |tx, now| {
        let inserted = tx.prepare_cached(sql::START_RUN)?.execute(named_params! {
            ":workspace_id": workspace_id,
            ":id": uuid_text(run.id.0),
            ":workflow_id": run.workflow_id,
            ":workflow_name": run.workflow_name,
            ":workflow_version": i64::from(run.workflow_version),
            ":input": input,
            ":max_claims": i64::from(run.max_claims),
            ":parent_run_id": run.parent_run_id.map(|p| uuid_text(p.0)),
            ":deadline_at": run.timeout.map(|t| micros_after(now, t)),
            ":now": micros(now),
        })?;
        if inserted == 1 {
            return Ok(StartedRun {
                id: run.id,
                created: true,
                workflow_name: run.workflow_name.clone(),
                input: run.input.clone(),
            });
        }
        existing_run(tx, &workspace_id, &run.workflow_id)
    })
}

fn existing_run(tx: &Transaction<'_>, workspace_id: &str, workflow_id: &str) -> Result<StartedRun> {
    let mut statement = tx.prepare_cached(sql::EXISTING_RUN)?;
    let params = named_params! { ":workspace_id": workspace_id, ":workflow_id": workflow_id };
    let found = rows::collect(&mut statement, params, |row| {
        let id: String = row.get("id")?;
        let input: String = row.get("input")?;
        Ok(StartedRun {
            id: id
                .parse()
                .map_err(|e| rows::corrupt(format!("bad run id `{id}`: {e}"), e))?,
            created: false,
            workflow_name: row.get("workflow_name")?,
            input: serde_json::from_str(&input)?,
        })
    })?;
    // The insert only skips a row when this one exists, and the write lock is held.
    found.into_iter().next().ok_or_else(|| {
        Error::database(format!(
            "could not start or find the run with workflow id `{workflow_id}`"
        ))
    })
}

/// Claims up to `limit` claimable runs, parking those out of claims.
pub(super) fn claim(conn: &mut Connection, request: &ClaimRequest) -> Result<Vec<ClaimedRun>> {
    if request.workflows.is_empty() || request.limit == 0 {
        return Ok(Vec::new());
    }
    let workflows = serde_json::to_string(&request.workflows)?;
    let running: Vec<String> = request.running.iter().map(|r| uuid_text(r.0)).collect();
    let running = serde_json::to_string(&running)?;
    write(conn, |tx, now| {
        let mut statement = tx.prepare_cached(sql::CLAIM)?;
        let params = named_params! {
            ":worker_id": request.worker_id,
            ":lease_expires_at": micros_after(now, request.lease_ttl),
            ":now": micros(now),
            ":workflows": workflows,
            ":limit": i64::from(request.limit),
            ":running": running,
        };
        let mut claimed = rows::collect(&mut statement, params, |row| {
            rows::claimed_from_row(row, now)
        })?;
        claimed.sort_by_key(|c| (c.info.created_at, c.info.id));
        for run in &mut claimed {
            if run.info.status == RunStatus::Running {
                run.history = history(tx, run.lease.run_id)?;
            }
        }
        Ok(claimed)
    })
}

fn history(tx: &Transaction<'_>, run: RunId) -> Result<Vec<StepRecord>> {
    let mut statement = tx.prepare_cached(sql::HISTORY)?;
    rows::collect(
        &mut statement,
        named_params! { ":run_id": uuid_text(run.0) },
        rows::step_from_row,
    )
}

/// What a checkpoint recorded.
#[derive(Debug)]
pub(super) struct Checkpointed {
    /// The store's clock at the write.
    pub db_now: DateTime<Utc>,
    /// The run's workflow, for wake-up hints.
    pub workflow_name: String,
}

/// Records steps and the run's next state in one transaction, if the lease is current.
pub(super) fn checkpoint(conn: &mut Connection, cp: &Checkpoint) -> Result<Checkpointed> {
    write(conn, |tx, now| checkpoint_in(tx, cp, now))
}

/// The checkpoint's writes, inside the caller's write transaction.
pub(super) fn checkpoint_in(
    tx: &Transaction<'_>,
    cp: &Checkpoint,
    now: DateTime<Utc>,
) -> Result<Checkpointed> {
    let transition = TransitionColumns::new(&cp.transition)?;
    let steps = cp
        .steps
        .iter()
        .map(StepColumns::new)
        .collect::<Result<Vec<_>>>()?;
    let Some((workspace_id, workflow_name, parent)) = move_run(tx, cp, &transition, now)? else {
        return Err(Error::LeaseLost(cp.lease.run_id));
    };
    if let (Some(parent), Some(outcome)) = (parent, cp.transition.child_outcome()) {
        lifecycle::tell_parent(tx, &workspace_id, &parent, cp.lease.run_id, &outcome, now)?;
    }
    let mut upsert = tx.prepare_cached(sql::UPSERT_STEP)?;
    for step in &steps {
        upsert.execute(named_params! {
            ":workspace_id": workspace_id,
            ":run_id": uuid_text(cp.lease.run_id.0),
            ":seq": step.seq,
            ":name": step.name,
            ":kind": step.kind,
            ":status": step.status,
            ":output": step.output,
            ":error": step.error,
            ":attempts": step.attempts,
            ":wake_at": step.wake_at,
            ":first_attempt_at": step.first_attempt_at,
            ":now": micros(now),
        })?;
    }
    messages::consume(tx, cp)?;
    messages::publish(tx, cp, &workspace_id, now)?;
    Ok(Checkpointed {
        db_now: now,
        workflow_name,
    })
}

/// The fenced run update; `None` when the lease is not current.
fn move_run(
    tx: &Transaction<'_>,
    cp: &Checkpoint,
    transition: &TransitionColumns,
    now: DateTime<Utc>,
) -> Result<Option<(String, String, Option<String>)>> {
    let params = named_params! {
        ":status": transition.status,
        ":output": transition.output,
        ":error": transition.error,
        ":wake_at": transition.wake_at,
        ":waiting_topic": transition.waiting_topic,
        ":lease_expires_at": micros_after(now, cp.lease_ttl),
        ":now": micros(now),
        ":id": uuid_text(cp.lease.run_id.0),
        ":epoch": cp.lease.epoch,
        ":cancel_seen": cp.cancel_seen,
    };
    Ok(tx
        .prepare_cached(sql::CHECKPOINT_RUN)?
        .query_row(params, |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .optional()?)
}

/// The run columns a checkpoint writes, derived from its transition.
struct TransitionColumns {
    status: &'static str,
    output: Option<String>,
    error: Option<String>,
    wake_at: Option<i64>,
    waiting_topic: Option<String>,
}

impl TransitionColumns {
    fn new(transition: &Transition) -> Result<Self> {
        let mut columns = Self {
            status: transition.status().as_str(),
            output: None,
            error: None,
            wake_at: None,
            waiting_topic: None,
        };
        match transition {
            Transition::Sleep { wake_at } => columns.wake_at = Some(micros(*wake_at)),
            Transition::Wait { topics, wake_at } => {
                columns.wake_at = Some(micros(*wake_at));
                columns.waiting_topic = Some(waiting_topic(topics));
            }
            Transition::Complete { output } => columns.output = Some(rows::json_text(output)?),
            Transition::Fail { error } => columns.error = Some(error.clone()),
            Transition::Park { reason } | Transition::Cancel { reason } => {
                columns.error = Some(reason.clone())
            }
            Transition::Continue | Transition::Release => {}
        }
        Ok(columns)
    }
}

/// A step as the columns it is stored in.
struct StepColumns {
    seq: i64,
    name: String,
    kind: &'static str,
    status: &'static str,
    output: Option<String>,
    error: Option<String>,
    attempts: i64,
    wake_at: Option<i64>,
    first_attempt_at: Option<i64>,
}

impl StepColumns {
    fn new(step: &StepRecord) -> Result<Self> {
        Ok(Self {
            seq: i64::from(step.seq),
            name: step.name.clone(),
            kind: step.kind.as_str(),
            status: step.status.as_str(),
            output: step.output.as_ref().map(rows::json_text).transpose()?,
            error: step.error.as_ref().map(rows::json_text).transpose()?,
            attempts: i64::from(step.attempts),
            wake_at: step.wake_at.map(micros),
            first_attempt_at: step.first_attempt_at.map(micros),
        })
    }
}

/// Extends the leases still held; returns their runs.
pub(super) fn heartbeat(
    conn: &mut Connection,
    leases: &[Lease],
    lease_ttl: Duration,
) -> Result<Vec<Renewed>> {
    if leases.is_empty() {
        return Ok(Vec::new());
    }
    write(conn, |tx, now| {
        let mut statement = tx.prepare_cached(sql::HEARTBEAT)?;
        let mut held = Vec::new();
        for lease in leases {
            let params = named_params! {
                ":lease_expires_at": micros_after(now, lease_ttl),
                ":id": uuid_text(lease.run_id.0),
                ":epoch": lease.epoch,
            };
            let extended: Option<Option<String>> =
                statement.query_row(params, |row| row.get(0)).optional()?;
            if let Some(cancel_requested) = extended {
                held.push(Renewed {
                    run_id: lease.run_id,
                    cancel_requested,
                });
            }
        }
        Ok(held)
    })
}

/// How long until the earliest sleeping run of these workflows is due (zero if overdue).
pub(super) fn next_wake_in(conn: &Connection, workflows: &[String]) -> Result<Option<Duration>> {
    let workflows = serde_json::to_string(workflows)?;
    let earliest: Option<i64> = conn
        .prepare_cached(sql::NEXT_WAKE)?
        .query_row(named_params! { ":workflows": workflows }, |row| row.get(0))?;
    let now = micros(rows::now());
    Ok(earliest
        .map(|due| Duration::from_micros(u64::try_from(due.saturating_sub(now)).unwrap_or(0))))
}

/// One run.
pub(super) fn get_run(
    conn: &Connection,
    workspace: WorkspaceId,
    id: RunId,
) -> Result<Option<RunInfo>> {
    let mut statement = conn.prepare_cached(sql::GET_RUN)?;
    let params = named_params! {
        ":workspace_id": uuid_text(workspace.0),
        ":id": uuid_text(id.0),
    };
    Ok(rows::collect(&mut statement, params, rows::run_from_row)?
        .into_iter()
        .next())
}

/// Runs matching the filter, newest first.
pub(super) fn list_runs(
    conn: &Connection,
    workspace: WorkspaceId,
    filter: &RunFilter,
) -> Result<Vec<RunInfo>> {
    let mut statement = conn.prepare_cached(sql::LIST_RUNS)?;
    let params = named_params! {
        ":workspace_id": uuid_text(workspace.0),
        ":status": filter.status.map(RunStatus::as_str),
        ":workflow_name": filter.workflow_name,
        ":created_after": filter.created_after.map(micros),
        ":created_before": filter.created_before.map(micros),
        ":limit": filter.effective_limit(),
    };
    rows::collect(&mut statement, params, rows::run_from_row)
}

/// The recorded steps of a run.
pub(super) fn steps(
    conn: &Connection,
    workspace: WorkspaceId,
    id: RunId,
) -> Result<Vec<StepRecord>> {
    let mut statement = conn.prepare_cached(sql::STEPS)?;
    let params = named_params! {
        ":workspace_id": uuid_text(workspace.0),
        ":run_id": uuid_text(id.0),
    };
    rows::collect(&mut statement, params, rows::step_from_row)
}
