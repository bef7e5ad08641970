//! The scheduler: fires the store's due cron schedules. The runs it starts are ordinary
//! pending runs, claimed through the claim loop by whichever worker runs their workflow.
//!
//! Every worker of a pool runs one; the store makes each tick start one run however many
//! fire at once (see [`ScheduleStore::fire_due_schedules`]).

use std::sync::Arc;
use std::time::Duration;

use durable::Store;
use durable::store::schedules::{FiredTick, ScheduleStore};
use tokio_util::sync::CancellationToken;

/// Schedules fired per transaction; when all were due, the next batch follows at once.
const BATCH: u32 = 32;

/// How soon to look again when a schedule is overdue but none could be fired: another
/// worker holds it, and is firing it now.
const HELD_RECHECK: Duration = Duration::from_millis(50);

/// Fires due schedules every `poll_interval`, or at the next tick if sooner, until `stop`.
pub(crate) async fn run(store: Arc<dyn Store>, poll_interval: Duration, stop: CancellationToken) {
    let Some(schedules) = store.as_schedules() else {
        tracing::debug!("the store keeps no cron schedules: no scheduler");
        return;
    };
    let mut error_backoff = Duration::from_millis(50);
    while !stop.is_cancelled() {
        let wait = match step(schedules, poll_interval).await {
            Ok(wait) => {
                error_backoff = Duration::from_millis(50);
                wait
            }
            Err(err) => {
                tracing::warn!(error = %err, "firing cron schedules failed; retrying");
                let wait = error_backoff;
                error_backoff = (error_backoff * 2).min(poll_interval);
                wait
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Fires the due schedules, if any; returns how long to wait before looking again. Looking
/// is a read, so an idle pool takes no write lock for it (which matters on SQLite).
async fn step(schedules: &dyn ScheduleStore, poll_interval: Duration) -> durable::Result<Duration> {
    match schedules.next_schedule_due_in().await? {
        Some(due_in) if due_in.is_zero() => {}
        Some(due_in) => return Ok(due_in.min(poll_interval)),
        None => return Ok(poll_interval),
    }
    let fired = schedules.fire_due_schedules(BATCH).await?;
    for tick in &fired {
        log(tick);
    }
    Ok(if fired.is_empty() {
        // Due, yet nothing to fire: another worker holds those schedules and fires them now.
        HELD_RECHECK.min(poll_interval)
    } else {
        // The batch or a schedule's tick cap may have cut this short: look again at once.
        Duration::ZERO
    })
}

fn log(tick: &FiredTick) {
    let at = tick.tick.format("%Y-%m-%dT%H:%M:%SZ");
    if tick.created {
        tracing::info!(
            event = "schedule_tick_fired",
            schedule = %tick.schedule,
            tick = %at,
            run_id = %tick.run_id,
            workflow = %tick.workflow_name,
            "schedule tick fired"
        );
    } else {
        tracing::info!(
            event = "schedule_tick_had_run",
            schedule = %tick.schedule,
            tick = %at,
            run_id = %tick.run_id,
            "schedule tick already had a run; none started"
        );
    }
}
