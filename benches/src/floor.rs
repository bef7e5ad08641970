//! The physical floor: what raw `tokio-postgres` inserts cost on this machine, measured in the
//! same run as the workloads, so every workload figure can be read as a ratio to it.
//!
//! Each single-row insert is sent outside an explicit transaction, so the server commits it
//! at once: one round trip and one commit, with the server's `synchronous_commit` (reported).

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use tokio_postgres::Client;
use uuid::Uuid;

use crate::report::{Row, Unit};
use crate::stats::{Samples, rate};
use crate::target::pg_connect;

pub(crate) mod sqlite;

const CLIENTS: usize = 16;
const BATCH_ROWS: usize = 1000;

/// The denominators of every floor ratio.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Floor {
    /// p50 of one single-row INSERT+COMMIT from one client.
    pub(crate) commit_p50_ms: f64,
    /// Single-row commits per second from 16 clients.
    pub(crate) commits16_per_s: f64,
}

impl Floor {
    /// `p50_ms` as a multiple of one raw commit.
    pub(crate) fn latency_ratio(&self, p50_ms: Option<f64>) -> Option<f64> {
        p50_ms.map(|p| p / self.commit_p50_ms)
    }

    /// `per_second` as a fraction of 16 clients' raw commit rate.
    pub(crate) fn rate_ratio(&self, per_second: f64) -> Option<f64> {
        Some(per_second / self.commits16_per_s)
    }
}

/// How many operations each floor measurement makes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FloorSize {
    pub(crate) single: usize,
    pub(crate) per_client: usize,
    pub(crate) batches: usize,
}

/// Measures the floor on the database at `url`; returns it and its report rows.
pub(crate) async fn measure(url: &str, size: FloorSize) -> anyhow::Result<(Floor, Vec<Row>)> {
    let client = pg_connect(url).await?;
    let sync_commit = setup(&client).await?;
    let single = single_client(&client, size.single).await?;
    let sixteen = many_clients(url, size.per_client).await?;
    let rows = multi_row(&client, size.batches).await?;
    let floor = Floor {
        commit_p50_ms: single.0.p50().context("no single-commit samples")?,
        commits16_per_s: sixteen,
    };
    let setting = |row: Row| row.with("synchronous_commit", sync_commit.as_str());
    let report = vec![
        setting(
            Row::new("floor/commit-1-client", "postgres", size.single)
                .rate(single.1, Unit::Ops)
                .latency(&single.0),
        ),
        setting(
            Row::new(
                "floor/commit-16-clients",
                "postgres",
                size.per_client * CLIENTS,
            )
            .rate(sixteen, Unit::Ops),
        ),
        setting(
            Row::new(
                "floor/multi-row-insert",
                "postgres",
                size.batches * BATCH_ROWS,
            )
            .rate(rows, Unit::Rows)
            .with("rows_per_statement", BATCH_ROWS),
        ),
    ];
    Ok((floor, report))
}

/// Creates the table; returns the server's `synchronous_commit`.
async fn setup(client: &Client) -> anyhow::Result<String> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS bench_floor (
                 id bigserial PRIMARY KEY,
                 run_id uuid NOT NULL,
                 seq integer NOT NULL,
                 payload jsonb NOT NULL
             )",
        )
        .await?;
    let row = client.query_one("SHOW synchronous_commit", &[]).await?;
    Ok(row.get(0))
}

fn payload(seq: i32) -> Value {
    json!({ "seq": seq, "output": "ok" })
}

const INSERT: &str = "INSERT INTO bench_floor (run_id, seq, payload) VALUES ($1, $2, $3)";

/// One client, one insert at a time: latency samples and commits per second.
async fn single_client(client: &Client, n: usize) -> anyhow::Result<(Samples, f64)> {
    let insert = client.prepare(INSERT).await?;
    let run = Uuid::now_v7();
    for seq in 0..20 {
        client
            .execute(&insert, &[&run, &seq, &payload(seq)])
            .await?;
    }
    let mut samples = Vec::with_capacity(n);
    let started = Instant::now();
    for seq in 0..n as i32 {
        let one = Instant::now();
        client
            .execute(&insert, &[&run, &seq, &payload(seq)])
            .await?;
        samples.push(one.elapsed());
    }
    let per_second = rate(n, started.elapsed());
    Ok((Samples::from_durations(samples), per_second))
}

/// Sixteen clients inserting at once: commits per second.
async fn many_clients(url: &str, per_client: usize) -> anyhow::Result<f64> {
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let client = pg_connect(url).await?;
        let insert = client.prepare(INSERT).await?;
        clients.push((client, insert));
    }
    let started = Instant::now();
    let tasks = clients.into_iter().map(|(client, insert)| async move {
        let run = Uuid::now_v7();
        for seq in 0..per_client as i32 {
            client
                .execute(&insert, &[&run, &seq, &payload(seq)])
                .await?;
        }
        anyhow::Ok(())
    });
    futures::future::try_join_all(tasks).await?;
    Ok(rate(per_client * CLIENTS, started.elapsed()))
}

/// One statement inserting [`BATCH_ROWS`] rows, committed, `batches` times: rows per second.
async fn multi_row(client: &Client, batches: usize) -> anyhow::Result<f64> {
    let insert = client
        .prepare(
            "INSERT INTO bench_floor (run_id, seq, payload)
             SELECT $1, s, p FROM unnest($2::integer[], $3::jsonb[]) AS t(s, p)",
        )
        .await?;
    let seqs: Vec<i32> = (0..BATCH_ROWS as i32).collect();
    let payloads: Vec<Value> = seqs.iter().map(|&s| payload(s)).collect();
    let mut elapsed = Duration::ZERO;
    for _ in 0..batches {
        let run = Uuid::now_v7();
        let started = Instant::now();
        client.execute(&insert, &[&run, &seqs, &payloads]).await?;
        elapsed += started.elapsed();
    }
    Ok(rate(batches * BATCH_ROWS, elapsed))
}
