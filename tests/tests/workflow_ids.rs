//! Workflow ids are bounded by the engine, the same way on both stores: an over-long id is
//! the caller's mistake ([`Error::Invalid`]), never a database error (Postgres's unique
//! index refuses entries over 2,704 bytes; SQLite would have taken it).

use std::sync::Arc;

use durable::prelude::*;
use durable::{Error, Store, workflow_id};
use durable_tests::incompressible;
use durable_tests::workflows::sleeper;

async fn an_over_long_workflow_id_is_invalid_on_start_and_fork(store: Arc<dyn Store>) {
    let client = Client::from_arc(store);
    let too_long = incompressible(2800);
    let started = client.start(sleeper, 1).id(too_long.clone()).await;
    assert!(matches!(started, Err(Error::Invalid(_))), "{started:?}");
    for bad in ["", "a\0b"] {
        let started = client.start(sleeper, 1).id(bad).await;
        assert!(
            matches!(started, Err(Error::Invalid(_))),
            "{bad:?}: {started:?}"
        );
    }

    // The longest id fits both stores' indexes.
    let longest = incompressible(workflow_id::MAX_BYTES);
    let run = client.start(sleeper, 1).id(longest.clone()).await.unwrap();
    assert_eq!(client.get(run.id()).await.unwrap().workflow_id, longest);

    let forked = client.fork(run.id(), 0).id(too_long).await;
    assert!(matches!(forked, Err(Error::Invalid(_))), "{forked:?}");
}

durable_tests::on_both_stores! {
    an_over_long_workflow_id_is_invalid_on_start_and_fork,
}
