//! The control plane on the embedded SQLite store: each test opens a private in-memory
//! database (migrated at open) and drives `SqliteControl` through the `ControlStore` trait.

use std::time::Duration;

use durable::SqliteStore;
use durable::rusqlite::params;
use durable_control::{
    ControlStore, DbError, FlowPatch, HookScheme, IdempotencyBegin, NewApiKey, Scope, SqliteControl,
};
use serde_json::json;
use uuid::Uuid;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

async fn open() -> anyhow::Result<(SqliteStore, SqliteControl)> {
    let store = SqliteStore::connect("sqlite::memory:").await?;
    let control = SqliteControl::new(&store);
    Ok((store, control))
}

/// A new tenant with one workspace, acted on by the system.
async fn workspace(control: &SqliteControl, slug: &str) -> anyhow::Result<Scope> {
    let tenant = control.create_tenant(slug, "free").await?;
    let workspace = control.create_workspace(tenant.id, "main", None).await?;
    Ok(Scope {
        workspace: workspace.id,
        actor: None,
    })
}

fn new_key(name: &str, hash_byte: u8) -> NewApiKey {
    NewApiKey {
        name: name.to_owned(),
        token_hash: [hash_byte; 32],
        token_prefix: format!("dk_{name}"),
        scopes: vec!["flows:read".to_owned(), "flows:write".to_owned()],
    }
}

/// The actions of the scope's audit log, newest first.
async fn actions(control: &SqliteControl, scope: Scope) -> anyhow::Result<Vec<String>> {
    let entries = control.list_audit(scope, 100).await?;
    Ok(entries.into_iter().map(|e| e.action).collect())
}

#[tokio::test]
async fn tenants_own_workspaces_and_slugs_are_unique() -> anyhow::Result<()> {
    let (_store, control) = open().await?;
    let tenant = control.create_tenant("acme", "pro").await?;
    assert_eq!(
        (tenant.slug.as_str(), tenant.plan.as_str()),
        ("acme", "pro")
    );

    let taken = control.create_tenant("acme", "free").await;
    assert!(
        matches!(&taken, Err(DbError::Conflict(m)) if m.contains("`acme`")),
        "{taken:?}"
    );

    let actor = Some(Uuid::now_v7());
    let created = control.create_workspace(tenant.id, "prod", actor).await?;
    let scope = Scope {
        workspace: created.id,
        actor: None,
    };
    let read = control.workspace(scope).await?;
    assert_eq!(
        (read.id, read.tenant_id, read.name.as_str()),
        (created.id, tenant.id, "prod")
    );
    assert_eq!(read.created_at, created.created_at);

    let audit = control.list_audit(scope, 10).await?;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "workspace.create");
    assert_eq!(audit[0].target, format!("workspace:{}", created.id));
    assert_eq!(audit[0].actor_key_id, actor);
    assert_eq!(audit[0].details["name"], "prod");

    let orphan = control.create_workspace(Uuid::now_v7(), "x", None).await;
    assert!(matches!(orphan, Err(DbError::Database(_))), "{orphan:?}");
    let missing = Scope {
        workspace: Uuid::now_v7(),
        actor: None,
    };
    assert!(control.workspace(missing).await.is_err());
    Ok(())
}

#[tokio::test]
async fn authenticate_finds_unrevoked_keys_only() -> anyhow::Result<()> {
    let (_store, control) = open().await?;
    let tenant = control.create_tenant("acme", "free").await?;
    let ws = control.create_workspace(tenant.id, "main", None).await?;
    let scope = Scope {
        workspace: ws.id,
        actor: None,
    };

    let key = control.create_api_key(scope, new_key("ci", 1)).await?;
    assert_eq!(
        (key.workspace_id, key.created_by, key.revoked_at),
        (ws.id, None, None)
    );
    let grant = control
        .authenticate(&[1; 32])
        .await?
        .expect("the key authenticates");
    assert_eq!(
        (grant.key_id, grant.workspace_id, grant.tenant_id),
        (key.id, ws.id, tenant.id)
    );
    assert_eq!(grant.scopes, key.scopes);
    assert!(control.authenticate(&[2; 32]).await?.is_none());

    // A key made by a key records its maker.
    let by_key = Scope {
        actor: Some(key.id),
        ..scope
    };
    let second = control.create_api_key(by_key, new_key("deploy", 2)).await?;
    assert_eq!(second.created_by, Some(key.id));
    let listed = control.list_api_keys(scope).await?;
    let ids: Vec<Uuid> = listed.iter().map(|k| k.id).collect();
    assert_eq!(ids, [key.id, second.id]);

    let revoked = control
        .revoke_api_key(by_key, key.id)
        .await?
        .expect("the key exists");
    let first_time = revoked.revoked_at.expect("revoked");
    assert!(control.authenticate(&[1; 32]).await?.is_none());
    assert!(control.authenticate(&[2; 32]).await?.is_some());

    let again = control
        .revoke_api_key(by_key, key.id)
        .await?
        .expect("exists");
    assert_eq!(
        again.revoked_at,
        Some(first_time),
        "the first revocation stays"
    );
    assert!(
        control
            .revoke_api_key(scope, Uuid::now_v7())
            .await?
            .is_none()
    );
    Ok(())
}

