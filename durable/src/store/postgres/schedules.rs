//! Cron schedules on Postgres: [`ScheduleStore`] for [`PgStore`].
//!
//! Workers fire schedules concurrently: each firing takes the due schedules with `FOR UPDATE
//! SKIP LOCKED`, so two workers never hold the same one, and a worker that takes a schedule
//! just after another moved it on sees it is no longer due (Postgres re-checks the condition
//! on the row it locks). The runs' unique workflow ids back that up.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{PgStore, int_param, u32_col};
use crate::run::{RunId, WorkspaceId};
use crate::store::Store;
use crate::store::schedules::{
    Cadence, FiredTick, NewSchedule, ScheduleInfo, ScheduleStore, tick_workflow_id,
};
use crate::{Error, Result};

/// Creates a schedule or updates the one of the same name. An update keeps the paused flag,
/// and keeps `next_fire_at` unless the cron or time zone changed.
const UPSERT: &str = "
INSERT INTO durable.schedules AS s
    (workspace_id, id, name, workflow_name, workflow_version, max_claims, input, cron, timezone,
     catch_up, next_fire_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (workspace_id, name) DO UPDATE SET
    workflow_name = excluded.workflow_name,
    workflow_version = excluded.workflow_version,
    max_claims = excluded.max_claims,
    input = excluded.input,
    catch_up = excluded.catch_up,
    next_fire_at = CASE WHEN s.cron = excluded.cron AND s.timezone = excluded.timezone
                        THEN s.next_fire_at ELSE excluded.next_fire_at END,
    cron = excluded.cron,
    timezone = excluded.timezone,
    updated_at = now()
RETURNING *";

const GET: &str = "SELECT * FROM durable.schedules WHERE workspace_id = $1 AND name = $2";

const LIST: &str = "SELECT * FROM durable.schedules WHERE workspace_id = $1 ORDER BY name";

const PAUSE: &str = "
UPDATE durable.schedules SET paused = true, updated_at = now()
WHERE workspace_id = $1 AND name = $2
RETURNING *";

/// Locks a schedule to resume it.
const LOCK: &str = "
SELECT *, now() AS db_now FROM durable.schedules
WHERE workspace_id = $1 AND name = $2
FOR UPDATE";

const RESUME: &str = "
UPDATE durable.schedules SET paused = false, next_fire_at = $2, updated_at = now()
WHERE id = $1
RETURNING *";

const DELETE: &str = "DELETE FROM durable.schedules WHERE workspace_id = $1 AND name = $2";

/// The due schedules no other firing holds.
const DUE: &str = "
SELECT *, now() AS db_now FROM durable.schedules
WHERE NOT paused AND next_fire_at <= now()
ORDER BY next_fire_at
LIMIT $1
FOR UPDATE SKIP LOCKED";

/// Starts the runs of some ticks; a tick whose run exists is left alone. Returns the
/// workflow ids of the runs it created.
const START_TICKS: &str = "
INSERT INTO durable.runs
    (workspace_id, id, workflow_id, workflow_name, workflow_version, input, status, max_claims)
SELECT $1, t.id, t.workflow_id, $4, $5, $6, 'pending', $7
FROM unnest($2::uuid[], $3::text[]) AS t(id, workflow_id)
ON CONFLICT (workspace_id, workflow_id) DO NOTHING
RETURNING workflow_id";

/// The runs that hold some ticks. A separate statement from the insert, so it sees a run
/// that a concurrent transaction committed while the insert waited on it.
const TICK_RUNS: &str = "
SELECT id, workflow_id FROM durable.runs WHERE workspace_id = $1 AND workflow_id = ANY($2)";

const NOTIFY_READY: &str = "SELECT pg_notify('durable', 'ready:' || $1)";

const ADVANCE: &str = "
UPDATE durable.schedules SET
    next_fire_at = $2,
    last_fired_at = coalesce($3, last_fired_at),
    updated_at = now()
WHERE id = $1";

const NEXT_DUE: &str = "
SELECT (extract(epoch FROM min(next_fire_at) - now()) * 1000)::float8
FROM durable.schedules WHERE NOT paused";

#[async_trait]
impl ScheduleStore for PgStore {
    async fn upsert_schedule(&self, schedule: NewSchedule) -> Result<ScheduleInfo> {
        let cadence = schedule.validate()?;
        let version = int_param(schedule.workflow_version, "workflow version")?;
        let max_claims = int_param(schedule.max_claims, "max claims")?;
        let first = schedule.first_tick(&cadence, self.now().await?)?;
        let rows = self
            .query(
                UPSERT,
                &[
                    &schedule.workspace_id.0,
                    &Uuid::now_v7(),
                    &schedule.name,
                    &schedule.workflow_name,
                    &version,
                    &max_claims,
                    &schedule.input,
                    &schedule.cron,
                    &schedule.timezone,
                    &schedule.catch_up.as_str(),
                    &first,
                ],
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| Error::database("the schedule upsert returned no row"))?;
        schedule_from_row(row)
    }

    async fn get_schedule(
        &self,
        workspace: WorkspaceId,
        name: &str,
    ) -> Result<Option<ScheduleInfo>> {
        let rows = self.query(GET, &[&workspace.0, &name]).await?;
        rows.first().map(schedule_from_row).transpose()
    }

    async fn list_schedules(&self, workspace: WorkspaceId) -> Result<Vec<ScheduleInfo>> {
        let rows = self.query(LIST, &[&workspace.0]).await?;
        rows.iter().map(schedule_from_row).collect()
    }

    async fn set_schedule_paused(
        &self,
        workspace: WorkspaceId,
        name: &str,
        paused: bool,
    ) -> Result<Option<ScheduleInfo>> {
        if paused {
            let rows = self.query(PAUSE, &[&workspace.0, &name]).await?;
            return rows.first().map(schedule_from_row).transpose();
        }
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let rows = query(&tx, LOCK, &[&workspace.0, &name]).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let schedule = schedule_from_row(row)?;
        if !schedule.paused {
            return Ok(Some(schedule));
        }
        // Ticks that fell while it was paused are dropped: go on from now.
        let now: DateTime<Utc> = row.try_get("db_now")?;
        let next = Cadence::parse(&schedule.cron, &schedule.timezone)?.next_after(now);
        let rows = query(&tx, RESUME, &[&schedule.id, &next]).await?;
        let resumed = rows.first().map(schedule_from_row).transpose()?;
        tx.commit().await?;
        Ok(resumed)
    }

    async fn delete_schedule(&self, workspace: WorkspaceId, name: &str) -> Result<bool> {
        let client = self.pool().get().await?;
        let statement = client.prepare_cached(DELETE).await?;
        Ok(client.execute(&statement, &[&workspace.0, &name]).await? > 0)
    }

    async fn fire_due_schedules(&self, limit: u32) -> Result<Vec<FiredTick>> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let due = query(&tx, DUE, &[&i64::from(limit)]).await?;
        let mut fired = Vec::new();
        for row in &due {
            let schedule = schedule_from_row(row)?;
            let max_claims: i32 = row.try_get("max_claims")?;
            let now: DateTime<Utc> = row.try_get("db_now")?;
            let plan = schedule.plan(now);
            fired.extend(start_ticks(&tx, &schedule, max_claims, &plan.fire).await?);
            query(
                &tx,
                ADVANCE,
                &[&schedule.id, &plan.next, &plan.fire.last().copied()],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(fired)
    }

    async fn next_schedule_due_in(&self) -> Result<Option<Duration>> {
        let rows = self.query(NEXT_DUE, &[]).await?;
        let millis: Option<f64> = rows.first().map(|r| r.try_get(0)).transpose()?.flatten();
        Ok(millis.map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0)))
    }
}

