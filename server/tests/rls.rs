//! `PgControl` on a real Postgres: row-level security keeps each workspace to its own rows
//! even for SQL that forgets the filter, and the store's trickier rules hold (idempotency
//! records, immutable published versions, audit entries written with their change).

use std::collections::BTreeSet;
use std::time::Duration;

use durable_control::{
    ControlStore, DbError, FlowPatch, HookScheme, IdempotencyBegin, NewApiKey, PgControl, Scope,
};
use durable_tests::TestDb;
use serde_json::json;
use uuid::Uuid;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// A fresh database with one tenant and its two workspaces, A and B.
struct Fixture {
    db: TestDb,
    control: PgControl,
    tenant: Uuid,
    a: Uuid,
    b: Uuid,
    _store: durable::PgStore,
}

async fn fixture() -> Fixture {
    let db = TestDb::new().await;
    let store = db.store().await;
    let control = PgControl::new(&store);
    let tenant = control.create_tenant("acme", "free").await.unwrap().id;
    let a = control
        .create_workspace(tenant, "a", None)
        .await
        .unwrap()
        .id;
    let b = control
        .create_workspace(tenant, "b", None)
        .await
        .unwrap()
        .id;
    Fixture {
        db,
        control,
        tenant,
        a,
        b,
        _store: store,
    }
}

fn scope(workspace: Uuid) -> Scope {
    Scope {
        workspace,
        actor: None,
    }
}

fn ids(rows: &[durable::tokio_postgres::Row]) -> Vec<Uuid> {
    rows.iter().map(|row| row.get("id")).collect()
}

/// A flow in each workspace, both named `orders`: the name is unique per workspace only.
async fn flow_in_each(f: &Fixture) -> (Uuid, Uuid) {
    let in_a = f.control.create_flow(scope(f.a), "orders", "").await;
    let in_b = f.control.create_flow(scope(f.b), "orders", "").await;
    (in_a.unwrap().id, in_b.unwrap().id)
}

#[tokio::test]
async fn a_query_without_a_workspace_filter_sees_its_own_workspace_only() {
    let f = fixture().await;
    let (flow_a, _) = flow_in_each(&f).await;

    let seen = f
        .control
        .query_as_tenant(f.a, "SELECT id FROM durable.flows")
        .await
        .unwrap();
    assert_eq!(ids(&seen), vec![flow_a]);

    let workspaces = f
        .control
        .query_as_tenant(f.a, "SELECT id FROM durable.workspaces")
        .await
        .unwrap();
    assert_eq!(ids(&workspaces), vec![f.a]);

    // The owner, outside the policies, sees both: the rows are there to be hidden.
    let owner = f.db.client().await;
    let all = owner
        .query("SELECT id FROM durable.flows", &[])
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
}

#[tokio::test]
async fn the_tenant_role_without_a_workspace_sees_nothing() {
    let f = fixture().await;
    flow_in_each(&f).await;

    let mut client = f.db.client().await;
    let tx = client.transaction().await.unwrap();
    tx.batch_execute("SET LOCAL ROLE durable_tenant")
        .await
        .unwrap();
    let unset = tx.query("SELECT id FROM durable.flows", &[]).await.unwrap();
    assert!(unset.is_empty(), "no workspace set, yet saw {unset:?}");

    tx.batch_execute("SELECT set_config('durable.workspace_id', '', true)")
        .await
        .unwrap();
    let empty = tx.query("SELECT id FROM durable.flows", &[]).await.unwrap();
    assert!(empty.is_empty(), "empty workspace set, yet saw {empty:?}");
}

