//! The control plane's conformance suite: every case runs on a fresh Postgres database
//! (`postgres::<case>`) and on a fresh SQLite file (`sqlite::<case>`), through the same
//! rules, and must give the same answers on both.

use std::collections::BTreeMap;
use std::time::Duration;

use durable_control::{
    AuditEvent, ConnectorAction, ConnectorOwner, ConnectorTrigger, Control, DeliveryClaim, Error,
    FlowPatch, Hook, HookScheme, IdempotencyBegin, IdempotencyRequest, NewApiKey,
    NewConnectorVersion, RunAction, Scope, TriggerKind,
};
use durable_tests::AnyStore;
use serde_json::json;
use uuid::Uuid;

mod support;

use support::{
    age_hook_deliveries, age_idempotency_records, count_rows, try_tamper_with_audit_log,
};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

async fn open(store: &AnyStore) -> Control {
    match store {
        AnyStore::Postgres(store, _) => Control::postgres(store).await,
        AnyStore::Sqlite(store, _) => Control::sqlite(store).await,
    }
    .expect("open the control plane")
}

/// A new tenant with one workspace, acted on by the system.
async fn workspace(control: &Control, slug: &str) -> Scope {
    let tenant = control.create_tenant(slug, "free").await.unwrap();
    let workspace = control
        .create_workspace(tenant.id, "main", None)
        .await
        .unwrap();
    Scope::system(workspace.id)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn new_key(name: &str, hash_byte: u8, scopes: &[&str]) -> NewApiKey {
    NewApiKey {
        name: name.to_owned(),
        token_hash: [hash_byte; 32],
        token_prefix: format!("dk_{name}"),
        scopes: strings(scopes),
    }
}

const ADMIN: &[&str] = &["keys:write", "members:write", "flows:write"];

/// The actions of the scope's audit log, newest first.
async fn actions(control: &Control, scope: Scope) -> Vec<String> {
    let entries = control.list_audit(scope, 100).await.unwrap();
    entries.into_iter().map(|e| e.action).collect()
}

fn request<'a>(key: &'a str, hash: &'a [u8; 32]) -> IdempotencyRequest<'a> {
    IdempotencyRequest {
        key,
        request_hash: hash,
    }
}

async fn tenants_own_workspaces_and_slugs_are_unique(store: AnyStore) {
    let control = open(&store).await;
    let tenant = control.create_tenant("acme", "pro").await.unwrap();
    assert_eq!(
        (tenant.slug.as_str(), tenant.plan.as_str()),
        ("acme", "pro")
    );

    let taken = control.create_tenant("acme", "free").await;
    assert!(
        matches!(&taken, Err(Error::Conflict(m)) if m == "a tenant with slug `acme` already exists"),
        "{taken:?}"
    );

    let actor = Some(Uuid::now_v7());
    let created = control
        .create_workspace(tenant.id, "prod", actor)
        .await
        .unwrap();
    let read = control.workspace(Scope::system(created.id)).await.unwrap();
    assert_eq!(
        (read.id, read.tenant_id, read.name.as_str()),
        (created.id, tenant.id, "prod")
    );
    assert_eq!(read.created_at, created.created_at);

    let audit = control
        .list_audit(Scope::system(created.id), 10)
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "workspace.create");
    assert_eq!(audit[0].target, format!("workspace:{}", created.id));
    assert_eq!(audit[0].actor_key_id, actor);
    assert_eq!(
        audit[0].details,
        json!({ "name": "prod", "tenant_id": tenant.id })
    );

    // A missing tenant is the caller's mistake on both stores, never a database fault.
    let orphan = control.create_workspace(Uuid::now_v7(), "x", None).await;
    assert!(
        matches!(&orphan, Err(Error::Invalid(m)) if m.starts_with("no tenant ")),
        "{orphan:?}"
    );
}

async fn authenticate_finds_unrevoked_keys_only(store: AnyStore) {
    let control = open(&store).await;
    let tenant = control.create_tenant("acme", "free").await.unwrap();
    let ws = control
        .create_workspace(tenant.id, "main", None)
        .await
        .unwrap();
    let scope = Scope::system(ws.id);

    let key = control
        .create_api_key(scope, new_key("ci", 1, ADMIN))
        .await
        .unwrap();
    assert_eq!(
        (key.workspace_id, key.created_by, key.revoked_at),
        (ws.id, None, None)
    );
    let grant = control.authenticate(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(
        (grant.key_id, grant.workspace_id, grant.tenant_id),
        (key.id, ws.id, tenant.id)
    );
    assert_eq!(grant.scopes, key.scopes);
    assert!(control.authenticate(&[2; 32]).await.unwrap().is_none());

    // A key made by a key records its maker.
    let by_key = Scope {
        actor: Some(key.id),
        ..scope
    };
    let second = control
        .create_api_key(by_key, new_key("deploy", 2, ADMIN))
        .await
        .unwrap();
    assert_eq!(second.created_by, Some(key.id));
    let listed = control.list_api_keys(scope).await.unwrap();
    let ids: Vec<Uuid> = listed.iter().map(|k| k.id).collect();
    assert_eq!(ids, [key.id, second.id]);

    let revoked = control
        .revoke_api_key(by_key, key.id, &strings(ADMIN))
        .await
        .unwrap()
        .unwrap();
    let first_time = revoked.revoked_at.expect("revoked");
    assert!(control.authenticate(&[1; 32]).await.unwrap().is_none());
    assert!(control.authenticate(&[2; 32]).await.unwrap().is_some());

    let again = control
        .revoke_api_key(by_key, key.id, &strings(ADMIN))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.revoked_at,
        Some(first_time),
        "the first revocation stays"
    );
    let unknown = control
        .revoke_api_key(scope, Uuid::now_v7(), &strings(ADMIN))
        .await;
    assert!(unknown.unwrap().is_none());
}

async fn a_key_cannot_revoke_a_key_holding_scopes_it_lacks(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    let owner = control
        .create_api_key(a, new_key("owner", 1, ADMIN))
        .await
        .unwrap();
    control
        .create_api_key(a, new_key("owner-2", 2, ADMIN))
        .await
        .unwrap();
    let weak = control
        .create_api_key(a, new_key("keys", 3, &["keys:write"]))
        .await
        .unwrap();
    let by_weak = Scope {
        actor: Some(weak.id),
        ..a
    };

    let refused = control
        .revoke_api_key(by_weak, owner.id, &weak.scopes)
        .await;
    assert!(
        matches!(&refused, Err(Error::Forbidden(m)) if m.contains("`members:write`")),
        "{refused:?}"
    );
    assert!(control.authenticate(&[1; 32]).await.unwrap().is_some());
    // It may revoke itself: it holds every scope it has.
    let own = control.revoke_api_key(by_weak, weak.id, &weak.scopes).await;
    assert!(own.unwrap().unwrap().revoked_at.is_some());
}

