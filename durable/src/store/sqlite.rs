//! [`SqliteStore`]: the embedded store, one SQLite file and no server to run.
//!
//! It keeps the same guarantees as the Postgres store, with the same statuses, claim
//! counting, parking and fencing epochs; the conformance suite runs against both.
//!
//! # Durability
//!
//! The file is in WAL mode with `synchronous = FULL`: every commit syncs the log to disk, so a
//! recorded step survives a power cut, not just a crash of the process. That costs one fsync
//! per checkpoint, which bounds how many steps per second one file can record.
//!
//! # Threads
//!
//! Each store owns one connection on a dedicated thread; every call is sent to that thread
//! and awaited, so the async runtime never blocks on SQLite (on fsyncs, or on waiting for
//! another process's write lock). Calls through one store run one at a time; reads share
//! the connection. Clones of a store share its thread; separately opened stores on one file
//! each have their own, and coordinate like separate processes.
//!
//! # Time
//!
//! The store's clock ("the database clock" of the [`Store`] contract) is the system clock of
//! the machine that holds the file, which every process using the file shares. Timestamps are
//! stored as integer microseconds since the Unix epoch (UTC).
//!
//! # Several processes on one file
//!
//! Worker processes on the same machine may share one file. Every write is a
//! `BEGIN IMMEDIATE` transaction, which takes the file's write lock before it reads, so two
//! claims can never pick the same run; a writer that finds the lock taken waits for it (up to
//! a 5 s busy timeout). Leases and fencing epochs then work as on Postgres: a worker whose
//! lease was taken over, or whose process was frozen, cannot record anything.
//!
//! The limit: one machine, with the file on a local filesystem. SQLite's locks and WAL's
//! shared memory do not work over NFS or other network filesystems; for workers on several
//! machines, use Postgres.
//!
//! # Hints
//!
//! [`Store::events`] carries hints about writes made through this store only; there is no
//! notification across processes. Workers also poll, so runs started by another process are
//! still picked up, at worst one poll interval later.
//!
//! ```rust,no_run
//! # async fn demo() -> durable::Result<()> {
//! let store = durable::SqliteStore::open("durable.db").await?;
//! let client = durable::Client::new(store);
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use super::{
    Checkpoint, ClaimRequest, ClaimedRun, Lease, Message, NewFork, NewMessage, NewRun, Renewed,
    StartedRun, Store, StoreEvent,
};
use crate::run::{RunFilter, RunId, RunInfo, RunStatus, StepRecord, WorkspaceId};
use crate::{Error, Result};
use serde_json::Value;

mod lifecycle;
mod messages;
mod migrate;
mod open;
mod ops;
mod rows;
mod schedules;
mod sql;
mod thread;
mod transaction;

pub use migrate::latest_version as schema_version;
use open::Location;

/// A [`Store`] on one SQLite file (or, for tests, in memory). See the [module
/// docs](self) for durability, threads, time and running several processes on one file.
///
/// Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: thread::Handle,
    location: Location,
    events: broadcast::Sender<StoreEvent>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.inner.location.describe())
            .finish()
    }
}

impl SqliteStore {
    /// Opens the database file at `path`, creating it if missing, and migrates it.
    ///
    /// Refuses, changing nothing, a file that is not a Durable/SQLite database, a file it
    /// may not read and write, and a database whose schema is newer than this build's
    /// ([`Error::Schema`]). The directory must be writable too: SQLite keeps its `-wal` and
    /// `-shm` files beside the database.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::start(Location::File(path.as_ref().to_path_buf())).await
    }

    /// Opens the database a URL names: `sqlite://relative/path.db`, `sqlite:///abs/path.db`,
    /// or `sqlite::memory:` for a private in-memory database (for tests: it is gone when the
    /// store is dropped, and no other store can see it).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::start(parse_url(url)?).await
    }

    /// The database file, unless the database is in memory.
    pub fn path(&self) -> Option<&Path> {
        match &self.inner.location {
            Location::File(path) => Some(path),
            Location::Memory => None,
        }
    }

    /// Runs `job` on the store's connection, on its database thread, between the store's
    /// own statements. For tables of the same file that the store does not manage (the
    /// server's control plane); a job must not hold the connection long.
    pub async fn with_connection<T, F>(&self, job: F) -> Result<T>
    where
        F: FnOnce(&mut rusqlite::Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.inner.db.call(job).await
    }

    async fn start(location: Location) -> Result<Self> {
        let db = thread::Handle::start(location.clone()).await?;
        let (events, _) = broadcast::channel(1024);
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                location,
                events,
            }),
        })
    }

    /// Sends a hint; having no subscriber is fine: nobody is waiting.
    fn hint(&self, event: StoreEvent) {
        let _ = self.inner.events.send(event);
    }
}

