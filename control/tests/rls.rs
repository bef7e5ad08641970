//! Row-level security on Postgres: a tenant transaction sees and writes its own workspace's
//! rows only — control-plane tables and the engine's run tables alike — even with SQL that
//! forgets the filter, and a pooled connection carries nothing from one workspace to the next.

use std::time::Duration;

use durable::{Client, WorkspaceId};
use durable_control::postgres::query_as_tenant;
use durable_control::{Control, Error, Scope};
use durable_tests::workflows::approval;
use durable_tests::{TestDb, while_working, worker_on};
use serde_json::json;
use uuid::Uuid;

/// A fresh database with one tenant and its two workspaces, A and B.
struct Fixture {
    db: TestDb,
    store: durable::PgStore,
    control: Control,
    a: Uuid,
    b: Uuid,
}

async fn fixture() -> Fixture {
    let db = TestDb::new().await;
    let store = db.store().await;
    let control = Control::postgres(&store).await.unwrap();
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
        store,
        control,
        a,
        b,
    }
}

fn ids(rows: &[durable::tokio_postgres::Row], column: &str) -> Vec<Uuid> {
    rows.iter().map(|row| row.get(column)).collect()
}

/// A flow in each workspace, both named `orders`: the name is unique per workspace only.
async fn flow_in_each(f: &Fixture) -> (Uuid, Uuid) {
    let in_a = f
        .control
        .create_flow(Scope::system(f.a), "orders", "")
        .await;
    let in_b = f
        .control
        .create_flow(Scope::system(f.b), "orders", "")
        .await;
    (in_a.unwrap().id, in_b.unwrap().id)
}

fn refused_by_policy(err: &Error) -> bool {
    err.to_string().contains("row-level security")
}

#[tokio::test]
async fn a_query_without_a_workspace_filter_sees_its_own_workspace_only() {
    let f = fixture().await;
    let (flow_a, _) = flow_in_each(&f).await;

    let seen = query_as_tenant(&f.store, f.a, "SELECT id FROM durable.flows").await;
    assert_eq!(ids(&seen.unwrap(), "id"), vec![flow_a]);
    let workspaces = query_as_tenant(&f.store, f.a, "SELECT id FROM durable.workspaces").await;
    assert_eq!(ids(&workspaces.unwrap(), "id"), vec![f.a]);

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
    for table in ["flows", "runs", "audit_log"] {
        let sql = format!("SELECT 1 FROM durable.{table}");
        let unset = tx.query(&sql, &[]).await.unwrap();
        assert!(unset.is_empty(), "no workspace set, yet saw {table}");
    }
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
    let err = query_as_tenant(&f.store, f.a, &insert).await.unwrap_err();
    assert!(refused_by_policy(&err), "{err:?}");

    // Moving its own row into B is refused by the same check.
    let relabel = format!("UPDATE durable.flows SET workspace_id = '{}'", f.b);
    let err = query_as_tenant(&f.store, f.a, &relabel).await.unwrap_err();
    assert!(refused_by_policy(&err), "{err:?}");

    // An unfiltered UPDATE reaches A's rows only.
    let sql = "UPDATE durable.flows SET description = 'x' RETURNING id";
    let touched = query_as_tenant(&f.store, f.a, sql).await.unwrap();
    assert_eq!(ids(&touched, "id"), vec![flow_a]);
    let owner = f.db.client().await;
    let b_rows = owner
        .query(
            "SELECT id, description FROM durable.flows WHERE workspace_id = $1",
            &[&f.b],
        )
        .await
        .unwrap();
    assert_eq!(ids(&b_rows, "id"), vec![flow_b]);
    assert_eq!(b_rows[0].get::<_, String>("description"), "");
}

/// Runs in both workspaces with every kind of run row: a completed run's steps and events,
/// a message nobody takes, and a schedule.
async fn runs_in_each(f: &Fixture) {
    let worker = worker_on(std::sync::Arc::new(f.store.clone()));
    while_working(worker, async {
        for workspace in [f.a, f.b] {
            let client = Client::new(f.store.clone()).in_workspace(WorkspaceId(workspace));
            let handle = client.start(approval, 60_000).await.unwrap();
            client.send(handle.id(), "unread", &json!(1)).await.unwrap();
            client.send(handle.id(), "approve", &"yes").await.unwrap();
            let answer = handle.result_timeout(Duration::from_secs(30)).await;
            assert_eq!(answer.unwrap(), Some("yes".to_owned()));
            client
                .schedule("nightly")
                .cron("0 3 * * *")
                .start(approval, 1)
                .await
                .unwrap();
        }
    })
    .await;
}

const RUN_TABLES: [&str; 5] = ["runs", "steps", "messages", "events", "schedules"];

