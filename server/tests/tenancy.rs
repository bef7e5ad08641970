//! The core acceptance of the control plane: a key reaches its own workspace only; requests
//! without a valid key fail clearly; scopes are enforced; changes are audited.

mod common;

use common::{TestServer, json, problem};
use reqwest::Method;
use serde_json::json;

with_server_on_both_stores!(
    flows_crud_stays_in_the_keys_workspace,
    another_workspaces_key_gets_404_for_the_same_ids,
    requests_without_a_valid_key_are_refused,
    a_revoked_key_is_refused_from_then_on,
    scopes_are_enforced_and_cannot_be_escalated,
    published_flow_versions_are_immutable,
    changes_are_audited_with_the_acting_key,
    malformed_bodies_and_paths_get_problem_documents,
);

async fn flows_crud_stays_in_the_keys_workspace(server: TestServer) {
    let a = server.tenant().await;
    let flow = json(
        server
            .post(
                &a.key,
                "/v1/flows",
                &json!({"name": "sync", "description": "gh → slack"}),
            )
            .await,
        201,
    )
    .await;
    let id = flow["id"].as_str().unwrap().to_owned();
    assert_eq!(flow["workspace_id"], a.workspace.to_string());

    let read = json(server.get(&a.key, &format!("/v1/flows/{id}")).await, 200).await;
    assert_eq!(read["name"], "sync");

    let patched = server
        .request(Method::PATCH, &format!("/v1/flows/{id}"), Some(&a.key))
        .json(&json!({"name": "sync-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json(patched, 200).await["name"], "sync-2");

    let listed = json(server.get(&a.key, "/v1/flows").await, 200).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);

    let deleted = server.delete(&a.key, &format!("/v1/flows/{id}")).await;
    assert_eq!(deleted.status(), 204);
    let gone = server.get(&a.key, &format!("/v1/flows/{id}")).await;
    problem(gone, 404, "not-found").await;
}

async fn another_workspaces_key_gets_404_for_the_same_ids(server: TestServer) {
    let a = server.tenant().await;
    let b = server.tenant().await;
    let flow = json(
        server
            .post(&a.key, "/v1/flows", &json!({"name": "mine"}))
            .await,
        201,
    )
    .await;
    let id = flow["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/flows/{id}");
    let version = server
        .post(
            &a.key,
            &format!("{path}/versions"),
            &json!({"definition": {"nodes": []}}),
        )
        .await;
    json(version, 201).await;

    problem(server.get(&b.key, &path).await, 404, "not-found").await;
    let patch = server
        .request(Method::PATCH, &path, Some(&b.key))
        .json(&json!({"name": "stolen"}))
        .send()
        .await
        .unwrap();
    problem(patch, 404, "not-found").await;
    problem(server.delete(&b.key, &path).await, 404, "not-found").await;
    let versions = server.get(&b.key, &format!("{path}/versions")).await;
    problem(versions, 404, "not-found").await;
    let new_version = server
        .post(
            &b.key,
            &format!("{path}/versions"),
            &json!({"definition": {}}),
        )
        .await;
    problem(new_version, 404, "not-found").await;
    let listed = json(server.get(&b.key, "/v1/flows").await, 200).await;
    assert_eq!(listed, json!([]));

    // A's flow is untouched.
    let read = json(server.get(&a.key, &path).await, 200).await;
    assert_eq!(read["name"], "mine");
}

async fn requests_without_a_valid_key_are_refused(server: TestServer) {
    let none = server
        .request(Method::GET, "/v1/flows", None)
        .send()
        .await
        .unwrap();
    let body = problem(none, 401, "missing-api-key").await;
    assert!(body["detail"].as_str().unwrap().contains("Bearer"));

    let basic = server
        .request(Method::GET, "/v1/flows", None)
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    problem(basic, 401, "missing-api-key").await;

    let foreign = server.get("sk_live_not_ours", "/v1/flows").await;
    problem(foreign, 401, "invalid-api-key").await;

    let unknown = server
        .get(
            "dur_sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "/v1/flows",
        )
        .await;
    problem(unknown, 401, "invalid-api-key").await;
}

async fn a_revoked_key_is_refused_from_then_on(server: TestServer) {
    let a = server.tenant().await;
    let created = server
        .post(&a.key, "/v1/keys", &json!({"name": "ci", "role": "member"}))
        .await;
    let created = json(created, 201).await;
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("dur_sk_"));
    json(server.get(&token, "/v1/flows").await, 200).await;

    let listed = json(server.get(&a.key, "/v1/keys").await, 200).await;
    assert!(
        !listed.to_string().contains(&token),
        "a listing never shows a token"
    );

    let id = created["id"].as_str().unwrap();
    let revoked = json(server.delete(&a.key, &format!("/v1/keys/{id}")).await, 200).await;
    assert!(revoked["revoked_at"].is_string());
    let refused = server.get(&token, "/v1/flows").await;
    problem(refused, 401, "invalid-api-key").await;
}

async fn scopes_are_enforced_and_cannot_be_escalated(server: TestServer) {
    let a = server.tenant().await;
    let reader = server.key_for(a.workspace, &["flows:read"]).await;
    json(server.get(&reader, "/v1/flows").await, 200).await;
    let write = server
        .post(&reader, "/v1/flows", &json!({"name": "x"}))
        .await;
    let body = problem(write, 403, "missing-scope").await;
    assert!(body["detail"].as_str().unwrap().contains("flows:write"));
    problem(server.get(&reader, "/v1/runs").await, 403, "missing-scope").await;

    let key_maker = server
        .key_for(a.workspace, &["keys:write", "flows:read"])
        .await;
    let escalate = server
        .post(
            &key_maker,
            "/v1/keys",
            &json!({"name": "x", "scopes": ["flows:write"]}),
        )
        .await;
    problem(escalate, 422, "scope-escalation").await;
    let unknown = server
        .post(
            &key_maker,
            "/v1/keys",
            &json!({"name": "x", "scopes": ["root"]}),
        )
        .await;
    problem(unknown, 422, "unknown-scope").await;
    let allowed = server
        .post(
            &key_maker,
            "/v1/keys",
            &json!({"name": "x", "scopes": ["flows:read"]}),
        )
        .await;
    json(allowed, 201).await;
}

async fn published_flow_versions_are_immutable(server: TestServer) {
    let a = server.tenant().await;
    let flow = json(
        server
            .post(&a.key, "/v1/flows", &json!({"name": "f"}))
            .await,
        201,
    )
    .await;
    let base = format!("/v1/flows/{}/versions", flow["id"].as_str().unwrap());
    let v1 = json(
        server
            .post(&a.key, &base, &json!({"definition": {"n": 1}}))
            .await,
        201,
    )
    .await;
    assert_eq!(v1["version"], 1);
    let v2 = json(
        server
            .post(&a.key, &base, &json!({"definition": {"n": 2}}))
            .await,
        201,
    )
    .await;
    assert_eq!(v2["version"], 2);

    let edit = server
        .request(Method::PUT, &format!("{base}/1"), Some(&a.key))
        .json(&json!({"definition": {"n": 10}}))
        .send()
        .await
        .unwrap();
    assert_eq!(json(edit, 200).await["definition"], json!({"n": 10}));

    let published = json(
        server
            .post(&a.key, &format!("{base}/1/publish"), &json!({}))
            .await,
        200,
    )
    .await;
    assert!(published["published_at"].is_string());
    let edit = server
        .request(Method::PUT, &format!("{base}/1"), Some(&a.key))
        .json(&json!({"definition": {"n": 11}}))
        .send()
        .await
        .unwrap();
    problem(edit, 409, "immutable").await;
    problem(
        server.delete(&a.key, &format!("{base}/1")).await,
        409,
        "immutable",
    )
    .await;
    let still = json(server.get(&a.key, &format!("{base}/1")).await, 200).await;
    assert_eq!(still["definition"], json!({"n": 10}));

    let not_object = server
        .post(&a.key, &base, &json!({"definition": [1]}))
        .await;
    problem(not_object, 422, "invalid-field").await;
}

async fn changes_are_audited_with_the_acting_key(server: TestServer) {
    let a = server.tenant().await;
    let keys = json(server.get(&a.key, "/v1/keys").await, 200).await;
    let key_id = keys[0]["id"].clone();
    let flow = json(
        server
            .post(&a.key, "/v1/flows", &json!({"name": "audited"}))
            .await,
        201,
    )
    .await;
    let flow_id = flow["id"].as_str().unwrap();
    server.delete(&a.key, &format!("/v1/flows/{flow_id}")).await;

    let audit = json(server.get(&a.key, "/v1/audit").await, 200).await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor_key_id"] == key_id)
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["flow.delete", "flow.create"]);
    assert_eq!(audit[0]["target"], format!("flow:{flow_id}"));

    let b = server.tenant().await;
    let other = json(server.get(&b.key, "/v1/audit").await, 200).await;
    assert!(
        !other.to_string().contains(flow_id),
        "audit entries stay in their workspace"
    );
}

