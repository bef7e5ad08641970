//! SQLite-only store behaviour: several stores (separate connections, as separate processes
//! would have) on one file claim atomically and fence each other.

use std::sync::Arc;
use std::time::Duration;

use durable::store::{Checkpoint, ClaimRequest, NewRun, Transition};
use durable::{Error, RunId, RunStatus, SqliteStore, Store, WorkspaceId};
use durable_tests::conformance::SqliteFile;

fn request(worker: &str, lease_ttl: Duration) -> ClaimRequest {
    ClaimRequest {
        worker_id: worker.to_owned(),
        workflows: vec!["shared".to_owned()],
        limit: 3,
        lease_ttl,
        running: Vec::new(),
    }
}

async fn start_runs(store: &SqliteStore, count: usize) -> Vec<RunId> {
    let mut ids = Vec::new();
    for i in 0..count {
        let run = NewRun {
            id: RunId::new(),
            workspace_id: WorkspaceId::DEFAULT,
            workflow_id: format!("run-{i}"),
            workflow_name: "shared".to_owned(),
            workflow_version: 1,
            input: serde_json::json!(i),
            max_claims: 3,
            parent_run_id: None,
            timeout: None,
        };
        ids.push(store.start_run(run).await.unwrap().id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_on_one_file_claim_each_run_once() {
    let file = SqliteFile::new();
    let stores: Vec<Arc<SqliteStore>> = vec![
        Arc::new(file.store().await),
        Arc::new(file.store().await),
        Arc::new(file.store().await),
    ];
    let mut started = start_runs(&stores[0], 60).await;
    let claimers: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(i, store)| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = store
                        .claim(&request(&format!("w{i}"), Duration::from_secs(60)))
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|c| c.info.id));
                }
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for claimer in claimers {
        claimed.extend(claimer.await.unwrap());
    }
    claimed.sort();
    started.sort();
    assert_eq!(
        claimed, started,
        "each run claimed exactly once across the connections"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_taken_over_through_another_connection_fences_the_first() {
    let file = SqliteFile::new();
    let (a, b) = (file.store().await, file.store().await);
    let id = start_runs(&a, 1).await[0];
    let old = a
        .claim(&request("a", Duration::from_millis(1)))
        .await
        .unwrap()[0]
        .lease;
    let new =
        durable_tests::wait::until("the lease to expire", Duration::from_secs(10), || async {
            b.claim(&request("b", Duration::from_secs(60)))
                .await
                .unwrap()
                .into_iter()
                .next()
        })
        .await
        .lease;
    assert_eq!(new.epoch, old.epoch + 1);

    let stale = Checkpoint::transition(
        old,
        Transition::Complete {
            output: serde_json::json!("zombie"),
        },
        Duration::from_secs(60),
    );
    assert!(matches!(a.checkpoint(stale).await, Err(Error::LeaseLost(r)) if r == id));
    let info = b.get_run(WorkspaceId::DEFAULT, id).await.unwrap().unwrap();
    assert_eq!((info.status, info.output), (RunStatus::Running, None));
}
