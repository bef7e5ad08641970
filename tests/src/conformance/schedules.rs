//! Conformance: cron schedules. Ticks come from the store's clock, so each body places its
//! schedule relative to `store.now()`, and backfills with `start_at` to have missed ticks.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Timelike, Utc};
use durable::store::Store;
use durable::store::schedules::{
    CatchUp, FiredTick, LATE_TICK_GRACE, MAX_TICKS_PER_FIRE, NewSchedule, ScheduleStore,
};
use durable::{Error, RunFilter, RunStatus, WorkspaceId};
use serde_json::json;

use super::{DEADLINE, LONG_LEASE, request};
use crate::wait;

/// The workflow the suite's schedules start.
const SCHEDULED: &str = "scheduled";

fn schedules(store: &Arc<dyn Store>) -> &dyn ScheduleStore {
    store
        .as_schedules()
        .expect("every built-in store keeps schedules")
}

fn schedule(name: &str, cron: &str, catch_up: CatchUp) -> NewSchedule {
    NewSchedule {
        workspace_id: WorkspaceId::DEFAULT,
        name: name.to_owned(),
        workflow_name: SCHEDULED.to_owned(),
        workflow_version: 1,
        max_claims: 5,
        input: json!({ "schedule": name }),
        cron: cron.to_owned(),
        timezone: "UTC".to_owned(),
        catch_up,
        start_at: None,
    }
}

/// A daily schedule at two hours before now's time of day, counting from five days back:
/// five ticks are due (returned oldest first), the latest two hours late.
async fn five_missed_ticks(
    store: &Arc<dyn Store>,
    name: &str,
    catch_up: CatchUp,
) -> (NewSchedule, Vec<DateTime<Utc>>) {
    let now = store.now().await.unwrap();
    let latest = (now - TimeDelta::hours(2))
        .duration_trunc(TimeDelta::minutes(1))
        .unwrap();
    let cron = format!("{} {} * * *", latest.minute(), latest.hour());
    let mut new = schedule(name, &cron, catch_up);
    new.start_at = Some(now - TimeDelta::days(5));
    let ticks = (0..5).rev().map(|k| latest - TimeDelta::days(k)).collect();
    (new, ticks)
}

async fn fire(store: &Arc<dyn Store>) -> Vec<FiredTick> {
    schedules(store).fire_due_schedules(100).await.unwrap()
}

async fn scheduled_runs(store: &Arc<dyn Store>) -> Vec<durable::RunInfo> {
    store
        .list_runs(
            WorkspaceId::DEFAULT,
            &RunFilter::default().workflow(SCHEDULED).limit(1000),
        )
        .await
        .unwrap()
}

fn workflow_id(name: &str, tick: DateTime<Utc>) -> String {
    format!("schedule:{name}:{}", tick.format("%Y-%m-%dT%H:%M:%SZ"))
}

fn ticks_of(fired: &[FiredTick], name: &str) -> Vec<DateTime<Utc>> {
    fired
        .iter()
        .filter(|t| t.schedule == name)
        .map(|t| t.tick)
        .collect()
}

/// A due tick starts one pending run, with the derived workflow id and the schedule's input,
/// which workers claim like any other; the schedule moves on to its next tick.
pub async fn a_due_tick_starts_one_run_with_the_derived_id(store: Arc<dyn Store>) {
    let (new, ticks) = five_missed_ticks(&store, "nightly", CatchUp::One).await;
    let latest = *ticks.last().unwrap();
    let saved = schedules(&store)
        .upsert_schedule(new.clone())
        .await
        .unwrap();
    assert_eq!(
        saved.next_fire_at,
        Some(ticks[0]),
        "backfilled from start_at"
    );
    assert!(!saved.paused);

    let fired = fire(&store).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    let tick = &fired[0];
    assert_eq!(tick.tick, latest);
    assert_eq!(tick.workflow_id, workflow_id("nightly", latest));
    assert!(tick.workflow_id.starts_with("schedule:nightly:20"));
    assert!(tick.workflow_id.ends_with(":00Z"), "{}", tick.workflow_id);
    assert!(tick.created);

    let runs = scheduled_runs(&store).await;
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.id, tick.run_id);
    assert_eq!(run.workflow_id, tick.workflow_id);
    assert_eq!(run.status, RunStatus::Pending);
    assert_eq!(run.input, new.input);
    assert_eq!(run.max_claims, 5);

    let after = schedules(&store)
        .get_schedule(WorkspaceId::DEFAULT, "nightly")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.next_fire_at, Some(latest + TimeDelta::days(1)));
    assert_eq!(after.last_fired_at, Some(latest));
    assert!(fire(&store).await.is_empty(), "nothing more is due");

    let claimed = store
        .claim(&request("w", &[SCHEDULED], 10, LONG_LEASE))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].info.id, tick.run_id);
}

