//! Cron schedules on SQLite: [`ScheduleStore`] for [`SqliteStore`].
//!
//! A firing is one `BEGIN IMMEDIATE` transaction: it holds the file's write lock from the
//! moment it reads which schedules are due until it has started their runs and moved them
//! on, so two workers (or processes) on one file can never fire the same tick.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, named_params};
use uuid::Uuid;

use super::SqliteStore;
use super::ops::write;
use super::rows::{self, corrupt, micros, timestamp, uuid_text};
use crate::run::{RunId, WorkspaceId};
use crate::store::StoreEvent;
use crate::store::schedules::{
    Cadence, FiredTick, NewSchedule, ScheduleInfo, ScheduleStore, due_in, tick_workflow_id,
};
use crate::{Error, Result};

/// Creates a schedule or updates the one of the same name. An update keeps the paused flag,
/// and keeps `next_fire_at` unless the cron or time zone changed.
const UPSERT: &str = "
INSERT INTO schedules
    (workspace_id, id, name, workflow_name, workflow_version, max_claims, input, cron, timezone,
     catch_up, paused, next_fire_at, created_at, updated_at)
VALUES (:workspace_id, :id, :name, :workflow_name, :workflow_version, :max_claims, :input, :cron,
        :timezone, :catch_up, 0, :next_fire_at, :now, :now)
ON CONFLICT (workspace_id, name) DO UPDATE SET
    workflow_name = excluded.workflow_name,
    workflow_version = excluded.workflow_version,
    max_claims = excluded.max_claims,
    input = excluded.input,
    catch_up = excluded.catch_up,
    next_fire_at = CASE WHEN cron = excluded.cron AND timezone = excluded.timezone
                        THEN next_fire_at ELSE excluded.next_fire_at END,
    cron = excluded.cron,
    timezone = excluded.timezone,
    updated_at = excluded.updated_at
RETURNING *";

const GET: &str = "SELECT * FROM schedules WHERE workspace_id = :workspace_id AND name = :name";

const LIST: &str = "SELECT * FROM schedules WHERE workspace_id = :workspace_id ORDER BY name";

const PAUSE: &str = "
UPDATE schedules SET paused = 1, updated_at = :now
WHERE workspace_id = :workspace_id AND name = :name
RETURNING *";

const RESUME: &str = "
UPDATE schedules SET paused = 0, next_fire_at = :next_fire_at, updated_at = :now
WHERE id = :id
RETURNING *";

const DELETE: &str = "DELETE FROM schedules WHERE workspace_id = :workspace_id AND name = :name";

const DUE: &str = "
SELECT * FROM schedules
WHERE paused = 0 AND next_fire_at <= :now
ORDER BY next_fire_at
LIMIT :limit";

/// Starts the run of one tick, unless it exists.
const START_TICK: &str = "
INSERT INTO runs
    (workspace_id, id, workflow_id, workflow_name, workflow_version, input, status, max_claims,
     created_at, updated_at)
VALUES (:workspace_id, :id, :workflow_id, :workflow_name, :workflow_version, :input, 'pending',
        :max_claims, :now, :now)
ON CONFLICT (workspace_id, workflow_id) DO NOTHING";

const TICK_RUN: &str =
    "SELECT id FROM runs WHERE workspace_id = :workspace_id AND workflow_id = :workflow_id";

const ADVANCE: &str = "
UPDATE schedules SET
    next_fire_at = :next_fire_at,
    last_fired_at = coalesce(:last_fired_at, last_fired_at),
    updated_at = :now
WHERE id = :id";

const NEXT_DUE: &str = "SELECT min(next_fire_at) FROM schedules WHERE paused = 0";

#[async_trait]
impl ScheduleStore for SqliteStore {
    async fn upsert_schedule(&self, schedule: NewSchedule) -> Result<ScheduleInfo> {
        let cadence = schedule.validate()?;
        self.inner
            .db
            .call(move |conn| upsert(conn, &schedule, &cadence))
            .await
    }

    async fn get_schedule(
        &self,
        workspace: WorkspaceId,
        name: &str,
    ) -> Result<Option<ScheduleInfo>> {
        let name = name.to_owned();
        self.inner
            .db
            .call(move |conn| {
                let mut statement = conn.prepare_cached(GET)?;
                let params =
                    named_params! { ":workspace_id": uuid_text(workspace.0), ":name": name };
                Ok(rows::collect(&mut statement, params, schedule_from_row)?
                    .into_iter()
                    .next())
            })
            .await
    }