async fn malformed_bodies_and_paths_get_problem_documents(server: TestServer) {
    let a = server.tenant().await;
    let syntax = server
        .request(Method::POST, "/v1/flows", Some(&a.key))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    problem(syntax, 400, "malformed-body").await;
    let wrong_type = server
        .request(Method::POST, "/v1/flows", Some(&a.key))
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    problem(wrong_type, 415, "unsupported-media-type").await;
    let unknown_field = server.post(&a.key, "/v1/flows", &json!({"nam": "x"})).await;
    problem(unknown_field, 422, "invalid-body").await;
    let huge = json!({"name": "x", "description": "a".repeat(2 * 1024 * 1024)});
    problem(
        server.post(&a.key, "/v1/flows", &huge).await,
        413,
        "body-too-large",
    )
    .await;
    problem(
        server.get(&a.key, "/v1/flows/not-a-uuid").await,
        400,
        "invalid-path",
    )
    .await;
    problem(
        server.get(&a.key, "/v1/nothing").await,
        404,
        "no-such-route",
    )
    .await;
    let duplicate = server
        .post(&a.key, "/v1/flows", &json!({"name": "same"}))
        .await;
    json(duplicate, 201).await;
    let duplicate = server
        .post(&a.key, "/v1/flows", &json!({"name": "same"}))
        .await;
    problem(duplicate, 409, "already-exists").await;
}
