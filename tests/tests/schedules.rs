//! Cron schedules end to end, on both stores: three worker processes fire a schedule that
//! ticks every second, and each tick starts exactly one run, fired by exactly one worker,
//! with no gap; and the client's schedule API.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use durable::prelude::*;
use durable::{CatchUp, Error, RunFilter, Store};
use durable_tests::conformance::SqliteFile;
use durable_tests::process::WorkerProcess;
use durable_tests::scheduled::scheduled;
use durable_tests::{TestDb, init_tracing, wait, worker_bin};

const DEADLINE: Duration = Duration::from_secs(60);

/// Scheduled runs to complete before the schedule is deleted.
const TICKS: usize = 6;

const NAME: &str = "every-second";

async fn every_tick_fires_once_across_three_workers(url: String, store: Arc<dyn Store>) {
    init_tracing();
    let workers: Vec<WorkerProcess> = (0..3)
        .map(|_| WorkerProcess::spawn(worker_bin!(), &url, Duration::from_secs(2)))
        .collect();
    for worker in &workers {
        worker.wait_for_line("worker ready", DEADLINE).await;
    }
    let client = Client::from_arc(store);
    let schedule = client
        .schedule(NAME)
        .cron("* * * * * *")
        .catch_up(CatchUp::All)
        .start(scheduled, "tick".to_owned())
        .await
        .unwrap();

    wait::until("a few ticks to run", DEADLINE, || async {
        let done = client
            .list(scheduled_runs())
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.status == RunStatus::Completed)
            .count();
        (done >= TICKS).then_some(())
    })
    .await;
    assert!(client.delete_schedule(NAME).await.unwrap());
    let runs = wait::until("every scheduled run to complete", DEADLINE, || async {
        let runs = client.list(scheduled_runs()).await.unwrap();
        runs.iter()
            .all(|r| r.status == RunStatus::Completed)
            .then_some(runs)
    })
    .await;

    // One run per tick, from the schedule's first tick on, one second apart.
    let mut ticks: Vec<DateTime<Utc>> = runs.iter().map(|r| tick_of(&r.workflow_id)).collect();
    ticks.sort();
    assert!(ticks.len() >= TICKS);
    assert_eq!(
        Some(ticks[0]),
        schedule.next_fire_at,
        "starts at the first tick"
    );
    for pair in ticks.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            TimeDelta::seconds(1),
            "no tick twice, no tick missed: {ticks:?}"
        );
    }
    for run in &runs {
        let output: String = serde_json::from_value(run.output.clone().unwrap()).unwrap();
        assert_eq!(output, format!("tick {}", run.workflow_id));
    }

    // Each tick was fired by exactly one worker.
    let mut fired_by: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (index, worker) in workers.iter().enumerate() {
        for line in worker.lines() {
            assert!(
                !line.contains("schedule_tick_had_run"),
                "a tick was fired again: {line}"
            );
            if line.contains("schedule_tick_fired") {
                let tick = field(&line, "tick=");
                fired_by.entry(tick).or_default().push(index);
            }
        }
    }
    for tick in &ticks {
        let at = tick.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        assert_eq!(
            fired_by.get(&at).map(Vec::len),
            Some(1),
            "tick {at} fired by {:?}",
            fired_by.get(&at)
        );
    }
    assert_eq!(fired_by.len(), ticks.len(), "no other tick fired");
    let mut per_worker = [0; 3];
    for by in fired_by.values() {
        per_worker[by[0]] += 1;
    }
    println!("ticks fired per worker: {per_worker:?}");

    for worker in workers {
        worker.kill().await;
    }
}

fn scheduled_runs() -> RunFilter {
    RunFilter::default().workflow("scheduled").limit(1000)
}

/// The tick in a workflow id `schedule:<name>:<tick>`.
fn tick_of(workflow_id: &str) -> DateTime<Utc> {
    let tick = workflow_id
        .strip_prefix(&format!("schedule:{NAME}:"))
        .unwrap_or_else(|| panic!("not a tick of {NAME}: {workflow_id}"));
    tick.parse().unwrap()
}

/// The value of `name` (e.g. `tick=`) in a log line.
fn field(line: &str, name: &str) -> String {
    let start = line.find(name).expect("the field is logged") + name.len();
    line[start..]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

async fn the_client_declares_pauses_lists_and_deletes_schedules(store: Arc<dyn Store>) {
    let client = Client::from_arc(store);
    let no_cron = client
        .schedule("report")
        .start(scheduled, "x".to_owned())
        .await
        .unwrap_err();
    assert!(matches!(no_cron, Error::Invalid(_)), "{no_cron:?}");
    assert!(no_cron.to_string().contains(".cron("), "{no_cron}");

    let bad_zone = client
        .schedule("report")
        .cron("0 9 * * *")
        .timezone("Paris")
        .start(scheduled, "x".to_owned())
        .await
        .unwrap_err();
    assert!(
        bad_zone.to_string().contains("time zone `Paris`"),
        "{bad_zone}"
    );

    let saved = client
        .schedule("report")
        .cron("0 9 * * MON-FRI")
        .timezone("Europe/Paris")
        .catch_up(CatchUp::Skip)
        .start(scheduled, "weekday".to_owned())
        .await
        .unwrap();
    assert_eq!(saved.name, "report");
    assert_eq!(saved.workflow_name, "scheduled");
    assert_eq!(saved.input, serde_json::json!("weekday"));
    assert_eq!(saved.catch_up, CatchUp::Skip);
    assert!(saved.next_fire_at.is_some());

    assert!(client.pause_schedule("report").await.unwrap().paused);
    assert!(client.get_schedule("report").await.unwrap().paused);
    assert!(!client.resume_schedule("report").await.unwrap().paused);
    let listed = client.list_schedules().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, saved.id);

    assert!(client.delete_schedule("report").await.unwrap());
    assert!(!client.delete_schedule("report").await.unwrap());
    for missing in [
        client.get_schedule("report").await,
        client.pause_schedule("report").await,
        client.resume_schedule("report").await,
    ] {
        assert!(
            matches!(&missing, Err(Error::ScheduleNotFound(name)) if name == "report"),
            "{missing:?}"
        );
    }
}

mod postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_tick_fires_once_across_three_workers() {
        let db = TestDb::new().await;
        let store = Arc::new(db.store().await);
        super::every_tick_fires_once_across_three_workers(db.url.clone(), store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_client_declares_pauses_lists_and_deletes_schedules() {
        let db = TestDb::new().await;
        super::the_client_declares_pauses_lists_and_deletes_schedules(Arc::new(db.store().await))
            .await;
    }
}

mod sqlite {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_tick_fires_once_across_three_workers() {
        let file = SqliteFile::new();
        let store = Arc::new(file.store().await);
        super::every_tick_fires_once_across_three_workers(file.url(), store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_client_declares_pauses_lists_and_deletes_schedules() {
        let file = SqliteFile::new();
        super::the_client_declares_pauses_lists_and_deletes_schedules(Arc::new(file.store().await))
            .await;
    }
}