/// However many callers fire at once, and however often, each tick starts one run.
pub async fn a_tick_fires_once_however_often_and_concurrently(store: Arc<dyn Store>) {
    let (new, ticks) = five_missed_ticks(&store, "busy", CatchUp::All).await;
    schedules(&store).upsert_schedule(new).await.unwrap();
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { fire(&store).await })
        })
        .collect();
    let mut fired = Vec::new();
    for caller in callers {
        fired.extend(caller.await.unwrap());
    }
    fired.extend(fire(&store).await);
    fired.extend(fire(&store).await);

    let mut fired_ticks = ticks_of(&fired, "busy");
    fired_ticks.sort();
    assert_eq!(fired_ticks, ticks, "each tick fired once, by one caller");
    assert!(fired.iter().all(|t| t.created));
    let run_ids: BTreeSet<_> = fired.iter().map(|t| t.run_id).collect();
    assert_eq!(run_ids.len(), 5);

    let runs = scheduled_runs(&store).await;
    let ids: BTreeSet<String> = runs.iter().map(|r| r.workflow_id.clone()).collect();
    let expected: BTreeSet<String> = ticks.iter().map(|t| workflow_id("busy", *t)).collect();
    assert_eq!(ids, expected);
}

/// A schedule deleted and declared again fires its old ticks again (a retry after a lost
/// answer looks the same): their runs exist, so none starts twice.
pub async fn a_tick_whose_run_exists_starts_no_other(store: Arc<dyn Store>) {
    let (new, ticks) = five_missed_ticks(&store, "again", CatchUp::All).await;
    schedules(&store)
        .upsert_schedule(new.clone())
        .await
        .unwrap();
    let first = fire(&store).await;
    assert_eq!(ticks_of(&first, "again"), ticks);

    assert!(
        schedules(&store)
            .delete_schedule(WorkspaceId::DEFAULT, "again")
            .await
            .unwrap()
    );
    schedules(&store).upsert_schedule(new).await.unwrap();
    let second = fire(&store).await;
    assert_eq!(ticks_of(&second, "again"), ticks);
    assert!(second.iter().all(|t| !t.created), "{second:?}");
    let first_ids: Vec<_> = first.iter().map(|t| t.run_id).collect();
    let second_ids: Vec<_> = second.iter().map(|t| t.run_id).collect();
    assert_eq!(first_ids, second_ids, "the existing runs are named");
    assert_eq!(scheduled_runs(&store).await.len(), 5);
}

/// Missed ticks: `skip` fires none, `one` the latest, `all` every one, oldest first; each
/// schedule then waits for its first tick after now.
pub async fn catch_up_policies_handle_missed_ticks(store: Arc<dyn Store>) {
    let mut due = Vec::new();
    for (name, policy) in [
        ("skip", CatchUp::Skip),
        ("one", CatchUp::One),
        ("all", CatchUp::All),
    ] {
        let (new, ticks) = five_missed_ticks(&store, name, policy).await;
        schedules(&store).upsert_schedule(new).await.unwrap();
        due = ticks;
    }
    let latest = *due.last().unwrap();
    let fired = fire(&store).await;
    assert!(ticks_of(&fired, "skip").is_empty(), "{fired:?}");
    assert_eq!(ticks_of(&fired, "one"), vec![latest]);
    assert_eq!(ticks_of(&fired, "all"), due);
    assert_eq!(scheduled_runs(&store).await.len(), 6);

    for schedule in schedules(&store)
        .list_schedules(WorkspaceId::DEFAULT)
        .await
        .unwrap()
    {
        assert_eq!(
            schedule.next_fire_at,
            Some(latest + TimeDelta::days(1)),
            "{}",
            schedule.name
        );
    }
    assert!(fire(&store).await.is_empty());
}

