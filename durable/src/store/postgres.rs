//! [`PgStore`]: the production store, a coordination engine for workers on many machines.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    Checkpoint, ClaimRequest, ClaimedRun, Lease, Message, NewFork, NewMessage, NewRun, Renewed,
    StartedRun, Store, StoreEvent,
};
use crate::run::{RunFilter, RunId, RunInfo, RunStatus, StepRecord, WorkspaceId};
use crate::{Error, Result};

mod checkpoint;
mod group_commit;
mod listener;
mod migrate;
mod schedules;
mod sql;
mod tls;
mod transaction;

use checkpoint::CheckpointArgs;
use group_commit::{Ack, GroupCommit};

pub use group_commit::GroupCommitStats;

pub use migrate::{latest_version as schema_version, schema_fingerprint};

/// A [`Store`] on Postgres (`tokio-postgres` with a `deadpool` pool).
///
/// Cloning is cheap and shares the pool. Connecting runs the embedded migrations (in a
/// transaction, under an advisory lock) and starts one LISTEN connection for wake-ups.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
    /// The role a workspace's calls run as, for row-level security; `None`: the
    /// connecting role. See [`PgStore::as_tenant`].
    tenant_role: Option<Arc<str>>,
}

/// Enters a workspace's context for the rest of a transaction: its role and its workspace,
/// both `LOCAL`, so they end with the transaction and a pooled connection goes back as it
/// came. `set_config('role', …)` is `SET LOCAL ROLE` in a form that takes parameters.
const ENTER_TENANT: &str = "
SELECT set_config('role', $1, true), set_config('durable.workspace_id', $2, true)";

struct Inner {
    pool: Pool,
    events: broadcast::Sender<StoreEvent>,
    stop_listener: CancellationToken,
    group_commit: GroupCommit,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_listener.cancel();
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.inner.pool.status();
        f.debug_struct("PgStore")
            .field("pool_size", &status.size)
            .field("pool_max", &status.max_size)
            .field("tenant_role", &self.tenant_role)
            .finish()
    }
}

/// Options for [`PgStore`]; see [`PgStore::builder`].
#[derive(Clone)]
pub struct PgStoreBuilder {
    url: String,
    pool_size: usize,
}

impl std::fmt::Debug for PgStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStoreBuilder")
            .field("url", &super::select::redact(&self.url))
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

