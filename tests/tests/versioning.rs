//! Versioning, on both stores: `ctx.patched` keeps runs recorded before a change on the old
//! path while new runs take the new one, and the replay check finds reordered, added and
//! missing steps and changed outputs without running an activity or writing to the store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use durable::prelude::*;
use durable::runtime::{DynWorkflow, Mismatch, ReplayReport, StepRef, erase, replay_check};
use durable::{RunFilter, StepKind, Store};
use durable_tests::{init_tracing, wait, with_worker_using};

const DEADLINE: Duration = Duration::from_secs(20);

/// Every activity execution, as `tag/activity`; each test body uses a tag of its own.
static EXECUTIONS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn record(tag: &str, activity: &str) -> String {
    let mut executions = EXECUTIONS.lock().unwrap_or_else(|e| e.into_inner());
    executions.push(format!("{tag}/{activity}"));
    activity.to_owned()
}

/// The activities executed for `tag`, in order.
fn executed(tag: &str) -> Vec<String> {
    let prefix = format!("{tag}/");
    let executions = EXECUTIONS.lock().unwrap_or_else(|e| e.into_inner());
    executions
        .iter()
        .filter_map(|e| e.strip_prefix(&prefix).map(str::to_owned))
        .collect()
}

fn new_tag() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[durable::activity]
async fn reserve(_ctx: &ActivityCtx, tag: &str) -> Result<String, ActivityError> {
    Ok(record(tag, "reserve"))
}

#[durable::activity]
async fn charge(_ctx: &ActivityCtx, tag: &str) -> Result<String, ActivityError> {
    Ok(record(tag, "charge"))
}

#[durable::activity]
async fn notify(_ctx: &ActivityCtx, tag: &str) -> Result<String, ActivityError> {
    Ok(record(tag, "notify"))
}

#[durable::activity]
async fn ship_standard(_ctx: &ActivityCtx, tag: &str) -> Result<String, ActivityError> {
    Ok(record(tag, "ship_standard"))
}

#[durable::activity]
async fn ship_express(_ctx: &ActivityCtx, tag: &str) -> Result<String, ActivityError> {
    Ok(record(tag, "ship_express"))
}

/// The code the runs of the replay-check tests are recorded with.
#[durable::workflow(name = "order")]
async fn order_a(ctx: &WorkflowCtx, tag: String) -> Result<Vec<String>, WorkflowError> {
    Ok(vec![reserve(ctx, &tag).await?, charge(ctx, &tag).await?])
}

/// The same activities in another order.
#[durable::workflow(name = "order")]
async fn order_b(ctx: &WorkflowCtx, tag: String) -> Result<Vec<String>, WorkflowError> {
    let charged = charge(ctx, &tag).await?;
    Ok(vec![reserve(ctx, &tag).await?, charged])
}

/// One more activity after the recorded ones.
#[durable::workflow(name = "order")]
async fn order_c(ctx: &WorkflowCtx, tag: String) -> Result<Vec<String>, WorkflowError> {
    let mut steps = vec![reserve(ctx, &tag).await?, charge(ctx, &tag).await?];
    steps.push(notify(ctx, &tag).await?);
    Ok(steps)
}

/// One activity fewer: it finishes with history left over.
#[durable::workflow(name = "order")]
async fn order_d(ctx: &WorkflowCtx, tag: String) -> Result<Vec<String>, WorkflowError> {
    Ok(vec![reserve(ctx, &tag).await?])
}

/// The same steps, another output.
#[durable::workflow(name = "order")]
async fn order_e(ctx: &WorkflowCtx, tag: String) -> Result<Vec<String>, WorkflowError> {
    let reserved = reserve(ctx, &tag).await?;
    Ok(vec![charge(ctx, &tag).await?, reserved])
}

/// Before the change: standard shipping only. The sleep (longer than the worker's 1 s inline
/// wait) is a durable timer, so a run can be resumed by other code.
#[durable::workflow(name = "shipping")]
async fn shipping_v1(ctx: &WorkflowCtx, tag: String) -> Result<String, WorkflowError> {
    reserve(ctx, &tag).await?;
    ctx.sleep(Duration::from_secs(2)).await?;
    Ok(ship_standard(ctx, &tag).await?)
}