#[tokio::test]
async fn keys_of_another_workspace_are_out_of_reach() -> anyhow::Result<()> {
    let (_store, control) = open().await?;
    let a = workspace(&control, "a").await?;
    let b = workspace(&control, "b").await?;
    let key = control.create_api_key(a, new_key("ci", 7)).await?;

    assert!(control.list_api_keys(b).await?.is_empty());
    assert!(control.revoke_api_key(b, key.id).await?.is_none());
    assert!(control.authenticate(&[7; 32]).await?.is_some());
    Ok(())
}

#[tokio::test]
async fn members_are_put_by_email_and_removed() -> anyhow::Result<()> {
    let (_store, control) = open().await?;
    let a = workspace(&control, "a").await?;
    let b = workspace(&control, "b").await?;

    let ann = control.put_member(a, "ann@example.com", "admin").await?;
    assert_eq!(
        (ann.email.as_str(), ann.role.as_str()),
        ("ann@example.com", "admin")
    );
    let demoted = control.put_member(a, "ann@example.com", "viewer").await?;
    assert_eq!(
        (demoted.user_id, demoted.role.as_str()),
        (ann.user_id, "viewer")
    );
    assert_eq!(demoted.created_at, ann.created_at);
    control.put_member(a, "bob@example.com", "member").await?;

    let emails: Vec<String> = control
        .list_members(a)
        .await?
        .into_iter()
        .map(|m| m.email)
        .collect();
    assert_eq!(emails, ["ann@example.com", "bob@example.com"]);

    // One user, two workspaces.
    let in_b = control.put_member(b, "ann@example.com", "owner").await?;
    assert_eq!(in_b.user_id, ann.user_id);
    assert!(!control.remove_member(b, Uuid::now_v7()).await?);

    assert!(control.remove_member(a, ann.user_id).await?);
    assert!(!control.remove_member(a, ann.user_id).await?);
    assert_eq!(control.list_members(a).await?.len(), 1);
    assert_eq!(control.list_members(b).await?.len(), 1);

    let bad_role = control.put_member(a, "eve@example.com", "root").await;
    assert!(
        matches!(bad_role, Err(DbError::Database(_))),
        "{bad_role:?}"
    );
    Ok(())
}

#[tokio::test]
async fn flows_are_scoped_to_their_workspace() -> anyhow::Result<()> {
    let (_store, control) = open().await?;
    let a = workspace(&control, "a").await?;
    let b = workspace(&control, "b").await?;

    let first = control.create_flow(a, "orders", "sync orders").await?;
    let second = control.create_flow(a, "invoices", "").await?;
    let names: Vec<String> = control
        .list_flows(a)
        .await?
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, ["orders", "invoices"], "in creation order");
    let got = control.get_flow(a, first.id).await?.expect("found");
    assert_eq!(
        (got.name.as_str(), got.description.as_str()),
        ("orders", "sync orders")
    );

    // Workspace B sees nothing of A's, and changes nothing.
    assert!(control.list_flows(b).await?.is_empty());
    assert!(control.get_flow(b, first.id).await?.is_none());
    let patch = FlowPatch {
        name: Some("stolen".to_owned()),
        description: None,
    };
    assert!(control.update_flow(b, first.id, patch).await?.is_none());
    assert!(!control.delete_flow(b, first.id).await?);
    assert_eq!(
        control.get_flow(a, first.id).await?.expect("kept").name,
        "orders"
    );

    let patch = FlowPatch {
        name: None,
        description: Some("sync all orders".to_owned()),
    };
    let updated = control
        .update_flow(a, first.id, patch)
        .await?
        .expect("found");
    assert_eq!(updated.name, "orders");
    assert_eq!(updated.description, "sync all orders");
    assert!(updated.updated_at >= updated.created_at);
    assert_eq!(updated.created_at, first.created_at);

    assert!(control.delete_flow(a, second.id).await?);
    assert!(!control.delete_flow(a, second.id).await?);
    assert!(control.get_flow(a, second.id).await?.is_none());
    assert!(
        control
            .update_flow(a, Uuid::now_v7(), FlowPatch::default())
            .await?
            .is_none()
    );
    Ok(())
}