/// The location a `sqlite:` URL names.
fn parse_url(url: &str) -> Result<Location> {
    let invalid = |why: &str| {
        Error::Invalid(format!(
            "bad SQLite URL `{url}`: {why}; use sqlite://relative/path.db, \
             sqlite:///absolute/path.db or sqlite::memory:"
        ))
    };
    let rest = url
        .strip_prefix("sqlite:")
        .ok_or_else(|| invalid("it does not start with `sqlite:`"))?;
    if rest == ":memory:" || rest == "//:memory:" {
        return Ok(Location::Memory);
    }
    let path = rest
        .strip_prefix("//")
        .ok_or_else(|| invalid("the path must follow `sqlite://`"))?;
    if path.is_empty() {
        return Err(invalid("it names no file"));
    }
    if path.contains('?') {
        return Err(invalid("query options are not supported"));
    }
    Ok(Location::File(PathBuf::from(path)))
}

#[async_trait]
impl Store for SqliteStore {
    async fn start_run(&self, run: NewRun) -> Result<StartedRun> {
        let started = self
            .inner
            .db
            .call(move |conn| ops::start_run(conn, &run))
            .await?;
        if started.created {
            self.hint(StoreEvent::RunReady(started.workflow_name.clone()));
        }
        Ok(started)
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<ClaimedRun>> {
        let request = request.clone();
        let claimed = self
            .inner
            .db
            .call(move |conn| ops::claim(conn, &request))
            .await?;
        for run in claimed
            .iter()
            .filter(|r| r.info.status == RunStatus::Parked)
        {
            self.hint(StoreEvent::RunFinished(run.info.id));
        }
        Ok(claimed)
    }

    async fn checkpoint(&self, checkpoint: Checkpoint) -> Result<DateTime<Utc>> {
        let transition = checkpoint.transition.clone();
        let run_id = checkpoint.lease.run_id;
        let done = self
            .inner
            .db
            .call(move |conn| ops::checkpoint(conn, &checkpoint))
            .await?;
        match transition.status() {
            RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled | RunStatus::Parked => {
                self.hint(StoreEvent::RunFinished(run_id));
            }
            RunStatus::Pending => self.hint(StoreEvent::RunReady(done.workflow_name)),
            _ => {}
        }
        Ok(done.db_now)
    }

    async fn heartbeat(&self, leases: &[Lease], lease_ttl: Duration) -> Result<Vec<Renewed>> {
        let leases = leases.to_vec();
        self.inner
            .db
            .call(move |conn| ops::heartbeat(conn, &leases, lease_ttl))
            .await
    }

    async fn next_wake_in(&self, workflows: &[String]) -> Result<Option<Duration>> {
        let workflows = workflows.to_vec();
        self.inner
            .db
            .call(move |conn| ops::next_wake_in(conn, &workflows))
            .await
    }

    async fn now(&self) -> Result<DateTime<Utc>> {
        Ok(rows::now())
    }

    async fn get_run(&self, workspace: WorkspaceId, id: RunId) -> Result<Option<RunInfo>> {
        self.inner
            .db
            .call(move |conn| ops::get_run(conn, workspace, id))
            .await
    }

    async fn list_runs(&self, workspace: WorkspaceId, filter: &RunFilter) -> Result<Vec<RunInfo>> {
        let filter = filter.clone();
        self.inner
            .db
            .call(move |conn| ops::list_runs(conn, workspace, &filter))
            .await
    }

    async fn steps(&self, workspace: WorkspaceId, id: RunId) -> Result<Vec<StepRecord>> {
        self.inner
            .db
            .call(move |conn| ops::steps(conn, workspace, id))
            .await
    }

    async fn cancel_run(&self, workspace: WorkspaceId, id: RunId) -> Result<RunStatus> {
        let status = self
            .inner
            .db
            .call(move |conn| lifecycle::cancel(conn, workspace, id))
            .await?;
        if status == RunStatus::Cancelled {
            self.hint(StoreEvent::RunFinished(id));
        }
        Ok(status)
    }

    async fn request_cancel(
        &self,
        workspace: WorkspaceId,
        id: RunId,
        reason: &str,
    ) -> Result<RunStatus> {
        let reason = reason.to_owned();
        let (status, woken) = self
            .inner
            .db
            .call(move |conn| lifecycle::request_cancel(conn, workspace, id, &reason))
            .await?;
        if status == RunStatus::Cancelled {
            self.hint(StoreEvent::RunFinished(id));
        }
        for workflow in woken {
            self.hint(StoreEvent::RunReady(workflow));
        }
        Ok(status)
    }

    async fn pause_run(&self, workspace: WorkspaceId, id: RunId) -> Result<RunStatus> {
        let status = self
            .inner
            .db
            .call(move |conn| lifecycle::pause(conn, workspace, id))
            .await?;
        if status == RunStatus::Parked {
            self.hint(StoreEvent::RunFinished(id));
        }
        Ok(status)
    }

    async fn resume_run(&self, workspace: WorkspaceId, id: RunId) -> Result<RunStatus> {
        let (status, ready) = self
            .inner
            .db
            .call(move |conn| lifecycle::resume(conn, workspace, id))
            .await?;
        if let Some(workflow) = ready {
            self.hint(StoreEvent::RunReady(workflow));
        }
        Ok(status)
    }

    async fn fork_run(&self, fork: NewFork) -> Result<RunId> {
        let id = fork.id;
        let workflow = self
            .inner
            .db
            .call(move |conn| lifecycle::fork(conn, &fork))
            .await?;
        self.hint(StoreEvent::RunReady(workflow));
        Ok(id)
    }

    async fn send_message(&self, message: NewMessage) -> Result<bool> {
        let (delivered, woken) = self
            .inner
            .db
            .call(move |conn| messages::send(conn, &message))
            .await?;
        if let Some(workflow) = woken {
            self.hint(StoreEvent::RunReady(workflow));
        }
        Ok(delivered)
    }

    async fn next_message(&self, run: RunId, topics: &[String]) -> Result<Option<Message>> {
        let topics = serde_json::to_string(topics)?;
        self.inner
            .db
            .call(move |conn| messages::next(conn, run, &topics))
            .await
    }

    async fn get_event(
        &self,
        workspace: WorkspaceId,
        run: RunId,
        key: &str,
    ) -> Result<Option<Value>> {
        let key = key.to_owned();
        self.inner
            .db
            .call(move |conn| messages::event(conn, workspace, run, &key))
            .await
    }

    fn events(&self) -> broadcast::Receiver<StoreEvent> {
        self.inner.events.subscribe()
    }

    fn as_sqlite(&self) -> Option<&SqliteStore> {
        Some(self)
    }

    fn as_schedules(&self) -> Option<&dyn super::schedules::ScheduleStore> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_files_or_memory() {
        let file = |p: &str| Location::File(PathBuf::from(p));
        assert_eq!(
            parse_url("sqlite://durable.db").unwrap(),
            file("durable.db")
        );
        assert_eq!(
            parse_url("sqlite://data/run.db").unwrap(),
            file("data/run.db")
        );
        assert_eq!(
            parse_url("sqlite:///var/lib/d.db").unwrap(),
            file("/var/lib/d.db")
        );
        assert_eq!(parse_url("sqlite::memory:").unwrap(), Location::Memory);
        assert_eq!(parse_url("sqlite://:memory:").unwrap(), Location::Memory);
    }

    #[test]
    fn bad_urls_say_what_is_accepted() {
        for url in [
            "sqlite://",
            "sqlite:durable.db",
            "postgres://x/y",
            "sqlite://a.db?mode=ro",
        ] {
            let err = parse_url(url).unwrap_err();
            assert!(matches!(err, Error::Invalid(_)), "{url}: {err:?}");
            assert!(
                err.to_string().contains("sqlite:///absolute/path.db"),
                "{err}"
            );
        }
    }

    #[tokio::test]
    async fn in_memory_store_is_migrated_and_usable() {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        assert!(store.path().is_none());
        let run = NewRun {
            id: RunId::new(),
            workspace_id: WorkspaceId::DEFAULT,
            workflow_id: "w-1".into(),
            workflow_name: "wf".into(),
            workflow_version: 1,
            input: serde_json::json!({"n": 1}),
            max_claims: 3,
            parent_run_id: None,
            timeout: None,
        };
        let started = store.start_run(run.clone()).await.unwrap();
        assert!(started.created);
        let info = store
            .get_run(WorkspaceId::DEFAULT, run.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(info.status, RunStatus::Pending);
        assert_eq!(info.input, run.input);
    }

    #[tokio::test]
    async fn a_reopened_file_keeps_its_runs_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        let id = RunId::new();
        {
            let store = SqliteStore::open(&path).await.unwrap();
            let run = NewRun {
                id,
                workspace_id: WorkspaceId::DEFAULT,
                workflow_id: "kept".into(),
                workflow_name: "wf".into(),
                workflow_version: 1,
                input: serde_json::Value::Null,
                max_claims: 3,
                parent_run_id: None,
                timeout: None,
            };
            store.start_run(run).await.unwrap();
        }
        let store = SqliteStore::open(&path).await.unwrap();
        assert!(
            store
                .get_run(WorkspaceId::DEFAULT, id)
                .await
                .unwrap()
                .is_some()
        );
        let version: i64 = store
            .inner
            .db
            .call(|conn| {
                Ok(
                    conn.query_row("SELECT max(version) FROM schema_migrations", [], |r| {
                        r.get(0)
                    })?,
                )
            })
            .await
            .unwrap();
        assert_eq!(version, schema_version());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_opens_of_a_new_file_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        let opens = (0..8).map(|_| SqliteStore::open(path.clone()));
        for opened in futures::future::join_all(opens).await {
            opened.unwrap();
        }
    }
}
