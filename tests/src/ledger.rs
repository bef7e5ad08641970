//! The effects ledger: a table outside the engine's where every activity execution writes a
//! row, so tests can count what really ran (and how often), whatever the engine recorded.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

pub const SCHEMA: &str = "
CREATE TABLE test_effects (
    id       bigserial PRIMARY KEY,
    key      text NOT NULL,
    run_id   uuid NOT NULL,
    seq      integer NOT NULL,
    attempt  integer NOT NULL,
    pid      integer NOT NULL,
    at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE test_releases (key text PRIMARY KEY);
CREATE TABLE test_deposits (id bigserial PRIMARY KEY, run_id uuid NOT NULL);
";

/// A handle on the ledger of one test database.
#[derive(Clone, Debug)]
pub struct Ledger {
    pool: Pool,
}

/// One execution of an activity.
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    pub key: String,
    pub seq: i32,
    pub attempt: i32,
    pub pid: i32,
    /// When it started, in microseconds since the epoch (database clock).
    pub at_us: f64,
}

impl Ledger {
    /// The ledger in the database at `url`; one pool per database per process.
    pub fn at(url: &str) -> Ledger {
        static POOLS: OnceLock<Mutex<HashMap<String, Pool>>> = OnceLock::new();
        let mut pools = POOLS.get_or_init(Default::default).lock().unwrap();
        let pool = pools.entry(url.to_owned()).or_insert_with(|| {
            let config: tokio_postgres::Config = url.parse().expect("ledger url");
            let manager = Manager::from_config(
                config,
                NoTls,
                ManagerConfig {
                    recycling_method: RecyclingMethod::Fast,
                },
            );
            Pool::builder(manager)
                .max_size(8)
                .build()
                .expect("ledger pool")
        });
        Ledger { pool: pool.clone() }
    }

    /// Records one execution; returns how many executions of `key` came before it.
    pub async fn record(
        &self,
        key: &str,
        run_id: uuid::Uuid,
        seq: u32,
        attempt: u32,
    ) -> anyhow::Result<i64> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "WITH prior AS (SELECT count(*) AS n FROM test_effects WHERE key = $1),
                      ins AS (INSERT INTO test_effects (key, run_id, seq, attempt, pid)
                              VALUES ($1, $2, $3, $4, $5))
                 SELECT n FROM prior",
                &[
                    &key,
                    &run_id,
                    &(seq as i32),
                    &(attempt as i32),
                    &(std::process::id() as i32),
                ],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Whether a test has released `key` (see [`Ledger::release`]).
    pub async fn is_released(&self, key: &str) -> anyhow::Result<bool> {
        let client = self.pool.get().await?;
        Ok(client
            .query_opt("SELECT 1 FROM test_releases WHERE key = $1", &[&key])
            .await?
            .is_some())
    }

    /// Lets an activity blocked on `key` go on.
    pub async fn release(&self, key: &str) -> anyhow::Result<()> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO test_releases (key) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&key],
            )
            .await?;
        Ok(())
    }

    /// Every execution of the run's activities, in order.
    pub async fn effects(&self, run_id: uuid::Uuid) -> anyhow::Result<Vec<Effect>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT key, seq, attempt, pid, extract(epoch FROM at)::float8 * 1e6
                 FROM test_effects WHERE run_id = $1 ORDER BY id",
                &[&run_id],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Effect {
                key: r.get(0),
                seq: r.get(1),
                attempt: r.get(2),
                pid: r.get(3),
                at_us: r.get(4),
            })
            .collect())
    }

    /// How many times each step of the run executed, indexed by seq.
    pub async fn executions_per_step(&self, run_id: uuid::Uuid) -> anyhow::Result<Vec<usize>> {
        let effects = self.effects(run_id).await?;
        let steps = effects
            .iter()
            .map(|e| e.seq as usize + 1)
            .max()
            .unwrap_or(0);
        let mut counts = vec![0; steps];
        for e in effects {
            counts[e.seq as usize] += 1;
        }
        Ok(counts)
    }

    /// Executions of `(run, seq)` pairs that ran more than once, across all runs.
    pub async fn duplicated_steps(&self) -> anyhow::Result<i64> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT count(*) FROM (SELECT 1 FROM test_effects GROUP BY run_id, seq HAVING count(*) > 1) d",
                &[],
            )
            .await?;
        Ok(row.get(0))
    }

    /// All executions recorded.
    pub async fn total(&self) -> anyhow::Result<i64> {
        let client = self.pool.get().await?;
        Ok(client
            .query_one("SELECT count(*) FROM test_effects", &[])
            .await?
            .get(0))
    }
}
