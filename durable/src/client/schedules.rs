//! Cron schedules: start a workflow at every tick of a cron expression.
//!
//! # Schedules
//!
//! A schedule names a workflow, its input, a cron expression and the time zone the
//! expression's wall-clock times are read in. Every worker of the pool fires due schedules
//! (every poll interval, and at the next tick if sooner); each tick starts exactly one run,
//! whose workflow id is `schedule:<name>:<tick>` with the tick in RFC 3339, UTC — for example
//! `schedule:nightly-report:2025-01-15T02:00:00Z`. The run then goes through the pool like
//! any other. Ticks are read from the database clock, never a worker's.
//!
//! ```rust,no_run
//! use durable::prelude::*;
//! use durable::CatchUp;
//!
//! #[durable::workflow]
//! async fn nightly_report(ctx: &WorkflowCtx, team: String) -> Result<String, WorkflowError> {
//!     Ok(format!("report for {team}, run {}", ctx.workflow_id()))
//! }
//!
//! # async fn demo() -> anyhow::Result<()> {
//! let store = durable::store::connect(&durable::store::url_from_env()).await?;
//! let client = durable::Client::from_arc(store);
//!
//! // Declare the schedule at every start of the service: an unchanged schedule keeps its
//! // place, so no tick is lost or repeated across restarts.
//! let schedule = client
//!     .schedule("nightly-report")
//!     .cron("0 3 * * *") // 03:00 every day…
//!     .timezone("Europe/Paris") // …by the Paris wall clock, summer and winter
//!     .catch_up(CatchUp::One) // after an outage, run the missed report once
//!     .start(nightly_report, "platform".to_string())
//!     .await?;
//! println!("next report at {:?}", schedule.next_fire_at);
//!
//! client.pause_schedule("nightly-report").await?; // fires nothing until resumed
//! client.resume_schedule("nightly-report").await?; // goes on from the next tick
//! for schedule in client.list_schedules().await? {
//!     println!("{} `{}` {}", schedule.name, schedule.cron, schedule.timezone);
//! }
//! client.delete_schedule("nightly-report").await?; // the runs it started are kept
//! # Ok(()) }
//! ```
//!
//! - **Cron expressions** have five fields, `minute hour day-of-month month day-of-week`, or
//!   six with seconds first (`*/10 * * * * *`: every ten seconds). Names (`MON`, `JAN`),
//!   ranges, steps, lists, `L`, `W`, `#` and the `@daily`-style nicknames work. A bad
//!   expression or time zone is an [`Error::Invalid`] that names it, when the schedule is
//!   declared.
//! - **Time zones** are IANA names (`UTC`, the default, or `Europe/Paris`). On the days a
//!   clock changes, a wall-clock time that does not exist fires at the first time after the
//!   gap, and one that happens twice fires once.
//! - **Missed ticks** (no worker ran while they fell due) follow the [`CatchUp`] policy:
//!   `Skip` drops them (only a tick at most a minute late fires), `One` (the default) fires
//!   the latest one once, `All` fires every one, oldest first, a hundred per schedule at a
//!   time. `.start_at(t)` with `t` in the past backfills: the ticks since `t` are missed
//!   ticks, handled by the same policy.
//! - **Declaring again** updates the workflow, input, cron, time zone and policy, but keeps
//!   a paused schedule paused, and keeps its next tick unless the cron or time zone changed.
//! - **Pausing** stops the ticks; resuming goes on from the first tick after the resume
//!   (the ticks in between are dropped, whatever the policy).

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use chrono::{DateTime, Utc};

use super::Client;
use crate::store::schedules::{CatchUp, NewSchedule, ScheduleInfo, ScheduleStore};
use crate::{Error, Result, Workflow};

