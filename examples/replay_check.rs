//! A replay check in an app's own CLI: replays the recorded histories of finished runs
//! against the workflow code compiled into this binary, and fails if any run no longer
//! replays. Run it before a deploy, with the build about to go out, against the store the
//! running workers use: a run that diverges here would be parked if it were in flight when
//! the new code took over. Nothing runs (no activity executes) and nothing is written.
//!
//! ```text
//! cargo run --example replay_check -- --database-url postgres://… [--workflow name] [--limit N]
//! ```
//!
//! Exit code 0 and `N runs replayed, no divergence` when every run replays as recorded;
//! 1 and a report naming each run, the step position and both steps when one does not;
//! 2 when the check itself could not run. Workflows are compiled into the app, so the check
//! lives in the app's binary too: copy `Args` and `check`, and list the app's workflows in
//! [`workflows`].

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use durable::RunFilter;
use durable::prelude::*;
use durable::runtime::{DynWorkflow, ReplayReport, erase, replay_check};

#[durable::activity]
async fn charge(ctx: &ActivityCtx, amount_cents: u64) -> Result<String, ActivityError> {
    Ok(format!("receipt-{amount_cents}-{}", ctx.idempotency_key()))
}

#[durable::activity]
async fn email_receipt(_ctx: &ActivityCtx, receipt: &str) -> Result<(), ActivityError> {
    println!("emailing {receipt}");
    Ok(())
}

/// An app's workflow after a change: receipts are now emailed. Runs recorded before the
/// change replay without the email, so the check passes for them too.
#[durable::workflow]
async fn confirm_order(ctx: &WorkflowCtx, amount_cents: u64) -> Result<String, WorkflowError> {
    let receipt = charge(ctx, amount_cents).await?;
    if ctx.patched("email-receipt").await? {
        email_receipt(ctx, &receipt).await?;
    }
    Ok(receipt)
}

/// Every workflow the app registers with its workers.
fn workflows() -> Vec<Arc<dyn DynWorkflow>> {
    vec![Arc::from(erase(confirm_order))]
}

/// Replays finished runs against this build's workflow code.
#[derive(Debug, Parser)]
#[command(name = "replay_check")]
struct Args {
    /// The store: postgres://… or sqlite://path.db. Default: `DURABLE_DATABASE_URL`, else
    /// `DATABASE_URL`, else sqlite://durable.db.
    #[arg(long)]
    database_url: Option<String>,
    /// Only the runs of this workflow.
    #[arg(long)]
    workflow: Option<String>,
    /// At most this many runs of each workflow, newest first.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Replay failed runs too, not only completed ones.
    #[arg(long)]
    include_failed: bool,
}

async fn check(args: Args) -> anyhow::Result<ReplayReport> {
    let url = args
        .database_url
        .unwrap_or_else(durable::store::url_from_env);
    let store = durable::store::connect(&url)
        .await
        .context("opening the store")?;
    let mut filter = RunFilter::default().limit(args.limit);
    if let Some(name) = args.workflow {
        filter = filter.workflow(name);
    }
    let workflows = workflows();
    let mut report = replay_check(store.clone(), &workflows, filter.clone()).await?;
    if args.include_failed {
        let failed = filter.status(RunStatus::Failed);
        report.merge(replay_check(store, &workflows, failed).await?);
    }
    Ok(report)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .init();
    match check(Args::parse()).await {
        Ok(report) => {
            println!("{report}");
            match report.is_clean() {
                true => ExitCode::SUCCESS,
                false => ExitCode::from(1),
            }
        }
        Err(err) => {
            eprintln!("replay check failed: {err:#}");
            ExitCode::from(2)
        }
    }
}
