//! Cron schedules: the [`ScheduleStore`] trait that stores with schedules implement, and the
//! records it trades.
//!
//! A schedule starts a run of one workflow at every tick of a cron expression, read in a time
//! zone. Each tick's run has the workflow id `schedule:<name>:<tick>` (the tick in RFC 3339,
//! UTC, e.g. `schedule:nightly-report:2025-01-15T02:00:00Z`). Firing a tick inserts that run
//! and moves the schedule's `next_fire_at` on in one transaction, and the run's workflow id
//! is unique in its workspace, so a tick starts at most one run, however many workers fire
//! schedules at once and however often a firing is retried.
//!
//! Ticks are computed in Rust from the store's clock ([`Store::now`]), never a worker's.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::Store;
use crate::run::{RunId, WorkspaceId};
use crate::{Error, Result};

mod cadence;

pub(crate) use cadence::{Cadence, Plan};

/// How many ticks of one schedule a single [`ScheduleStore::fire_due_schedules`] call fires
/// at most under [`CatchUp::All`]; the rest stay due and are fired by the next calls.
pub const MAX_TICKS_PER_FIRE: usize = 100;

/// How late a tick may be under [`CatchUp::Skip`] and still fire: later than this, it
/// counts as missed.
pub const LATE_TICK_GRACE: Duration = Duration::from_secs(60);

/// What a schedule does with ticks that passed while no worker fired it (every worker was
/// down, or the store unreachable).
///
/// A tick is *due* once the store's clock reaches it. Ticks that fall while a schedule is
/// paused are never fired, whatever the policy: resuming starts from the next tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Drop missed ticks: only the latest due tick fires, and only if it is at most
    /// [`LATE_TICK_GRACE`] late; the schedule then goes on from the first tick after now.
    Skip,
    /// Fire the latest due tick once, however late, and drop the earlier ones (the default:
    /// a nightly report missed during an outage runs once when the pool is back).
    #[default]
    One,
    /// Fire every due tick, oldest first, at most [`MAX_TICKS_PER_FIRE`] per schedule and
    /// call (the rest follow in the next calls).
    All,
}

impl CatchUp {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::One => "one",
            Self::All => "all",
        }
    }
}

impl FromStr for CatchUp {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "skip" => Ok(Self::Skip),
            "one" => Ok(Self::One),
            "all" => Ok(Self::All),
            other => Err(Error::Invalid(format!(
                "unknown catch-up policy `{other}`: expected `skip`, `one` or `all`"
            ))),
        }
    }
}

impl fmt::Display for CatchUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A schedule to create, or to update if its workspace has one of the same name.
#[derive(Debug, Clone)]
pub struct NewSchedule {
    /// Its workspace.
    pub workspace_id: WorkspaceId,
    /// Unique per workspace; part of each tick's workflow id.
    pub name: String,
    /// The workflow each tick starts.
    pub workflow_name: String,
    /// The workflow's version, recorded on each run.
    pub workflow_version: u32,
    /// Claims in a row without progress before a run is parked.
    pub max_claims: u32,
    /// The input of each run, as JSON.
    pub input: Value,
    /// The cron expression: five fields (`minute hour day-of-month month day-of-week`), or
    /// six with seconds first.
    pub cron: String,
    /// The IANA time zone the expression's wall-clock times are read in (`UTC`,
    /// `Europe/Paris`).
    pub timezone: String,
    /// What to do with missed ticks.
    pub catch_up: CatchUp,
    /// Count ticks from here (inclusive) instead of from now. A time in the past backfills:
    /// the ticks since then are due at once, and fire as the catch-up policy says. Used
    /// only when the schedule is created or its cron or time zone changes.
    pub start_at: Option<DateTime<Utc>>,
}

impl NewSchedule {
    /// Checks the name, the cron expression and the time zone, each error naming the field
    /// at fault.
    pub(crate) fn validate(&self) -> Result<Cadence> {
        validate_name(&self.name)?;
        Cadence::parse(&self.cron, &self.timezone)
    }

