//! `/v1/runs` over a real server with a real worker: start, read with steps, list with
//! filters, cancel, fork; each confined to the key's workspace.

mod common;

use std::time::Duration;

use common::{Tenant, TestServer, json, problem};
use durable_server::dev;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

with_server_on_both_stores!(
    a_started_run_completes_and_shows_its_steps,
    starting_with_the_same_workflow_id_returns_the_same_run,
    runs_are_listed_with_filters_and_only_in_their_workspace,
    unknown_workflows_and_bad_filters_are_clear_errors,
    a_completed_run_can_be_forked_from_a_step,
    workflow_ids_in_the_engines_namespaces_are_refused,
    page_sizes_are_one_to_a_thousand,
);

/// Runs a worker for the dev workflows until the returned token is cancelled.
fn spawn_worker(server: &TestServer) -> CancellationToken {
    let worker = durable_worker::Worker::builder_arc(server.backend.runs.clone())
        .register(dev::hello_hook)
        .poll_interval(Duration::from_millis(50))
        .build();
    let stop = worker.shutdown_token();
    tokio::spawn(worker.run());
    stop
}

fn event(delivery: &str) -> Value {
    json!({"hook_id": uuid::Uuid::nil(), "delivery_id": delivery, "payload": {"a": 1, "b": 2}})
}

async fn start(server: &TestServer, tenant: &Tenant, body: Value, status: u16) -> String {
    let started = json(server.post(&tenant.key, "/v1/runs", &body).await, status).await;
    started["id"].as_str().unwrap().to_owned()
}