async fn the_last_key_able_to_manage_the_workspace_cannot_be_revoked(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    let first = control
        .create_api_key(a, new_key("first", 1, ADMIN))
        .await
        .unwrap();
    let second = control
        .create_api_key(a, new_key("second", 2, ADMIN))
        .await
        .unwrap();
    let admin = strings(ADMIN);

    control.revoke_api_key(a, first.id, &admin).await.unwrap();
    let last = control.revoke_api_key(a, second.id, &admin).await;
    assert!(
        matches!(&last, Err(Error::LastAdmin(m)) if m.contains("last key")),
        "{last:?}"
    );
    assert!(control.authenticate(&[2; 32]).await.unwrap().is_some());
    let revokes = actions(&control, a).await;
    assert_eq!(revokes.iter().filter(|a| *a == "api_key.revoke").count(), 1);
}

async fn keys_of_another_workspace_are_out_of_reach(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    let b = workspace(&control, "b").await;
    let key = control
        .create_api_key(a, new_key("ci", 7, ADMIN))
        .await
        .unwrap();

    assert!(control.list_api_keys(b).await.unwrap().is_empty());
    let revoked = control.revoke_api_key(b, key.id, &strings(ADMIN)).await;
    assert!(revoked.unwrap().is_none());
    assert!(control.authenticate(&[7; 32]).await.unwrap().is_some());
}

async fn members_are_put_by_email_and_removed(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    let b = workspace(&control, "b").await;

    control
        .put_member(a, "own@example.com", "owner")
        .await
        .unwrap();
    let ann = control
        .put_member(a, "ann@example.com", "admin")
        .await
        .unwrap();
    assert_eq!(
        (ann.email.as_str(), ann.role.as_str()),
        ("ann@example.com", "admin")
    );
    let demoted = control
        .put_member(a, "ann@example.com", "viewer")
        .await
        .unwrap();
    assert_eq!(
        (demoted.user_id, demoted.role.as_str()),
        (ann.user_id, "viewer")
    );
    assert_eq!(demoted.created_at, ann.created_at);

    let emails: Vec<String> = control
        .list_members(a)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.email)
        .collect();
    assert_eq!(emails, ["own@example.com", "ann@example.com"]);

    // One user, two workspaces.
    let in_b = control
        .put_member(b, "ann@example.com", "owner")
        .await
        .unwrap();
    assert_eq!(in_b.user_id, ann.user_id);
    assert!(!control.remove_member(b, Uuid::now_v7()).await.unwrap());

    assert!(control.remove_member(a, ann.user_id).await.unwrap());
    assert!(!control.remove_member(a, ann.user_id).await.unwrap());
    assert_eq!(control.list_members(a).await.unwrap().len(), 1);
    assert_eq!(control.list_members(b).await.unwrap().len(), 1);

    let bad_role = control.put_member(a, "eve@example.com", "root").await;
    assert!(
        matches!(&bad_role, Err(Error::Invalid(m)) if m.contains("`root`")),
        "{bad_role:?}"
    );
}

async fn the_last_owner_cannot_be_removed_or_demoted(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    let own = control
        .put_member(a, "own@example.com", "owner")
        .await
        .unwrap();

    let removed = control.remove_member(a, own.user_id).await;
    assert!(
        matches!(&removed, Err(Error::LastAdmin(m)) if m.contains("last owner")),
        "{removed:?}"
    );
    let demoted = control.put_member(a, "own@example.com", "admin").await;
    assert!(matches!(demoted, Err(Error::LastAdmin(_))), "{demoted:?}");
    assert_eq!(control.list_members(a).await.unwrap()[0].role, "owner");

    // With a second owner, either may go.
    control
        .put_member(a, "two@example.com", "owner")
        .await
        .unwrap();
    assert!(control.remove_member(a, own.user_id).await.unwrap());
}

async fn flows_are_scoped_to_their_workspace(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    let b = workspace(&control, "b").await;

    let first = control
        .create_flow(a, "orders", "sync orders")
        .await
        .unwrap();
    let second = control.create_flow(a, "invoices", "").await.unwrap();
    let names: Vec<String> = control
        .list_flows(a)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, ["orders", "invoices"], "in creation order");

    // Workspace B sees nothing of A's, and changes nothing.
    assert!(control.list_flows(b).await.unwrap().is_empty());
    assert!(control.get_flow(b, first.id).await.unwrap().is_none());
    let patch = FlowPatch {
        name: Some("stolen".to_owned()),
        description: None,
    };
    assert!(
        control
            .update_flow(b, first.id, patch)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!control.delete_flow(b, first.id).await.unwrap());

    let patch = FlowPatch {
        name: None,
        description: Some("sync all orders".to_owned()),
    };
    let updated = control
        .update_flow(a, first.id, patch)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.name, "orders");
    assert_eq!(updated.description, "sync all orders");
    assert!(updated.updated_at >= updated.created_at);
    assert_eq!(updated.created_at, first.created_at);

    assert!(control.delete_flow(a, second.id).await.unwrap());
    assert!(!control.delete_flow(a, second.id).await.unwrap());
    assert!(control.get_flow(a, second.id).await.unwrap().is_none());
}

async fn flow_names_are_unique_per_workspace(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    let b = workspace(&control, "b").await;
    control.create_flow(a, "orders", "").await.unwrap();
    let other = control.create_flow(a, "invoices", "").await.unwrap();

    let taken = control.create_flow(a, "orders", "again").await;
    assert!(
        matches!(&taken, Err(Error::Conflict(m))
            if m == "a flow named `orders` already exists in this workspace"),
        "{taken:?}"
    );
    let rename = FlowPatch {
        name: Some("orders".to_owned()),
        description: None,
    };
    let renamed = control.update_flow(a, other.id, rename).await;
    assert!(
        matches!(&renamed, Err(Error::Conflict(m))
            if m == "a flow named `orders` already exists in this workspace"),
        "{renamed:?}"
    );
    // Renaming a flow to its own name is no conflict.
    let same = FlowPatch {
        name: Some("invoices".to_owned()),
        description: None,
    };
    assert!(
        control
            .update_flow(a, other.id, same)
            .await
            .unwrap()
            .is_some()
    );
    control.create_flow(b, "orders", "").await.unwrap();
}

