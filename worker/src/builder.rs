//! [`WorkerBuilder`]: the pool's knobs, each with its default.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use durable::runtime::{DynWorkflow, ExecutionSettings, erase};
use durable::{Store, Workflow};
use tokio_util::sync::CancellationToken;

/// A pool of workflow executions on one store. Build with [`Worker::builder`], then
/// `tokio::spawn(worker.run())`.
#[derive(Debug)]
pub struct Worker {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) workflows: HashMap<&'static str, Arc<dyn DynWorkflow>>,
    pub(crate) config: Config,
    pub(crate) shutdown: CancellationToken,
}

/// Settings of a [`Worker`].
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub worker_id: String,
    pub concurrency: usize,
    pub lease_ttl: Duration,
    pub heartbeat_interval: Duration,
    pub poll_interval: Duration,
    pub inline_wait: Duration,
    pub shutdown_timeout: Duration,
}

impl Config {
    pub(crate) fn execution(&self) -> ExecutionSettings {
        ExecutionSettings {
            lease_ttl: self.lease_ttl,
            inline_wait: self.inline_wait,
        }
    }
}

/// Builds a [`Worker`].
#[derive(Debug)]
pub struct WorkerBuilder {
    worker: Worker,
    heartbeat_set: bool,
}

impl Worker {
    /// A builder for a worker on `store`.
    pub fn builder(store: impl Store) -> WorkerBuilder {
        Self::builder_arc(Arc::new(store))
    }

    /// A builder for a worker on a shared store.
    pub fn builder_arc(store: Arc<dyn Store>) -> WorkerBuilder {
        WorkerBuilder {
            worker: Worker {
                store,
                workflows: HashMap::new(),
                config: Config {
                    worker_id: format!("{}:{}", hostname(), std::process::id()),
                    concurrency: 32,
                    lease_ttl: Duration::from_secs(10),
                    heartbeat_interval: Duration::from_millis(2500),
                    poll_interval: Duration::from_secs(1),
                    inline_wait: Duration::from_secs(1),
                    shutdown_timeout: Duration::from_secs(10),
                },
                shutdown: CancellationToken::new(),
            },
            heartbeat_set: false,
        }
    }

    /// Cancel this token to shut the worker down: it stops claiming, lets in-flight runs
    /// finish for up to the shutdown timeout, hands the rest back, and `run` returns.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// This worker's id, as recorded in `lease_owner`.
    pub fn id(&self) -> &str {
        &self.config.worker_id
    }
}

impl WorkerBuilder {
    /// Lets the worker run `workflow`.
    pub fn register<W: Workflow>(mut self, workflow: W) -> Self {
        self.worker
            .workflows
            .insert(W::NAME, Arc::from(erase(workflow)));
        self
    }

    /// Lets the worker run a workflow built at run time (one that holds state, say), under
    /// [`DynWorkflow::name`].
    pub fn register_dyn(mut self, workflow: Arc<dyn DynWorkflow>) -> Self {
        self.worker.workflows.insert(workflow.name(), workflow);
        self
    }

    /// How many runs execute at once (default 32).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.worker.config.concurrency = n.max(1);
        self
    }

    /// How long a claim lasts without a heartbeat (default 10 s). A crashed worker's runs are
    /// taken over after at most this long plus one poll interval.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.worker.config.lease_ttl = ttl;
        self
    }

    /// How often leases are extended (default a quarter of the lease).
    pub fn heartbeat_interval(mut self, every: Duration) -> Self {
        self.worker.config.heartbeat_interval = every;
        self.heartbeat_set = true;
        self
    }

    /// How often the store is polled when no notification arrives (default 1 s). Bounds the
    /// pickup delay of expired leases, and of timers set by other workers.
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.worker.config.poll_interval = every;
        self
    }

    /// Waits (sleeps, retry backoffs) up to this long stay in memory (default 1 s); longer
    /// ones release the run as durable timers.
    pub fn inline_wait(mut self, limit: Duration) -> Self {
        self.worker.config.inline_wait = limit;
        self
    }

    /// How long shutdown waits for in-flight runs before handing them back (default 10 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.worker.config.shutdown_timeout = timeout;
        self
    }

    /// The id recorded as the lease owner (default `hostname:pid`).
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker.config.worker_id = id.into();
        self
    }

    /// The worker.
    pub fn build(mut self) -> Worker {
        if !self.heartbeat_set {
            self.worker.config.heartbeat_interval = self.worker.config.lease_ttl / 4;
        }
        self.worker
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "worker".to_owned())
}