#[tokio::test]
async fn the_run_tables_show_a_tenant_its_own_workspace_only() {
    let f = fixture().await;
    runs_in_each(&f).await;
    let owner = f.db.client().await;
    for table in RUN_TABLES {
        let sql = format!("SELECT DISTINCT workspace_id FROM durable.{table} ORDER BY 1");
        let everyone = owner.query(&sql, &[]).await.unwrap();
        let mut both = vec![f.a, f.b];
        both.sort();
        assert_eq!(
            ids(&everyone, "workspace_id"),
            both,
            "{table} holds rows of both"
        );
        for workspace in [f.a, f.b] {
            let seen = query_as_tenant(&f.store, workspace, &sql).await.unwrap();
            assert_eq!(ids(&seen, "workspace_id"), vec![workspace], "{table}");
        }
    }
}

#[tokio::test]
async fn a_tenant_writes_the_run_tables_of_its_own_workspace_only() {
    let f = fixture().await;
    runs_in_each(&f).await;
    for table in RUN_TABLES {
        let delete = format!("DELETE FROM durable.{table}");
        let err = query_as_tenant(&f.store, f.a, &delete).await.unwrap_err();
        assert!(
            err.to_string().contains("permission denied"),
            "{delete}: {err}"
        );
    }
    for table in ["steps", "messages", "events", "schedules"] {
        let update = format!("UPDATE durable.{table} SET workspace_id = workspace_id");
        let err = query_as_tenant(&f.store, f.a, &update).await.unwrap_err();
        assert!(
            err.to_string().contains("permission denied"),
            "{update}: {err}"
        );
    }
    // Runs it may update (cancel, pause, resume), but only its own, and only in place.
    let touched = "UPDATE durable.runs SET updated_at = updated_at RETURNING workspace_id";
    let touched = query_as_tenant(&f.store, f.a, touched).await.unwrap();
    assert_eq!(ids(&touched, "workspace_id"), vec![f.a]);
    let relabel = format!("UPDATE durable.runs SET workspace_id = '{}'", f.b);
    let err = query_as_tenant(&f.store, f.a, &relabel).await.unwrap_err();
    assert!(refused_by_policy(&err), "{err:?}");
}

#[tokio::test]
async fn the_engine_as_tenant_runs_its_client_calls_under_the_policies() {
    let f = fixture().await;
    let owner = Client::new(f.store.clone()).in_workspace(WorkspaceId(f.a));
    let tenant_store = f.store.as_tenant(durable_control::postgres::TENANT_ROLE);
    let tenant = Client::new(tenant_store).in_workspace(WorkspaceId(f.a));
    let started = tenant.start(approval, 60_000).await.unwrap();
    assert_eq!(tenant.get(started.id()).await.unwrap().id, started.id());
    tenant.pause(started.id()).await.unwrap();
    tenant.resume(started.id()).await.unwrap();
    let forked = tenant.fork(started.id(), 0).await.unwrap();
    let cancelled = tenant.cancel(forked).await.unwrap();
    assert_eq!(cancelled, durable::RunStatus::Cancelled);

    // A policy that hides every run from the tenant hides them from its client calls, and
    // from them only: proof that those calls run under the policies.
    let admin = f.db.client().await;
    admin
        .batch_execute("ALTER POLICY tenant_scope ON durable.runs USING (false)")
        .await
        .unwrap();
    let hidden = tenant.get(started.id()).await;
    assert!(
        matches!(hidden, Err(durable::Error::RunNotFound(_))),
        "{hidden:?}"
    );
    assert!(tenant.list(Default::default()).await.unwrap().is_empty());
    assert!(tenant.cancel(started.id()).await.is_err());
    assert_eq!(owner.get(started.id()).await.unwrap().id, started.id());
}

#[tokio::test]
async fn a_pooled_connection_carries_nothing_from_one_workspace_to_the_next() {
    let f = fixture().await;
    runs_in_each(&f).await;
    // One connection, so every call below reuses the one the previous call ran on.
    let store = durable::PgStore::builder(&f.db.url)
        .pool_size(1)
        .connect()
        .await
        .unwrap();
    let control = Control::postgres(&store).await.unwrap();
    let sql = "SELECT DISTINCT workspace_id FROM durable.runs";
    for workspace in [f.a, f.b, f.a] {
        let seen = query_as_tenant(&store, workspace, sql).await.unwrap();
        assert_eq!(ids(&seen, "workspace_id"), vec![workspace]);
        // A failed tenant transaction rolls back its settings too.
        control
            .create_flow(Scope::system(workspace), "x", "")
            .await
            .ok();
        let taken = control.create_flow(Scope::system(workspace), "x", "").await;
        assert!(matches!(taken, Err(Error::Conflict(_))), "{taken:?}");
    }
    // Back as the owner: it sees every workspace's runs.
    let client = store.pool().get().await.unwrap();
    let all = client.query(sql, &[]).await.unwrap();
    assert_eq!(all.len(), 2);
}

