//! A worker pool running inside the benchmark process, on the store under test.

use std::sync::Arc;

use durable::Store;
use durable_worker::{Worker, WorkerBuilder};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running in-process worker; [`stop`](Self::stop) it when the workload is done.
#[derive(Debug)]
pub(crate) struct InProcessWorker {
    shutdown: CancellationToken,
    task: JoinHandle<durable::Result<()>>,
}

impl InProcessWorker {
    /// Builds a worker with `concurrency` slots (other knobs at their defaults) and starts it.
    pub(crate) fn start(
        store: &Arc<dyn Store>,
        concurrency: usize,
        register: impl FnOnce(WorkerBuilder) -> WorkerBuilder,
    ) -> Self {
        let builder = Worker::builder_arc(store.clone()).concurrency(concurrency);
        let worker = register(builder).build();
        let shutdown = worker.shutdown_token();
        Self {
            shutdown,
            task: tokio::spawn(worker.run()),
        }
    }

    /// Stops claiming, lets in-flight runs finish, and waits for the pool to return.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await??;
        Ok(())
    }
}
