//! The control plane's rows on the embedded SQLite store, in the same file as the runs.
//!
//! A transaction holds the store's database thread from `BEGIN IMMEDIATE` to its end: the
//! rules send it one row operation at a time and await each answer. Taking the write lock
//! first means that what a transaction reads (the highest version number, whether a version
//! is published, an idempotency record) cannot change before it writes, even from another
//! process on the same file. Rules never wait on anything but their own statements, so the
//! thread is held for a few statements only.

use std::sync::mpsc;

use async_trait::async_trait;
use durable::SqliteStore;
use durable::rusqlite::{Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use super::{Access, Database, Tx};
use crate::Result;

mod migrate;
mod rows;
mod tx;

/// The control plane's access to a [`SqliteStore`]'s database.
#[derive(Debug, Clone)]
pub(crate) struct SqliteDatabase {
    store: SqliteStore,
}

impl SqliteDatabase {
    /// Applies the control plane's migrations.
    pub(crate) async fn open(store: &SqliteStore) -> Result<Self> {
        store.with_connection(migrate::migrate).await?;
        Ok(Self {
            store: store.clone(),
        })
    }
}

/// A row operation, run on the database thread inside the transaction.
type Op = Box<dyn FnOnce(&Transaction<'_>) + Send>;

enum Msg {
    Op(Op),
    Commit(oneshot::Sender<Result<()>>),
}

#[async_trait]
impl Database for SqliteDatabase {
    async fn begin(&self, _access: Access) -> Result<Box<dyn Tx>> {
        let (ops, queue) = mpsc::channel::<Msg>();
        let (began_tx, began) = oneshot::channel::<Result<()>>();
        let store = self.store.clone();
        let job = async move {
            store
                .with_connection(move |conn| {
                    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
                        Ok(tx) => tx,
                        Err(err) => {
                            let _ = began_tx.send(Err(durable::Error::from(err).into()));
                            return Ok(());
                        }
                    };
                    let _ = began_tx.send(Ok(()));
                    serve(tx, &queue);
                    Ok(())
                })
                .await
        };
        tokio::spawn(job);
        began.await.map_err(|_| stopped())??;
        Ok(Box::new(SqliteTx { ops }))
    }
}

/// Runs the transaction's operations until it commits, or until its handle is dropped,
/// which drops the transaction and so rolls it back.
fn serve(tx: Transaction<'_>, queue: &mpsc::Receiver<Msg>) {
    while let Ok(msg) = queue.recv() {
        match msg {
            Msg::Op(op) => op(&tx),
            Msg::Commit(reply) => {
                let _ = reply.send(tx.commit().map_err(|e| durable::Error::from(e).into()));
                return;
            }
        }
    }
}

fn stopped() -> crate::Error {
    crate::error::corrupt("the SQLite database thread stopped")
}

/// One transaction on the store's database thread.
pub(crate) struct SqliteTx {
    ops: mpsc::Sender<Msg>,
}

impl SqliteTx {
    /// Runs `op` inside the transaction and returns its result.
    async fn call<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let op: Op = Box::new(move |tx| {
            let _ = reply.send(op(tx));
        });
        self.ops.send(Msg::Op(op)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    async fn commit_now(self) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.ops.send(Msg::Commit(reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}