    async fn list_schedules(&self, workspace: WorkspaceId) -> Result<Vec<ScheduleInfo>> {
        self.inner
            .db
            .call(move |conn| {
                let mut statement = conn.prepare_cached(LIST)?;
                let params = named_params! { ":workspace_id": uuid_text(workspace.0) };
                rows::collect(&mut statement, params, schedule_from_row)
            })
            .await
    }

    async fn set_schedule_paused(
        &self,
        workspace: WorkspaceId,
        name: &str,
        paused: bool,
    ) -> Result<Option<ScheduleInfo>> {
        let name = name.to_owned();
        self.inner
            .db
            .call(move |conn| set_paused(conn, workspace, &name, paused))
            .await
    }

    async fn delete_schedule(&self, workspace: WorkspaceId, name: &str) -> Result<bool> {
        let name = name.to_owned();
        self.inner
            .db
            .call(move |conn| {
                write(conn, |tx, _| {
                    let params =
                        named_params! { ":workspace_id": uuid_text(workspace.0), ":name": name };
                    Ok(tx.prepare_cached(DELETE)?.execute(params)? > 0)
                })
            })
            .await
    }

    async fn fire_due_schedules(&self, limit: u32) -> Result<Vec<FiredTick>> {
        let fired = self
            .inner
            .db
            .call(move |conn| write(conn, |tx, now| fire_due(tx, now, limit)))
            .await?;
        let ready: BTreeSet<&str> = fired
            .iter()
            .filter(|t| t.created)
            .map(|t| t.workflow_name.as_str())
            .collect();
        for workflow in ready {
            self.hint(StoreEvent::RunReady(workflow.to_owned()));
        }
        Ok(fired)
    }

    async fn next_schedule_due_in(&self) -> Result<Option<Duration>> {
        let earliest: Option<i64> = self
            .inner
            .db
            .call(|conn| {
                Ok(conn
                    .prepare_cached(NEXT_DUE)?
                    .query_row([], |row| row.get(0))?)
            })
            .await?;
        let earliest = earliest.map(timestamp).transpose()?;
        Ok(due_in(earliest, rows::now()))
    }
}

fn upsert(
    conn: &mut Connection,
    schedule: &NewSchedule,
    cadence: &Cadence,
) -> Result<ScheduleInfo> {
    let input = rows::json_text(&schedule.input)?;
    write(conn, |tx, now| {
        let first = schedule.first_tick(cadence, now)?;
        let mut statement = tx.prepare_cached(UPSERT)?;
        let params = named_params! {
            ":workspace_id": uuid_text(schedule.workspace_id.0),
            ":id": uuid_text(Uuid::now_v7()),
            ":name": schedule.name,
            ":workflow_name": schedule.workflow_name,
            ":workflow_version": i64::from(schedule.workflow_version),
            ":max_claims": i64::from(schedule.max_claims),
            ":input": input,
            ":cron": schedule.cron,
            ":timezone": schedule.timezone,
            ":catch_up": schedule.catch_up.as_str(),
            ":next_fire_at": micros(first),
            ":now": micros(now),
        };
        rows::collect(&mut statement, params, schedule_from_row)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::database("the schedule upsert returned no row"))
    })
}

fn set_paused(
    conn: &mut Connection,
    workspace: WorkspaceId,
    name: &str,
    paused: bool,
) -> Result<Option<ScheduleInfo>> {
    let workspace_id = uuid_text(workspace.0);
    write(conn, |tx, now| {
        if paused {
            let mut statement = tx.prepare_cached(PAUSE)?;
            let params =
                named_params! { ":workspace_id": workspace_id, ":name": name, ":now": micros(now) };
            return Ok(rows::collect(&mut statement, params, schedule_from_row)?
                .into_iter()
                .next());
        }
        let mut statement = tx.prepare_cached(GET)?;
        let params = named_params! { ":workspace_id": workspace_id, ":name": name };
        let Some(schedule) = rows::collect(&mut statement, params, schedule_from_row)?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        if !schedule.paused {
            return Ok(Some(schedule));
        }
        // Ticks that fell while it was paused are dropped: go on from now.
        let next = Cadence::parse(&schedule.cron, &schedule.timezone)?.next_after(now);
        let mut statement = tx.prepare_cached(RESUME)?;
        let params = named_params! {
            ":id": uuid_text(schedule.id),
            ":next_fire_at": next.map(micros),
            ":now": micros(now),
        };
        Ok(rows::collect(&mut statement, params, schedule_from_row)?
            .into_iter()
            .next())
    })
}

