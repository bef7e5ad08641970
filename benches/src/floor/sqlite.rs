//! The SQLite counterpart of the floor, for reading the SQLite rows: raw `rusqlite`
//! single-row INSERTs, each its own transaction, in WAL mode with `synchronous = FULL` (what
//! the SQLite store uses), so every commit syncs the log as a checkpoint does.

use std::time::Instant;

use rusqlite::Connection;

use crate::report::{Row, Unit};
use crate::stats::{Samples, rate};

/// Measures `n` single-row commits on a new file in a temporary directory.
pub(crate) async fn measure(n: usize) -> anyhow::Result<Row> {
    let (samples, per_second) = tokio::task::spawn_blocking(move || commits(n)).await??;
    Ok(Row::new("floor/commit-1-client", "sqlite", n)
        .rate(per_second, Unit::Ops)
        .latency(&samples)
        .with("journal_mode", "wal")
        .with("synchronous", "full"))
}

fn commits(n: usize) -> anyhow::Result<(Samples, f64)> {
    let dir = tempfile::tempdir()?;
    let conn = Connection::open(dir.path().join("floor.db"))?;
    conn.pragma_update(None, "journal_mode", "wal")?;
    conn.pragma_update(None, "synchronous", "full")?;
    conn.execute_batch(
        "CREATE TABLE floor (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, payload TEXT NOT NULL)",
    )?;
    let mut insert = conn.prepare("INSERT INTO floor (seq, payload) VALUES (?1, ?2)")?;
    let payload = r#"{"output":"ok"}"#;
    for seq in 0..20 {
        insert.execute((seq, payload))?;
    }
    let mut samples = Vec::with_capacity(n);
    let started = Instant::now();
    for seq in 0..n as i64 {
        let one = Instant::now();
        insert.execute((seq, payload))?;
        samples.push(one.elapsed());
    }
    let per_second = rate(n, started.elapsed());
    Ok((Samples::from_durations(samples), per_second))
}
