//! A value the database can never store (Postgres refuses a NUL character inside `jsonb`)
//! parks its run with the database's reason, instead of being retried for as long as the
//! lease holds. Steps recorded before it stay recorded.

use std::sync::Arc;
use std::time::Duration;

use durable::prelude::*;
use durable::{Error, Store};
use durable_tests::{TestDb, init_tracing, while_working, worker_on};

#[durable::activity(name = "refused_greeting")]
async fn greeting(_ctx: &ActivityCtx, with_nul: bool) -> Result<String, ActivityError> {
    Ok(match with_nul {
        true => "hello \u{0} world".to_owned(),
        false => "hello".to_owned(),
    })
}

#[durable::workflow(name = "refused_value")]
async fn refused_value(ctx: &WorkflowCtx, _input: ()) -> Result<String, WorkflowError> {
    let first = greeting(ctx, false).await?;
    let second = greeting(ctx, true).await?;
    Ok(format!("{first} / {second}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_postgres_cannot_store_parks_the_run() {
    let db = TestDb::new().await;
    let store: Arc<dyn Store> = Arc::new(db.store().await);
    init_tracing();
    let client = Client::from_arc(store.clone());
    let worker = worker_on(store).register(refused_value);
    while_working(worker, async {
        let handle = client.start(refused_value, ()).await.unwrap();
        let outcome = handle.result_timeout(Duration::from_secs(30)).await;
        let Err(Error::RunParked { reason, .. }) = outcome else {
            panic!("expected the run to be parked, got {outcome:?}");
        };
        assert!(reason.contains("the database refused"), "{reason}");
        assert!(
            reason.contains("22P05"),
            "the database's own code: {reason}"
        );
        assert!(!reason.contains('\u{0}'), "the refused value is not echoed");

        let steps = client.steps(handle.id()).await.unwrap();
        let outputs: Vec<_> = steps.iter().map(|s| s.output.clone()).collect();
        assert_eq!(outputs, vec![Some(serde_json::json!("hello"))], "{steps:?}");
    })
    .await;
}