async fn versions_are_numbered_and_immutable_once_published(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    let b = workspace(&control, "b").await;
    let flow = control.create_flow(a, "orders", "").await.unwrap();

    let mut numbers = Vec::new();
    for step in 0..3 {
        let created = control
            .create_flow_version(a, flow.id, &json!({ "steps": step }))
            .await
            .unwrap()
            .expect("the flow exists");
        assert_eq!(created.published_at, None);
        numbers.push(created.version);
    }
    assert_eq!(numbers, [1, 2, 3]);

    let draft = control
        .update_flow_version(a, flow.id, 1, &json!({ "steps": 10 }))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(draft.definition, json!({ "steps": 10 }));
    let published = control
        .publish_flow_version(a, flow.id, 1)
        .await
        .unwrap()
        .unwrap();
    let at = published.published_at.expect("published");
    let again = control
        .publish_flow_version(a, flow.id, 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.published_at,
        Some(at),
        "publishing twice changes nothing"
    );

    let update = control
        .update_flow_version(a, flow.id, 1, &json!({ "steps": 11 }))
        .await;
    let expected = format!(
        "version 1 of flow {} is published and cannot be changed; create a new version instead",
        flow.id
    );
    assert!(
        matches!(&update, Err(Error::Immutable(m)) if *m == expected),
        "{update:?}"
    );
    let delete = control.delete_flow_version(a, flow.id, 1).await;
    let expected = expected.replace("changed", "deleted");
    assert!(
        matches!(&delete, Err(Error::Immutable(m)) if *m == expected),
        "{delete:?}"
    );
    let kept = control
        .get_flow_version(a, flow.id, 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.definition, json!({ "steps": 10 }));

    assert!(control.delete_flow_version(a, flow.id, 2).await.unwrap());
    assert!(!control.delete_flow_version(a, flow.id, 2).await.unwrap());
    let next = control
        .create_flow_version(a, flow.id, &json!({}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.version, 4, "one past the highest");

    // Another workspace reaches none of it.
    assert!(
        control
            .list_flow_versions(b, flow.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        control
            .get_flow_version(b, flow.id, 3)
            .await
            .unwrap()
            .is_none()
    );
    let foreign = control.create_flow_version(b, flow.id, &json!({})).await;
    assert!(foreign.unwrap().is_none());
    assert!(
        control
            .publish_flow_version(b, flow.id, 3)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!control.delete_flow_version(b, flow.id, 3).await.unwrap());

    // Deleting the flow takes its versions, published ones included.
    assert!(control.delete_flow(a, flow.id).await.unwrap());
    assert_eq!(count_rows(&store, "flow_versions").await, 0);
}

async fn concurrent_drafts_get_distinct_numbers(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    let flow = control.create_flow(a, "orders", "").await.unwrap();
    let creations = (0..8).map(|i| {
        let control = control.clone();
        tokio::spawn(async move {
            control
                .create_flow_version(a, flow.id, &json!({ "i": i }))
                .await
        })
    });
    let mut numbers = Vec::new();
    for created in futures::future::join_all(creations).await {
        numbers.push(created.unwrap().unwrap().unwrap().version);
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=8).collect::<Vec<_>>());
}

async fn hook_secrets_come_out_through_intake_only(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    let b = workspace(&control, "b").await;
    let secrets = strings(&["whsec_new", "whsec_old"]);

    let hook = control
        .create_hook(a, "on_order", HookScheme::StandardWebhooks, &secrets, None)
        .await
        .unwrap();
    assert_eq!(
        (hook.workspace_id, hook.scheme),
        (a.workspace, HookScheme::StandardWebhooks)
    );
    assert_eq!(control.list_hooks(a).await.unwrap().len(), 1);

    let intake = control.hook_for_intake(hook.id).await.unwrap().unwrap();
    assert_eq!(intake.secrets, secrets, "newest first, as given");
    assert!(!format!("{intake:?}").contains("whsec"), "Debug redacts");

    let rotated = control
        .rotate_hook_secret(a, hook.id, "whsec_newest", 1)
        .await
        .unwrap();
    assert!(rotated.is_some());
    let intake = control.hook_for_intake(hook.id).await.unwrap().unwrap();
    assert_eq!(intake.secrets, strings(&["whsec_newest", "whsec_new"]));

    let audit = control.list_audit(a, 100).await.unwrap();
    let rotate = audit.iter().find(|e| e.action == "hook.rotate").unwrap();
    assert_eq!(rotate.details, json!({ "secrets": 2 }));
    let log = serde_json::to_string(&audit).unwrap();
    assert!(!log.contains("whsec"), "no secret in the audit log: {log}");

    assert!(control.get_hook(b, hook.id).await.unwrap().is_none());
    assert!(control.list_hooks(b).await.unwrap().is_empty());
    assert!(!control.delete_hook(b, hook.id).await.unwrap());
    let foreign = control.rotate_hook_secret(b, hook.id, "x", 0).await;
    assert!(foreign.unwrap().is_none());

    assert!(control.delete_hook(a, hook.id).await.unwrap());
    assert!(!control.delete_hook(a, hook.id).await.unwrap());
    assert!(control.hook_for_intake(hook.id).await.unwrap().is_none());
}

async fn idempotency_keys_claim_replay_and_refuse(store: AnyStore) {
    use IdempotencyBegin::*;
    let control = open(&store).await;
    let a = Scope {
        actor: Some(Uuid::now_v7()),
        ..workspace(&control, "a").await
    };
    let b = Scope {
        actor: Some(Uuid::now_v7()),
        ..workspace(&control, "b").await
    };
    let (hash, other) = ([1; 32], [2; 32]);
    let begin = |scope, key, hash| {
        let control = control.clone();
        async move {
            control
                .begin_idempotent(scope, request(key, &hash), DAY)
                .await
                .unwrap()
        }
    };

    assert_eq!(begin(a, "k1", hash).await, Fresh);
    assert_eq!(begin(a, "k1", hash).await, InProgress);
    assert_eq!(begin(a, "k1", other).await, Mismatch);
    assert_eq!(begin(b, "k1", other).await, Fresh, "keys are per workspace");

    let body = b"{\"id\":1}";
    control
        .finish_idempotent(a, "k1", 201, body, Some("flows:write"))
        .await
        .unwrap();
    let replay = Replay {
        status: 201,
        body: body.to_vec(),
        permission: Some("flows:write".to_owned()),
    };
    assert_eq!(begin(a, "k1", hash).await, replay);
    assert_eq!(begin(a, "k1", other).await, Mismatch);

    // A finished record is neither rewritten nor abandoned.
    control
        .finish_idempotent(a, "k1", 500, b"", None)
        .await
        .unwrap();
    control.abandon_idempotent(a, "k1").await.unwrap();
    assert_eq!(begin(a, "k1", hash).await, replay);

    // An unfinished one can be abandoned, and the key is free again.
    assert_eq!(begin(a, "k2", hash).await, Fresh);
    control.abandon_idempotent(a, "k2").await.unwrap();
    assert_eq!(begin(a, "k2", other).await, Fresh);

    assert_eq!(
        actions(&control, a).await,
        ["workspace.create"],
        "not audited"
    );
}

async fn idempotency_records_belong_to_the_key_that_made_them(store: AnyStore) {
    use IdempotencyBegin::*;
    let control = open(&store).await;
    let ws = workspace(&control, "a").await;
    let owner = Scope {
        actor: Some(Uuid::now_v7()),
        ..ws
    };
    let other_key = Scope {
        actor: Some(Uuid::now_v7()),
        ..ws
    };
    let hash = [3; 32];
    let begun = control
        .begin_idempotent(owner, request("k", &hash), DAY)
        .await;
    assert_eq!(begun.unwrap(), Fresh);
    control
        .finish_idempotent(owner, "k", 201, b"{}", Some("keys:write"))
        .await
        .unwrap();

    // The same key and body from another API key of the workspace: its own, fresh record.
    let begun = control
        .begin_idempotent(other_key, request("k", &hash), DAY)
        .await;
    assert_eq!(begun.unwrap(), Fresh);
}

async fn expired_idempotency_records_are_replaced(store: AnyStore) {
    use IdempotencyBegin::*;
    let control = open(&store).await;
    let a = Scope {
        actor: Some(Uuid::now_v7()),
        ..workspace(&control, "a").await
    };
    let (hash, other) = ([1; 32], [2; 32]);
    let begin = |hash, ttl| {
        let control = control.clone();
        async move {
            control
                .begin_idempotent(a, request("k", &hash), ttl)
                .await
                .unwrap()
        }
    };

    assert_eq!(begin(hash, DAY).await, Fresh);
    control
        .finish_idempotent(a, "k", 200, b"old", None)
        .await
        .unwrap();
    // A ttl of zero: every record has expired already.
    assert_eq!(begin(other, Duration::ZERO).await, Fresh);
    assert_eq!(begin(other, DAY).await, InProgress);
    control
        .finish_idempotent(a, "k", 202, b"new", None)
        .await
        .unwrap();
    let replay = Replay {
        status: 202,
        body: b"new".to_vec(),
        permission: None,
    };
    assert_eq!(begin(other, DAY).await, replay);

    // A record made more than a day ago, with a day's ttl.
    age_idempotency_records(&store, Duration::from_secs(25 * 3600)).await;
    assert_eq!(begin(hash, DAY).await, Fresh);
    assert_eq!(begin(hash, DAY).await, InProgress);
}

async fn changes_are_audited_newest_first(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    let b = workspace(&control, "b").await;
    let key = control
        .create_api_key(a, new_key("admin", 9, ADMIN))
        .await
        .unwrap();
    control
        .create_api_key(a, new_key("spare", 8, ADMIN))
        .await
        .unwrap();
    let by_key = Scope {
        actor: Some(key.id),
        ..a
    };

    control
        .put_member(by_key, "own@example.com", "owner")
        .await
        .unwrap();
    let member = control
        .put_member(by_key, "ann@example.com", "member")
        .await
        .unwrap();
    control.remove_member(by_key, member.user_id).await.unwrap();
    let flow = control.create_flow(by_key, "orders", "").await.unwrap();
    let rename = FlowPatch {
        name: Some("sales".to_owned()),
        description: None,
    };
    control.update_flow(by_key, flow.id, rename).await.unwrap();
    let definition = json!({ "nodes": ["a-definition-marker"] });
    control
        .create_flow_version(by_key, flow.id, &definition)
        .await
        .unwrap();
    control
        .update_flow_version(by_key, flow.id, 1, &definition)
        .await
        .unwrap();
    control
        .publish_flow_version(by_key, flow.id, 1)
        .await
        .unwrap();
    control
        .create_flow_version(by_key, flow.id, &json!({}))
        .await
        .unwrap();
    control
        .delete_flow_version(by_key, flow.id, 2)
        .await
        .unwrap();
    let hook = control
        .create_hook(
            by_key,
            "on_sale",
            HookScheme::Github,
            &strings(&["s3cret"]),
            None,
        )
        .await
        .unwrap();
    control.delete_hook(by_key, hook.id).await.unwrap();
    control.delete_flow(by_key, flow.id).await.unwrap();
    control
        .revoke_api_key(by_key, key.id, &strings(ADMIN))
        .await
        .unwrap();
    let run = Uuid::now_v7();
    let event = AuditEvent::Run {
        action: RunAction::Cancel,
        run,
        workflow: None,
    };
    control.record(by_key, event).await.unwrap();
    // Refused changes leave no entry.
    assert!(control.create_flow(by_key, "x", "").await.is_ok());
    assert!(control.create_flow(by_key, "x", "").await.is_err());

    let entries = control.list_audit(a, 100).await.unwrap();
    let got: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        got,
        [
            "flow.create",
            "run.cancel",
            "api_key.revoke",
            "flow.delete",
            "hook.delete",
            "hook.create",
            "flow_version.delete",
            "flow_version.create",
            "flow_version.publish",
            "flow_version.update",
            "flow_version.create",
            "flow.update",
            "flow.create",
            "member.remove",
            "member.put",
            "member.put",
            "api_key.create",
            "api_key.create",
            "workspace.create",
        ]
    );
    let find = |action: &str| entries.iter().find(|e| e.action == action).unwrap();
    assert_eq!(find("run.cancel").target, format!("run:{run}"));
    assert_eq!(find("run.cancel").actor_key_id, Some(key.id));
    let update = find("flow.update");
    assert_eq!(update.target, format!("flow:{}", flow.id));
    assert_eq!(update.details, json!({ "name": "sales" }));
    assert_eq!(update.actor_key_id, Some(key.id));
    // The same details on both stores: never a definition, a secret or a token hash.
    for action in [
        "flow_version.create",
        "flow_version.update",
        "flow_version.publish",
        "flow_version.delete",
        "hook.delete",
    ] {
        assert_eq!(find(action).details, json!({}), "{action}");
    }
    assert_eq!(find("api_key.revoke").details, json!({ "name": "admin" }));
    assert_eq!(
        find("member.remove").details,
        json!({ "email": "ann@example.com" })
    );
    assert_eq!(
        find("flow_version.publish").target,
        format!("flow:{}/versions/1", flow.id)
    );
    assert_eq!(
        find("api_key.create").actor_key_id,
        None,
        "the system made them"
    );
    let log = serde_json::to_string(&entries).unwrap();
    for secret in ["s3cret", "a-definition-marker", &"09".repeat(32)] {
        assert!(!log.contains(secret), "{secret} in the audit log: {log}");
    }

    // Newest first, at most `limit`, this workspace's only.
    let two = control.list_audit(a, 2).await.unwrap();
    let ids: Vec<Uuid> = two.iter().map(|e| e.id).collect();
    assert_eq!(ids, [entries[0].id, entries[1].id]);
    assert_eq!(actions(&control, b).await, ["workspace.create"]);
}

