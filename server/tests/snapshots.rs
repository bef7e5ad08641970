//! The API's response shapes, pinned with `insta` (ids, times and tokens redacted), and the
//! OpenAPI document.

mod common;

use common::{TestServer, json};
use insta::assert_json_snapshot;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_shapes() {
    let server = TestServer::sqlite().await;
    let a = server.tenant().await;
    let flow = json(
        server
            .post(
                &a.key,
                "/v1/flows",
                &json!({"name": "sync", "description": "d"}),
            )
            .await,
        201,
    )
    .await;
    let ids = [".id", ".workspace_id", ".created_at", ".updated_at"];
    redact(&ids).bind(|| assert_json_snapshot!("flow", flow));

    let path = format!("/v1/flows/{}/versions", flow["id"].as_str().unwrap());
    let version = json(
        server
            .post(&a.key, &path, &json!({"definition": {"nodes": []}}))
            .await,
        201,
    )
    .await;
    redact(&[".flow_id", ".created_at"]).bind(|| assert_json_snapshot!("flow_version", version));

    let key = json(
        server
            .post(&a.key, "/v1/keys", &json!({"name": "ci", "role": "viewer"}))
            .await,
        201,
    )
    .await;
    redact(&[
        ".id",
        ".workspace_id",
        ".created_at",
        ".created_by",
        ".token",
        ".token_prefix",
    ])
    .bind(|| assert_json_snapshot!("api_key_created", key));

    let hook = json!({"workflow": "hello_hook", "scheme": "none"});
    let hook = json(server.post(&a.key, "/v1/hooks", &hook).await, 201).await;
    redact(&[".id", ".workspace_id", ".created_at", ".url"])
        .bind(|| assert_json_snapshot!("hook", hook));

    let missing = json(
        server
            .get(&a.key, &format!("/v1/flows/{}", uuid::Uuid::nil()))
            .await,
        404,
    )
    .await;
    assert_json_snapshot!("problem_not_found", missing);

    let run = json!({"workflow": "hello_hook", "input": {"hook_id": uuid::Uuid::nil(), "delivery_id": "d", "payload": {}}});
    let started = json(server.post(&a.key, "/v1/runs", &run).await, 201).await;
    let detail = json(
        server
            .get(
                &a.key,
                &format!("/v1/runs/{}", started["id"].as_str().unwrap()),
            )
            .await,
        200,
    )
    .await;
    redact(&[".id", ".workflow_id", ".created_at", ".updated_at"])
        .bind(|| assert_json_snapshot!("run_pending", detail));
}

/// The document as a server serves it.
async fn openapi_document() -> Value {
    let server = TestServer::sqlite().await;
    let doc = server
        .http
        .get(format!("{}/v1/openapi.json", server.base))
        .send()
        .await
        .unwrap();
    json(doc, 200).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route() {
    let doc = openapi_document().await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut paths: Vec<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect();
    paths.sort();
    assert_json_snapshot!("openapi_routes", paths);
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

/// The whole document, so that every change to the contract (a status, a schema, a limit)
/// shows in review as a change to this snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document() {
    let doc = openapi_document().await;
    let ids: Vec<&str> = operations(&doc)
        .map(|op| op["operationId"].as_str().unwrap())
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(ids.len(), unique.len(), "operation ids are unique: {ids:?}");
    for op in operations(&doc) {
        for (status, answer) in op["responses"].as_object().unwrap() {
            if status.starts_with('4') || status.starts_with('5') {
                let content = answer["content"].as_object().unwrap();
                let types: Vec<&String> = content.keys().collect();
                assert_eq!(types, ["application/problem+json"], "{status} of {op}");
            }
        }
    }
    assert_json_snapshot!("openapi", doc);
}

fn operations(doc: &serde_json::Value) -> impl Iterator<Item = &serde_json::Value> {
    let paths = doc["paths"].as_object().unwrap();
    paths
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
}

/// Snapshot settings that replace the values at `paths` (ids, times, tokens).
fn redact(paths: &[&str]) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    for path in paths {
        settings.add_redaction(path, "[redacted]");
    }
    settings
}
