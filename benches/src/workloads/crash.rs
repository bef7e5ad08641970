//! (d) Crash recovery: a `bench-worker` process is SIGKILLed while one of its runs is inside
//! an activity; a second one is started; how long from the kill until the run completes,
//! against the budget of lease TTL + 1 s, and which steps ran twice (only the interrupted
//! one should).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::Bench;
use crate::report::Row;
use crate::stats::{Samples, millis};

pub(crate) mod flow;

use flow::{CrashInput, crash_run, reexecuted};

/// The `bench-worker` settings: a short lease so a crash is noticed soon.
pub(crate) const LEASE_TTL: Duration = Duration::from_secs(2);
pub(crate) const POLL: Duration = Duration::from_millis(100);
const STEPS: u32 = 5;
/// The third activity hangs.
const HANG_AT: u32 = 2;
/// A process that never prints what it should would otherwise hang the benchmark.
const GIVE_UP: Duration = Duration::from_secs(60);

/// One repetition's outcome.
#[derive(Debug)]
struct Recovery {
    elapsed: Duration,
    reexecuted: Vec<u32>,
}

pub(crate) async fn run(bench: &Bench<'_>) -> anyhow::Result<Vec<Row>> {
    let reps = bench.pick(1, 3);
    let dir = tempfile::tempdir()?;
    let mut recoveries = Vec::with_capacity(reps);
    for rep in 1..=reps {
        bench.progress(&format!(
            "d/crash-recovery: repetition {rep}/{reps} (lease {LEASE_TTL:?}, poll {POLL:?})"
        ));
        recoveries.push(recover_once(bench, dir.path()).await?);
    }
    Ok(vec![row(bench, &recoveries)])
}

fn row(bench: &Bench<'_>, recoveries: &[Recovery]) -> Row {
    let budget = LEASE_TTL + Duration::from_secs(1);
    let samples = Samples::from_durations(recoveries.iter().map(|r| r.elapsed));
    let reexecuted: Vec<Vec<u32>> = recoveries.iter().map(|r| r.reexecuted.clone()).collect();
    let only_interrupted = reexecuted.iter().all(|r| r == &[HANG_AT]);
    let within = recoveries.iter().all(|r| r.elapsed <= budget);
    let note = format!(
        "every recovery within lease TTL + 1 s ({} ms): {}; re-executed steps per run: {reexecuted:?} \
         (step {HANG_AT} was interrupted)",
        millis(budget),
        if within { "yes" } else { "no" },
    );
    bench
        .row("d/crash-recovery", recoveries.len())
        .latency(&samples)
        .with("lease_ttl_ms", millis(LEASE_TTL))
        .with("poll_ms", millis(POLL))
        .with("budget_ms", millis(budget))
        .with("within_budget", within)
        .with("interrupted_step", HANG_AT)
        .with(
            "reexecuted_steps",
            serde_json::to_value(reexecuted).unwrap_or_default(),
        )
        .with("only_interrupted_step_reexecuted", only_interrupted)
        .note(note)
}

/// Start a run on a worker process, kill the process inside step [`HANG_AT`], start another
/// one, and time the takeover by the store clock: from just before the kill to the run's
/// completion.
async fn recover_once(bench: &Bench<'_>, dir: &Path) -> anyhow::Result<Recovery> {
    let mut first = WorkerProcess::spawn(bench.worker_bin, bench.url).await?;
    let client = bench.client();
    let input = CrashInput {
        dir: dir.display().to_string(),
        steps: STEPS,
        hang_at: HANG_AT,
    };
    let handle = client.start(crash_run, input).await?;
    first
        .wait_for(&format!("blocked run={}", handle.id()))
        .await?;
    let killed_at = bench.store.now().await?;
    first.kill().await?;
    let mut second = WorkerProcess::spawn(bench.worker_bin, bench.url).await?;
    handle.result_timeout(GIVE_UP).await?;
    let completed_at = handle.info().await?.updated_at;
    second.kill().await?;
    Ok(Recovery {
        elapsed: (completed_at - killed_at).to_std()?,
        reexecuted: reexecuted(dir, handle.id())?,
    })
}

/// A `bench-worker` process and the lines it prints.
#[derive(Debug)]
struct WorkerProcess {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
}

impl WorkerProcess {
    /// Starts one on the store at `url` and waits until it is ready.
    async fn spawn(bin: &Path, url: &str) -> anyhow::Result<Self> {
        let mut child = Command::new(bin)
            .env("DURABLE_BENCH_STORE_URL", url)
            .arg("--lease-ms")
            .arg(LEASE_TTL.as_millis().to_string())
            .arg("--poll-ms")
            .arg(POLL.as_millis().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let stdout = child.stdout.take().context("piped stdout")?;
        let (sink, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let _ = sink.send(line);
            }
        });
        let mut process = Self { child, lines };
        process.wait_for("ready").await?;
        Ok(process)
    }

    /// Waits for a line containing `needle`.
    async fn wait_for(&mut self, needle: &str) -> anyhow::Result<()> {
        let give_up = tokio::time::Instant::now() + GIVE_UP;
        loop {
            match tokio::time::timeout_at(give_up, self.lines.recv()).await {
                Ok(Some(line)) if line.contains(needle) => return Ok(()),
                Ok(Some(_)) => {}
                Ok(None) => bail!("bench-worker exited before printing `{needle}`"),
                Err(_) => bail!("bench-worker did not print `{needle}` within {GIVE_UP:?}"),
            }
        }
    }

    /// SIGKILL (what `start_kill` sends on Unix), and reap it.
    async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }
}