async fn the_audit_log_is_append_only(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    control.create_flow(a, "orders", "").await.unwrap();
    for statement in [
        "UPDATE durable.audit_log SET action = 'forged'",
        "DELETE FROM durable.audit_log",
    ] {
        let refused = try_tamper_with_audit_log(&store, a.workspace, statement).await;
        assert!(refused.is_err(), "{statement} was allowed");
    }
    assert_eq!(
        actions(&control, a).await,
        ["flow.create", "workspace.create"]
    );
}

async fn github_hook(control: &Control, scope: Scope, window: Option<Duration>) -> Hook {
    let secrets = strings(&["a-github-secret-of-some-length"]);
    control
        .create_hook(scope, "on_push", HookScheme::Github, &secrets, window)
        .await
        .unwrap()
}

fn repeat_of(delivery: &str) -> DeliveryClaim {
    DeliveryClaim::Repeat {
        delivery_id: delivery.to_owned(),
    }
}

async fn hook_dedupe_windows_default_by_scheme_and_are_bounded(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    let five_minutes = Some(Duration::from_secs(300));
    assert_eq!(
        github_hook(&control, a, None).await.dedupe_window,
        five_minutes
    );
    let hour = Some(Duration::from_secs(3600));
    assert_eq!(github_hook(&control, a, hour).await.dedupe_window, hour);
    let off = github_hook(&control, a, Some(Duration::ZERO)).await;
    assert_eq!(off.dedupe_window, None);
    let standard = control
        .create_hook(a, "on_order", HookScheme::StandardWebhooks, &[], None)
        .await
        .unwrap();
    assert_eq!(standard.dedupe_window, None);
    let listed = control.list_hooks(a).await.unwrap();
    let windows: Vec<_> = listed.iter().map(|h| h.dedupe_window).collect();
    assert_eq!(windows, [five_minutes, hour, None, None]);

    for bad in [DAY + Duration::from_secs(1), Duration::from_millis(1500)] {
        let refused = control
            .create_hook(a, "on_push", HookScheme::Github, &[], Some(bad))
            .await;
        assert!(
            matches!(&refused, Err(Error::Invalid(m)) if m.contains("dedupe window")),
            "{bad:?}: {refused:?}"
        );
    }
}