    /// The first tick of this schedule counted from `now` (the store's clock), or from
    /// [`start_at`](Self::start_at) when set.
    pub(crate) fn first_tick(
        &self,
        cadence: &Cadence,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>> {
        cadence
            .first_from(self.start_at.unwrap_or(now))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "cron expression `{}` of schedule `{}` never fires",
                    self.cron, self.name
                ))
            })
    }
}

/// Schedule names become part of workflow ids and log lines: keep them printable.
fn validate_name(name: &str) -> Result<()> {
    let why = if name.is_empty() {
        "it is empty"
    } else if name.chars().count() > 200 {
        "it is longer than 200 characters"
    } else if name.chars().any(char::is_control) {
        "it holds control characters"
    } else {
        return Ok(());
    };
    Err(Error::Invalid(format!(
        "invalid schedule name `{name}`: {why}"
    )))
}

/// A schedule, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleInfo {
    /// Its id.
    pub id: Uuid,
    /// Its workspace.
    pub workspace_id: WorkspaceId,
    /// Its name, unique per workspace.
    pub name: String,
    /// The workflow each tick starts.
    pub workflow_name: String,
    /// The workflow's version.
    pub workflow_version: u32,
    /// The input of each run.
    pub input: Value,
    /// The cron expression.
    pub cron: String,
    /// The time zone the expression is read in.
    pub timezone: String,
    /// What happens to missed ticks.
    pub catch_up: CatchUp,
    /// Paused schedules fire nothing.
    pub paused: bool,
    /// The next tick to fire; `None` when the expression has no more ticks.
    pub next_fire_at: Option<DateTime<Utc>>,
    /// The latest tick fired.
    pub last_fired_at: Option<DateTime<Utc>>,
    /// When it was created, by the store's clock.
    pub created_at: DateTime<Utc>,
    /// When it last changed (including each firing).
    pub updated_at: DateTime<Utc>,
}

impl ScheduleInfo {
    /// The workflow id of the run this schedule starts at `tick`.
    pub fn workflow_id(&self, tick: DateTime<Utc>) -> String {
        tick_workflow_id(&self.name, tick)
    }

    /// What firing this schedule at `now` (the store's clock) does. A schedule whose stored
    /// cron no longer parses stops: it fires nothing more until an upsert gives it a valid
    /// expression.
    pub(crate) fn plan(&self, now: DateTime<Utc>) -> Plan {
        let due = self.next_fire_at.unwrap_or(now);
        match Cadence::parse(&self.cron, &self.timezone) {
            Ok(cadence) => cadence.plan(due, now, self.catch_up),
            Err(err) => {
                tracing::error!(schedule = %self.name, error = %err, "schedule stopped");
                Plan {
                    fire: Vec::new(),
                    next: None,
                }
            }
        }
    }
}

/// The workflow id of the run schedule `name` starts at `tick`:
/// `schedule:<name>:<tick in RFC 3339, UTC, whole seconds>`.
pub fn tick_workflow_id(name: &str, tick: DateTime<Utc>) -> String {
    crate::workflow_id::schedule_tick(name, tick)
}

/// One tick fired by [`ScheduleStore::fire_due_schedules`].
#[derive(Debug, Clone, PartialEq)]
pub struct FiredTick {
    /// The schedule's workspace.
    pub workspace_id: WorkspaceId,
    /// The schedule.
    pub schedule: String,
    /// The tick.
    pub tick: DateTime<Utc>,
    /// The run's workflow id, `schedule:<name>:<tick>`.
    pub workflow_id: String,
    /// The workflow started.
    pub workflow_name: String,
    /// The run that holds the tick.
    pub run_id: RunId,
    /// False when a run with this workflow id already existed (started by hand, or by the
    /// same schedule before it was deleted and created again): no second run was started.
    pub created: bool,
}