#[tokio::test]
async fn the_tenant_cannot_write_into_another_workspace() {
    let f = fixture().await;
    let (flow_a, flow_b) = flow_in_each(&f).await;

    let insert = format!(
        "INSERT INTO durable.flows (workspace_id, id, name) VALUES ('{}', '{}', 'sneaky')",
        f.b,
        Uuid::now_v7()
    );
    let err = f.control.query_as_tenant(f.a, &insert).await.unwrap_err();
    assert!(
        matches!(&err, DbError::Database(e) if e.to_string().contains("row-level security")),
        "{err:?}"
    );

    // Moving its own row into B is refused by the same check.
    let relabel = format!("UPDATE durable.flows SET workspace_id = '{}'", f.b);
    let err = f.control.query_as_tenant(f.a, &relabel).await.unwrap_err();
    assert!(
        matches!(&err, DbError::Database(e) if e.to_string().contains("row-level security")),
        "{err:?}"
    );

    // An unfiltered UPDATE reaches A's rows only.
    let touched = f
        .control
        .query_as_tenant(
            f.a,
            "UPDATE durable.flows SET description = 'x' RETURNING id",
        )
        .await
        .unwrap();
    assert_eq!(ids(&touched), vec![flow_a]);

    let owner = f.db.client().await;
    let b_rows = owner
        .query(
            "SELECT id, description FROM durable.flows WHERE workspace_id = $1",
            &[&f.b],
        )
        .await
        .unwrap();
    assert_eq!(ids(&b_rows), vec![flow_b]);
    assert_eq!(b_rows[0].get::<_, String>("description"), "");
}

#[tokio::test]
async fn a_pooled_connection_goes_back_as_the_owner() {
    let f = fixture().await;
    // One connection, so every call below reuses the one the tenant calls ran on.
    let store = durable::PgStore::builder(&f.db.url)
        .pool_size(1)
        .connect()
        .await
        .unwrap();
    let control = PgControl::new(&store);
    let hook = control
        .create_hook(scope(f.b), "ingest", HookScheme::None, &[])
        .await
        .unwrap();
    control.create_flow(scope(f.a), "orders", "").await.unwrap();
    // A failed tenant transaction rolls back its settings too.
    let taken = control.create_flow(scope(f.a), "orders", "").await;
    assert!(matches!(taken, Err(DbError::Conflict(_))), "{taken:?}");
    assert!(control.hook_for_intake(hook.id).await.unwrap().is_some());
}

#[tokio::test]
async fn scoped_methods_do_not_reach_another_workspace() {
    let f = fixture().await;
    let (flow_a, flow_b) = flow_in_each(&f).await;
    let a = scope(f.a);

    assert!(f.control.get_flow(a, flow_b).await.unwrap().is_none());
    let patch = FlowPatch {
        name: Some("stolen".to_owned()),
        description: None,
    };
    assert!(
        f.control
            .update_flow(a, flow_b, patch)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!f.control.delete_flow(a, flow_b).await.unwrap());
    let version = f.control.create_flow_version(a, flow_b, &json!({})).await;
    assert!(version.unwrap().is_none());
    let listed: Vec<Uuid> = f
        .control
        .list_flows(a)
        .await
        .unwrap()
        .iter()
        .map(|flow| flow.id)
        .collect();
    assert_eq!(listed, vec![flow_a]);

    let hook = f
        .control
        .create_hook(
            scope(f.b),
            "ingest",
            HookScheme::Github,
            &["s3cret".to_owned()],
        )
        .await
        .unwrap();
    assert!(f.control.get_hook(a, hook.id).await.unwrap().is_none());
    assert!(!f.control.delete_hook(a, hook.id).await.unwrap());
    let intake = f.control.hook_for_intake(hook.id).await.unwrap().unwrap();
    assert_eq!(intake.secrets, vec!["s3cret".to_owned()]);
    assert_eq!(intake.hook.workspace_id, f.b);
}