async fn a_repeated_body_is_a_duplicate_within_the_hooks_window_only(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    let b = workspace(&control, "b").await;
    let hook = github_hook(&control, a, None).await;
    let (one, two, three) = ([1u8; 32], [2u8; 32], [3u8; 32]);

    let first = control.claim_delivery(&hook, &one, "d1").await.unwrap();
    assert_eq!(first, DeliveryClaim::First);
    let again = control.claim_delivery(&hook, &one, "d2").await.unwrap();
    assert_eq!(
        again,
        repeat_of("d1"),
        "a fresh delivery id does not make it new"
    );
    let other = control.claim_delivery(&hook, &two, "d3").await.unwrap();
    assert_eq!(other, DeliveryClaim::First);
    // Digests are per hook: another hook (of another workspace here) sees its own.
    let elsewhere = github_hook(&control, b, None).await;
    let theirs = control
        .claim_delivery(&elsewhere, &one, "d1")
        .await
        .unwrap();
    assert_eq!(theirs, DeliveryClaim::First);

    // Past the window, the body is new again, and a later claim forgets the expired rest.
    age_hook_deliveries(&store, Duration::from_secs(300)).await;
    let later = control.claim_delivery(&hook, &one, "d4").await.unwrap();
    assert_eq!(later, DeliveryClaim::First);
    assert_eq!(
        control.claim_delivery(&hook, &one, "d5").await.unwrap(),
        repeat_of("d4")
    );
    assert_eq!(
        count_rows(&store, "hook_deliveries").await,
        2,
        "`two` expired and was forgotten; `one` and the other hook's remain"
    );

    // A claim whose run could not start is released by its own delivery only.
    control.release_delivery(&hook, &one, "d5").await.unwrap();
    assert_eq!(
        control.claim_delivery(&hook, &one, "d6").await.unwrap(),
        repeat_of("d4")
    );
    control.release_delivery(&hook, &one, "d4").await.unwrap();
    assert_eq!(
        control.claim_delivery(&hook, &one, "d7").await.unwrap(),
        DeliveryClaim::First
    );

    // A hook without a window records nothing.
    let off = github_hook(&control, a, Some(Duration::ZERO)).await;
    for delivery in ["e1", "e2"] {
        let claim = control
            .claim_delivery(&off, &three, delivery)
            .await
            .unwrap();
        assert_eq!(claim, DeliveryClaim::First);
    }
    assert_eq!(count_rows(&store, "hook_deliveries").await, 2);

    // Deleting a hook deletes what it saw.
    assert!(control.delete_hook(a, hook.id).await.unwrap());
    assert_eq!(count_rows(&store, "hook_deliveries").await, 1);
}