#[tokio::test]
async fn flow_names_are_unique_per_workspace() -> anyhow::Result<()> {
    let (_store, control) = open().await?;
    let a = workspace(&control, "a").await?;
    let b = workspace(&control, "b").await?;
    control.create_flow(a, "orders", "").await?;
    let other = control.create_flow(a, "invoices", "").await?;

    let taken = control.create_flow(a, "orders", "again").await;
    assert!(
        matches!(&taken, Err(DbError::Conflict(m))
            if m == "a flow named `orders` already exists in this workspace"),
        "{taken:?}"
    );
    let rename = FlowPatch {
        name: Some("orders".to_owned()),
        description: None,
    };
    let renamed = control.update_flow(a, other.id, rename).await;
    assert!(matches!(renamed, Err(DbError::Conflict(_))), "{renamed:?}");
    assert_eq!(
        control.get_flow(a, other.id).await?.expect("kept").name,
        "invoices"
    );

    // Another workspace may use the name.
    control.create_flow(b, "orders", "").await?;
    Ok(())
}

#[tokio::test]
async fn versions_are_numbered_and_immutable_once_published() -> anyhow::Result<()> {
    let (store, control) = open().await?;
    let a = workspace(&control, "a").await?;
    let b = workspace(&control, "b").await?;
    let flow = control.create_flow(a, "orders", "").await?;

    let mut numbers = Vec::new();
    for step in 0..3 {
        let created = control
            .create_flow_version(a, flow.id, &json!({ "steps": step }))
            .await?
            .expect("the flow exists");
        assert_eq!(created.published_at, None);
        numbers.push(created.version);
    }
    assert_eq!(numbers, [1, 2, 3]);
    let listed: Vec<i32> = control
        .list_flow_versions(a, flow.id)
        .await?
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(listed, [1, 2, 3]);

    let draft = control
        .update_flow_version(a, flow.id, 1, &json!({ "steps": 10 }))
        .await?
        .expect("found");
    assert_eq!(draft.definition, json!({ "steps": 10 }));

    let published = control
        .publish_flow_version(a, flow.id, 1)
        .await?
        .expect("found");
    let at = published.published_at.expect("published");
    let again = control
        .publish_flow_version(a, flow.id, 1)
        .await?
        .expect("found");
    assert_eq!(
        again.published_at,
        Some(at),
        "publishing twice changes nothing"
    );

    let update = control
        .update_flow_version(a, flow.id, 1, &json!({ "steps": 11 }))
        .await;
    assert!(
        matches!(&update, Err(DbError::Immutable(m))
            if m == &format!("version 1 of flow {} is published and cannot change", flow.id)),
        "{update:?}"
    );
    let delete = control.delete_flow_version(a, flow.id, 1).await;
    assert!(matches!(delete, Err(DbError::Immutable(_))), "{delete:?}");
    let kept = control
        .get_flow_version(a, flow.id, 1)
        .await?
        .expect("found");
    assert_eq!(kept.definition, json!({ "steps": 10 }));

    assert!(control.delete_flow_version(a, flow.id, 2).await?);
    assert!(!control.delete_flow_version(a, flow.id, 2).await?);
    assert!(control.get_flow_version(a, flow.id, 2).await?.is_none());
    let next = control
        .create_flow_version(a, flow.id, &json!({}))
        .await?
        .expect("found");
    assert_eq!(next.version, 4, "one past the highest");

    // Another workspace reaches none of it.
    assert!(control.list_flow_versions(b, flow.id).await?.is_empty());
    assert!(control.get_flow_version(b, flow.id, 3).await?.is_none());
    assert!(
        control
            .create_flow_version(b, flow.id, &json!({}))
            .await?
            .is_none()
    );
    assert!(
        control
            .update_flow_version(b, flow.id, 3, &json!({}))
            .await?
            .is_none()
    );
    assert!(control.publish_flow_version(b, flow.id, 3).await?.is_none());
    assert!(!control.delete_flow_version(b, flow.id, 3).await?);
    assert!(
        control
            .create_flow_version(a, Uuid::now_v7(), &json!({}))
            .await?
            .is_none()
    );

    // Deleting the flow takes its versions, published ones included.
    assert!(control.delete_flow(a, flow.id).await?);
    let left: i64 = store
        .with_connection(|conn| {
            Ok(conn.query_row("SELECT count(*) FROM flow_versions", [], |r| r.get(0))?)
        })
        .await?;
    assert_eq!(left, 0);
    Ok(())
}