#[tokio::test]
async fn idempotency_records_claim_replay_mismatch_and_expire() {
    let f = fixture().await;
    let a = scope(f.a);
    let (first, other) = ([1u8; 32], [2u8; 32]);
    let begin = |hash: [u8; 32], ttl| {
        let control = f.control.clone();
        async move { control.begin_idempotent(a, "k", &hash, ttl).await.unwrap() }
    };

    assert_eq!(begin(first, DAY).await, IdempotencyBegin::Fresh);
    assert_eq!(begin(first, DAY).await, IdempotencyBegin::InProgress);
    assert_eq!(begin(other, DAY).await, IdempotencyBegin::Mismatch);
    // Keys are per workspace.
    let in_b = f.control.begin_idempotent(scope(f.b), "k", &other, DAY);
    assert_eq!(in_b.await.unwrap(), IdempotencyBegin::Fresh);

    f.control
        .finish_idempotent(a, "k", 201, b"made")
        .await
        .unwrap();
    // A stored response is never overwritten.
    f.control
        .finish_idempotent(a, "k", 500, b"oops")
        .await
        .unwrap();
    let replay = IdempotencyBegin::Replay {
        status: 201,
        body: b"made".to_vec(),
    };
    assert_eq!(begin(first, DAY).await, replay);
    assert_eq!(begin(other, DAY).await, IdempotencyBegin::Mismatch);

    // Two hours old by the database's clock: live for a day-long ttl, expired for an hour.
    let owner = f.db.client().await;
    owner
        .execute(
            "UPDATE durable.idempotency_keys SET created_at = now() - interval '2 hours'
             WHERE workspace_id = $1 AND key = 'k'",
            &[&f.a],
        )
        .await
        .unwrap();
    assert_eq!(begin(first, DAY).await, replay);
    let hour = Duration::from_secs(3600);
    assert_eq!(begin(other, hour).await, IdempotencyBegin::Fresh);
    assert_eq!(begin(other, DAY).await, IdempotencyBegin::InProgress);

    f.control.abandon_idempotent(a, "k").await.unwrap();
    assert_eq!(begin(first, DAY).await, IdempotencyBegin::Fresh);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_have_one_owner() {
    let f = fixture().await;
    let a = scope(f.a);
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let control = f.control.clone();
            tokio::spawn(async move { control.begin_idempotent(a, "race", &[7; 32], DAY).await })
        })
        .collect();
    let mut fresh = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            IdempotencyBegin::Fresh => fresh += 1,
            IdempotencyBegin::InProgress => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(fresh, 1);
}

#[tokio::test]
async fn a_published_version_is_immutable() {
    let f = fixture().await;
    let a = scope(f.a);
    let flow = f.control.create_flow(a, "orders", "").await.unwrap().id;
    let v1 = f
        .control
        .create_flow_version(a, flow, &json!({"n": 1}))
        .await;
    let v2 = f
        .control
        .create_flow_version(a, flow, &json!({"n": 2}))
        .await;
    assert_eq!(v1.unwrap().unwrap().version, 1);
    assert_eq!(v2.unwrap().unwrap().version, 2);

    let published = f.control.publish_flow_version(a, flow, 1).await.unwrap();
    let at = published.unwrap().published_at.expect("published");
    let again = f.control.publish_flow_version(a, flow, 1).await.unwrap();
    assert_eq!(again.unwrap().published_at, Some(at));

    let update = f
        .control
        .update_flow_version(a, flow, 1, &json!({"n": 9}))
        .await;
    assert!(
        matches!(&update, Err(DbError::Immutable(m)) if m.contains("version 1") && m.contains("published")),
        "{update:?}"
    );
    let delete = f.control.delete_flow_version(a, flow, 1).await;
    assert!(matches!(delete, Err(DbError::Immutable(_))), "{delete:?}");
    let kept = f
        .control
        .get_flow_version(a, flow, 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.definition, json!({"n": 1}));

    // A draft still changes and goes.
    let draft = f
        .control
        .update_flow_version(a, flow, 2, &json!({"n": 3}))
        .await;
    assert_eq!(draft.unwrap().unwrap().definition, json!({"n": 3}));
    assert!(f.control.delete_flow_version(a, flow, 2).await.unwrap());
    assert!(!f.control.delete_flow_version(a, flow, 2).await.unwrap());
    let versions = f.control.list_flow_versions(a, flow).await.unwrap();
    assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), [1]);

    // Publishing twice is one change, so one entry.
    let audit = f.control.list_audit(a, 100).await.unwrap();
    let publishes: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "flow_version.publish")
        .collect();
    assert_eq!(publishes.len(), 1);
    assert_eq!(publishes[0].target, format!("flow:{flow}/versions/1"));
}

#[tokio::test]
async fn concurrent_creators_get_consecutive_versions() {
    let f = fixture().await;
    let a = scope(f.a);
    let flow = f.control.create_flow(a, "orders", "").await.unwrap().id;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let control = f.control.clone();
            tokio::spawn(async move { control.create_flow_version(a, flow, &json!(i)).await })
        })
        .collect();
    let mut versions = BTreeSet::new();
    for task in tasks {
        versions.insert(task.await.unwrap().unwrap().unwrap().version);
    }
    assert_eq!(versions, (1..=8).collect());
}

