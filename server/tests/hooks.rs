//! Webhook intake: verification (Standard Webhooks, GitHub), dedupe on the delivery id,
//! secrets never shown again, limits and clear errors.

mod common;

use chrono::Utc;
use common::{Tenant, TestServer, json, problem};
use durable_server::verify::{sign_github, sign_standard};
use reqwest::Response;
use serde_json::json;

with_server_on_both_stores!(
    a_signed_delivery_starts_the_workflow_and_a_redelivery_returns_the_same_run,
    bad_standard_signatures_are_refused,
    the_timestamp_window_is_five_minutes_each_way,
    rotated_secrets_are_all_accepted,
    github_signatures_are_verified,
    secrets_are_shown_once_and_never_again,
    oversized_malformed_and_unknown_deliveries_get_clear_errors,
    a_rotation_keeps_the_previous_secret_until_it_is_retired,
);

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OLD_SECRET: &str = "whsec_c2VjcmV0LXdpdGgtMjQtYnl0ZXMtbWluaW11bQ==";

async fn standard_hook(server: &TestServer, tenant: &Tenant, secrets: &[&str]) -> String {
    let body = json!({"workflow": "hello_hook", "scheme": "standard_webhooks", "secrets": secrets});
    let hook = json(server.post(&tenant.key, "/v1/hooks", &body).await, 201).await;
    assert!(hook.get("secret").is_none(), "a given secret is not echoed");
    hook["url"].as_str().unwrap().to_owned()
}

