//! Messages sent to runs and events published by them.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, named_params};
use serde_json::Value;

use super::ops::write;
use super::rows::{self, micros, uuid_text};
use super::sql;
use crate::run::{RunId, RunStatus, WorkspaceId};
use crate::store::{Checkpoint, Message, NewMessage};
use crate::{Error, Result};

/// Stores a message for a run that has not finished and wakes the run if it waits for the
/// topic. Returns whether the message is new, and the workflow of a run it woke.
pub(super) fn send(conn: &mut Connection, message: &NewMessage) -> Result<(bool, Option<String>)> {
    let workspace_id = uuid_text(message.workspace_id.0);
    let run_id = uuid_text(message.run_id.0);
    let payload = rows::json_text(&message.payload)?;
    write(conn, |tx, now| {
        refuse_finished(tx, message, &workspace_id, &run_id)?;
        let inserted = tx
            .prepare_cached(sql::INSERT_MESSAGE)?
            .execute(named_params! {
                ":workspace_id": workspace_id,
                ":run_id": run_id,
                ":topic": message.topic,
                ":payload": payload,
                ":idempotency_key": message.idempotency_key,
                ":now": micros(now),
            })?
            == 1;
        if !inserted {
            return Ok((false, None));
        }
        let woken = tx
            .prepare_cached(sql::WAKE_WAITING)?
            .query_row(
                named_params! { ":now": micros(now), ":run_id": run_id, ":topic": message.topic },
                |row| row.get(0),
            )
            .optional()?;
        Ok((true, woken))
    })
}

/// A message may go to a run of the workspace that has not finished.
fn refuse_finished(
    tx: &Transaction<'_>,
    message: &NewMessage,
    workspace_id: &str,
    run_id: &str,
) -> Result<()> {
    let status: Option<String> = tx
        .prepare_cached(sql::STATUS)?
        .query_row(
            named_params! { ":workspace_id": workspace_id, ":id": run_id },
            |row| row.get(0),
        )
        .optional()?;
    let status: RunStatus = status.ok_or(Error::RunNotFound(message.run_id))?.parse()?;
    if status.is_terminal() {
        return Err(Error::Invalid(format!(
            "run {} is {status}: it takes no more messages",
            message.run_id
        )));
    }
    Ok(())
}

/// The oldest message on any of `topics` (a JSON array) no step of the run has taken.
pub(super) fn next(conn: &Connection, run: RunId, topics: &str) -> Result<Option<Message>> {
    let found: Option<(i64, String, String)> = conn
        .prepare_cached(sql::NEXT_MESSAGE)?
        .query_row(
            named_params! { ":run_id": uuid_text(run.0), ":topics": topics },
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    found
        .map(|(id, topic, payload)| {
            Ok(Message {
                id,
                topic,
                payload: serde_json::from_str(&payload)?,
            })
        })
        .transpose()
}

/// A run's latest value for an event key.
pub(super) fn event(
    conn: &Connection,
    workspace: WorkspaceId,
    run: RunId,
    key: &str,
) -> Result<Option<Value>> {
    let value: Option<String> = conn
        .prepare_cached(sql::GET_EVENT)?
        .query_row(
            named_params! {
                ":workspace_id": uuid_text(workspace.0),
                ":run_id": uuid_text(run.0),
                ":key": key,
            },
            |row| row.get(0),
        )
        .optional()?;
    Ok(value.map(|v| serde_json::from_str(&v)).transpose()?)
}

/// Marks the checkpoint's messages as taken, inside its transaction.
pub(super) fn consume(tx: &Transaction<'_>, cp: &Checkpoint) -> Result<()> {
    let mut statement = tx.prepare_cached(sql::CONSUME_MESSAGE)?;
    for &(id, seq) in &cp.consumed {
        statement.execute(named_params! {
            ":seq": i64::from(seq),
            ":id": id,
            ":run_id": uuid_text(cp.lease.run_id.0),
        })?;
    }
    Ok(())
}

/// Publishes the checkpoint's events, inside its transaction.
pub(super) fn publish(
    tx: &Transaction<'_>,
    cp: &Checkpoint,
    workspace_id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut statement = tx.prepare_cached(sql::UPSERT_EVENT)?;
    for (key, value) in &cp.events {
        statement.execute(named_params! {
            ":workspace_id": workspace_id,
            ":run_id": uuid_text(cp.lease.run_id.0),
            ":key": key,
            ":value": rows::json_text(value)?,
            ":now": micros(now),
        })?;
    }
    Ok(())
}
