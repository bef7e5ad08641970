//! Command-line flags of the benchmark.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::target::StoreKind;

/// Measures Durable's workloads against the raw database floor of the same run.
#[derive(Debug, Parser)]
#[command(name = "durable-benches")]
pub(crate) struct Args {
    /// Small counts, so that the whole run takes well under a minute.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Which stores to measure.
    #[arg(long, value_enum, default_value_t = StoreChoice::All)]
    pub(crate) store: StoreChoice,
    /// Only these workloads, comma-separated (the floor is always measured: it is every
    /// ratio's denominator).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub(crate) only: Vec<Workload>,
    /// Also append one JSON line per result to this file.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
    /// Workloads named as `cargo bench` filters; the same as `--only`.
    #[arg(hide = true, value_enum)]
    filters: Vec<Workload>,
}

/// The stores to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StoreChoice {
    Postgres,
    Sqlite,
    All,
}

/// The workloads of design §8, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub(crate) enum Workload {
    /// Raw inserts and commits: the denominators.
    Floor,
    /// (a) The empty workflow, start to finish.
    #[value(alias = "a")]
    Empty,
    /// (b) Ten sequential no-op activities.
    #[value(alias = "b")]
    Steps,
    /// (c) Fan-out of 1,000 child workflows.
    #[value(alias = "c")]
    FanOut,
    /// (d) Crash recovery after SIGKILL.
    #[value(alias = "d")]
    Crash,
    /// (e) Intake → run started, under load.
    #[value(alias = "e")]
    Intake,
    /// (f) Sleeping workflows due at once.
    #[value(alias = "f")]
    Sleepers,
    /// (g) A connector call in the JavaScript sandbox against a native one; loading a
    /// package. No store: measured once per run.
    #[value(alias = "g")]
    Connector,
}

impl Args {
    /// The selected workloads in run order; all of them when none is named.
    pub(crate) fn workloads(&self) -> Vec<Workload> {
        let mut named: Vec<Workload> = self.only.iter().chain(&self.filters).copied().collect();
        if named.is_empty() {
            named = Workload::value_variants().to_vec();
        }
        named.sort_unstable();
        named.dedup();
        named
    }

    pub(crate) fn stores(&self) -> Vec<StoreKind> {
        match self.store {
            StoreChoice::Postgres => vec![StoreKind::Postgres],
            StoreChoice::Sqlite => vec![StoreKind::Sqlite],
            StoreChoice::All => vec![StoreKind::Postgres, StoreKind::Sqlite],
        }
    }

    pub(crate) fn mode(&self) -> &'static str {
        if self.quick { "quick" } else { "full" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("durable").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn cargo_bench_flag_and_defaults() {
        let args = parse(&["--bench", "--quick"]);
        assert!(args.quick);
        assert_eq!(args.store, StoreChoice::All);
        assert_eq!(args.workloads().len(), Workload::value_variants().len());
    }

    #[test]
    fn only_takes_names_and_letters_in_run_order() {
        let args = parse(&["--only", "f,a,steps", "--store", "sqlite"]);
        assert_eq!(
            args.workloads(),
            [Workload::Empty, Workload::Steps, Workload::Sleepers]
        );
        assert_eq!(args.stores(), [StoreKind::Sqlite]);
    }
}