/// A package of connector `name`, told apart from others by `byte`, with one trigger and one
/// action.
fn connector_package(name: &str, byte: u8) -> durable_control::NewConnectorVersion {
    durable_control::NewConnectorVersion {
        name: name.to_owned(),
        version: "1.0.0".to_owned(),
        display_name: name.to_owned(),
        description: String::new(),
        manifest: json!({ "name": name, "version": "1.0.0" }),
        files: Default::default(),
        digest: format!("{byte:02x}").repeat(32),
        triggers: vec![durable_control::ConnectorTrigger {
            key: "on_event".to_owned(),
            kind: durable_control::TriggerKind::Webhook,
            display_name: String::new(),
            description: String::new(),
            payload_schema: None,
        }],
        actions: vec![durable_control::ConnectorAction {
            key: "call".to_owned(),
            display_name: String::new(),
            description: String::new(),
            input_schema: json!({}),
            output_schema: None,
        }],
    }
}

fn names(rows: &[durable::tokio_postgres::Row]) -> Vec<String> {
    rows.iter().map(|row| row.get("name")).collect()
}

#[tokio::test]
async fn a_tenant_sees_its_own_and_the_global_connectors_and_changes_no_version() {
    let f = fixture().await;
    let global = f
        .control
        .install_global_connector(connector_package("github", 1))
        .await
        .unwrap();
    for (workspace, name, byte) in [(f.a, "crm_a", 2), (f.b, "crm_b", 3)] {
        let package = connector_package(name, byte);
        let scope = Scope::system(workspace);
        f.control.install_connector(scope, package).await.unwrap();
    }

    // Reading without a filter: A's own rows and the global ones, never B's.
    let sql = "SELECT name FROM durable.connectors ORDER BY name";
    let seen = query_as_tenant(&f.store, f.a, sql).await.unwrap();
    assert_eq!(names(&seen), ["crm_a", "github"]);
    for table in [
        "connector_versions",
        "connector_triggers",
        "connector_actions",
    ] {
        let sql = format!(
            "SELECT count(*) FILTER (WHERE workspace_id IS NULL) AS global,
                    count(*) FILTER (WHERE workspace_id IS NOT NULL) AS own,
                    count(*) FILTER (WHERE workspace_id <> '{}') AS foreign
             FROM durable.{table}",
            f.a
        );
        let row = &query_as_tenant(&f.store, f.a, &sql).await.unwrap()[0];
        let counts: (i64, i64, i64) = (row.get("global"), row.get("own"), row.get("foreign"));
        assert_eq!(counts, (1, 1, 0), "{table}");
    }

    // Writing a global row, another workspace's row, or a version under a global connector
    // is refused by the policies.
    let id = Uuid::now_v7();
    for insert in [
        format!(
            "INSERT INTO durable.connectors (id, workspace_id, name, display_name)
             VALUES ('{id}', NULL, 'sneaky', 'x')"
        ),
        format!(
            "INSERT INTO durable.connectors (id, workspace_id, name, display_name)
             VALUES ('{id}', '{}', 'sneaky', 'x')",
            f.b
        ),
        format!(
            "INSERT INTO durable.connector_versions
                 (id, connector_id, workspace_id, version, manifest, digest)
             VALUES ('{id}', '{}', '{}', '6.6.6', '{{}}', repeat('0', 64))",
            global.connector_id, f.a
        ),
    ] {
        let err = query_as_tenant(&f.store, f.a, &insert).await.unwrap_err();
        assert!(refused_by_policy(&err), "{insert}: {err:?}");
    }

    // No version, trigger or action changes or goes once installed, nor a connector's name.
    for statement in [
        "UPDATE durable.connector_versions SET digest = repeat('f', 64)",
        "DELETE FROM durable.connector_versions",
        "UPDATE durable.connector_triggers SET description = 'x'",
        "DELETE FROM durable.connector_actions",
        "UPDATE durable.connectors SET name = 'renamed'",
        "DELETE FROM durable.connectors",
    ] {
        let err = query_as_tenant(&f.store, f.a, statement).await.unwrap_err();
        assert!(
            err.to_string().contains("permission denied"),
            "{statement}: {err}"
        );
    }
    // Relabelling reaches the tenant's own connectors only.
    let sql = "UPDATE durable.connectors SET description = 'relabelled' RETURNING name";
    let touched = query_as_tenant(&f.store, f.a, sql).await.unwrap();
    assert_eq!(names(&touched), ["crm_a"]);
    let owner = f.db.client().await;
    let untouched = owner
        .query(
            "SELECT name FROM durable.connectors WHERE description = '' ORDER BY name",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(names(&untouched), ["crm_b", "github"]);
}
