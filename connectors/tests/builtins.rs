//! The built-in connectors as a worker runs them: each action a durable step of the
//! `connector.action` workflow, against fake providers on loopback that fail the way real
//! ones do (429 with `Retry-After`, 5xx, slow answers, Slack's `ok: false`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use durable::StepRecord;
use durable::{Client, RunStatus, WorkspaceId};
use durable_connectors::builtin::{GitHub, Http, Slack};
use durable_connectors::{
    ActionWorkflow, CallError, Connector, Connectors, Credential, CredentialSource, Delivery,
    HttpPolicy, Outbound, PollCall, Secret,
};
use durable_tests::conformance::SqliteFile;
use durable_tests::with_worker_using;
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "gho_builtin_test_token";

#[derive(Debug)]
struct OneToken;

#[async_trait]
impl CredentialSource for OneToken {
    async fn credential(&self, _: WorkspaceId, _: Uuid) -> Result<Credential, CallError> {
        Ok(Credential::Token(Secret::new(TOKEN)))
    }
}

fn policy() -> HttpPolicy {
    HttpPolicy {
        allow_loopback: true,
        timeout: Duration::from_millis(500),
        ..HttpPolicy::default()
    }
}

fn connectors(base: &str) -> Arc<Connectors> {
    let connectors = Connectors::new(Outbound::new(policy()))
        .native(Http::new())
        .and_then(|c| c.native(GitHub::new()))
        .and_then(|c| c.native(Slack::new()))
        .expect("the built-in manifests are valid")
        .base_url("github", base)
        .base_url("slack", base)
        .credentials(Arc::new(OneToken));
    Arc::new(connectors)
}

/// What a run of one action ended as.
struct Ran {
    status: RunStatus,
    output: Option<Value>,
    error: Option<String>,
    step: StepRecord,
}

async fn run_action(base: &str, request: Value) -> Ran {
    let file = SqliteFile::new();
    let store: Arc<dyn durable::Store> = Arc::new(file.store().await);
    let workflow = Arc::new(ActionWorkflow::new(connectors(base)));
    with_worker_using(
        store,
        |w| w.register_dyn(workflow),
        |client: Client| async move {
            let started = client
                .start_json(&ActionWorkflow::spec(), request, None)
                .await
                .unwrap();
            let handle = client.handle_as::<Value>(started.id);
            let result = handle.result_timeout(Duration::from_secs(30)).await;
            let info = client.get(started.id).await.unwrap();
            let steps = client.steps(started.id).await.unwrap();
            Ran {
                status: info.status,
                output: result.as_ref().ok().cloned(),
                error: result.err().map(|e| e.to_string()),
                step: steps.into_iter().last().expect("one step"),
            }
        },
    )
    .await
}

