//! Every string the API takes, in every operation, sent oversized (10 KB), empty, with a NUL,
//! with control characters, with a line break, with text-reordering characters, with other
//! Unicode and (in JSON) as a lone surrogate: the answer is never a 5xx, is the same on both
//! stores, and when the value is refused it is a problem document naming the field.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Tenant, TestServer, json, problem};
use durable_tests::incompressible;
use reqwest::Method;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

with_server_on_both_stores!(
    every_string_field_of_every_operation_is_bounded,
    headers_and_paths_are_bounded,
    a_nul_in_a_delivery_is_refused_on_both_stores,
);

/// The adversarial values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Oversized,
    Empty,
    Nul,
    Control,
    LineBreak,
    Bidi,
    Unicode,
    LoneSurrogate,
}

use Kind::*;

const KINDS: [Kind; 8] = [
    Oversized,
    Empty,
    Nul,
    Control,
    LineBreak,
    Bidi,
    Unicode,
    LoneSurrogate,
];

/// The value of `kind` as a string; `None` for the lone surrogate, which no Rust string
/// holds. `n` keeps otherwise valid names unique.
fn text(kind: Kind, n: usize) -> Option<String> {
    Some(match kind {
        Oversized => incompressible(10 * 1024),
        Empty => String::new(),
        Nul => "a\0b".to_owned(),
        Control => "a\u{1b}[31mb".to_owned(),
        LineBreak => "a\nb".to_owned(),
        Bidi => "abc\u{202e}fed".to_owned(),
        Unicode => format!("crab 🦀 e\u{301} {n}"),
        LoneSurrogate => return None,
    })
}

/// The value of `kind` as JSON text.
fn json_text(kind: Kind, n: usize) -> String {
    match text(kind, n) {
        Some(text) => serde_json::to_string(&text).unwrap(),
        None => r#""\ud800""#.to_owned(),
    }
}

/// One string field of one operation.
struct Field {
    method: Method,
    /// With `{flow}`, `{run}`, `{github}` for the fixtures' ids.
    path: &'static str,
    /// The JSON body, with `$` where the value goes and `{n}` for a unique number; for a
    /// `GET`, the value goes to query parameter `field` instead.
    body: &'static str,
    field: &'static str,
    /// The kinds the field accepts; every other one is refused.
    accepts: &'static [Kind],
}

/// Any JSON string inside a document is fine, but for NUL, which Postgres cannot store.
const JSON_DOC: &[Kind] = &[Oversized, Empty, Control, LineBreak, Bidi, Unicode];
const NAME: &[Kind] = &[Unicode];
const DESCRIPTION: &[Kind] = &[Empty, LineBreak, Unicode];
/// A GitHub secret is any 16 to 256 bytes without control characters.
const SECRET: &[Kind] = &[Unicode];
const NONE: &[Kind] = &[];