async fn identical_deliveries_at_once_agree_on_the_first(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    let hook = github_hook(&control, a, None).await;
    let ids: Vec<String> = (0..8).map(|i| format!("d{i}")).collect();
    let claims = futures::future::join_all(
        ids.iter()
            .map(|id| control.claim_delivery(&hook, &[9; 32], id)),
    )
    .await;
    let claims: Vec<DeliveryClaim> = claims.into_iter().map(Result::unwrap).collect();
    let firsts: Vec<&String> = ids
        .iter()
        .zip(&claims)
        .filter(|(_, c)| **c == DeliveryClaim::First)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(firsts.len(), 1, "{claims:?}");
    for claim in claims.iter().filter(|c| **c != DeliveryClaim::First) {
        assert_eq!(*claim, repeat_of(firsts[0]));
    }
}

/// Asserts an [`Error::Invalid`] that names `what`.
fn invalid<T: std::fmt::Debug>(outcome: &Result<T, Error>, what: &str) {
    assert!(
        matches!(outcome, Err(Error::Invalid(m)) if m.contains(what)),
        "{what}: {outcome:?}"
    );
}

async fn names_are_bounded_the_same_way_on_both_stores(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    let tenant = control.create_tenant("bounded", "free").await.unwrap();
    let long = "x".repeat(101);
    for name in [long.as_str(), "", "a\0b", "a\u{1b}b", "abc\u{202e}fed"] {
        invalid(&control.create_flow(a, name, "").await, "flow name");
        invalid(
            &control.create_workspace(tenant.id, name, None).await,
            "workspace name",
        );
        let key = control.create_api_key(a, new_key(name, 7, ADMIN)).await;
        invalid(&key, "key name");
        let hook = control
            .create_hook(a, name, HookScheme::None, &[], None)
            .await;
        invalid(&hook, "workflow name");
    }
    for description in ["x".repeat(2001), "a\0b".to_owned()] {
        invalid(
            &control.create_flow(a, "f", &description).await,
            "flow description",
        );
    }
    let flow = control.create_flow(a, "f", "two\nlines").await.unwrap();
    let patch = FlowPatch {
        name: Some(long.clone()),
        description: None,
    };
    invalid(&control.update_flow(a, flow.id, patch).await, "flow name");
    for slug in ["Acme", "", "a b", &"a".repeat(64)] {
        invalid(&control.create_tenant(slug, "free").await, "tenant slug");
    }
    for email in [
        "nobody",
        "a\0@example.com",
        &format!("{}@example.com", "a".repeat(250)),
    ] {
        invalid(&control.put_member(a, email, "viewer").await, "email");
    }
    // Nothing was written.
    assert_eq!(control.list_flows(a).await.unwrap().len(), 1);
    assert_eq!(count_rows(&store, "users").await, 0);
}

/// A digest made of one repeated byte: packages told apart by `byte`.
fn digest(byte: u8) -> String {
    format!("{byte:02x}").repeat(32)
}

/// A validated-looking package of connector `name` at `version`, whose code and digest are
/// told apart by `byte`.
fn package(name: &str, version: &str, byte: u8) -> NewConnectorVersion {
    let input = json!({ "type": "object", "properties": { "title": { "type": "string" } } });
    NewConnectorVersion {
        name: name.to_owned(),
        version: version.to_owned(),
        display_name: format!("{name} (display)"),
        description: "files issues".to_owned(),
        manifest: json!({
            "name": name,
            "version": version,
            "main": "index.js",
            "auth": { "type": "none" },
            "ratio": 1.5,
            "note": "crab 🦀 \"quoted\"",
        }),
        files: BTreeMap::from([
            (
                "index.js".to_owned(),
                format!("export const build = {byte};"),
            ),
            ("schemas/issue.json".to_owned(), "{}".to_owned()),
        ]),
        digest: digest(byte),
        triggers: vec![
            ConnectorTrigger {
                key: "on_push".to_owned(),
                kind: TriggerKind::Webhook,
                display_name: "On push".to_owned(),
                description: String::new(),
                payload_schema: Some(json!({ "type": "object" })),
            },
            ConnectorTrigger {
                key: "new_issue".to_owned(),
                kind: TriggerKind::Polling,
                display_name: String::new(),
                description: "every new issue".to_owned(),
                payload_schema: None,
            },
        ],
        actions: vec![ConnectorAction {
            key: "create_issue".to_owned(),
            display_name: "Create an issue".to_owned(),
            description: "with a title".to_owned(),
            input_schema: input,
            output_schema: None,
        }],
    }
}

/// The names a workspace's catalog lists, each with its owner and versions.
async fn catalog(control: &Control, scope: Scope) -> Vec<(String, ConnectorOwner, Vec<String>)> {
    let listed = control.list_connectors(scope).await.unwrap();
    listed
        .into_iter()
        .map(|c| {
            let versions = c.versions.into_iter().map(|v| v.version).collect();
            (c.name, c.owner, versions)
        })
        .collect()
}

fn entry(
    name: &str,
    owner: ConnectorOwner,
    versions: &[&str],
) -> (String, ConnectorOwner, Vec<String>) {
    (name.to_owned(), owner, strings(versions))
}

