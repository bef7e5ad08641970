//! The database thread: it owns the store's one connection and runs the jobs sent to it, one
//! at a time, so SQLite's blocking calls (fsyncs, waits for another process's write lock)
//! never run on an async executor's threads.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::open::{self, Location};
use crate::{Error, Result};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Sends jobs to the database thread. The thread closes the connection and ends when the
/// last handle is dropped.
#[derive(Debug)]
pub(super) struct Handle {
    jobs: mpsc::Sender<Job>,
}

impl Handle {
    /// Starts the thread and opens the database on it; returns once it is open.
    pub(super) async fn start(location: Location) -> Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (opened_tx, opened) = oneshot::channel();
        std::thread::Builder::new()
            .name("durable-sqlite".to_owned())
            .spawn(move || match open::open(&location) {
                Ok(conn) => {
                    let _ = opened_tx.send(Ok(()));
                    serve(conn, queue);
                }
                Err(err) => {
                    let _ = opened_tx.send(Err(err));
                }
            })
            .map_err(|e| {
                Error::database_caused_by(format!("cannot start the SQLite thread: {e}"), e)
            })?;
        opened.await.map_err(|_| stopped())??;
        Ok(Self { jobs })
    }

    /// Runs `job` on the connection and returns its result.
    pub(super) async fn call<T, F>(&self, job: F) -> Result<T>
    where
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = reply.send(job(conn));
        });
        self.jobs.send(job).map_err(|_| stopped())?;
        result.await.map_err(|_| stopped())?
    }
}

fn serve(mut conn: Connection, queue: mpsc::Receiver<Job>) {
    while let Ok(job) = queue.recv() {
        // A panicking job drops its reply (its caller gets an error) and, while unwinding,
        // its open transaction (rolled back); the connection stays usable for the next one.
        if std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut conn))).is_err() {
            tracing::error!("a SQLite store operation panicked; it was rolled back");
        }
    }
}

fn stopped() -> Error {
    Error::database("the SQLite store's database thread stopped")
}