impl PgStoreBuilder {
    /// Connections in the pool (default 16).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// Connects, migrates, and starts listening for wake-ups; see [`PgStore::connect`] for
    /// the TLS settings the URL may carry.
    pub async fn connect(self) -> Result<PgStore> {
        let (url, tls) = tls::split(&self.url)?;
        let mut config = tokio_postgres::Config::from_str(&url).map_err(|e| {
            Error::Invalid(format!(
                "bad Postgres URL: {}",
                crate::error::with_cause(&e)
            ))
        })?;
        config.ssl_mode(tls.tokio_postgres_mode());
        let connector = tls.connector()?;
        let manager = Manager::from_config(
            config.clone(),
            connector.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(self.pool_size)
            .build()
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let mut client = pool.get().await.map_err(|e| tls.connect_error(e))?;
        migrate::migrate(&mut client).await?;
        drop(client);
        let (events, _) = broadcast::channel(1024);
        let stop_listener = CancellationToken::new();
        tokio::spawn(listener::run(
            config,
            connector,
            events.clone(),
            stop_listener.clone(),
        ));
        Ok(PgStore {
            inner: Arc::new(Inner {
                pool,
                events,
                stop_listener,
                group_commit: GroupCommit::default(),
            }),
            tenant_role: None,
        })
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user:pass@host/db`) with default options.
    ///
    /// TLS (rustls) is set in the URL as libpq users expect, with `sslmode` and
    /// `sslrootcert=<PEM file of CA certificates>`:
    ///
    /// - `disable`: plain TCP;
    /// - `prefer`: TLS if the server offers it, plain if it refuses;
    /// - `require`: TLS, verifying nothing: encrypted, but open to interception;
    /// - `verify-ca`: TLS with a certificate chain to a trusted CA, whatever host it names;
    /// - `verify-full`: TLS with a certificate chain to a trusted CA, for the host connected to.
    ///
    /// The trusted CAs are those in `sslrootcert`, or without it the webpki (Mozilla) roots.
    /// As in libpq, `prefer` and `require` given an `sslrootcert` verify the chain too.
    ///
    /// Without `sslmode`, a URL that asks for TLS by naming `sslrootcert` gets `verify-full`,
    /// and one that names neither connects in plain TCP, as before TLS was supported (libpq
    /// would `prefer` TLS there, without verifying anything). A managed Postgres that
    /// requires TLS therefore needs `sslmode=verify-full` (or at least `require`) in the URL.
    ///
    /// The same holds for libpq `key=value` strings. An unknown `sslmode`, or an
    /// `sslrootcert` that cannot be read or holds no certificate, is [`Error::Invalid`].
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder(url).connect().await
    }

    /// Options for connecting to `url`.
    pub fn builder(url: &str) -> PgStoreBuilder {
        PgStoreBuilder {
            url: url.to_owned(),
            pool_size: 16,
        }
    }

    /// The connection pool, for code that shares the database.
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// How many checkpoints shared a statement and a commit with others so far.
    pub fn group_commit_stats(&self) -> GroupCommitStats {
        self.inner.group_commit.stats()
    }

    async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let client = self.inner.pool.get().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.query(&statement, params).await?)
    }

    /// This store, with every call made for a workspace through the client API (start,
    /// read, list, cancel, pause, resume, fork) run in a transaction as `role` with the
    /// workspace set, so that row-level security applies to it whatever its SQL says. The
    /// role must have the privileges those calls need and policies keyed on the setting
    /// `durable.workspace_id` (the control plane's migrations set up `durable_tenant` so).
    /// Workers keep using the store as the connecting role.
    pub fn as_tenant(&self, role: &str) -> Self {
        Self {
            inner: self.inner.clone(),
            tenant_role: Some(role.into()),
        }
    }

    /// [`query`](Self::query) on behalf of `workspace`: as the tenant role in its own
    /// transaction when the store is [`as_tenant`](Self::as_tenant).
    async fn query_for(
        &self,
        workspace: WorkspaceId,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        let Some(role) = &self.tenant_role else {
            return self.query(sql, params).await;
        };
        let mut client = self.inner.pool.get().await?;
        let tx = client.transaction().await?;
        enter_tenant(&tx, role, workspace).await?;
        let statement = tx.prepare_cached(sql).await?;
        let rows = tx.query(&statement, params).await?;
        tx.commit().await?;
        Ok(rows)
    }
}

async fn enter_tenant(
    tx: &deadpool_postgres::Transaction<'_>,
    role: &str,
    workspace: WorkspaceId,
) -> Result<()> {
    let enter = tx.prepare_cached(ENTER_TENANT).await?;
    tx.execute(&enter, &[&role, &workspace.0.to_string()])
        .await?;
    Ok(())
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A count or position bound to an `integer` column; `what` names it in the error.
fn int_param(value: u32, what: &str) -> Result<i32> {
    i32::try_from(value).map_err(|_| {
        Error::Invalid(format!(
            "{what} {value} is out of range: Postgres stores at most {}",
            i32::MAX
        ))
    })
}

/// An `integer` column that holds a count or position, which is never negative.
fn u32_col(row: &Row, col: &str) -> Result<u32> {
    let value: i32 = row.try_get(col)?;
    u32::try_from(value)
        .map_err(|_| Error::database(format!("column {col} holds {value}, out of range")))
}

#[async_trait]
impl Store for PgStore {
    async fn start_run(&self, run: NewRun) -> Result<StartedRun> {
        let version = int_param(run.workflow_version, "workflow version")?;
        let max_claims = int_param(run.max_claims, "max claims")?;
        // A concurrent insert of the same id is invisible to this statement's snapshot,
        // so an empty answer means "lost the race": asking again sees the winner.
        for _ in 0..3 {
            let rows = self
                .query_for(
                    run.workspace_id,
                    sql::START_RUN,
                    &[
                        &run.workspace_id.0,
                        &run.id.0,
                        &run.workflow_id,
                        &run.workflow_name,
                        &version,
                        &run.input,
                        &max_claims,
                        &run.parent_run_id.map(|p| p.0),
                        &run.timeout.map(millis),
                    ],
                )
                .await?;
            if let Some(row) = rows.first() {
                return Ok(StartedRun {
                    id: RunId(row.try_get("id")?),
                    created: row.try_get("created")?,
                    workflow_name: row.try_get("workflow_name")?,
                    input: row.try_get("input")?,
                });
            }
        }
        Err(Error::database(format!(
            "could not start or find the run with workflow id `{}`",
            run.workflow_id
        )))
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<ClaimedRun>> {
        let limit = i64::from(request.limit);
        let executing: Vec<Uuid> = request.running.iter().map(|r| r.0).collect();
        let rows = self
            .query(
                sql::CLAIM,
                &[
                    &request.workflows,
                    &limit,
                    &request.worker_id,
                    &millis(request.lease_ttl),
                    &executing,
                ],
            )
            .await?;
        let mut claimed = rows
            .iter()
            .map(claimed_from_row)
            .collect::<Result<Vec<_>>>()?;
        let running: Vec<Uuid> = claimed
            .iter()
            .filter(|c| c.info.status == RunStatus::Running && c.may_have_history())
            .map(|c| c.lease.run_id.0)
            .collect();
        if !running.is_empty() {
            let mut histories = self.claimed_histories(&running, request.lease_ttl).await?;
            for run in &mut claimed {
                run.history = histories.remove(&run.lease.run_id).unwrap_or_default();
            }
        }
        Ok(claimed)
    }

    async fn checkpoint(&self, cp: Checkpoint) -> Result<DateTime<Utc>> {
        let cp = match group_commit::batchable(&cp) {
            true => match self.inner.group_commit.submit(self, cp).await? {
                Ack::Recorded(db_now) => return Ok(db_now),
                Ack::Deferred(cp) => *cp,
            },
            false => cp,
        };
        if let super::Transition::Wait { topics, .. } = &cp.transition {
            return self
                .checkpoint_wait(&cp, &super::waiting_topic(topics))
                .await;
        }
        let args = CheckpointArgs::new(&cp)?;
        let rows = self.query(sql::CHECKPOINT, &args.params()).await?;
        checkpoint::acknowledged(&rows, cp.lease.run_id)
    }

    async fn heartbeat(&self, leases: &[Lease], lease_ttl: Duration) -> Result<Vec<Renewed>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = leases.iter().map(|l| l.run_id.0).collect();
        let epochs: Vec<i64> = leases.iter().map(|l| l.epoch).collect();
        let rows = self
            .query(sql::HEARTBEAT, &[&ids, &epochs, &millis(lease_ttl)])
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Renewed {
                    run_id: RunId(r.try_get(0)?),
                    cancel_requested: r.try_get(1)?,
                })
            })
            .collect()
    }

    async fn next_wake_in(&self, workflows: &[String]) -> Result<Option<Duration>> {
        let rows = self.query(sql::NEXT_WAKE, &[&workflows]).await?;
        let millis: Option<f64> = rows.first().map(|r| r.try_get(0)).transpose()?.flatten();
        Ok(millis.map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0)))
    }

    async fn now(&self) -> Result<DateTime<Utc>> {
        let rows = self.query("SELECT now()", &[]).await?;
        Ok(first_row(&rows, "SELECT now()")?.try_get(0)?)
    }

    async fn get_run(&self, workspace: WorkspaceId, id: RunId) -> Result<Option<RunInfo>> {
        let rows = self
            .query_for(workspace, sql::GET_RUN, &[&workspace.0, &id.0])
            .await?;
        rows.first().map(run_from_row).transpose()
    }

    async fn list_runs(&self, workspace: WorkspaceId, filter: &RunFilter) -> Result<Vec<RunInfo>> {
        let status = filter.status.map(RunStatus::as_str);
        let rows = self
            .query_for(
                workspace,
                sql::LIST_RUNS,
                &[
                    &workspace.0,
                    &status,
                    &filter.workflow_name,
                    &filter.created_after,
                    &filter.created_before,
                    &filter.effective_limit(),
                ],
            )
            .await?;
        rows.iter().map(run_from_row).collect()
    }

    async fn steps(&self, workspace: WorkspaceId, id: RunId) -> Result<Vec<StepRecord>> {
        let rows = self
            .query_for(workspace, sql::STEPS, &[&workspace.0, &id.0])
            .await?;
        rows.iter().map(step_from_row).collect()
    }

    async fn cancel_run(&self, workspace: WorkspaceId, id: RunId) -> Result<RunStatus> {
        let rows = self
            .query_for(workspace, sql::CANCEL, &[&workspace.0, &id.0, &false])
            .await?;
        let row = rows.first().ok_or(Error::RunNotFound(id))?;
        row.try_get::<_, &str>("status")?.parse()
    }

    async fn request_cancel(
        &self,
        workspace: WorkspaceId,
        id: RunId,
        reason: &str,
    ) -> Result<RunStatus> {
        let mut client = self.inner.pool.get().await?;
        let tx = client.transaction().await?;
        if let Some(role) = &self.tenant_role {
            enter_tenant(&tx, role, workspace).await?;
        }
        let cancel = tx.prepare_cached(sql::CANCEL).await?;
        let rows = tx.query(&cancel, &[&workspace.0, &id.0, &true]).await?;
        let row = rows.first().ok_or(Error::RunNotFound(id))?;
        let status: RunStatus = row.try_get::<_, &str>("status")?.parse()?;
        // A finished run's descendants may still run: they are asked too.
        let ask = tx.prepare_cached(sql::REQUEST_CANCEL).await?;
        tx.execute(&ask, &[&workspace.0, &id.0, &reason]).await?;
        tx.commit().await?;
        Ok(status)
    }

    async fn pause_run(&self, workspace: WorkspaceId, id: RunId) -> Result<RunStatus> {
        let rows = self
            .query_for(workspace, sql::PAUSE, &[&workspace.0, &id.0])
            .await?;
        let row = rows.first().ok_or(Error::RunNotFound(id))?;
        row.try_get::<_, &str>("status")?.parse()
    }

    async fn resume_run(&self, workspace: WorkspaceId, id: RunId) -> Result<RunStatus> {
        let rows = self
            .query_for(workspace, sql::RESUME, &[&workspace.0, &id.0])
            .await?;
        let row = rows.first().ok_or(Error::RunNotFound(id))?;
        row.try_get::<_, &str>("status")?.parse()
    }

    async fn fork_run(&self, fork: NewFork) -> Result<RunId> {
        let from_seq = int_param(fork.from_seq, "fork sequence number")?;
        let rows = self
            .query_for(
                fork.workspace_id,
                sql::FORK,
                &[
                    &fork.workspace_id.0,
                    &fork.origin.0,
                    &from_seq,
                    &fork.id.0,
                    &fork.workflow_id,
                    &fork.input,
                ],
            )
            .await?;
        let row = first_row(&rows, "fork")?;
        if row.try_get::<_, i64>("found")? == 0 {
            return Err(Error::RunNotFound(fork.origin));
        }
        if row.try_get::<_, i64>("blocked")? > 0 {
            return Err(super::fork_blocked(fork.origin, fork.from_seq));
        }
        Ok(fork.id)
    }

    async fn send_message(&self, message: NewMessage) -> Result<bool> {
        let rows = self
            .query(
                sql::SEND_MESSAGE,
                &[
                    &message.workspace_id.0,
                    &message.run_id.0,
                    &message.topic,
                    &message.payload,
                    &message.idempotency_key,
                ],
            )
            .await?;
        let row = rows.first().ok_or(Error::RunNotFound(message.run_id))?;
        let status: RunStatus = row.try_get::<_, &str>("status")?.parse()?;
        if status.is_terminal() {
            return Err(Error::Invalid(format!(
                "run {} is {status}: it takes no more messages",
                message.run_id
            )));
        }
        Ok(row.try_get::<_, i64>("inserted")? > 0)
    }

    async fn next_message(&self, run: RunId, topics: &[String]) -> Result<Option<Message>> {
        let rows = self.query(sql::NEXT_MESSAGE, &[&run.0, &topics]).await?;
        rows.first()
            .map(|row| {
                Ok(Message {
                    id: row.try_get("id")?,
                    topic: row.try_get("topic")?,
                    payload: row.try_get("payload")?,
                })
            })
            .transpose()
    }

    async fn get_event(
        &self,
        workspace: WorkspaceId,
        run: RunId,
        key: &str,
    ) -> Result<Option<Value>> {
        let rows = self
            .query(sql::GET_EVENT, &[&workspace.0, &run.0, &key])
            .await?;
        rows.first().map(|row| Ok(row.try_get(0)?)).transpose()
    }

    fn events(&self) -> broadcast::Receiver<StoreEvent> {
        self.inner.events.subscribe()
    }

    fn as_postgres(&self) -> Option<&PgStore> {
        Some(self)
    }

    fn as_schedules(&self) -> Option<&dyn super::schedules::ScheduleStore> {
        Some(self)
    }
}

impl PgStore {
    /// A checkpoint that starts a wait, and the re-check that closes the race with a message
    /// sent meanwhile ([`sql::WAIT_RECHECK`]), in one transaction.
    async fn checkpoint_wait(&self, cp: &Checkpoint, waiting_topic: &str) -> Result<DateTime<Utc>> {
        let mut client = self.inner.pool.get().await?;
        let tx = client.transaction().await?;
        let args = CheckpointArgs::new(cp)?;
        let statement = tx.prepare_cached(sql::CHECKPOINT).await?;
        let db_now = checkpoint::acknowledged(
            &tx.query(&statement, &args.params()).await?,
            cp.lease.run_id,
        )?;
        let recheck = tx.prepare_cached(sql::WAIT_RECHECK).await?;
        tx.execute(&recheck, &[&cp.lease.run_id.0, &waiting_topic])
            .await?;
        tx.commit().await?;
        Ok(db_now)
    }

    /// The histories of runs just claimed. The claim is committed, so giving up here would
    /// strand the runs until their lease expires and count a claim against each: a failed
    /// read is retried while half the lease remains.
    async fn claimed_histories(
        &self,
        runs: &[Uuid],
        lease_ttl: Duration,
    ) -> Result<HashMap<RunId, Vec<StepRecord>>> {
        let deadline = tokio::time::Instant::now() + lease_ttl / 2;
        let mut backoff = Duration::from_millis(10);
        loop {
            match self.histories(runs).await {
                Err(e @ Error::Database { .. })
                    if tokio::time::Instant::now() + backoff < deadline =>
                {
                    tracing::warn!(error = %e, "reading claimed histories failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                result => return result,
            }
        }
    }

    async fn histories(&self, runs: &[Uuid]) -> Result<HashMap<RunId, Vec<StepRecord>>> {
        let rows = self.query(sql::HISTORY, &[&runs]).await?;
        let mut by_run: HashMap<RunId, Vec<StepRecord>> = HashMap::new();
        for row in &rows {
            by_run
                .entry(RunId(row.try_get("run_id")?))
                .or_default()
                .push(step_from_row(row)?);
        }
        Ok(by_run)
    }
}

/// The one row a statement always returns.
fn first_row<'a>(rows: &'a [Row], statement: &str) -> Result<&'a Row> {
    rows.first()
        .ok_or_else(|| Error::database(format!("the {statement} statement returned no row")))
}

fn run_from_row(row: &Row) -> Result<RunInfo> {
    Ok(RunInfo {
        id: RunId(row.try_get("id")?),
        workspace_id: WorkspaceId(row.try_get("workspace_id")?),
        workflow_id: row.try_get("workflow_id")?,
        workflow_name: row.try_get("workflow_name")?,
        workflow_version: u32_col(row, "workflow_version")?,
        status: row.try_get::<_, &str>("status")?.parse()?,
        input: row.try_get("input")?,
        output: row.try_get("output")?,
        error: row.try_get("error")?,
        claims: u32_col(row, "claims")?,
        max_claims: u32_col(row, "max_claims")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        wake_at: row.try_get("wake_at")?,
        waiting_for: row.try_get("waiting_topic")?,
        parent_run_id: row.try_get::<_, Option<Uuid>>("parent_run_id")?.map(RunId),
        forked_from: row.try_get::<_, Option<Uuid>>("forked_from")?.map(RunId),
        cancel_requested: row.try_get("cancel_requested")?,
        deadline: row.try_get("deadline_at")?,
    })
}

fn claimed_from_row(row: &Row) -> Result<ClaimedRun> {
    let info = run_from_row(row)?;
    Ok(ClaimedRun {
        lease: Lease {
            run_id: info.id,
            epoch: row.try_get("epoch")?,
        },
        db_now: row.try_get("db_now")?,
        info,
        history: Vec::new(),
    })
}

fn step_from_row(row: &Row) -> Result<StepRecord> {
    Ok(StepRecord {
        seq: u32_col(row, "seq")?,
        name: row.try_get("name")?,
        kind: row.try_get::<_, &str>("kind")?.parse()?,
        status: row.try_get::<_, &str>("status")?.parse()?,
        output: row.try_get("output")?,
        error: row.try_get("error")?,
        attempts: u32_col(row, "attempts")?,
        wake_at: row.try_get("wake_at")?,
        first_attempt_at: row.try_get("first_attempt_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_that_do_not_fit_an_integer_column_are_invalid() {
        assert_eq!(int_param(7, "max claims").unwrap(), 7);
        assert_eq!(int_param(u32::MAX / 2, "seq").unwrap(), i32::MAX);
        let err = int_param(u32::MAX, "step sequence number").unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
        assert!(
            err.to_string().contains("step sequence number 4294967295"),
            "{err}"
        );
    }
}
