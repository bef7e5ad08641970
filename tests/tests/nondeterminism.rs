//! Non-determinism: running a recorded history against code whose activities come in another
//! order parks the run with a message naming both steps and the position.

use std::time::Duration;

use durable::prelude::*;
use durable_tests::{TestDb, init_tracing};

#[durable::activity]
async fn reserve(_ctx: &ActivityCtx) -> Result<u32, ActivityError> {
    Ok(1)
}

#[durable::activity]
async fn charge(_ctx: &ActivityCtx) -> Result<u32, ActivityError> {
    Ok(2)
}

/// Version 1: reserve, wait, charge.
#[durable::workflow(name = "order")]
async fn order_v1(ctx: &WorkflowCtx) -> Result<u32, WorkflowError> {
    let a = reserve(ctx).await?;
    ctx.sleep(Duration::from_secs(3600)).await?;
    Ok(a + charge(ctx).await?)
}

/// The same workflow after a careless edit: charge first.
#[durable::workflow(name = "order")]
async fn order_v2(ctx: &WorkflowCtx) -> Result<u32, WorkflowError> {
    let b = charge(ctx).await?;
    ctx.sleep(Duration::from_secs(3600)).await?;
    Ok(b + reserve(ctx).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_activities_park_the_run_with_a_clear_message() {
    init_tracing();
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let handle = client.start(order_v1, ()).await.unwrap();

    let v1 = durable_worker::Worker::builder(db.store().await)
        .register(order_v1)
        .poll_interval(Duration::from_millis(100))
        .build();
    let stop = v1.shutdown_token();
    let task = tokio::spawn(v1.run());
    durable_tests::wait::until(
        "v1 to record reserve and sleep",
        Duration::from_secs(10),
        || async {
            let info = client.get(handle.id()).await.unwrap();
            (info.status == RunStatus::Sleeping).then_some(())
        },
    )
    .await;
    stop.cancel();
    task.await.unwrap().unwrap();

    // Make the timer due now, then let the new code pick the run up.
    let sql = db.client().await;
    sql.execute(
        "UPDATE durable.runs SET wake_at = now() WHERE id = $1",
        &[&handle.id().0],
    )
    .await
    .unwrap();
    let v2 = durable_worker::Worker::builder(db.store().await)
        .register(order_v2)
        .poll_interval(Duration::from_millis(100))
        .build();
    let stop = v2.shutdown_token();
    let task = tokio::spawn(v2.run());
    let err = handle
        .result_timeout(Duration::from_secs(10))
        .await
        .unwrap_err();
    stop.cancel();
    task.await.unwrap().unwrap();

    let durable::Error::RunParked { reason, .. } = err else {
        panic!("expected parked, got {err:?}")
    };
    println!("{reason}");
    assert!(reason.contains("non-determinism at step 0"), "{reason}");
    assert!(reason.contains("activity `reserve`"), "{reason}");
    assert!(reason.contains("activity `charge`"), "{reason}");
    // Nothing of the new code was recorded.
    let steps = client.steps(handle.id()).await.unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].name, "reserve");
}