/// Cron schedules, for stores that keep them. Reach it from a [`Store`] with
/// [`Store::as_schedules`].
#[async_trait]
pub trait ScheduleStore: Store {
    /// Creates the schedule, or updates the one of the same name in its workspace (its
    /// workflow, input, cron, time zone and catch-up policy). An update keeps the paused
    /// flag, and keeps `next_fire_at` unless the cron or time zone changed, so a service
    /// that declares its schedules at every start misses no tick across a restart.
    ///
    /// A bad cron expression, time zone or name is an [`Error::Invalid`] naming it.
    async fn upsert_schedule(&self, schedule: NewSchedule) -> Result<ScheduleInfo>;

    /// One schedule.
    async fn get_schedule(
        &self,
        workspace: WorkspaceId,
        name: &str,
    ) -> Result<Option<ScheduleInfo>>;

    /// The workspace's schedules, by name.
    async fn list_schedules(&self, workspace: WorkspaceId) -> Result<Vec<ScheduleInfo>>;

    /// Pauses or resumes a schedule. Resuming a paused schedule drops the ticks that fell
    /// while it was paused: it goes on from the first tick after now. `None` if there is no
    /// such schedule.
    async fn set_schedule_paused(
        &self,
        workspace: WorkspaceId,
        name: &str,
        paused: bool,
    ) -> Result<Option<ScheduleInfo>>;

    /// Deletes a schedule; the runs it started are kept. False if there was none.
    async fn delete_schedule(&self, workspace: WorkspaceId, name: &str) -> Result<bool>;

    /// Fires the due ticks of up to `limit` schedules (of every workspace), in one
    /// transaction: takes the schedules that are due by the store's clock and not paused
    /// (skipping any another caller holds), starts each tick's run (workflow id
    /// `schedule:<name>:<tick>`, never twice), and moves each schedule's `next_fire_at` on
    /// as its [`CatchUp`] policy says.
    async fn fire_due_schedules(&self, limit: u32) -> Result<Vec<FiredTick>>;

    /// How long until the earliest schedule that is not paused is due, by the store's clock
    /// (zero if one is overdue); `None` if none will fire.
    async fn next_schedule_due_in(&self) -> Result<Option<Duration>>;
}

/// How long from `now` until `due`, zero if it has passed.
pub(crate) fn due_in(due: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<Duration> {
    due.map(|due| (due - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(name: &str, cron: &str, timezone: &str) -> NewSchedule {
        NewSchedule {
            workspace_id: WorkspaceId::DEFAULT,
            name: name.to_owned(),
            workflow_name: "wf".to_owned(),
            workflow_version: 1,
            max_claims: 5,
            input: Value::Null,
            cron: cron.to_owned(),
            timezone: timezone.to_owned(),
            catch_up: CatchUp::One,
            start_at: None,
        }
    }

    #[test]
    fn workflow_ids_name_the_schedule_and_the_tick_in_utc() {
        let tick = "2025-01-15T08:00:00Z".parse().unwrap();
        assert_eq!(
            tick_workflow_id("nightly", tick),
            "schedule:nightly:2025-01-15T08:00:00Z"
        );
    }

    #[test]
    fn validation_names_the_field_at_fault() {
        let cron = schedule("s", "61 * * * *", "UTC").validate().unwrap_err();
        assert!(
            cron.to_string().contains("cron expression `61 * * * *`"),
            "{cron}"
        );
        let tz = schedule("s", "* * * * *", "Mars/Olympus")
            .validate()
            .unwrap_err();
        assert!(tz.to_string().contains("time zone `Mars/Olympus`"), "{tz}");
        let name = schedule("", "* * * * *", "UTC").validate().unwrap_err();
        assert!(name.to_string().contains("schedule name"), "{name}");
        for err in [cron, tz, name] {
            assert!(matches!(err, Error::Invalid(_)));
        }
    }

    #[test]
    fn catch_up_round_trips_through_its_stored_name() {
        for policy in [CatchUp::Skip, CatchUp::One, CatchUp::All] {
            assert_eq!(policy.as_str().parse::<CatchUp>().unwrap(), policy);
        }
        assert!("sometimes".parse::<CatchUp>().is_err());
    }
}
