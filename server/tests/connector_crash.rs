//! A packaged connector's action across a worker crash: the `durable-server` process is
//! killed (SIGKILL) while the provider is answering, and the process that takes the run over
//! calls again with the same idempotency key, so a provider that honours keys makes one
//! effect.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use durable::Client;
use durable_connectors::ActionWorkflow;
use durable_server::Backend;
use durable_tests::conformance::SqliteFile;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// `durable-server serve` on `db`, with the example connectors installed and `notes` calls
/// sent to `fake`.
fn serve(db: &SqliteFile, fake: &str) -> Child {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/connectors");
    Command::new(env!("CARGO_BIN_EXE_durable-server"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &db.url(),
        ])
        .arg("--connectors")
        .arg(examples)
        .args(["--connector-url", &format!("notes={fake}")])
        .env("DURABLE_HTTP_ALLOW", "loopback")
        .env_remove("DURABLE_DATABASE_URL")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start durable-server serve")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_s_call_is_made_again_with_the_same_key() {
    let db = SqliteFile::new();
    let backend = Backend::sqlite(db.store().await).await.unwrap();
    let fake = MockServer::start().await;
    // The first call is answered too late: the worker is killed while it waits.
    Mock::given(method("POST"))
        .and(path("/notes"))
        .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_secs(60)))
        .up_to_n_times(1)
        .mount(&fake)
        .await;
    Mock::given(method("POST"))
        .and(path("/notes"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 3, "title": "t" })))
        .mount(&fake)
        .await;

    let mut first = serve(&db, &fake.uri());
    let client = Client::from_arc(backend.runs.clone());
    let input = json!({ "connector": "notes", "version": "0.1.0", "action": "create_note",
                        "input": { "title": "t" } });
    let started = client
        .start_json(&ActionWorkflow::spec(), input, None)
        .await
        .unwrap();
    durable_tests::wait::until(
        "the first call to reach the provider",
        Duration::from_secs(30),
        || async { (!fake.received_requests().await.unwrap().is_empty()).then_some(()) },
    )
    .await;
    first.kill().await.unwrap();

    let _second = serve(&db, &fake.uri());
    let output: Value = client
        .handle_as(started.id)
        .result_timeout(Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(output, json!({ "id": 3, "title": "t" }));

    let requests = fake.received_requests().await.unwrap();
    let keys: std::collections::BTreeSet<_> = requests
        .iter()
        .map(|r| {
            r.headers
                .get("idempotency-key")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(requests.len(), 2, "called again after the crash");
    assert_eq!(
        keys.len(),
        1,
        "with the same key both times: one effect at the provider"
    );
}
