//! Cancel, pause and resume, and telling a parent that its child finished.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, named_params};
use serde_json::{Value, json};

use super::ops::write;
use super::rows::{self, micros, uuid_text};
use super::sql;
use crate::run::{RunId, RunStatus, WorkspaceId};
use crate::store::NewFork;
use crate::{Error, Result};

/// Cancels a run that has not finished, and its descendants; each cancelled child tells its
/// parent. Returns the run's status after the call.
pub(super) fn cancel(
    conn: &mut Connection,
    workspace: WorkspaceId,
    id: RunId,
) -> Result<RunStatus> {
    write(conn, |tx, now| end_cancelled(tx, workspace, id, false, now))
}

/// Asks a run and its descendants to cancel: those no worker started, and parked ones, end
/// at once; the others see `reason` at their next durable operation. Returns the status, and
/// the workflows of the runs made due.
pub(super) fn request_cancel(
    conn: &mut Connection,
    workspace: WorkspaceId,
    id: RunId,
    reason: &str,
) -> Result<(RunStatus, Vec<String>)> {
    write(conn, |tx, now| {
        let status = end_cancelled(tx, workspace, id, true, now)?;
        // A finished run's descendants may still run: they are asked too.
        let mut statement = tx.prepare_cached(sql::REQUEST_CANCEL)?;
        let params = named_params! {
            ":now": micros(now),
            ":workspace_id": uuid_text(workspace.0),
            ":id": uuid_text(id.0),
            ":reason": reason,
        };
        let woken = statement
            .query_map(params, |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok((status, woken))
    })
}

/// Cancels the run's tree at once (only runs no worker started, and parked ones, when
/// `gentle`), telling parents outside it; returns the run's status after.
fn end_cancelled(
    tx: &Transaction<'_>,
    workspace: WorkspaceId,
    id: RunId,
    gentle: bool,
    now: DateTime<Utc>,
) -> Result<RunStatus> {
    let workspace_id = uuid_text(workspace.0);
    let run_id = uuid_text(id.0);
    let cancelled: Vec<(String, String, Option<String>)> = {
        let mut statement = tx.prepare_cached(sql::CANCEL)?;
        let params = named_params! {
            ":now": micros(now),
            ":workspace_id": workspace_id,
            ":id": run_id,
            ":gentle": gentle,
        };
        let rows =
            statement.query_map(params, |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let ids: Vec<&str> = cancelled.iter().map(|(id, _, _)| id.as_str()).collect();
    for (child, ws, parent) in &cancelled {
        if let Some(parent) = parent.as_deref().filter(|p| !ids.contains(p)) {
            let child = RunId(
                child
                    .parse()
                    .map_err(|e| rows::corrupt(format!("bad run id: {e}"), e))?,
            );
            tell_parent(tx, ws, parent, child, &json!({ "cancelled": true }), now)?;
        }
    }
    if ids.contains(&run_id.as_str()) {
        return Ok(RunStatus::Cancelled);
    }
    status(tx, &workspace_id, &run_id)?.ok_or(Error::RunNotFound(id))
}

/// Parks a pending or sleeping run, or asks a running one to park after its current step.
pub(super) fn pause(conn: &mut Connection, workspace: WorkspaceId, id: RunId) -> Result<RunStatus> {
    let workspace_id = uuid_text(workspace.0);
    let run_id = uuid_text(id.0);
    write(conn, |tx, now| {
        tx.prepare_cached(sql::PAUSE)?.execute(
            named_params! { ":now": micros(now), ":workspace_id": workspace_id, ":id": run_id },
        )?;
        status(tx, &workspace_id, &run_id)?.ok_or(Error::RunNotFound(id))
    })
}

/// Makes a parked run pending again, or withdraws a pause not yet reached. Returns the
/// status, and the workflow when the run became claimable.
pub(super) fn resume(
    conn: &mut Connection,
    workspace: WorkspaceId,
    id: RunId,
) -> Result<(RunStatus, Option<String>)> {
    let workspace_id = uuid_text(workspace.0);
    let run_id = uuid_text(id.0);
    write(conn, |tx, now| {
        let workflow: Option<String> = tx
            .prepare_cached(sql::RESUME)?
            .query_row(
                named_params! { ":now": micros(now), ":workspace_id": workspace_id, ":id": run_id },
                |row| row.get(0),
            )
            .optional()?;
        let status = status(tx, &workspace_id, &run_id)?.ok_or(Error::RunNotFound(id))?;
        let ready = workflow.filter(|_| status == RunStatus::Pending);
        Ok((status, ready))
    })
}

/// Leaves a child's outcome for its parent (topic `child:<id>`), and makes the parent due at
/// once if it waits for it.
pub(super) fn tell_parent(
    tx: &Transaction<'_>,
    workspace_id: &str,
    parent: &str,
    child: RunId,
    outcome: &Value,
    now: DateTime<Utc>,
) -> Result<()> {
    let topic = format!("child:{child}");
    tx.prepare_cached(sql::TELL_PARENT)?
        .execute(named_params! {
            ":workspace_id": workspace_id,
            ":parent": parent,
            ":topic": topic,
            ":payload": rows::json_text(outcome)?,
            ":now": micros(now),
        })?;
    tx.prepare_cached(sql::WAKE_WAITING)?
        .query_row(
            named_params! { ":now": micros(now), ":run_id": parent, ":topic": topic },
            |row| row.get::<_, String>(0),
        )
        .optional()?;
    Ok(())
}

fn status(tx: &Transaction<'_>, workspace_id: &str, run_id: &str) -> Result<Option<RunStatus>> {
    let status: Option<String> = tx
        .prepare_cached(sql::STATUS)?
        .query_row(
            named_params! { ":workspace_id": workspace_id, ":id": run_id },
            |row| row.get(0),
        )
        .optional()?;
    status.map(|s| s.parse()).transpose()
}

/// Creates a fork with the origin's finished steps before `from_seq` copied. Returns the
/// fork's workflow.
pub(super) fn fork(conn: &mut Connection, fork: &NewFork) -> Result<String> {
    let origin = uuid_text(fork.origin.0);
    let id = uuid_text(fork.id.0);
    let input = fork.input.as_ref().map(rows::json_text).transpose()?;
    write(conn, |tx, now| {
        let blocked: bool = tx.prepare_cached(sql::FORK_BLOCKED)?.query_row(
            named_params! { ":origin": origin, ":from_seq": i64::from(fork.from_seq) },
            |row| row.get(0),
        )?;
        let workflow: Option<String> = tx
            .prepare_cached(sql::FORK_RUN)?
            .query_row(
                named_params! {
                    ":id": id,
                    ":workflow_id": fork.workflow_id,
                    ":input": input,
                    ":from_seq": i64::from(fork.from_seq),
                    ":now": micros(now),
                    ":workspace_id": uuid_text(fork.workspace_id.0),
                    ":origin": origin,
                },
                |row| row.get(0),
            )
            .optional()?;
        let workflow = workflow.ok_or(Error::RunNotFound(fork.origin))?;
        if blocked {
            return Err(crate::store::fork_blocked(fork.origin, fork.from_seq));
        }
        tx.prepare_cached(sql::FORK_STEPS)?.execute(named_params! {
            ":id": id,
            ":now": micros(now),
            ":origin": origin,
            ":from_seq": i64::from(fork.from_seq),
        })?;
        Ok(workflow)
    })
}