async fn connectors_are_installed_listed_and_read_back_whole(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    let sent = package("crm", "1.0.0", 1);
    let installed = control.install_connector(a, sent.clone()).await.unwrap();
    assert!(installed.created);
    assert_eq!(
        (installed.name.as_str(), installed.version.as_str()),
        ("crm", "1.0.0")
    );
    assert_eq!(installed.owner, ConnectorOwner::Workspace);
    assert_eq!(installed.workspace_id, Some(a.workspace));
    assert_eq!(installed.digest, digest(1));

    let read = control
        .get_connector_version(a, "crm", "1.0.0")
        .await
        .unwrap()
        .expect("installed");
    assert_eq!(read.connector_id, installed.connector_id);
    assert_eq!(
        (read.owner, read.workspace_id),
        (ConnectorOwner::Workspace, Some(a.workspace))
    );
    assert_eq!(read.display_name, "crm (display)");
    assert_eq!(
        read.manifest, sent.manifest,
        "the manifest comes back as it went in"
    );
    assert_eq!(read.files, sent.files);
    assert_eq!(read.digest, sent.digest);
    assert_eq!(read.created_at, installed.created_at);
    let keys: Vec<&str> = read.triggers.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["new_issue", "on_push"], "by key");
    let by_key = |key: &str| sent.triggers.iter().find(|t| t.key == key).unwrap().clone();
    assert_eq!(read.triggers, [by_key("new_issue"), by_key("on_push")]);
    assert_eq!(read.actions, sent.actions);
    assert!(
        control
            .get_connector_version(a, "crm", "9.9.9")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        control
            .get_connector_version(a, "nope", "1.0.0")
            .await
            .unwrap()
            .is_none()
    );

    // A global connector joins the catalog; versions list most recently installed first.
    let global = control
        .install_global_connector(package("github", "2.0.0", 2))
        .await
        .unwrap();
    assert_eq!(
        (global.owner, global.workspace_id),
        (ConnectorOwner::Global, None)
    );
    control
        .install_global_connector(package("github", "1.4.0", 3))
        .await
        .unwrap();
    let mut second = package("crm", "1.1.0", 4);
    second.display_name = "CRM".to_owned();
    second.description = "files issues, and closes them".to_owned();
    control.install_connector(a, second).await.unwrap();
    assert_eq!(
        catalog(&control, a).await,
        [
            entry("crm", ConnectorOwner::Workspace, &["1.1.0", "1.0.0"]),
            entry("github", ConnectorOwner::Global, &["1.4.0", "2.0.0"]),
        ]
    );
    // The catalog says what the latest install says the connector is.
    let listed = control.list_connectors(a).await.unwrap();
    assert_eq!(listed[0].display_name, "CRM");
    assert_eq!(listed[0].description, "files issues, and closes them");
    assert_eq!(listed[0].versions[1].digest, digest(1));
    let old = control
        .get_connector_version(a, "crm", "1.0.0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.display_name, "CRM");
    assert_eq!(old.digest, digest(1), "its own package is unchanged");

    let via_worker = control
        .connector_version_for(a.workspace, "github", "2.0.0")
        .await
        .unwrap()
        .expect("a global connector");
    assert_eq!(
        (via_worker.owner, via_worker.workspace_id),
        (ConnectorOwner::Global, None)
    );
    assert_eq!(via_worker.digest, digest(2));
}

async fn reinstalling_the_same_package_changes_nothing(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    let first = control
        .install_connector(a, package("crm", "1.0.0", 1))
        .await
        .unwrap();
    let again = control
        .install_connector(a, package("crm", "1.0.0", 1))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(
        (again.connector_id, again.created_at, again.digest.as_str()),
        (first.connector_id, first.created_at, first.digest.as_str())
    );
    assert_eq!(
        actions(&control, a).await,
        ["connector.install", "workspace.create"]
    );

    let global = control
        .install_global_connector(package("github", "1.0.0", 2))
        .await
        .unwrap();
    let global_again = control
        .install_global_connector(package("github", "1.0.0", 2))
        .await
        .unwrap();
    assert!(global.created && !global_again.created);
    assert_eq!(global_again.connector_id, global.connector_id);
    for table in ["connectors", "connector_versions", "connector_actions"] {
        assert_eq!(count_rows(&store, table).await, 2, "{table}");
    }
    assert_eq!(count_rows(&store, "connector_triggers").await, 4);
}

