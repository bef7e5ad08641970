//! `/v1/connectors` over a real server: the catalog, installing a packaged JavaScript
//! connector into a running worker without a restart, immutable versions, and packages
//! refused with every problem named.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{Tenant, TestServer, json, problem};
use durable_connectors::{ActionWorkflow, HttpPolicy};
use durable_server::connectors::{ConnectorSettings, connectors, install_at_start};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

with_server_on_both_stores!(
    the_catalog_lists_the_builtins_and_the_workspaces_own_connectors,
    an_installed_package_runs_as_a_durable_step_without_a_restart,
    an_output_that_fails_its_schema_fails_the_step,
    a_published_version_never_changes,
    invalid_packages_are_refused_with_every_problem_named,
);

/// The example package, as an upload.
fn notes_upload() -> Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/connectors/notes");
    let package = durable_connectors::Package::load_dir(&dir).unwrap();
    json!({ "manifest": package.manifest_json(), "files": package.files() })
}

/// A worker whose connectors call `notes` at `fake`, until the token is cancelled.
async fn spawn_worker(server: &TestServer, fake: &str) -> CancellationToken {
    let settings = ConnectorSettings {
        http: HttpPolicy {
            allow_loopback: true,
            ..HttpPolicy::default()
        },
        base_urls: vec![("notes".to_owned(), fake.to_owned())],
        ..ConnectorSettings::default()
    };
    let connectors = connectors(&server.backend.control, &settings);
    install_at_start(&server.backend.control, &connectors, &[])
        .await
        .unwrap();
    let worker = durable_worker::Worker::builder_arc(server.backend.runs.clone())
        .register_dyn(Arc::new(ActionWorkflow::new(connectors)))
        .poll_interval(Duration::from_millis(50))
        .build();
    let stop = worker.shutdown_token();
    tokio::spawn(worker.run());
    stop
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
        let status = run["status"].as_str().unwrap();
        if ["completed", "failed", "cancelled", "parked"].contains(&status) {
            return run;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run did not finish: {run}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn start_create_note(server: &TestServer, tenant: &Tenant, title: &str) -> String {
    let body = json!({ "workflow": "connector.action", "input": {
        "connector": "notes", "version": "0.1.0", "action": "create_note",
        "input": { "title": title } } });
    let started = json(server.post(&tenant.key, "/v1/runs", &body).await, 201).await;
    started["id"].as_str().unwrap().to_owned()
}

async fn the_catalog_lists_the_builtins_and_the_workspaces_own_connectors(server: TestServer) {
    let _worker = spawn_worker(&server, "http://127.0.0.1:9")
        .await
        .drop_guard();
    let a = server.tenant().await;
    let b = server.tenant().await;
    json(
        server.post(&a.key, "/v1/connectors", &notes_upload()).await,
        201,
    )
    .await;

    let names = |catalog: &Value| -> Vec<(String, String)> {
        let mut names: Vec<_> = catalog
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_owned(),
                    c["owner"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        names.sort();
        names
    };
    let of_a = json(server.get(&a.key, "/v1/connectors").await, 200).await;
    let global = |n: &str| (n.to_owned(), "global".to_owned());
    let own = ("notes".to_owned(), "workspace".to_owned());
    assert_eq!(
        names(&of_a),
        vec![global("github"), global("http"), own, global("slack")]
    );
    let of_b = json(server.get(&b.key, "/v1/connectors").await, 200).await;
    assert_eq!(
        names(&of_b),
        vec![global("github"), global("http"), global("slack")]
    );

    let github = json(server.get(&b.key, "/v1/connectors/github/0.1.0").await, 200).await;
    let actions: Vec<_> = github["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].clone())
        .collect();
    assert_eq!(actions, vec![json!("add_comment"), json!("create_issue")]);
    assert_eq!(
        github["actions"][1]["input_schema"]["required"],
        json!(["owner", "repo", "title"])
    );
    let hidden = server.get(&b.key, "/v1/connectors/notes/0.1.0").await;
    problem(hidden, 404, "not-found").await;

    let schema = server.request(
        reqwest::Method::GET,
        "/v1/schemas/connector-manifest.json",
        None,
    );
    let schema = json(schema.send().await.unwrap(), 200).await;
    let published: Value =
        serde_json::from_str(include_str!("../../connectors/manifest.schema.json")).unwrap();
    assert_eq!(schema, published);
}

async fn an_installed_package_runs_as_a_durable_step_without_a_restart(server: TestServer) {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/notes"))
        .and(header_exists("idempotency-key"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({ "id": 17, "title": "groceries" })),
        )
        .expect(1)
        .mount(&fake)
        .await;
    // The worker runs before the package exists: installing it needs no restart.
    let _worker = spawn_worker(&server, &fake.uri()).await.drop_guard();
    let a = server.tenant().await;
    json(
        server.post(&a.key, "/v1/connectors", &notes_upload()).await,
        201,
    )
    .await;

    let id = start_create_note(&server, &a, "groceries").await;
    let run = finished(&server, &a, &id).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"], json!({ "id": 17, "title": "groceries" }));
    assert_eq!(run["steps"][0]["name"], "notes.create_note@0.1.0");
    let requests = fake.received_requests().await.unwrap();
    let key = requests[0]
        .headers
        .get("idempotency-key")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(
        key,
        format!("{id}-{}", run["steps"][0]["seq"]),
        "the step's own key"
    );

    let other = server.tenant().await;
    let body = json!({ "workflow": "connector.action", "input": {
        "connector": "notes", "version": "0.1.0", "action": "create_note", "input": { "title": "x" } } });
    let started = json(server.post(&other.key, "/v1/runs", &body).await, 201).await;
    let run = finished(&server, &other, started["id"].as_str().unwrap()).await;
    assert_eq!(
        run["status"], "failed",
        "another workspace cannot run a private connector"
    );
    assert_eq!(run["steps"][0]["error"]["kind"], "not_found");
}

async fn an_output_that_fails_its_schema_fails_the_step(server: TestServer) {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": "seventeen" })))
        .mount(&fake)
        .await;
    let _worker = spawn_worker(&server, &fake.uri()).await.drop_guard();
    let a = server.tenant().await;
    json(
        server.post(&a.key, "/v1/connectors", &notes_upload()).await,
        201,
    )
    .await;
    let id = start_create_note(&server, &a, "groceries").await;
    let run = finished(&server, &a, &id).await;
    assert_eq!(run["status"], "failed", "{run}");
    let error = &run["steps"][0]["error"];
    assert_eq!(error["kind"], "invalid_output");
    assert!(
        error["message"].as_str().unwrap().contains("/id"),
        "{error}"
    );
    assert_eq!(
        fake.received_requests().await.unwrap().len(),
        1,
        "terminal: not retried"
    );
}

async fn a_published_version_never_changes(server: TestServer) {
    let _worker = spawn_worker(&server, "http://127.0.0.1:9")
        .await
        .drop_guard();
    let a = server.tenant().await;
    let first = json(
        server.post(&a.key, "/v1/connectors", &notes_upload()).await,
        201,
    )
    .await;
    let again = json(
        server.post(&a.key, "/v1/connectors", &notes_upload()).await,
        200,
    )
    .await;
    assert_eq!(first["digest"], again["digest"]);
    let mut changed = notes_upload();
    let script = changed["files"]["index.js"].as_str().unwrap().to_owned();
    changed["files"]["index.js"] = json!(format!("{script}\n// one more line\n"));
    let refused = server.post(&a.key, "/v1/connectors", &changed).await;
    problem(refused, 409, "immutable").await;

    let mut shadow = notes_upload();
    shadow["manifest"]["name"] = json!("github");
    let refused = server.post(&a.key, "/v1/connectors", &shadow).await;
    problem(refused, 409, "already-exists").await;
}

async fn invalid_packages_are_refused_with_every_problem_named(server: TestServer) {
    let a = server.tenant().await;
    let mut broken = notes_upload();
    broken["manifest"]["version"] = json!("1");
    broken["manifest"]["actions"][0]["inputSchema"] = json!("NoSuchSchema");
    let body = problem(
        server.post(&a.key, "/v1/connectors", &broken).await,
        422,
        "invalid-package",
    )
    .await;
    let errors: BTreeMap<String, String> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["pointer"].as_str().unwrap().to_owned(),
                e["file"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        errors.get("/version").map(String::as_str),
        Some("manifest.json"),
        "{body}"
    );

    let mut bad_script = notes_upload();
    bad_script["files"]["index.js"] = json!("export const actions = {");
    let body = problem(
        server.post(&a.key, "/v1/connectors", &bad_script).await,
        422,
        "invalid-package",
    )
    .await;
    assert_eq!(body["errors"][0]["file"], "index.js", "{body}");
    let catalog = json(server.get(&a.key, "/v1/connectors").await, 200).await;
    assert!(
        catalog
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["name"] != "notes"),
        "nothing stored"
    );
}