/// Starts the runs of `ticks`, each unless its run exists; wakes the workers.
async fn start_ticks(
    tx: &Transaction<'_>,
    schedule: &ScheduleInfo,
    max_claims: i32,
    ticks: &[DateTime<Utc>],
) -> Result<Vec<FiredTick>> {
    if ticks.is_empty() {
        return Ok(Vec::new());
    }
    let workflow_ids: Vec<String> = ticks
        .iter()
        .map(|t| tick_workflow_id(&schedule.name, *t))
        .collect();
    let ids: Vec<Uuid> = ticks.iter().map(|_| Uuid::now_v7()).collect();
    let workspace = schedule.workspace_id.0;
    let version = int_param(schedule.workflow_version, "workflow version")?;
    let inserted = query(
        tx,
        START_TICKS,
        &[
            &workspace,
            &ids,
            &workflow_ids,
            &schedule.workflow_name,
            &version,
            &schedule.input,
            &max_claims,
        ],
    )
    .await?;
    let created: HashSet<String> = inserted
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    if !created.is_empty() {
        query(tx, NOTIFY_READY, &[&schedule.workflow_name]).await?;
    }
    let runs: HashMap<String, Uuid> = query(tx, TICK_RUNS, &[&workspace, &workflow_ids])
        .await?
        .iter()
        .map(|r| Ok((r.try_get(1)?, r.try_get(0)?)))
        .collect::<Result<_>>()?;
    ticks
        .iter()
        .zip(workflow_ids)
        .map(|(tick, workflow_id)| {
            let run_id = runs.get(&workflow_id).copied().ok_or_else(|| {
                Error::database(format!("the run of tick `{workflow_id}` was not found"))
            })?;
            Ok(FiredTick {
                workspace_id: schedule.workspace_id,
                schedule: schedule.name.clone(),
                tick: *tick,
                created: created.contains(&workflow_id),
                workflow_id,
                workflow_name: schedule.workflow_name.clone(),
                run_id: RunId(run_id),
            })
        })
        .collect()
}

async fn query(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<Row>> {
    let statement = tx.prepare_cached(sql).await?;
    Ok(tx.query(&statement, params).await?)
}

fn schedule_from_row(row: &Row) -> Result<ScheduleInfo> {
    Ok(ScheduleInfo {
        id: row.try_get("id")?,
        workspace_id: WorkspaceId(row.try_get("workspace_id")?),
        name: row.try_get("name")?,
        workflow_name: row.try_get("workflow_name")?,
        workflow_version: u32_col(row, "workflow_version")?,
        input: row.try_get("input")?,
        cron: row.try_get("cron")?,
        timezone: row.try_get("timezone")?,
        catch_up: row.try_get::<_, &str>("catch_up")?.parse()?,
        paused: row.try_get("paused")?,
        next_fire_at: row.try_get("next_fire_at")?,
        last_fired_at: row.try_get("last_fired_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