fn fields() -> Vec<Field> {
    use Method as M;
    let f = |method: Method, path, body, field, accepts| Field {
        method,
        path,
        body,
        field,
        accepts,
    };
    vec![
        f(M::POST, "/v1/workspaces", r#"{"name": $}"#, "name", NAME),
        f(
            M::POST,
            "/v1/keys",
            r#"{"name": $, "role": "viewer"}"#,
            "name",
            NAME,
        ),
        f(
            M::POST,
            "/v1/keys",
            r#"{"name": "k", "scopes": [$]}"#,
            "scopes",
            NONE,
        ),
        f(
            M::POST,
            "/v1/keys",
            r#"{"name": "k", "role": $}"#,
            "role",
            NONE,
        ),
        f(
            M::PUT,
            "/v1/members",
            r#"{"email": $, "role": "viewer"}"#,
            "email",
            NONE,
        ),
        f(
            M::PUT,
            "/v1/members",
            r#"{"email": "a@example.com", "role": $}"#,
            "role",
            NONE,
        ),
        f(M::POST, "/v1/flows", r#"{"name": $}"#, "name", NAME),
        f(
            M::POST,
            "/v1/flows",
            r#"{"name": "f{n}", "description": $}"#,
            "description",
            DESCRIPTION,
        ),
        f(M::PATCH, "/v1/flows/{flow}", r#"{"name": $}"#, "name", NAME),
        f(
            M::PATCH,
            "/v1/flows/{flow}",
            r#"{"description": $}"#,
            "description",
            DESCRIPTION,
        ),
        f(
            M::POST,
            "/v1/flows/{flow}/versions",
            r#"{"definition": {"k": $}}"#,
            "definition",
            JSON_DOC,
        ),
        f(
            M::PUT,
            "/v1/flows/{flow}/versions/1",
            r#"{"definition": {"k": $}}"#,
            "definition",
            JSON_DOC,
        ),
        f(M::POST, "/v1/runs", r#"{"workflow": $}"#, "workflow", NONE),
        f(
            M::POST,
            "/v1/runs",
            r#"{"workflow": "hello_hook", "workflow_id": $}"#,
            "workflow_id",
            NONE,
        ),
        f(
            M::POST,
            "/v1/runs",
            r#"{"workflow": "hello_hook", "input": {"k": $}}"#,
            "input",
            JSON_DOC,
        ),
        f(
            M::POST,
            "/v1/runs/{run}/fork",
            r#"{"from_seq": 0, "workflow_id": $}"#,
            "workflow_id",
            NONE,
        ),
        f(
            M::POST,
            "/v1/runs/{run}/fork",
            r#"{"from_seq": 0, "input": {"k": $}}"#,
            "input",
            JSON_DOC,
        ),
        f(
            M::POST,
            "/v1/hooks",
            r#"{"workflow": $, "scheme": "none"}"#,
            "workflow",
            NONE,
        ),
        f(
            M::POST,
            "/v1/hooks",
            r#"{"workflow": "hello_hook", "scheme": "github", "secrets": [$]}"#,
            "secrets",
            SECRET,
        ),
        f(
            M::POST,
            "/v1/hooks",
            r#"{"workflow": "hello_hook", "scheme": "standard_webhooks", "secrets": [$]}"#,
            "secrets",
            NONE,
        ),
        f(
            M::POST,
            "/v1/hooks",
            r#"{"workflow": "hello_hook", "scheme": "none", "dedupe_window": $}"#,
            "dedupe_window",
            NONE,
        ),
        f(
            M::POST,
            "/v1/hooks/{github}/rotate",
            r#"{"secret": $}"#,
            "secret",
            SECRET,
        ),
        f(M::GET, "/v1/runs", "", "workflow", NAME),
        f(M::GET, "/v1/runs", "", "status", NONE),
        f(M::GET, "/v1/runs", "", "created_after", NONE),
        f(M::GET, "/v1/runs", "", "limit", NONE),
        f(M::GET, "/v1/audit", "", "limit", NONE),
    ]
}

/// The ids the fields' paths need.
struct Fixtures {
    flow: String,
    run: String,
    github: String,
}

async fn fixtures(server: &TestServer, a: &Tenant) -> Fixtures {
    let flow = json(
        server
            .post(&a.key, "/v1/flows", &json!({"name": "fixture"}))
            .await,
        201,
    );
    let flow = flow.await["id"].as_str().unwrap().to_owned();
    let draft = json!({"definition": {}});
    let path = format!("/v1/flows/{flow}/versions");
    json(server.post(&a.key, &path, &draft).await, 201).await;
    let run = json!({"workflow": "hello_hook", "input": {}});
    let run = json(server.post(&a.key, "/v1/runs", &run).await, 201).await;
    let github = json!({"workflow": "hello_hook", "scheme": "github"});
    let github = json(server.post(&a.key, "/v1/hooks", &github).await, 201).await;
    Fixtures {
        flow,
        run: run["id"].as_str().unwrap().to_owned(),
        github: github["id"].as_str().unwrap().to_owned(),
    }
}

impl Fixtures {
    fn fill(&self, template: &str, n: usize) -> String {
        template
            .replace("{flow}", &self.flow)
            .replace("{run}", &self.run)
            .replace("{github}", &self.github)
            .replace("{n}", &n.to_string())
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

async fn every_string_field_of_every_operation_is_bounded(server: TestServer) {
    let a = server.tenant().await;
    let fixtures = fixtures(&server, &a).await;
    for field in fields() {
        for kind in KINDS {
            let query = field.method == Method::GET;
            if query && kind == LoneSurrogate {
                continue; // a JSON escape: a query string has no such thing
            }
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = fixtures.fill(field.path, n);
            let mut request = server.request(field.method.clone(), &path, Some(&a.key));
            if query {
                request = request.query(&[(field.field, text(kind, n).unwrap())]);
            } else {
                let body = fixtures
                    .fill(field.body, n)
                    .replace('$', &json_text(kind, n));
                request = request
                    .header("content-type", "application/json")
                    .body(body);
            }
            let response = request.send().await.unwrap();
            let what = format!("{} {path} `{}` {kind:?}", field.method, field.field);
            check(response, &field, kind, query, &what).await;
        }
    }
}

/// Asserts the answer to one value: accepted, or refused with the field named.
async fn check(response: reqwest::Response, field: &Field, kind: Kind, query: bool, what: &str) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert!(status < 500, "{what}: {status} {text}");
    if field.accepts.contains(&kind) {
        assert!(
            (200..300).contains(&status),
            "{what} was refused: {status} {text}"
        );
        return;
    }
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if kind == LoneSurrogate {
        assert_eq!(status, 400, "{what}: {text}");
        assert_eq!(body["type"], "urn:durable:problem:malformed-body", "{what}");
        return;
    }
    let expected = if query { 400 } else { 422 };
    assert_eq!(status, expected, "{what} was not refused: {text}");
    let detail = body["detail"].as_str().unwrap_or_default();
    // Parameters the query parser itself refuses (a number, a time) are named in the
    // detail; every other refusal names the field in `field` too.
    let named = body["field"] == field.field || (query && detail.contains(field.field));
    assert!(named, "{what}: the field is not named: {text}");
    assert!(detail.len() < 1000, "{what}: the value is echoed: {text}");
}

async fn headers_and_paths_are_bounded(server: TestServer) {
    let a = server.tenant().await;
    let hook = json!({"workflow": "hello_hook", "scheme": "none"});
    let hook = json(server.post(&a.key, "/v1/hooks", &hook).await, 201).await;
    let intake = hook["url"].as_str().unwrap().to_owned();
    for kind in KINDS {
        // Header values cannot carry NUL, line breaks or other control characters at all.
        let Some(value) = text(kind, 0).and_then(|t| HeaderValue::from_bytes(t.as_bytes()).ok())
        else {
            continue;
        };
        let flow = server
            .request(Method::POST, "/v1/flows", Some(&a.key))
            .header("idempotency-key", value.clone())
            .json(&json!({"name": format!("idem {kind:?}")}))
            .send()
            .await
            .unwrap();
        problem(flow, 400, "invalid-idempotency-key").await;
        let delivery = server
            .request(Method::POST, &intake, None)
            .header("webhook-id", value)
            .body("{}")
            .send()
            .await
            .unwrap();
        problem(delivery, 400, "malformed-delivery-id").await;
    }
    for id in [
        "x".repeat(10 * 1024),
        "%00".to_owned(),
        "%E2%80%AE".to_owned(),
    ] {
        let response = server.get(&a.key, &format!("/v1/flows/{id}")).await;
        problem(response, 400, "invalid-path").await;
    }
    // Nothing was started by a refused delivery.
    assert_eq!(
        json(server.get(&a.key, "/v1/runs").await, 200).await,
        json!([])
    );
}

async fn a_nul_in_a_delivery_is_refused_on_both_stores(server: TestServer) {
    let a = server.tenant().await;
    let hook = json!({"workflow": "hello_hook", "scheme": "none"});
    let hook = json(server.post(&a.key, "/v1/hooks", &hook).await, 201).await;
    let intake = hook["url"].as_str().unwrap().to_owned();
    let delivery = server
        .request(Method::POST, &intake, None)
        .body(r#"{"text": "a\u0000b"}"#)
        .send()
        .await
        .unwrap();
    problem(delivery, 422, "invalid-payload").await;
}