#[tokio::test]
async fn hook_secrets_come_out_through_intake_only() -> anyhow::Result<()> {
    let (_store, control) = open().await?;
    let a = workspace(&control, "a").await?;
    let b = workspace(&control, "b").await?;
    let secrets = vec!["whsec_new".to_owned(), "whsec_old".to_owned()];

    let hook = control
        .create_hook(a, "on_order", HookScheme::StandardWebhooks, &secrets)
        .await?;
    assert_eq!(
        (hook.workspace_id, hook.scheme),
        (a.workspace, HookScheme::StandardWebhooks)
    );
    let got = control.get_hook(a, hook.id).await?.expect("found");
    assert_eq!(got.workflow_name, "on_order");
    assert_eq!(control.list_hooks(a).await?.len(), 1);

    let intake = control
        .hook_for_intake(hook.id)
        .await?
        .expect("found without a scope");
    assert_eq!(intake.secrets, secrets, "newest first, as given");
    assert_eq!(intake.hook.workspace_id, a.workspace);
    assert!(!format!("{intake:?}").contains("whsec"), "Debug redacts");

    let audit = serde_json::to_string(&control.list_audit(a, 100).await?)?;
    assert!(
        !audit.contains("whsec"),
        "no secret in the audit log: {audit}"
    );

    assert!(control.get_hook(b, hook.id).await?.is_none());
    assert!(control.list_hooks(b).await?.is_empty());
    assert!(!control.delete_hook(b, hook.id).await?);

    assert!(control.delete_hook(a, hook.id).await?);
    assert!(!control.delete_hook(a, hook.id).await?);
    assert!(control.hook_for_intake(hook.id).await?.is_none());
    Ok(())
}

#[tokio::test]
async fn idempotency_keys_claim_replay_and_refuse() -> anyhow::Result<()> {
    use IdempotencyBegin::*;
    let (_store, control) = open().await?;
    let a = workspace(&control, "a").await?;
    let b = workspace(&control, "b").await?;
    let (hash, other) = ([1; 32], [2; 32]);

    assert_eq!(control.begin_idempotent(a, "k1", &hash, DAY).await?, Fresh);
    assert_eq!(
        control.begin_idempotent(a, "k1", &hash, DAY).await?,
        InProgress
    );
    assert_eq!(
        control.begin_idempotent(a, "k1", &other, DAY).await?,
        Mismatch
    );
    // Keys are per workspace.
    assert_eq!(control.begin_idempotent(b, "k1", &other, DAY).await?, Fresh);

    control
        .finish_idempotent(a, "k1", 201, b"{\"id\":1}")
        .await?;
    let replay = Replay {
        status: 201,
        body: b"{\"id\":1}".to_vec(),
    };
    assert_eq!(control.begin_idempotent(a, "k1", &hash, DAY).await?, replay);
    assert_eq!(
        control.begin_idempotent(a, "k1", &other, DAY).await?,
        Mismatch
    );

    // A finished record is neither rewritten nor abandoned.
    control.finish_idempotent(a, "k1", 500, b"").await?;
    control.abandon_idempotent(a, "k1").await?;
    assert_eq!(control.begin_idempotent(a, "k1", &hash, DAY).await?, replay);

    // An unfinished one can be abandoned, and the key is free again.
    assert_eq!(control.begin_idempotent(a, "k2", &hash, DAY).await?, Fresh);
    control.abandon_idempotent(a, "k2").await?;
    assert_eq!(control.begin_idempotent(a, "k2", &other, DAY).await?, Fresh);

    // Nothing is audited.
    assert_eq!(actions(&control, a).await?, ["workspace.create"]);
    Ok(())
}