fn step_error_kind(step: &StepRecord) -> Option<String> {
    step.error.as_ref()?["kind"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_create_issue_sends_the_token_and_returns_the_issue() {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/widgets/issues"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(body_partial_json(json!({ "title": "It broke" })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": 7001, "number": 42, "html_url": "https://github.com/acme/widgets/issues/42"
        })))
        .expect(1)
        .mount(&fake)
        .await;
    let ran = run_action(
        &fake.uri(),
        json!({ "connector": "github", "version": "0.1.0", "action": "create_issue",
                "input": { "owner": "acme", "repo": "widgets", "title": "It broke" },
                "credential": Uuid::nil() }),
    )
    .await;
    assert_eq!(ran.status, RunStatus::Completed, "{:?}", ran.error);
    assert_eq!(
        ran.output.unwrap(),
        json!({ "id": 7001, "number": 42, "url": "https://github.com/acme/widgets/issues/42" })
    );
    assert_eq!(ran.step.name, "github.create_issue@0.1.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_429_waits_for_retry_after_and_then_posts() {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&fake)
        .await;
    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "ok": true, "channel": "C1", "ts": "1700000000.000100" })),
        )
        .mount(&fake)
        .await;
    let started = Instant::now();
    let ran = run_action(
        &fake.uri(),
        json!({ "connector": "slack", "version": "0.1.0", "action": "post_message",
                "input": { "channel": "C1", "text": "deploy done" }, "credential": Uuid::nil() }),
    )
    .await;
    assert_eq!(ran.status, RunStatus::Completed, "{:?}", ran.error);
    assert_eq!(ran.output.unwrap()["ts"], "1700000000.000100");
    assert_eq!(ran.step.attempts, 2);
    let requests = fake.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the retry waited for Retry-After"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_ok_false_with_invalid_auth_fails_at_once_as_auth_expired() {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "ok": false, "error": "invalid_auth" })),
        )
        .mount(&fake)
        .await;
    let ran = run_action(
        &fake.uri(),
        json!({ "connector": "slack", "version": "0.1.0", "action": "post_message",
                "input": { "channel": "C1", "text": "hi" }, "credential": Uuid::nil() }),
    )
    .await;
    assert_eq!(ran.status, RunStatus::Failed);
    assert_eq!(ran.step.attempts, 1, "auth errors are not retried");
    assert_eq!(step_error_kind(&ran.step).as_deref(), Some("auth_expired"));
    assert!(!ran.error.unwrap().contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_request_retries_a_5xx_with_the_same_idempotency_key() {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502).set_body_string("bad gateway"))
        .up_to_n_times(1)
        .mount(&fake)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "created": true })))
        .mount(&fake)
        .await;
    let ran = run_action(
        &fake.uri(),
        json!({ "connector": "http", "version": "0.1.0", "action": "request",
                "input": { "method": "POST", "url": format!("{}/orders", fake.uri()),
                           "form": { "sku": "a-1", "qty": "2" } } }),
    )
    .await;
    assert_eq!(ran.status, RunStatus::Completed, "{:?}", ran.error);
    assert_eq!(ran.output.unwrap()["json"], json!({ "created": true }));
    let requests = fake.received_requests().await.unwrap();
    let keys: Vec<_> = requests
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
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1], "one key for every attempt of the step");
    assert_eq!(
        std::str::from_utf8(&requests[0].body).unwrap(),
        "qty=2&sku=a-1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_request_times_out_and_the_retry_succeeds() {
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .up_to_n_times(1)
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("fine"))
        .mount(&fake)
        .await;
    let ran = run_action(
        &fake.uri(),
        json!({ "connector": "http", "version": "0.1.0", "action": "request",
                "input": { "method": "GET", "url": format!("{}/slow", fake.uri()) } }),
    )
    .await;
    assert_eq!(ran.status, RunStatus::Completed, "{:?}", ran.error);
    assert_eq!(ran.output.unwrap()["body"], "fine");
    assert_eq!(ran.step.attempts, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_that_fails_the_schema_names_the_field_and_calls_nothing() {
    let fake = MockServer::start().await;
    let ran = run_action(
        &fake.uri(),
        json!({ "connector": "github", "version": "0.1.0", "action": "create_issue",
                "input": { "owner": "acme", "repo": "widgets", "title": 5 } }),
    )
    .await;
    assert_eq!(ran.status, RunStatus::Failed);
    assert_eq!(step_error_kind(&ran.step).as_deref(), Some("invalid_input"));
    assert!(ran.error.unwrap().contains("/title"));
    assert!(fake.received_requests().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_connector_version_fails_the_step_as_not_found() {
    let ran = run_action(
        "http://127.0.0.1:9",
        json!({ "connector": "github", "version": "9.9.9", "action": "create_issue", "input": {} }),
    )
    .await;
    assert_eq!(ran.status, RunStatus::Failed);
    assert_eq!(step_error_kind(&ran.step).as_deref(), Some("not_found"));
}

#[test]
fn github_issue_opened_reads_json_and_form_encoded_deliveries() {
    let payload = json!({
        "action": "opened",
        "repository": { "full_name": "acme/widgets" },
        "issue": { "number": 5, "title": "Crash", "body": null,
                   "html_url": "https://github.com/acme/widgets/issues/5",
                   "user": { "login": "octo" }, "labels": [{ "name": "bug" }] }
    });
    let expected = json!({
        "repository": "acme/widgets", "number": 5, "title": "Crash", "body": null,
        "url": "https://github.com/acme/widgets/issues/5", "author": "octo", "labels": ["bug"]
    });
    let json_delivery = Delivery {
        headers: vec![("X-GitHub-Event".into(), "issues".into())],
        body: payload.to_string().into_bytes(),
    };
    let form_body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    let form_delivery = Delivery {
        headers: vec![
            ("x-github-event".into(), "issues".into()),
            (
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
        ],
        body: form_body.into_bytes(),
    };
    let github = GitHub::new();
    assert_eq!(
        github.receive("issue_opened", &json_delivery).unwrap(),
        vec![expected.clone()]
    );
    assert_eq!(
        github.receive("issue_opened", &form_delivery).unwrap(),
        vec![expected]
    );

    let closed = Delivery {
        body: json!({ "action": "closed" }).to_string().into_bytes(),
        ..json_delivery.clone()
    };
    assert!(github.receive("issue_opened", &closed).unwrap().is_empty());
    let ping = Delivery {
        headers: vec![("X-GitHub-Event".into(), "ping".into())],
        ..json_delivery
    };
    assert!(github.receive("issue_opened", &ping).unwrap().is_empty());
}

#[tokio::test]
async fn http_json_feed_polls_the_items_at_the_pointer() {
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/feed"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "data": { "items": [{ "id": 1 }, { "id": 2 }] } })),
        )
        .mount(&fake)
        .await;
    let poll = PollCall {
        params: json!({ "url": format!("{}/feed", fake.uri()), "items": "/data/items" }),
        cursor: None,
        base_url: String::new(),
        http: Outbound::new(policy()),
        credential: None,
    };
    let polled = Http::new().poll("json_feed", poll).await.unwrap();
    assert_eq!(polled.events, vec![json!({ "id": 1 }), json!({ "id": 2 })]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_echoing_the_token_never_puts_it_in_the_history() {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "message": "Validation Failed",
            "request": { "headers": { "authorization": format!("Bearer {TOKEN}") } }
        })))
        .mount(&fake)
        .await;
    let ran = run_action(
        &fake.uri(),
        json!({ "connector": "github", "version": "0.1.0", "action": "create_issue",
                "input": { "owner": "acme", "repo": "widgets", "title": "x" },
                "credential": Uuid::nil() }),
    )
    .await;
    assert_eq!(ran.status, RunStatus::Failed);
    assert_eq!(step_error_kind(&ran.step).as_deref(), Some("rejected"));
    let recorded = serde_json::to_string(&ran.step.error).unwrap();
    assert!(
        recorded.contains("Validation Failed"),
        "the provider's words are kept: {recorded}"
    );
    assert!(!recorded.contains(TOKEN), "{recorded}");
    assert!(!ran.error.unwrap().contains(TOKEN));
}
