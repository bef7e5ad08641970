//! The benchmark harness of Durable: the workloads of design §8, each reported in absolute
//! figures and as a ratio to the raw-Postgres floor measured in the same run.
//!
//! `cargo bench -p durable-benches` runs everything; `-- --quick` runs small counts;
//! `--store postgres|sqlite|all`, `--only floor,a,b,…` and `--json <file>` narrow and record.
//! See `docs/benchmarks.md` for what each figure means.

use std::path::Path;
use std::time::Instant;

use clap::Parser;

pub mod bench_worker;
mod cli;
mod floor;
mod probe;
mod report;
mod stats;
mod target;
mod workers;
mod workloads;

use cli::{Args, Workload};
use floor::FloorSize;
use report::Report;
use target::{PgDatabase, StoreKind, StoreTarget};
use workloads::Bench;

/// Parses the command line, runs the selected workloads on the selected stores, and prints
/// the table and the JSON lines. `worker_bin` is the `bench-worker` executable.
pub async fn run(worker_bin: &Path) -> anyhow::Result<()> {
    let args = Args::parse();
    let mut report = Report::new(args.json.as_deref(), args.mode())?;
    let pg = PgDatabase::create().await?;
    let measured = measure(&args, &pg, worker_bin, &mut report).await;
    let dropped = pg.drop().await;
    report.print();
    measured?;
    dropped
}

async fn measure(
    args: &Args,
    pg: &PgDatabase,
    worker_bin: &Path,
    report: &mut Report,
) -> anyhow::Result<()> {
    let floor = measure_floor(args, &pg.url, report).await?;
    let workloads = args.workloads();
    for kind in args.stores() {
        if kind == StoreKind::Sqlite {
            sqlite_floor(args, report).await?;
        }
        let target = StoreTarget::open(kind, pg).await?;
        let bench = Bench {
            store: target.store.clone(),
            client_store: target.client_store.clone(),
            kind,
            url: &target.url,
            floor,
            quick: args.quick,
            worker_bin,
        };
        for &workload in &workloads {
            run_workload(workload, &bench, report).await?;
        }
    }
    if workloads.contains(&Workload::Connector) {
        connector_workload(args, report).await?;
    }
    Ok(())
}

/// (g) The JavaScript sandbox's cost: no store, so once, after the stores' workloads.
async fn connector_workload(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    let started = Instant::now();
    for row in workloads::connector::run(args.quick).await? {
        eprintln!("[bench] none       {}", row.summary());
        report.add(row)?;
    }
    eprintln!(
        "[bench] none       ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn measure_floor(
    args: &Args,
    url: &str,
    report: &mut Report,
) -> anyhow::Result<floor::Floor> {
    let size = if args.quick {
        FloorSize {
            single: 500,
            per_client: 100,
            batches: 20,
        }
    } else {
        FloorSize {
            single: 2000,
            per_client: 500,
            batches: 100,
        }
    };
    eprintln!(
        "[bench] postgres floor: raw single-row commits (1 and 16 clients), multi-row inserts"
    );
    let (floor, rows) = floor::measure(url, size).await?;
    for row in rows {
        report.add(row)?;
    }
    Ok(floor)
}

/// Raw SQLite commits: not a denominator (the ratios use the Postgres floor), but what the
/// SQLite rows are best read against.
async fn sqlite_floor(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    eprintln!("[bench] sqlite   floor: raw single-row commits");
    let n = if args.quick { 500 } else { 2000 };
    report.add(floor::sqlite::measure(n).await?)
}

async fn run_workload(
    workload: Workload,
    bench: &Bench<'_>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let rows = match workload {
        // Store-independent: see `connector_workload`.
        Workload::Floor | Workload::Connector => return Ok(()),
        Workload::FanOut => workloads::fan_out::run(bench).await?,
        Workload::Empty => workloads::empty::run(bench).await?,
        Workload::Steps => workloads::steps::run(bench).await?,
        Workload::Crash => workloads::crash::run(bench).await?,
        Workload::Intake => workloads::intake::run(bench).await?,
        Workload::Sleepers => workloads::sleepers::run(bench).await?,
    };
    for row in rows {
        bench.progress(&format!("  {}", row.summary()));
        report.add(row)?;
    }
    bench.progress(&format!("  ({:.1} s)", started.elapsed().as_secs_f64()));
    Ok(())
}