/// `skip` still fires a tick that is on time.
pub async fn catch_up_skip_fires_ticks_on_time(store: Arc<dyn Store>) {
    let every_second = schedule("each-second", "* * * * * *", CatchUp::Skip);
    schedules(&store)
        .upsert_schedule(every_second)
        .await
        .unwrap();
    let fired = wait::until("a tick to fall due", DEADLINE, || async {
        let fired = fire(&store).await;
        (!fired.is_empty()).then_some(fired)
    })
    .await;
    assert_eq!(fired.len(), 1, "at most the latest tick: {fired:?}");
    let now = store.now().await.unwrap();
    let late = (now - fired[0].tick).to_std().unwrap();
    assert!(late < LATE_TICK_GRACE, "{late:?} late");
}

/// `all` fires at most [`MAX_TICKS_PER_FIRE`] ticks of a schedule per call; the rest stay due
/// and follow in the next calls, in order.
pub async fn catch_up_all_fires_at_most_a_hundred_ticks_per_call(store: Arc<dyn Store>) {
    let now = store.now().await.unwrap();
    let mut minutely = schedule("minutely", "* * * * *", CatchUp::All);
    minutely.start_at = Some(now - TimeDelta::minutes(150));
    schedules(&store).upsert_schedule(minutely).await.unwrap();

    let first = fire(&store).await;
    assert_eq!(first.len(), MAX_TICKS_PER_FIRE);
    let rest = fire(&store).await;
    assert!(
        (150..=151).contains(&(first.len() + rest.len())),
        "{}",
        rest.len()
    );
    assert!(fire(&store).await.is_empty());

    let ticks: Vec<_> = first.iter().chain(&rest).map(|t| t.tick).collect();
    let start = (now - TimeDelta::minutes(150))
        .duration_trunc(TimeDelta::minutes(1))
        .unwrap();
    assert!(ticks[0] - start <= TimeDelta::minutes(1));
    for pair in ticks.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            TimeDelta::minutes(1),
            "no gap, no repeat"
        );
    }
    assert!(*ticks.last().unwrap() > now - TimeDelta::minutes(1));
}

/// A paused schedule fires nothing, and stays paused when declared again; resuming goes on
/// from the first tick after now, dropping the ticks missed meanwhile.
pub async fn a_paused_schedule_fires_nothing(store: Arc<dyn Store>) {
    let (new, ticks) = five_missed_ticks(&store, "paused", CatchUp::All).await;
    schedules(&store)
        .upsert_schedule(new.clone())
        .await
        .unwrap();
    let paused = schedules(&store)
        .set_schedule_paused(WorkspaceId::DEFAULT, "paused", true)
        .await
        .unwrap()
        .unwrap();
    assert!(paused.paused);
    assert!(fire(&store).await.is_empty());
    assert_eq!(
        schedules(&store).next_schedule_due_in().await.unwrap(),
        None
    );
    let redeclared = schedules(&store).upsert_schedule(new).await.unwrap();
    assert!(redeclared.paused, "declaring again does not resume");
    assert!(fire(&store).await.is_empty());

    let resumed = schedules(&store)
        .set_schedule_paused(WorkspaceId::DEFAULT, "paused", false)
        .await
        .unwrap()
        .unwrap();
    assert!(!resumed.paused);
    assert_eq!(
        resumed.next_fire_at,
        Some(*ticks.last().unwrap() + TimeDelta::days(1))
    );
    assert!(
        fire(&store).await.is_empty(),
        "missed while paused: dropped"
    );
    assert!(scheduled_runs(&store).await.is_empty());
    assert!(
        schedules(&store)
            .set_schedule_paused(WorkspaceId::DEFAULT, "missing", true)
            .await
            .unwrap()
            .is_none()
    );
}