/// After the change: express shipping, for runs that did not start before it.
#[durable::workflow(name = "shipping")]
async fn shipping_v2(ctx: &WorkflowCtx, tag: String) -> Result<String, WorkflowError> {
    let express = ctx.patched("express-shipping").await?;
    reserve(ctx, &tag).await?;
    ctx.sleep(Duration::from_secs(2)).await?;
    let again = ctx.patched("express-shipping").await?;
    let shipped = match express {
        true => ship_express(ctx, &tag).await?,
        false => ship_standard(ctx, &tag).await?,
    };
    Ok(format!("{shipped} (patched: {express}, then {again})"))
}

fn code<W: Workflow>(workflow: W) -> Vec<Arc<dyn DynWorkflow>> {
    vec![Arc::from(erase(workflow))]
}

/// Records `n` completed runs of [`order_a`] with `tag`.
async fn record_orders(store: &Arc<dyn Store>, tag: &str, n: usize) -> Vec<RunId> {
    let client = Client::from_arc(store.clone());
    let mut handles = Vec::new();
    for _ in 0..n {
        handles.push(client.start(order_a, tag.to_owned()).await.unwrap());
    }
    with_worker_using(
        store.clone(),
        |w| w.register(order_a),
        |_| async {
            for handle in &handles {
                handle.result_timeout(DEADLINE).await.unwrap();
            }
        },
    )
    .await;
    handles.iter().map(|h| h.id()).collect()
}

async fn check<W: Workflow>(store: &Arc<dyn Store>, workflow: W) -> ReplayReport {
    let report = replay_check(store.clone(), &code(workflow), RunFilter::default())
        .await
        .unwrap();
    println!("{report}");
    report
}

fn activity(name: &str) -> StepRef {
    StepRef::new(StepKind::Activity, name)
}

async fn patched_keeps_old_runs_on_the_old_path(store: Arc<dyn Store>) {
    init_tracing();
    let client = Client::from_arc(store.clone());
    let (old_tag, new_tag) = (new_tag(), new_tag());
    let old = client.start(shipping_v1, old_tag.clone()).await.unwrap();
    with_worker_using(
        store.clone(),
        |w| w.register(shipping_v1),
        |_| {
            wait::until("the old run to sleep", DEADLINE, || async {
                let info = client.get(old.id()).await.unwrap();
                (info.status == RunStatus::Sleeping).then_some(())
            })
        },
    )
    .await;

    // Deploy the new code: the old run resumes on it, and a new run starts on it.
    let new = client.start(shipping_v2, new_tag.clone()).await.unwrap();
    let (old_out, new_out) = with_worker_using(
        store.clone(),
        |w| w.register(shipping_v2),
        |_| async {
            let old_out = old.result_timeout(DEADLINE).await.unwrap();
            (old_out, new.result_timeout(DEADLINE).await.unwrap())
        },
    )
    .await;
    assert_eq!(old_out, "ship_standard (patched: false, then false)");
    assert_eq!(new_out, "ship_express (patched: true, then true)");
    assert_eq!(executed(&old_tag), ["reserve", "ship_standard"]);
    assert_eq!(executed(&new_tag), ["reserve", "ship_express"]);

    let old_steps = client.steps(old.id()).await.unwrap();
    assert!(old_steps.iter().all(|s| s.kind != StepKind::Patch));
    let new_steps = client.steps(new.id()).await.unwrap();
    let kinds: Vec<_> = new_steps.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            StepKind::Patch,
            StepKind::Activity,
            StepKind::Sleep,
            StepKind::Activity
        ],
        "one marker, recorded where the change was first met"
    );
    assert_eq!(
        (new_steps[0].seq, &*new_steps[0].name),
        (0, "express-shipping")
    );

    // Both histories replay on the new code; the code without the patch cannot replay the
    // run that recorded its marker.
    let report = check(&store, shipping_v2).await;
    assert_eq!((report.runs_checked, report.runs_diverged()), (2, 0));
    let report = check(&store, shipping_v1).await;
    let on_new = report.divergences.iter().find(|d| d.run_id == new.id());
    let on_new = on_new.expect("the run with the marker diverges on the old code");
    assert_eq!(
        on_new.mismatch,
        Mismatch::Step {
            seq: 0,
            recorded: StepRef::new(StepKind::Patch, "express-shipping"),
            asked: activity("reserve"),
        }
    );
}

