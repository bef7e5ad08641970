//! The workflow of the crash-recovery workload, run by the `bench-worker` process.
//!
//! Each activity appends `seq pid` to `<dir>/<run>.log`, so the harness can count how often
//! each step ran. The step at `hang_at` blocks forever the first time it runs (a marker file
//! says whether it ran before), and prints `blocked run=<id>` so the harness knows when to
//! kill the process.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::Path;

use durable::prelude::*;
use serde::{Deserialize, Serialize};

/// Input of [`crash_run`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CrashInput {
    /// Where the step log and the marker files go.
    pub(crate) dir: String,
    /// Activities in the run.
    pub(crate) steps: u32,
    /// The activity (from 0) whose first execution never returns.
    pub(crate) hang_at: u32,
}

/// `steps` sequential activities; the one at `hang_at` hangs on its first execution.
#[durable::workflow(name = "bench_crash")]
pub(crate) async fn crash_run(ctx: &WorkflowCtx, input: CrashInput) -> Result<u32, WorkflowError> {
    for i in 0..input.steps {
        logged_step(ctx, &input.dir, i == input.hang_at).await?;
    }
    Ok(input.steps)
}

#[durable::activity(name = "bench_logged_step")]
async fn logged_step(ctx: &ActivityCtx, dir: &str, hang: bool) -> Result<(), ActivityError> {
    let dir = Path::new(dir);
    let run = ctx.run_id();
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{run}.log")))
        .map_err(ActivityError::retryable)?;
    writeln!(log, "{} {}", ctx.seq(), std::process::id()).map_err(ActivityError::retryable)?;
    if hang && first_time(&dir.join(format!("{run}-{}.hang", ctx.seq())))? {
        println!("blocked run={run} seq={}", ctx.seq());
        std::future::pending::<()>().await;
    }
    Ok(())
}

/// Creates the marker; true if it did not exist yet.
fn first_time(marker: &Path) -> Result<bool, ActivityError> {
    match OpenOptions::new().write(true).create_new(true).open(marker) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(ActivityError::retryable(e)),
    }
}

/// The steps (by sequence number) that ran more than once, from the run's log.
pub(crate) fn reexecuted(dir: &Path, run: RunId) -> anyhow::Result<Vec<u32>> {
    let log = std::fs::read_to_string(dir.join(format!("{run}.log")))?;
    let mut counts = std::collections::BTreeMap::<u32, u32>::new();
    for line in log.lines() {
        let seq = line.split_whitespace().next().unwrap_or_default().parse()?;
        *counts.entry(seq).or_default() += 1;
    }
    Ok(counts
        .into_iter()
        .filter(|&(_, n)| n > 1)
        .map(|(s, _)| s)
        .collect())
}
