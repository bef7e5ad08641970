//! HTTP details of the contract: answers hyper writes by itself are problem documents too,
//! echoed values are cut and escaped, and the bugs Schemathesis found stay fixed.

mod common;

use std::time::Duration;

use common::{TestServer, json, problem};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

with_server_on_both_stores!(
    a_fork_under_a_taken_workflow_id_is_a_conflict,
    runs_whose_input_holds_the_largest_float_are_listed,
    only_a_json_object_is_read_as_a_body,
    whole_numbers_written_as_floats_are_whole_numbers,
);

/// Sends `request` as raw bytes and reads the answer until the server closes. A raw socket,
/// because no HTTP client sends what these tests need: `http` refuses to build a URI over
/// 65,534 bytes or a header value holding a control character.
async fn raw_exchange(server: &TestServer, request: &[u8]) -> (String, Value) {
    let address = server.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the server answers and closes the connection")
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    (
        head.to_ascii_lowercase(),
        serde_json::from_str(body).unwrap(),
    )
}

fn assert_problem(head: &str, body: &Value, status: u16, slug: &str) {
    assert!(head.starts_with(&format!("http/1.1 {status} ")), "{head}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    assert_eq!(
        body["type"],
        format!("urn:durable:problem:{slug}"),
        "{body}"
    );
    assert_eq!(body["status"], status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uri_too_long_for_hyper_is_a_problem_document() {
    let server = TestServer::sqlite().await;
    let query = "a".repeat(70_000);
    let request = format!("GET /v1/flows?x={query} HTTP/1.1\r\nHost: test\r\n\r\n");
    let (head, body) = raw_exchange(&server, request.as_bytes()).await;
    assert_problem(&head, &body, 414, "uri-too-long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_hyper_cannot_parse_is_a_problem_document() {
    let server = TestServer::sqlite().await;
    let request = b"GET /v1/flows HTTP/1.1\r\nHost: test\r\nX-Trace: a\x01b\r\n\r\n";
    let (head, body) = raw_exchange(&server, request).await;
    assert_problem(&head, &body, 400, "malformed-request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_echoed_in_a_detail_is_cut_and_escaped() {
    let server = TestServer::sqlite().await;
    let a = server.tenant().await;
    // serde names an unknown variant in its rejection: here 10 KB of it, after an escape.
    let scheme = format!("\u{1b}[31m{}", "y".repeat(10_000));
    let hook = json!({"workflow": "hello_hook", "scheme": scheme});
    let refused = problem(
        server.post(&a.key, "/v1/hooks", &hook).await,
        422,
        "invalid-body",
    )
    .await;
    let detail = refused["detail"].as_str().unwrap();
    assert!(detail.chars().count() < 400, "{detail}");
    assert!(
        detail.contains(&format!("{}…", "y".repeat(190))),
        "{detail}"
    );
    assert!(!detail.chars().any(char::is_control), "{detail}");
    assert!(detail.contains(r"\u{1b}[31m"), "{detail}");
}

async fn a_fork_under_a_taken_workflow_id_is_a_conflict(server: TestServer) {
    let a = server.tenant().await;
    for workflow_id in ["taken", "origin"] {
        let body = json!({"workflow": "hello_hook", "workflow_id": workflow_id});
        json(server.post(&a.key, "/v1/runs", &body).await, 201).await;
    }
    let runs = json(
        server.get(&a.key, "/v1/runs?workflow=hello_hook").await,
        200,
    )
    .await;
    let origin = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["workflow_id"] == "origin");
    let path = format!("/v1/runs/{}/fork", origin.unwrap()["id"].as_str().unwrap());
    let fork = json!({"from_seq": 0, "workflow_id": "taken"});
    problem(
        server.post(&a.key, &path, &fork).await,
        409,
        "workflow-id-conflict",
    )
    .await;
}

/// Postgres writes the float back as a 309-digit decimal, which only a correctly rounding
/// JSON parser reads.
async fn runs_whose_input_holds_the_largest_float_are_listed(server: TestServer) {
    let a = server.tenant().await;
    let input = json!({"big": f64::MAX, "small": -f64::MAX, "tiny": 5e-324});
    let body = json!({"workflow": "hello_hook", "input": input});
    let started = json(server.post(&a.key, "/v1/runs", &body).await, 201).await;
    let runs = json(server.get(&a.key, "/v1/runs").await, 200).await;
    assert_eq!(runs[0]["id"], started["id"]);
    assert_eq!(runs[0]["input"], input);
}

/// serde reads a struct from an array of its fields too; no schema says so.
async fn only_a_json_object_is_read_as_a_body(server: TestServer) {
    let a = server.tenant().await;
    for body in [json!(["sync", "a flow"]), json!("sync"), json!(null)] {
        let refused = server.post(&a.key, "/v1/flows", &body).await;
        problem(refused, 422, "invalid-body").await;
    }
    let flows = json(server.get(&a.key, "/v1/flows").await, 200).await;
    assert_eq!(flows, json!([]));
}

/// JSON Schema counts `3.0` as an integer; so does the server, up to what Postgres keeps.
async fn whole_numbers_written_as_floats_are_whole_numbers(server: TestServer) {
    let a = server.tenant().await;
    let body = json!({"workflow": "hello_hook"});
    let started = json(server.post(&a.key, "/v1/runs", &body).await, 201).await;
    let path = format!("/v1/runs/{}/fork", started["id"].as_str().unwrap());
    json(
        server.post(&a.key, &path, &json!({"from_seq": 0.0})).await,
        201,
    )
    .await;
    for from_seq in [json!(0.5), json!(-1), json!(2_147_483_648_u64)] {
        let refused = server
            .post(&a.key, &path, &json!({"from_seq": from_seq}))
            .await;
        problem(refused, 422, "invalid-body").await;
    }
}
