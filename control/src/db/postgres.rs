//! The control plane's rows on Postgres, in schema `durable` beside the engine's tables.
//!
//! A tenant transaction runs as role [`TENANT_ROLE`] with `durable.workspace_id` set for
//! that transaction only, so the row-level-security policies of the migration show it that
//! workspace's rows and nothing else. System transactions run as the connecting role, which
//! owns the tables. Every statement still filters on the workspace itself: the policies
//! are the second wall, not the first.

use async_trait::async_trait;
use durable::deadpool_postgres::{Object, Pool};
use durable::tokio_postgres::types::ToSql;
use durable::tokio_postgres::{Row, Statement};
use uuid::Uuid;

use super::{Access, Database, Tx};
use crate::Result;

mod migrate;
mod rows;
mod tx;

/// The role tenant transactions run as, so that row-level security applies to them.
pub const TENANT_ROLE: &str = "durable_tenant";

/// Enters the tenant context for the rest of the transaction. `set_config('role', …)` is
/// `SET LOCAL ROLE` in a form that fits in one statement with the workspace, saving a round
/// trip.
const ENTER_TENANT: &str = "
SELECT set_config('role', 'durable_tenant', true),
       set_config('durable.workspace_id', $1, true)";

/// The control plane's access to a [`durable::PgStore`]'s database, sharing its pool.
#[derive(Clone)]
pub(crate) struct PgDatabase {
    pool: Pool,
}

impl std::fmt::Debug for PgDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool's config holds the password: show its size only.
        let status = self.pool.status();
        f.debug_struct("PgDatabase")
            .field("pool_size", &status.size)
            .field("pool_max", &status.max_size)
            .finish()
    }
}

impl PgDatabase {
    /// Sets up the tenant role and applies the control plane's migrations.
    pub(crate) async fn open(store: &durable::PgStore) -> Result<Self> {
        let pool = store.pool().clone();
        let mut client = pool.get().await.map_err(durable::Error::from)?;
        migrate::migrate(&mut client).await?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl Database for PgDatabase {
    async fn begin(&self, access: Access) -> Result<Box<dyn Tx>> {
        Ok(Box::new(PgTx::begin(&self.pool, access).await?))
    }
}

/// One transaction on a pooled connection.
pub(crate) struct PgTx {
    /// `None` once committed or rolled back.
    client: Option<Object>,
}

impl PgTx {
    async fn begin(pool: &Pool, access: Access) -> Result<Self> {
        let client = pool.get().await.map_err(durable::Error::from)?;
        let tx = PgTx {
            client: Some(client),
        };
        tx.execute("BEGIN", &[]).await?;
        if let Access::Tenant(workspace) = access {
            tx.execute(ENTER_TENANT, &[&workspace.to_string()]).await?;
        }
        Ok(tx)
    }

    fn client(&self) -> Result<&Object> {
        self.client
            .as_ref()
            .ok_or_else(|| crate::error::corrupt("the transaction has ended"))
    }

    /// The connection and `sql` prepared on it (cached per connection).
    async fn prepare(&self, sql: &str) -> Result<(&Object, Statement)> {
        let client = self.client()?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(durable::Error::from)?;
        Ok((client, statement))
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let (client, statement) = self.prepare(sql).await?;
        let changed = client.execute(&statement, params).await;
        Ok(changed.map_err(durable::Error::from)?)
    }

    async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let (client, statement) = self.prepare(sql).await?;
        let rows = client.query(&statement, params).await;
        Ok(rows.map_err(durable::Error::from)?)
    }

    async fn query_opt(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    async fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        self.query_opt(sql, params)
            .await?
            .ok_or_else(|| crate::error::corrupt("a statement that returns a row returned none"))
    }

    /// Ends the transaction with `sql` and hands the connection back to the pool.
    async fn finish(mut self: Box<Self>, sql: &str) -> Result<()> {
        let outcome = self.execute(sql, &[]).await;
        if outcome.is_ok() {
            // Settled: the connection may serve another transaction.
            drop(self.client.take());
        }
        outcome.map(drop)
    }
}

impl Drop for PgTx {
    fn drop(&mut self) {
        // Dropped unfinished (a cancelled future, a failed COMMIT or ROLLBACK): the
        // connection may still be inside the transaction, so it must not serve anyone else.
        // Closing it makes the server roll back.
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}

/// Runs `sql` in its own transaction as the tenant of `workspace`, exactly as the rules run
/// theirs: row-level security shows it that workspace's rows only, whatever its `WHERE`
/// says, and refuses writes to any other. For tests and diagnostics: never pass it SQL
/// built from a request.
pub async fn query_as_tenant(
    store: &durable::PgStore,
    workspace: Uuid,
    sql: &str,
) -> Result<Vec<Row>> {
    let tx = Box::new(PgTx::begin(store.pool(), Access::Tenant(workspace)).await?);
    // Not `query`: diagnostic SQL has no business in the statement cache.
    let rows = tx
        .client()?
        .query(sql, &[])
        .await
        .map_err(durable::Error::from);
    match rows {
        Ok(rows) => tx.finish("COMMIT").await.map(|()| rows),
        Err(err) => {
            let _ = tx.finish("ROLLBACK").await;
            Err(err.into())
        }
    }
}