/// Sends `body` to `url` with Standard Webhooks headers.
async fn deliver(
    server: &TestServer,
    url: &str,
    id: &str,
    ts: i64,
    sig: &str,
    body: &str,
) -> Response {
    server
        .http
        .post(format!("{}{url}", server.base))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn signed(
    server: &TestServer,
    url: &str,
    secret: &str,
    id: &str,
    ts: i64,
    body: &str,
) -> Response {
    let sig = sign_standard(secret, id, ts, body.as_bytes()).unwrap();
    deliver(server, url, id, ts, &sig, body).await
}

async fn a_signed_delivery_starts_the_workflow_and_a_redelivery_returns_the_same_run(
    server: TestServer,
) {
    let a = server.tenant().await;
    let url = standard_hook(&server, &a, &[SECRET]).await;
    let body = r#"{"action":"opened"}"#;
    let now = Utc::now().timestamp();
    let first = signed(&server, &url, SECRET, "msg_1", now, body).await;
    assert!(
        first.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/v1/runs/")
    );
    let first = json(first, 202).await;
    assert_eq!(first["duplicate"], false);

    let again = json(
        signed(&server, &url, SECRET, "msg_1", now + 5, body).await,
        202,
    )
    .await;
    assert_eq!(again["run_id"], first["run_id"]);
    assert_eq!(again["duplicate"], true);

    let other = json(signed(&server, &url, SECRET, "msg_2", now, body).await, 202).await;
    assert_ne!(other["run_id"], first["run_id"]);

    let run_path = format!("/v1/runs/{}", first["run_id"].as_str().unwrap());
    let run = json(server.get(&a.key, &run_path).await, 200).await;
    assert_eq!(run["workflow_name"], "hello_hook");
    assert_eq!(run["input"]["delivery_id"], "msg_1");
    assert_eq!(run["input"]["payload"], json!({"action": "opened"}));

    // The run belongs to the hook's workspace only.
    let b = server.tenant().await;
    problem(server.get(&b.key, &run_path).await, 404, "not-found").await;
}

async fn bad_standard_signatures_are_refused(server: TestServer) {
    let a = server.tenant().await;
    let url = standard_hook(&server, &a, &[SECRET]).await;
    let body = r#"{"n":1}"#;
    let now = Utc::now().timestamp();
    let wrong = signed(&server, &url, OLD_SECRET, "m1", now, body).await;
    problem(wrong, 401, "invalid-signature").await;

    let empty = deliver(&server, &url, "m1", now, "v1,", body).await;
    problem(empty, 400, "malformed-signature").await;

    let good = sign_standard(SECRET, "m1", now, body.as_bytes()).unwrap();
    // 36 of the 44 base64 characters: valid base64 for 27 bytes, a signature cut short.
    let truncated = &good[..good.len() - 8];
    let cut = deliver(&server, &url, "m1", now, truncated, body).await;
    problem(cut, 401, "invalid-signature").await;

    let other_body = deliver(&server, &url, "m1", now, &good, r#"{"n":2}"#).await;
    problem(other_body, 401, "invalid-signature").await;

    let unsigned = server
        .http
        .post(format!("{}{url}", server.base))
        .body(body)
        .send()
        .await
        .unwrap();
    problem(unsigned, 400, "missing-signature-header").await;

    let runs = json(server.get(&a.key, "/v1/runs").await, 200).await;
    assert_eq!(runs, json!([]), "no refused delivery started a run");
}

async fn the_timestamp_window_is_five_minutes_each_way(server: TestServer) {
    let a = server.tenant().await;
    let url = standard_hook(&server, &a, &[SECRET]).await;
    let now = Utc::now().timestamp();
    for skew in [-301, 301] {
        let late = signed(&server, &url, SECRET, &format!("m{skew}"), now + skew, "{}").await;
        problem(late, 401, "timestamp-out-of-window").await;
    }
    // 290 s, not 300: the test and the server read the clock at slightly different times.
    for skew in [-290, 290] {
        let ok = signed(
            &server,
            &url,
            SECRET,
            &format!("ok{skew}"),
            now + skew,
            "{}",
        )
        .await;
        json(ok, 202).await;
    }
}

async fn rotated_secrets_are_all_accepted(server: TestServer) {
    let a = server.tenant().await;
    let url = standard_hook(&server, &a, &[SECRET, OLD_SECRET]).await;
    let now = Utc::now().timestamp();
    json(signed(&server, &url, SECRET, "new", now, "{}").await, 202).await;
    json(
        signed(&server, &url, OLD_SECRET, "old", now, "{}").await,
        202,
    )
    .await;

    let retired = standard_hook(&server, &a, &[SECRET]).await;
    let old = signed(&server, &retired, OLD_SECRET, "old", now, "{}").await;
    problem(old, 401, "invalid-signature").await;

    // Several signatures in one header (the sender rotating): one match suffices.
    let both = format!(
        "{} {}",
        sign_standard(OLD_SECRET, "pair", now, b"{}").unwrap(),
        sign_standard(SECRET, "pair", now, b"{}").unwrap()
    );
    json(
        deliver(&server, &retired, "pair", now, &both, "{}").await,
        202,
    )
    .await;
}

async fn github_signatures_are_verified(server: TestServer) {
    let a = server.tenant().await;
    let secret = "It's a Secret to Everybody";
    let body = json!({"workflow": "hello_hook", "scheme": "github", "secrets": [secret]});
    let hook = json(server.post(&a.key, "/v1/hooks", &body).await, 201).await;
    let url = format!("{}{}", server.base, hook["url"].as_str().unwrap());
    let payload = r#"{"zen":"Keep it logically awesome."}"#;
    let send = |signature: String, delivery: &'static str| {
        server
            .http
            .post(&url)
            .header("x-hub-signature-256", signature)
            .header("x-github-delivery", delivery)
            .body(payload)
            .send()
    };
    let ok = send(sign_github(secret, payload.as_bytes()), "d-1")
        .await
        .unwrap();
    let ok = json(ok, 202).await;
    let again = send(sign_github(secret, payload.as_bytes()), "d-1")
        .await
        .unwrap();
    assert_eq!(json(again, 202).await["run_id"], ok["run_id"]);

    let wrong = send(sign_github("another secret", payload.as_bytes()), "d-2")
        .await
        .unwrap();
    problem(wrong, 401, "invalid-signature").await;
    let good = sign_github(secret, payload.as_bytes());
    let truncated = send(good[..good.len() - 2].to_owned(), "d-3")
        .await
        .unwrap();
    problem(truncated, 401, "invalid-signature").await;
    let no_prefix = send(good["sha256=".len()..].to_owned(), "d-4")
        .await
        .unwrap();
    problem(no_prefix, 400, "malformed-signature").await;
}

async fn secrets_are_shown_once_and_never_again(server: TestServer) {
    let a = server.tenant().await;
    let body = json!({"workflow": "hello_hook", "scheme": "standard_webhooks"});
    let hook = json(server.post(&a.key, "/v1/hooks", &body).await, 201).await;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let url = hook["url"].as_str().unwrap().to_owned();

    let read = server.get(&a.key, &url).await.text().await.unwrap();
    let listed = server.get(&a.key, "/v1/hooks").await.text().await.unwrap();
    let audit = server.get(&a.key, "/v1/audit").await.text().await.unwrap();
    let key_part = &secret["whsec_".len()..];
    for text in [&read, &listed, &audit] {
        assert!(!text.contains(key_part), "secret leaked: {text}");
    }
    let now = Utc::now().timestamp();
    json(signed(&server, &url, &secret, "m", now, "{}").await, 202).await;

    let bad =
        json!({"workflow": "hello_hook", "scheme": "standard_webhooks", "secrets": ["short"]});
    problem(
        server.post(&a.key, "/v1/hooks", &bad).await,
        422,
        "invalid-secret",
    )
    .await;
    let unknown = json!({"workflow": "nope", "scheme": "none"});
    problem(
        server.post(&a.key, "/v1/hooks", &unknown).await,
        422,
        "unknown-workflow",
    )
    .await;
}

async fn oversized_malformed_and_unknown_deliveries_get_clear_errors(server: TestServer) {
    let a = server.tenant().await;
    let hook = json!({"workflow": "hello_hook", "scheme": "none"});
    let hook = json(server.post(&a.key, "/v1/hooks", &hook).await, 201).await;
    let url = format!("{}{}", server.base, hook["url"].as_str().unwrap());

    let huge = format!("{{\"a\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let response = server.http.post(&url).body(huge).send().await.unwrap();
    problem(response, 413, "body-too-large").await;
    let response = server
        .http
        .post(&url)
        .body("{not json")
        .send()
        .await
        .unwrap();
    problem(response, 400, "malformed-body").await;
    let missing = format!("{}/v1/hooks/{}", server.base, uuid::Uuid::now_v7());
    let response = server.http.post(&missing).body("{}").send().await.unwrap();
    problem(response, 404, "not-found").await;

    let runs = json(server.get(&a.key, "/v1/runs").await, 200).await;
    assert_eq!(runs, json!([]));
    json(server.http.post(&url).body("{}").send().await.unwrap(), 202).await;
}

async fn a_rotation_keeps_the_previous_secret_until_it_is_retired(server: TestServer) {
    let a = server.tenant().await;
    let url = standard_hook(&server, &a, &[OLD_SECRET]).await;
    let rotate = format!("{url}/rotate");
    let rotated = json(server.post(&a.key, &rotate, &json!({})).await, 200).await;
    let new = rotated["secret"].as_str().unwrap().to_owned();
    let now = Utc::now().timestamp();
    json(signed(&server, &url, &new, "n1", now, "{}").await, 202).await;
    json(
        signed(&server, &url, OLD_SECRET, "o1", now, "{}").await,
        202,
    )
    .await;

    let retire = json!({"secret": SECRET, "keep_previous": 0});
    let retired = json(server.post(&a.key, &rotate, &retire).await, 200).await;
    assert!(
        retired.get("secret").is_none(),
        "a given secret is not echoed"
    );
    json(signed(&server, &url, SECRET, "n2", now, "{}").await, 202).await;
    for (old, id) in [(new.as_str(), "n3"), (OLD_SECRET, "o3")] {
        problem(
            signed(&server, &url, old, id, now, "{}").await,
            401,
            "invalid-signature",
        )
        .await;
    }

    let too_many = json!({"keep_previous": 5});
    problem(
        server.post(&a.key, &rotate, &too_many).await,
        422,
        "invalid-secret",
    )
    .await;
    let b = server.tenant().await;
    problem(
        server.post(&b.key, &rotate, &json!({})).await,
        404,
        "not-found",
    )
    .await;
    let audit = server.get(&a.key, "/v1/audit").await.text().await.unwrap();
    assert!(audit.contains("hook.rotate"));
    assert!(
        !audit.contains(&new["whsec_".len()..]),
        "no secret in the audit log"
    );
}