/// Fires the due schedules, with the write lock held.
fn fire_due(tx: &Transaction<'_>, now: DateTime<Utc>, limit: u32) -> Result<Vec<FiredTick>> {
    let due: Vec<(ScheduleInfo, i64)> = {
        let mut statement = tx.prepare_cached(DUE)?;
        let params = named_params! { ":now": micros(now), ":limit": i64::from(limit) };
        rows::collect(&mut statement, params, |row| {
            Ok((schedule_from_row(row)?, row.get("max_claims")?))
        })?
    };
    let mut fired = Vec::new();
    for (schedule, max_claims) in &due {
        let plan = schedule.plan(now);
        for tick in &plan.fire {
            fired.push(start_tick(tx, schedule, *max_claims, *tick, now)?);
        }
        tx.prepare_cached(ADVANCE)?.execute(named_params! {
            ":id": uuid_text(schedule.id),
            ":next_fire_at": plan.next.map(micros),
            ":last_fired_at": plan.fire.last().copied().map(micros),
            ":now": micros(now),
        })?;
    }
    Ok(fired)
}

/// Starts the run of one tick, unless it exists.
fn start_tick(
    tx: &Transaction<'_>,
    schedule: &ScheduleInfo,
    max_claims: i64,
    tick: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<FiredTick> {
    let workspace_id = uuid_text(schedule.workspace_id.0);
    let workflow_id = tick_workflow_id(&schedule.name, tick);
    let id = RunId::new();
    let created = tx.prepare_cached(START_TICK)?.execute(named_params! {
        ":workspace_id": workspace_id,
        ":id": uuid_text(id.0),
        ":workflow_id": workflow_id,
        ":workflow_name": schedule.workflow_name,
        ":workflow_version": i64::from(schedule.workflow_version),
        ":input": rows::json_text(&schedule.input)?,
        ":max_claims": max_claims,
        ":now": micros(now),
    })? == 1;
    let run_id = if created {
        id
    } else {
        let existing: String = tx
            .prepare_cached(TICK_RUN)?
            .query_row(
                named_params! { ":workspace_id": workspace_id, ":workflow_id": workflow_id },
                |row| row.get(0),
            )
            .optional()?
            .ok_or_else(|| {
                Error::database(format!("the run of tick `{workflow_id}` was not found"))
            })?;
        RunId(parse_uuid("runs.id", &existing)?)
    };
    Ok(FiredTick {
        workspace_id: schedule.workspace_id,
        schedule: schedule.name.clone(),
        tick,
        workflow_id,
        workflow_name: schedule.workflow_name.clone(),
        run_id,
        created,
    })
}

fn parse_uuid(column: &str, text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|e| {
        corrupt(
            format!("column {column} holds `{text}`, not a UUID: {e}"),
            e,
        )
    })
}

fn optional_time(row: &Row<'_>, column: &str) -> Result<Option<DateTime<Utc>>> {
    row.get::<_, Option<i64>>(column)?
        .map(timestamp)
        .transpose()
}

/// A `schedules` row.
fn schedule_from_row(row: &Row<'_>) -> Result<ScheduleInfo> {
    let input: String = row.get("input")?;
    Ok(ScheduleInfo {
        id: parse_uuid("schedules.id", &row.get::<_, String>("id")?)?,
        workspace_id: WorkspaceId(parse_uuid(
            "schedules.workspace_id",
            &row.get::<_, String>("workspace_id")?,
        )?),
        name: row.get("name")?,
        workflow_name: row.get("workflow_name")?,
        workflow_version: u32::try_from(row.get::<_, i64>("workflow_version")?)
            .map_err(|e| corrupt(format!("bad workflow version: {e}"), e))?,
        input: serde_json::from_str(&input)?,
        cron: row.get("cron")?,
        timezone: row.get("timezone")?,
        catch_up: row.get::<_, String>("catch_up")?.parse()?,
        paused: row.get("paused")?,
        next_fire_at: optional_time(row, "next_fire_at")?,
        last_fired_at: optional_time(row, "last_fired_at")?,
        created_at: timestamp(row.get("created_at")?)?,
        updated_at: timestamp(row.get("updated_at")?)?,
    })
}