#[tokio::test]
async fn changes_write_their_audit_entries_and_conflicts_write_none() {
    let f = fixture().await;
    let actor = Some(Uuid::now_v7());
    let a = Scope {
        workspace: f.a,
        actor,
    };
    let flow = f
        .control
        .create_flow(a, "billing", "charges")
        .await
        .unwrap();

    let audit = f.control.list_audit(a, 100).await.unwrap();
    let newest = &audit[0];
    assert_eq!(newest.action, "flow.create");
    assert_eq!(newest.target, format!("flow:{}", flow.id));
    assert_eq!(newest.actor_key_id, actor);
    assert_eq!(
        newest.details,
        json!({"name": "billing", "description": "charges"})
    );
    let oldest = audit.last().unwrap();
    assert_eq!(oldest.action, "workspace.create");
    assert_eq!(oldest.target, format!("workspace:{}", f.a));

    let taken = f.control.create_flow(a, "billing", "again").await;
    assert!(
        matches!(&taken, Err(DbError::Conflict(m)) if m.contains("`billing`")),
        "{taken:?}"
    );
    assert_eq!(
        f.control.list_audit(a, 100).await.unwrap().len(),
        audit.len()
    );

    let in_b = f.control.list_audit(scope(f.b), 100).await.unwrap();
    assert!(
        in_b.iter().all(|e| e.action == "workspace.create"),
        "{in_b:?}"
    );

    let slug = f.control.create_tenant("acme", "pro").await;
    assert!(matches!(slug, Err(DbError::Conflict(_))), "{slug:?}");
}

#[tokio::test]
async fn keys_authenticate_until_revoked_once() {
    let f = fixture().await;
    let a = scope(f.a);
    let token_hash = [9u8; 32];
    let new = NewApiKey {
        name: "ci".to_owned(),
        token_hash,
        token_prefix: "dk_live_ab".to_owned(),
        scopes: vec!["flows:write".to_owned()],
    };
    let key = f.control.create_api_key(a, new).await.unwrap();
    let grant = f.control.authenticate(&token_hash).await.unwrap().unwrap();
    assert_eq!((grant.key_id, grant.workspace_id), (key.id, f.a));
    assert_eq!(grant.tenant_id, f.tenant);
    assert_eq!(grant.scopes, ["flows:write"]);

    let revoked = f.control.revoke_api_key(a, key.id).await.unwrap().unwrap();
    let again = f.control.revoke_api_key(a, key.id).await.unwrap().unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(again.revoked_at, revoked.revoked_at);
    assert!(f.control.authenticate(&token_hash).await.unwrap().is_none());
    assert!(
        f.control
            .revoke_api_key(scope(f.b), key.id)
            .await
            .unwrap()
            .is_none()
    );

    let audit = f.control.list_audit(a, 100).await.unwrap();
    let revokes = audit.iter().filter(|e| e.action == "api_key.revoke");
    assert_eq!(revokes.count(), 1);
    let created = audit.iter().find(|e| e.action == "api_key.create").unwrap();
    assert!(created.details.get("token_hash").is_none(), "{created:?}");
}

#[tokio::test]
async fn members_are_upserted_by_email() {
    let f = fixture().await;
    let a = scope(f.a);
    let first = f.control.put_member(a, "ada@example.com", "member").await;
    let first = first.unwrap();
    let promoted = f.control.put_member(a, "ada@example.com", "admin").await;
    let promoted = promoted.unwrap();
    assert_eq!(promoted.user_id, first.user_id);
    assert_eq!(promoted.role, "admin");
    let in_b = f
        .control
        .put_member(scope(f.b), "ada@example.com", "viewer")
        .await;
    assert_eq!(in_b.unwrap().user_id, first.user_id);

    let members = f.control.list_members(a).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(
        (members[0].email.as_str(), members[0].role.as_str()),
        ("ada@example.com", "admin")
    );
    let bad = f.control.put_member(a, "bob@example.com", "god").await;
    assert!(bad.is_err());

    assert!(f.control.remove_member(a, first.user_id).await.unwrap());
    assert!(!f.control.remove_member(a, first.user_id).await.unwrap());
    assert!(f.control.list_members(a).await.unwrap().is_empty());
    assert_eq!(f.control.list_members(scope(f.b)).await.unwrap().len(), 1);
}