impl Client {
    /// Declares the schedule `name`: set its `.cron(…)` (and optionally `.timezone(…)`,
    /// `.catch_up(…)`, `.start_at(…)`), then `.start(workflow, input).await` creates it, or
    /// updates the schedule of that name. Each tick starts one run, with workflow id
    /// `schedule:<name>:<tick in RFC 3339, UTC>`; missed ticks follow the [`CatchUp`] policy.
    ///
    /// ```rust,no_run
    /// # use durable::prelude::*;
    /// # #[durable::workflow]
    /// # async fn cleanup(ctx: &WorkflowCtx, days: u32) -> Result<(), WorkflowError> { Ok(()) }
    /// # async fn demo(client: durable::Client) -> durable::Result<()> {
    /// client.schedule("cleanup").cron("*/15 * * * *").start(cleanup, 30).await?;
    /// # Ok(()) }
    /// ```
    pub fn schedule(&self, name: impl Into<String>) -> ScheduleBuilder<'_> {
        ScheduleBuilder {
            client: self,
            name: name.into(),
            cron: None,
            timezone: "UTC".to_owned(),
            catch_up: CatchUp::default(),
            start_at: None,
        }
    }

    /// The schedule `name`, as stored now.
    pub async fn get_schedule(&self, name: &str) -> Result<ScheduleInfo> {
        self.schedule_store()?
            .get_schedule(self.workspace, name)
            .await?
            .ok_or_else(|| Error::ScheduleNotFound(name.to_owned()))
    }

    /// The workspace's schedules, by name.
    pub async fn list_schedules(&self) -> Result<Vec<ScheduleInfo>> {
        self.schedule_store()?.list_schedules(self.workspace).await
    }

    /// Pauses the schedule: it fires nothing until resumed. Runs it already started go on.
    pub async fn pause_schedule(&self, name: &str) -> Result<ScheduleInfo> {
        self.set_paused(name, true).await
    }

    /// Resumes a paused schedule from its first tick after now: the ticks that fell while it
    /// was paused are not fired.
    pub async fn resume_schedule(&self, name: &str) -> Result<ScheduleInfo> {
        self.set_paused(name, false).await
    }

    /// Deletes the schedule; the runs it started are kept. Returns false if there was none.
    pub async fn delete_schedule(&self, name: &str) -> Result<bool> {
        self.schedule_store()?
            .delete_schedule(self.workspace, name)
            .await
    }

    async fn set_paused(&self, name: &str, paused: bool) -> Result<ScheduleInfo> {
        self.schedule_store()?
            .set_schedule_paused(self.workspace, name, paused)
            .await?
            .ok_or_else(|| Error::ScheduleNotFound(name.to_owned()))
    }

    fn schedule_store(&self) -> Result<&dyn ScheduleStore> {
        self.store.as_schedules().ok_or_else(|| {
            Error::Invalid(format!(
                "this store ({:?}) does not keep cron schedules",
                self.store
            ))
        })
    }
}

/// A schedule being declared. Built by [`Client::schedule`]; finish with
/// [`start`](Self::start).
#[derive(Debug)]
pub struct ScheduleBuilder<'a> {
    client: &'a Client,
    name: String,
    cron: Option<String>,
    timezone: String,
    catch_up: CatchUp,
    start_at: Option<DateTime<Utc>>,
}

impl<'a> ScheduleBuilder<'a> {
    /// The cron expression (required): five fields, `minute hour day-of-month month
    /// day-of-week`, or six with seconds first.
    pub fn cron(mut self, expression: impl Into<String>) -> Self {
        self.cron = Some(expression.into());
        self
    }

    /// The IANA time zone the expression's wall-clock times are read in (default `UTC`).
    pub fn timezone(mut self, timezone: impl Into<String>) -> Self {
        self.timezone = timezone.into();
        self
    }

    /// What to do with ticks missed while no worker ran (default [`CatchUp::One`]).
    pub fn catch_up(mut self, policy: CatchUp) -> Self {
        self.catch_up = policy;
        self
    }

    /// Counts ticks from `at` (inclusive) instead of from now; a time in the past backfills
    /// the ticks since then, as the catch-up policy says. Used when the schedule is created
    /// or its cron or time zone changes.
    pub fn start_at(mut self, at: DateTime<Utc>) -> Self {
        self.start_at = Some(at);
        self
    }

    /// Starts `workflow` with `input` at every tick. Await it: it returns the schedule as
    /// stored.
    pub fn start<W: Workflow>(self, workflow: W, input: W::Input) -> StartSchedule<'a> {
        let _ = workflow;
        let client = self.client;
        StartSchedule {
            client,
            schedule: self.new_schedule::<W>(input),
        }
    }

    fn new_schedule<W: Workflow>(self, input: W::Input) -> Result<NewSchedule> {
        let cron = self.cron.ok_or_else(|| {
            Error::Invalid(format!(
                "schedule `{}` has no cron expression: set one with .cron(\"…\")",
                self.name
            ))
        })?;
        Ok(NewSchedule {
            workspace_id: self.client.workspace,
            name: self.name,
            workflow_name: W::NAME.to_owned(),
            workflow_version: W::VERSION,
            max_claims: W::MAX_ATTEMPTS,
            input: serde_json::to_value(input)?,
            cron,
            timezone: self.timezone,
            catch_up: self.catch_up,
            start_at: self.start_at,
        })
    }
}

/// A schedule being created or updated; `.await` it. Built by [`ScheduleBuilder::start`].
#[must_use = "a schedule is saved only when this is awaited"]
#[derive(Debug)]
pub struct StartSchedule<'a> {
    client: &'a Client,
    schedule: Result<NewSchedule>,
}

impl<'a> IntoFuture for StartSchedule<'a> {
    type Output = Result<ScheduleInfo>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let schedule = self.schedule?;
            let saved = self
                .client
                .schedule_store()?
                .upsert_schedule(schedule)
                .await?;
            tracing::debug!(
                schedule = %saved.name,
                workflow = %saved.workflow_name,
                next_fire_at = ?saved.next_fire_at,
                "schedule saved"
            );
            Ok(saved)
        })
    }
}