async fn replay_check_catches_a_reordered_activity(store: Arc<dyn Store>) {
    init_tracing();
    let tag = new_tag();
    let runs = record_orders(&store, &tag, 2).await;

    let report = check(&store, order_b).await;
    assert_eq!((report.runs_checked, report.runs_diverged()), (2, 2));
    for divergence in &report.divergences {
        assert!(runs.contains(&divergence.run_id));
        assert_eq!(divergence.workflow, "order");
        assert_eq!(
            divergence.mismatch,
            Mismatch::Step {
                seq: 0,
                recorded: activity("reserve"),
                asked: activity("charge"),
            }
        );
    }
    let text = report.to_string();
    assert!(text.starts_with("2 runs replayed, 2 diverged:"), "{text}");
    assert!(
        text.contains("at step 0 the history records activity `reserve`, but the code asks for activity `charge`"),
        "{text}"
    );

    let report = check(&store, order_a).await;
    assert_eq!((report.runs_checked, report.runs_diverged()), (2, 0));
    assert_eq!(report.to_string(), "2 runs replayed, no divergence");
}

async fn replay_check_runs_no_activity_and_writes_nothing(store: Arc<dyn Store>) {
    init_tracing();
    let tag = new_tag();
    let runs = record_orders(&store, &tag, 2).await;
    let client = Client::from_arc(store.clone());
    let mut before = Vec::new();
    for run in &runs {
        before.push((
            client.get(*run).await.unwrap(),
            client.steps(*run).await.unwrap(),
        ));
    }
    let executions = executed(&tag);
    assert_eq!(executions.len(), 4, "{executions:?}");

    let diverged = [
        check(&store, order_a).await.runs_diverged(),
        check(&store, order_b).await.runs_diverged(),
        check(&store, order_c).await.runs_diverged(),
        check(&store, order_d).await.runs_diverged(),
        check(&store, order_e).await.runs_diverged(),
    ];
    assert_eq!(diverged, [0, 2, 2, 2, 2]);

    assert_eq!(executed(&tag), executions, "no activity ran");
    for (run, before) in runs.iter().zip(before) {
        let after = (
            client.get(*run).await.unwrap(),
            client.steps(*run).await.unwrap(),
        );
        assert_eq!(after, before, "run {run} is unchanged");
    }
}

async fn replay_check_reports_an_extra_step_without_running_it(store: Arc<dyn Store>) {
    init_tracing();
    let tag = new_tag();
    let runs = record_orders(&store, &tag, 1).await;

    let report = check(&store, order_c).await;
    assert_eq!((report.runs_checked, report.runs_diverged()), (1, 1));
    let divergence = &report.divergences[0];
    assert_eq!(divergence.run_id, runs[0]);
    assert_eq!(
        divergence.mismatch,
        Mismatch::NewStep {
            seq: 2,
            asked: activity("notify"),
        }
    );
    assert_eq!(divergence.mismatch.seq(), Some(2));
    assert!(report.to_string().contains("not run"), "{report}");
    assert_eq!(executed(&tag), ["reserve", "charge"], "notify never ran");
    assert_eq!(
        client_steps(&store, runs[0]).await,
        2,
        "nothing was recorded"
    );
}

async fn replay_check_reports_a_run_that_ends_early_or_otherwise(store: Arc<dyn Store>) {
    init_tracing();
    let tag = new_tag();
    record_orders(&store, &tag, 1).await;

    let report = check(&store, order_d).await;
    assert_eq!(
        report.divergences[0].mismatch,
        Mismatch::Unreplayed {
            seq: 1,
            recorded: activity("charge"),
        }
    );
    let report = check(&store, order_e).await;
    assert_eq!(
        report.divergences[0].mismatch,
        Mismatch::Outcome {
            recorded: r#"output ["reserve","charge"]"#.to_owned(),
            replayed: r#"output ["charge","reserve"]"#.to_owned(),
        }
    );
    assert_eq!(executed(&tag), ["reserve", "charge"]);
}

async fn client_steps(store: &Arc<dyn Store>, run: RunId) -> usize {
    Client::from_arc(store.clone())
        .steps(run)
        .await
        .unwrap()
        .len()
}

durable_tests::on_both_stores! {
    patched_keeps_old_runs_on_the_old_path,
    replay_check_catches_a_reordered_activity,
    replay_check_runs_no_activity_and_writes_nothing,
    replay_check_reports_an_extra_step_without_running_it,
    replay_check_reports_a_run_that_ends_early_or_otherwise,
}