async fn an_installed_version_never_changes(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    control
        .install_connector(a, package("crm", "1.0.0", 1))
        .await
        .unwrap();
    let changed = control
        .install_connector(a, package("crm", "1.0.0", 9))
        .await;
    let expected = format!(
        "version 1.0.0 of connector `crm` is already installed with other contents (digest {}); \
         an installed version never changes: install this package under a new version",
        digest(1)
    );
    assert!(
        matches!(&changed, Err(Error::Immutable(m)) if *m == expected),
        "{changed:?}"
    );

    control
        .install_global_connector(package("github", "1.0.0", 2))
        .await
        .unwrap();
    let changed = control
        .install_global_connector(package("github", "1.0.0", 3))
        .await;
    assert!(
        matches!(&changed, Err(Error::Immutable(m)) if m.contains("connector `github`")),
        "{changed:?}"
    );

    let kept = control
        .get_connector_version(a, "crm", "1.0.0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.digest, digest(1));
    assert_eq!(kept.files["index.js"], "export const build = 1;");
    assert_eq!(
        actions(&control, a).await,
        ["connector.install", "workspace.create"]
    );
    assert_eq!(count_rows(&store, "connector_versions").await, 2);
}

async fn a_workspaces_connectors_are_its_own(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    let b = workspace(&control, "b").await;
    control
        .install_global_connector(package("github", "1.0.0", 1))
        .await
        .unwrap();
    control
        .install_connector(a, package("crm", "1.0.0", 2))
        .await
        .unwrap();
    control
        .install_connector(a, package("erp", "1.0.0", 3))
        .await
        .unwrap();
    // A name is unique per workspace only: B may have a `crm` of its own.
    let theirs = control
        .install_connector(b, package("crm", "1.0.0", 4))
        .await
        .unwrap();
    assert!(theirs.created);

    assert_eq!(
        catalog(&control, a).await,
        [
            entry("crm", ConnectorOwner::Workspace, &["1.0.0"]),
            entry("erp", ConnectorOwner::Workspace, &["1.0.0"]),
            entry("github", ConnectorOwner::Global, &["1.0.0"]),
        ]
    );
    assert_eq!(
        catalog(&control, b).await,
        [
            entry("crm", ConnectorOwner::Workspace, &["1.0.0"]),
            entry("github", ConnectorOwner::Global, &["1.0.0"]),
        ]
    );
    // Each reads its own `crm`; B reaches none of A's, by any way in.
    let crm = |scope: Scope| control.get_connector_version(scope, "crm", "1.0.0");
    assert_eq!(crm(a).await.unwrap().unwrap().digest, digest(2));
    assert_eq!(crm(b).await.unwrap().unwrap().digest, digest(4));
    assert!(
        control
            .get_connector_version(b, "erp", "1.0.0")
            .await
            .unwrap()
            .is_none()
    );
    let for_b = control
        .connector_version_for(b.workspace, "erp", "1.0.0")
        .await;
    assert!(for_b.unwrap().is_none());
    // Both see the global one.
    for scope in [a, b] {
        let github = control
            .get_connector_version(scope, "github", "1.0.0")
            .await;
        assert_eq!(github.unwrap().unwrap().owner, ConnectorOwner::Global);
    }
}

async fn a_workspace_cannot_take_a_global_connectors_name(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    let b = workspace(&control, "b").await;
    control
        .install_global_connector(package("github", "1.0.0", 1))
        .await
        .unwrap();
    let shadow = control
        .install_connector(a, package("github", "6.6.6", 2))
        .await;
    assert!(
        matches!(&shadow, Err(Error::Conflict(m)) if m == "a global connector named `github` \
            exists; a workspace's own connector cannot take its name: choose another"),
        "{shadow:?}"
    );
    assert!(
        control
            .get_connector_version(a, "github", "6.6.6")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(actions(&control, a).await, ["workspace.create"]);

    // A global connector that arrives after a workspace's own of the same name takes nothing
    // from it: that workspace keeps its own, and may add versions; the others get the global.
    control
        .install_connector(b, package("crm", "1.0.0", 3))
        .await
        .unwrap();
    control
        .install_global_connector(package("crm", "1.0.0", 4))
        .await
        .unwrap();
    let more = control
        .install_connector(b, package("crm", "1.1.0", 5))
        .await
        .unwrap();
    assert!(more.created);
    let own = control
        .get_connector_version(b, "crm", "1.0.0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (own.owner, own.digest),
        (ConnectorOwner::Workspace, digest(3))
    );
    let global = control
        .get_connector_version(a, "crm", "1.0.0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (global.owner, global.digest),
        (ConnectorOwner::Global, digest(4))
    );
    assert_eq!(
        catalog(&control, b).await,
        [
            entry("crm", ConnectorOwner::Workspace, &["1.1.0", "1.0.0"]),
            entry("crm", ConnectorOwner::Global, &["1.0.0"]),
            entry("github", ConnectorOwner::Global, &["1.0.0"]),
        ]
    );
}

async fn installing_a_connector_is_audited(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    let key = control
        .create_api_key(a, new_key("ci", 1, ADMIN))
        .await
        .unwrap();
    let by_key = Scope {
        actor: Some(key.id),
        ..a
    };
    let installed = control
        .install_connector(by_key, package("crm", "1.0.0", 1))
        .await
        .unwrap();
    control
        .install_global_connector(package("github", "1.0.0", 2))
        .await
        .unwrap();

    let entries = control.list_audit(a, 10).await.unwrap();
    let got: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        got,
        ["connector.install", "api_key.create", "workspace.create"]
    );
    let install = &entries[0];
    assert_eq!(install.actor_key_id, Some(key.id));
    assert_eq!(
        install.target,
        format!("connector:{}/versions/1.0.0", installed.connector_id)
    );
    assert_eq!(
        install.details,
        json!({ "name": "crm", "version": "1.0.0", "digest": digest(1) })
    );
    let log = serde_json::to_string(&entries).unwrap();
    assert!(
        !log.contains("export const build"),
        "code in the audit log: {log}"
    );
}

async fn a_malformed_package_is_refused_before_any_row(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    let mut bad_digest = package("crm", "1.0.0", 1);
    bad_digest.digest = "ABC".to_owned();
    invalid(
        &control.install_connector(a, bad_digest).await,
        "connector digest",
    );
    let mut other_name = package("crm", "1.0.0", 1);
    other_name.manifest["name"] = json!("erp");
    let refused = control.install_global_connector(other_name).await;
    invalid(
        &refused,
        "the manifest's `name` is `erp`, not the package's `crm`",
    );
    let mut no_version = package("crm", "1.0.0", 1);
    no_version
        .manifest
        .as_object_mut()
        .unwrap()
        .remove("version");
    invalid(
        &control.install_connector(a, no_version).await,
        "`version` is missing",
    );
    let mut twice = package("crm", "1.0.0", 1);
    twice.actions.push(twice.actions[0].clone());
    invalid(
        &control.install_connector(a, twice).await,
        "action key `create_issue` appears twice",
    );
    let mut long_label = package("crm", "1.0.0", 1);
    long_label.triggers[0].display_name = "x".repeat(201);
    invalid(
        &control.install_connector(a, long_label).await,
        "trigger display name",
    );
    let mut blank = package("crm", "1.0.0", 1);
    blank.display_name = " ".to_owned();
    invalid(
        &control.install_connector(a, blank).await,
        "connector display name",
    );

    assert_eq!(count_rows(&store, "connectors").await, 0);
    assert_eq!(actions(&control, a).await, ["workspace.create"]);
}

async fn concurrent_installs_of_one_package_store_it_once(store: AnyStore) {
    let control = open(&store).await;
    let a = workspace(&control, "a").await;
    let installs = (0..6).map(|i| {
        let control = control.clone();
        tokio::spawn(async move {
            if i % 2 == 0 {
                control
                    .install_connector(a, package("crm", "1.0.0", 1))
                    .await
            } else {
                control
                    .install_global_connector(package("crm", "1.0.0", 1))
                    .await
            }
        })
    });
    let mut created = 0;
    for outcome in futures::future::join_all(installs).await {
        match outcome.unwrap() {
            Ok(installed) => created += usize::from(installed.created),
            // The workspace lost the name to a global install that came first.
            Err(Error::Conflict(_)) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert!((1..=2).contains(&created), "{created}");
    assert_eq!(
        count_rows(&store, "connector_versions").await,
        i64::try_from(created).unwrap()
    );
}

durable_tests::on_both_stores! {
    any:
    tenants_own_workspaces_and_slugs_are_unique,
    authenticate_finds_unrevoked_keys_only,
    a_key_cannot_revoke_a_key_holding_scopes_it_lacks,
    the_last_key_able_to_manage_the_workspace_cannot_be_revoked,
    keys_of_another_workspace_are_out_of_reach,
    members_are_put_by_email_and_removed,
    the_last_owner_cannot_be_removed_or_demoted,
    flows_are_scoped_to_their_workspace,
    flow_names_are_unique_per_workspace,
    versions_are_numbered_and_immutable_once_published,
    concurrent_drafts_get_distinct_numbers,
    hook_secrets_come_out_through_intake_only,
    idempotency_keys_claim_replay_and_refuse,
    idempotency_records_belong_to_the_key_that_made_them,
    expired_idempotency_records_are_replaced,
    changes_are_audited_newest_first,
    the_audit_log_is_append_only,
    hook_dedupe_windows_default_by_scheme_and_are_bounded,
    a_repeated_body_is_a_duplicate_within_the_hooks_window_only,
    identical_deliveries_at_once_agree_on_the_first,
    names_are_bounded_the_same_way_on_both_stores,
    connectors_are_installed_listed_and_read_back_whole,
    reinstalling_the_same_package_changes_nothing,
    an_installed_version_never_changes,
    a_workspaces_connectors_are_its_own,
    a_workspace_cannot_take_a_global_connectors_name,
    installing_a_connector_is_audited,
    a_malformed_package_is_refused_before_any_row,
    concurrent_installs_of_one_package_store_it_once,
}