/// Polls the run until it has finished, or fails the test after 20 s.
async fn finished(server: &TestServer, tenant: &Tenant, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let run = json(
            server.get(&tenant.key, &format!("/v1/runs/{id}")).await,
            200,
        )
        .await;
        if ["completed", "failed", "cancelled", "parked"].contains(&run["status"].as_str().unwrap())
        {
            return run;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run did not finish: {run}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_started_run_completes_and_shows_its_steps(server: TestServer) {
    let _worker = spawn_worker(&server).drop_guard();
    let a = server.tenant().await;
    let body = json!({"workflow": "hello_hook", "input": event("d1")});
    let id = start(&server, &a, body, 201).await;
    let run = finished(&server, &a, &id).await;
    assert_eq!(run["status"], "completed");
    assert_eq!(run["output"], "delivery d1 carried 2 top-level field(s)");
    let steps = run["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0]["name"], "describe_payload");
    assert_eq!(steps[0]["status"], "completed");
}

async fn starting_with_the_same_workflow_id_returns_the_same_run(server: TestServer) {
    let a = server.tenant().await;
    let body = json!({"workflow": "hello_hook", "input": event("d"), "workflow_id": "order-42"});
    let first = start(&server, &a, body.clone(), 201).await;
    let again = start(&server, &a, body, 200).await;
    assert_eq!(first, again);
    let other_input =
        json!({"workflow": "hello_hook", "input": event("x"), "workflow_id": "order-42"});
    let conflict = server.post(&a.key, "/v1/runs", &other_input).await;
    problem(conflict, 409, "workflow-id-conflict").await;
}

async fn runs_are_listed_with_filters_and_only_in_their_workspace(server: TestServer) {
    let a = server.tenant().await;
    let b = server.tenant().await;
    for n in 0..3 {
        let body = json!({"workflow": "hello_hook", "input": event(&format!("d{n}"))});
        start(&server, &a, body, 201).await;
    }
    let all = json(server.get(&a.key, "/v1/runs").await, 200).await;
    assert_eq!(all.as_array().unwrap().len(), 3);
    let limited = json(server.get(&a.key, "/v1/runs?limit=2").await, 200).await;
    assert_eq!(limited.as_array().unwrap().len(), 2);
    let pending = json(
        server
            .get(&a.key, "/v1/runs?status=pending&workflow=hello_hook")
            .await,
        200,
    )
    .await;
    assert_eq!(pending.as_array().unwrap().len(), 3);
    let done = json(server.get(&a.key, "/v1/runs?status=completed").await, 200).await;
    assert_eq!(done, json!([]));
    let future = json(
        server
            .get(&a.key, "/v1/runs?created_after=2999-01-01T00:00:00Z")
            .await,
        200,
    )
    .await;
    assert_eq!(future, json!([]));

    assert_eq!(
        json(server.get(&b.key, "/v1/runs").await, 200).await,
        json!([])
    );
    let id = all[0]["id"].as_str().unwrap();
    problem(
        server.get(&b.key, &format!("/v1/runs/{id}")).await,
        404,
        "not-found",
    )
    .await;
    let cancel = server
        .post(&b.key, &format!("/v1/runs/{id}/cancel"), &json!({}))
        .await;
    problem(cancel, 404, "not-found").await;
    let fork = server
        .post(
            &b.key,
            &format!("/v1/runs/{id}/fork"),
            &json!({"from_seq": 0}),
        )
        .await;
    problem(fork, 404, "not-found").await;

    let cancelled = server
        .post(&a.key, &format!("/v1/runs/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(json(cancelled, 200).await["status"], "cancelled");
}

async fn unknown_workflows_and_bad_filters_are_clear_errors(server: TestServer) {
    let a = server.tenant().await;
    let unknown = server
        .post(&a.key, "/v1/runs", &json!({"workflow": "nope"}))
        .await;
    let body = problem(unknown, 422, "unknown-workflow").await;
    assert!(body["detail"].as_str().unwrap().contains("hello_hook"));
    problem(
        server.get(&a.key, "/v1/runs?status=sideways").await,
        400,
        "invalid-query",
    )
    .await;
    problem(
        server.get(&a.key, "/v1/runs?created_after=yesterday").await,
        400,
        "invalid-query",
    )
    .await;
    let workflows = json(server.get(&a.key, "/v1/workflows").await, 200).await;
    let names: Vec<_> = workflows
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].clone())
        .collect();
    assert_eq!(names, vec!["connector.action", "hello_hook"]);
}

async fn a_completed_run_can_be_forked_from_a_step(server: TestServer) {
    let _worker = spawn_worker(&server).drop_guard();
    let a = server.tenant().await;
    let body = json!({"workflow": "hello_hook", "input": event("orig")});
    let id = start(&server, &a, body, 201).await;
    finished(&server, &a, &id).await;
    // From step 1 with a new input: step 0 is copied, so its recorded result (made from the
    // original input) is what the fork returns; it was not run again.
    let copied = json!({"from_seq": 1, "input": event("new")});
    let forked = json(
        server
            .post(&a.key, &format!("/v1/runs/{id}/fork"), &copied)
            .await,
        201,
    )
    .await;
    let run = finished(&server, &a, forked["id"].as_str().unwrap()).await;
    assert_eq!(run["forked_from"], id);
    assert_eq!(run["output"], "delivery orig carried 2 top-level field(s)");
    // From step 0: everything runs again, on the new input.
    let rerun = json!({"from_seq": 0, "input": event("new")});
    let forked = json(
        server
            .post(&a.key, &format!("/v1/runs/{id}/fork"), &rerun)
            .await,
        201,
    )
    .await;
    let run = finished(&server, &a, forked["id"].as_str().unwrap()).await;
    assert_eq!(run["output"], "delivery new carried 2 top-level field(s)");
}

async fn workflow_ids_in_the_engines_namespaces_are_refused(server: TestServer) {
    let a = server.tenant().await;
    let child = format!("{}:3", uuid::Uuid::now_v7());
    for (id, namespace) in [
        ("hook:x:y", "`hook:`"),
        ("schedule:nightly:2025-01-15T08:00:00Z", "`schedule:`"),
        ("trigger:t", "`trigger:`"),
        (child.as_str(), "`<run id>:<step>`"),
    ] {
        let body = json!({"workflow": "hello_hook", "input": event(id), "workflow_id": id});
        let refused = server.post(&a.key, "/v1/runs", &body).await;
        let refused = problem(refused, 422, "reserved-workflow-id").await;
        assert_eq!(refused["field"], "workflow_id");
        let detail = refused["detail"].as_str().unwrap();
        assert!(detail.contains(&format!("{namespace},")), "{detail}");
    }
    // Near misses are a client's to take.
    for id in ["hooks:x", "Hook:x", "order:3", "schedule-x"] {
        let body = json!({"workflow": "hello_hook", "input": event(id), "workflow_id": id});
        start(&server, &a, body, 201).await;
    }
}

async fn page_sizes_are_one_to_a_thousand(server: TestServer) {
    let a = server.tenant().await;
    for path in ["/v1/runs", "/v1/audit"] {
        for limit in [0, 1001] {
            let refused = server.get(&a.key, &format!("{path}?limit={limit}")).await;
            let refused = problem(refused, 400, "invalid-query").await;
            assert_eq!(refused["field"], "limit");
            let detail = refused["detail"].as_str().unwrap();
            assert!(detail.contains("1 to 1000"), "{detail}");
        }
        for limit in [1, 1000] {
            json(
                server.get(&a.key, &format!("{path}?limit={limit}")).await,
                200,
            )
            .await;
        }
    }
}

/// On Postgres the run endpoints reach the run tables as the tenant role: a policy that
/// hides every run from it hides them from the API, while the rows are still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_endpoints_run_under_row_level_security() {
    let server = TestServer::postgres().await;
    let tenant = server.tenant().await;
    let body = json!({"workflow": "hello_hook", "input": event("rls")});
    let id = start(&server, &tenant, body, 201).await;
    let path = format!("/v1/runs/{id}");
    json(server.get(&tenant.key, &path).await, 200).await;

    let admin = server.db.as_ref().unwrap().client().await;
    admin
        .batch_execute("ALTER POLICY tenant_scope ON durable.runs USING (false)")
        .await
        .unwrap();
    problem(server.get(&tenant.key, &path).await, 404, "not-found").await;
    let listed = json(server.get(&tenant.key, "/v1/runs").await, 200).await;
    assert_eq!(listed, json!([]));
    let rows: i64 = admin
        .query_one("SELECT count(*) FROM durable.runs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1, "the run is there, hidden by the policy alone");
}