#[tokio::test]
async fn expired_idempotency_records_are_replaced() -> anyhow::Result<()> {
    use IdempotencyBegin::*;
    let (store, control) = open().await?;
    let a = workspace(&control, "a").await?;
    let (hash, other) = ([1; 32], [2; 32]);

    // A ttl of zero: every record has expired already.
    assert_eq!(control.begin_idempotent(a, "k", &hash, DAY).await?, Fresh);
    control.finish_idempotent(a, "k", 200, b"old").await?;
    assert_eq!(
        control
            .begin_idempotent(a, "k", &other, Duration::ZERO)
            .await?,
        Fresh
    );
    assert_eq!(
        control.begin_idempotent(a, "k", &other, DAY).await?,
        InProgress
    );
    control.finish_idempotent(a, "k", 202, b"new").await?;
    let replay = Replay {
        status: 202,
        body: b"new".to_vec(),
    };
    assert_eq!(control.begin_idempotent(a, "k", &other, DAY).await?, replay);

    // A record made more than a day ago, with a day's ttl.
    let workspace = a.workspace.to_string();
    store
        .with_connection(move |conn| {
            conn.execute(
                "UPDATE idempotency_keys SET created_at = created_at - ?2 WHERE workspace_id = ?1",
                params![workspace, 25 * 3_600 * 1_000_000_i64],
            )?;
            Ok(())
        })
        .await?;
    assert_eq!(control.begin_idempotent(a, "k", &hash, DAY).await?, Fresh);
    assert_eq!(
        control.begin_idempotent(a, "k", &hash, DAY).await?,
        InProgress
    );
    Ok(())
}

#[tokio::test]
async fn changes_are_audited_newest_first() -> anyhow::Result<()> {
    let (_store, control) = open().await?;
    let a = workspace(&control, "a").await?;
    let b = workspace(&control, "b").await?;
    let key = control.create_api_key(a, new_key("admin", 9)).await?;
    let by_key = Scope {
        actor: Some(key.id),
        ..a
    };

    let member = control
        .put_member(by_key, "ann@example.com", "member")
        .await?;
    control.remove_member(by_key, member.user_id).await?;
    let flow = control.create_flow(by_key, "orders", "").await?;
    let rename = FlowPatch {
        name: Some("sales".to_owned()),
        description: None,
    };
    control.update_flow(by_key, flow.id, rename).await?;
    control
        .create_flow_version(by_key, flow.id, &json!({ "a": 1 }))
        .await?;
    control
        .update_flow_version(by_key, flow.id, 1, &json!({ "a": 2 }))
        .await?;
    control.publish_flow_version(by_key, flow.id, 1).await?;
    control
        .create_flow_version(by_key, flow.id, &json!({}))
        .await?;
    control.delete_flow_version(by_key, flow.id, 2).await?;
    let hook = control
        .create_hook(
            by_key,
            "on_sale",
            HookScheme::Github,
            &["s3cret".to_owned()],
        )
        .await?;
    control.delete_hook(by_key, hook.id).await?;
    control.delete_flow(by_key, flow.id).await?;
    control.revoke_api_key(by_key, key.id).await?;
    // Refused changes leave no entry.
    assert!(control.create_flow(by_key, "x", "").await.is_ok());
    assert!(control.create_flow(by_key, "x", "").await.is_err());

    let entries = control.list_audit(a, 100).await?;
    let got: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        got,
        [
            "flow.create",
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
            "api_key.create",
            "workspace.create",
        ]
    );
    let find = |action: &str| entries.iter().find(|e| e.action == action);
    let update = find("flow.update").expect("logged");
    assert_eq!(update.target, format!("flow:{}", flow.id));
    assert_eq!(update.details, json!({ "name": "sales" }));
    assert_eq!(update.actor_key_id, Some(key.id));
    let publish = find("flow_version.publish").expect("logged");
    assert_eq!(publish.target, format!("flow:{}/versions/1", flow.id));
    assert_eq!(
        find("member.put").expect("logged").target,
        format!("user:{}", member.user_id)
    );
    assert_eq!(
        find("hook.create").expect("logged").target,
        format!("hook:{}", hook.id)
    );
    let created = find("api_key.create").expect("logged");
    assert_eq!(created.target, format!("api_key:{}", key.id));
    assert_eq!(created.actor_key_id, None, "the system made the first key");

    let log = serde_json::to_string(&entries)?;
    assert!(!log.contains("s3cret"), "no secret: {log}");
    assert!(!log.contains(&"09".repeat(32)), "no token hash: {log}");

    // Newest first, at most `limit`, this workspace's only.
    let two = control.list_audit(a, 2).await?;
    assert_eq!(
        two.iter().map(|e| e.id).collect::<Vec<_>>(),
        [entries[0].id, entries[1].id]
    );
    assert_eq!(actions(&control, b).await?, ["workspace.create"]);
    Ok(())
}