/// A bad cron expression or time zone is refused with an error that names it; nothing is
/// stored.
pub async fn an_invalid_cron_or_time_zone_is_a_clear_error(store: Arc<dyn Store>) {
    for cron in ["not a cron", "61 * * * *", "* * * *"] {
        let err = schedules(&store)
            .upsert_schedule(schedule("bad", cron, CatchUp::One))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
        assert!(
            err.to_string()
                .contains(&format!("invalid cron expression `{cron}`")),
            "{err}"
        );
    }
    let mut bad_zone = schedule("bad", "0 9 * * *", CatchUp::One);
    bad_zone.timezone = "Europe/Atlantis".to_owned();
    let err = schedules(&store)
        .upsert_schedule(bad_zone)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("invalid time zone `Europe/Atlantis`"),
        "{err}"
    );
    assert!(
        schedules(&store)
            .list_schedules(WorkspaceId::DEFAULT)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Wall-clock times are read in the schedule's time zone: 09:00 in Paris is 08:00 UTC in
/// winter and 07:00 UTC in summer.
pub async fn time_zones_are_honoured(store: Arc<dyn Store>) {
    for (name, from, first) in [
        ("winter", "2025-01-15T00:00:00Z", "2025-01-15T08:00:00Z"),
        ("summer", "2025-07-15T00:00:00Z", "2025-07-15T07:00:00Z"),
    ] {
        let mut paris = schedule(name, "0 9 * * *", CatchUp::Skip);
        paris.timezone = "Europe/Paris".to_owned();
        paris.start_at = Some(from.parse().unwrap());
        let saved = schedules(&store).upsert_schedule(paris).await.unwrap();
        assert_eq!(saved.next_fire_at, Some(first.parse().unwrap()), "{name}");
        assert_eq!(saved.timezone, "Europe/Paris");
    }
}

/// Declaring a schedule again updates it but keeps its place, unless its cron changes;
/// schedules are listed by name and deleted by name.
pub async fn declaring_again_keeps_the_place_unless_the_cron_changes(store: Arc<dyn Store>) {
    let (mut new, ticks) = five_missed_ticks(&store, "report", CatchUp::All).await;
    let created = schedules(&store)
        .upsert_schedule(new.clone())
        .await
        .unwrap();
    schedules(&store)
        .upsert_schedule(schedule("another", "0 0 1 1 *", CatchUp::One))
        .await
        .unwrap();

    new.start_at = None;
    new.input = json!({ "changed": true });
    let updated = schedules(&store)
        .upsert_schedule(new.clone())
        .await
        .unwrap();
    assert_eq!(updated.id, created.id);
    assert_eq!(updated.input, json!({ "changed": true }));
    assert_eq!(updated.next_fire_at, Some(ticks[0]), "kept its place");
    assert_eq!(updated.created_at, created.created_at);

    new.cron = "0 0 * * *".to_owned();
    let now = store.now().await.unwrap();
    let moved = schedules(&store).upsert_schedule(new).await.unwrap();
    assert_eq!(moved.cron, "0 0 * * *");
    let next = moved.next_fire_at.unwrap();
    assert!(next >= now && next - now <= TimeDelta::days(1), "{next}");

    let names: Vec<_> = schedules(&store)
        .list_schedules(WorkspaceId::DEFAULT)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["another", "report"]);
    let other = WorkspaceId(uuid::Uuid::new_v4());
    assert!(
        schedules(&store)
            .list_schedules(other)
            .await
            .unwrap()
            .is_empty()
    );
    let delete = |name: &'static str| schedules(&store).delete_schedule(WorkspaceId::DEFAULT, name);
    assert!(delete("report").await.unwrap());
    assert!(!delete("report").await.unwrap());
    assert!(
        schedules(&store)
            .get_schedule(WorkspaceId::DEFAULT, "report")
            .await
            .unwrap()
            .is_none()
    );
}

/// The earliest tick of the schedules that are not paused, by the store's clock.
pub async fn next_schedule_due_in_follows_the_earliest_schedule(store: Arc<dyn Store>) {
    let due_in = || schedules(&store).next_schedule_due_in();
    assert_eq!(due_in().await.unwrap(), None, "no schedules");
    let year = Duration::from_secs(366 * 24 * 3600);
    schedules(&store)
        .upsert_schedule(schedule("new-year", "0 0 1 1 *", CatchUp::One))
        .await
        .unwrap();
    let new_year = due_in().await.unwrap().expect("a tick ahead");
    assert!(
        new_year > Duration::ZERO && new_year <= year,
        "{new_year:?}"
    );

    let (overdue, _) = five_missed_ticks(&store, "overdue", CatchUp::One).await;
    schedules(&store).upsert_schedule(overdue).await.unwrap();
    assert_eq!(due_in().await.unwrap(), Some(Duration::ZERO));
    fire(&store).await;
    let after = due_in().await.unwrap().expect("a tick ahead");
    let day = Duration::from_secs(24 * 3600);
    assert!(
        after > Duration::ZERO && after <= day.min(new_year),
        "{after:?}"
    );
    schedules(&store)
        .set_schedule_paused(WorkspaceId::DEFAULT, "overdue", true)
        .await
        .unwrap();
    let paused = due_in().await.unwrap().expect("the new-year tick");
    assert!(
        new_year.saturating_sub(paused) < Duration::from_secs(60),
        "a paused schedule does not count: {paused:?}"
    );
}
