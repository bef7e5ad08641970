//! The row-level-security role on a Postgres the server does not administer: a database
//! role that may create roles sets `durable_tenant` up for itself; one that may not is told
//! exactly what an administrator must run, and the engine alone never needs the role.

use durable_control::Control;
use durable_tests::TestDb;
use uuid::Uuid;

/// Runs `sql` as the cluster's superuser (the tests run as root, as `scripts/test` does).
fn as_superuser(sql: &str) {
    let port = durable_tests::db::admin_url()
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next().map(str::to_owned))
        .unwrap_or_else(|| "5432".to_owned());
    let status = std::process::Command::new("runuser")
        .args([
            "-u",
            "postgres",
            "--",
            "psql",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-p",
            &port,
            "-c",
            sql,
        ])
        .status()
        .expect("run psql as the postgres user (the tests run as root)");
    assert!(status.success(), "{sql}");
}

/// A login role of its own with a database it owns; dropped with it when the test ends.
struct OwnRole {
    name: String,
    url: String,
}

impl OwnRole {
    fn new(attributes: &str) -> Self {
        let name = format!("durable_test_role_{}", Uuid::new_v4().simple());
        as_superuser(&format!(
            "CREATE ROLE {name} LOGIN PASSWORD 'pw' {attributes}"
        ));
        as_superuser(&format!("CREATE DATABASE {name} OWNER {name}"));
        let admin = durable_tests::db::admin_url();
        let host = admin
            .rsplit_once('@')
            .map_or("127.0.0.1:5432/x", |(_, h)| h);
        let host = host.split('/').next().unwrap_or("127.0.0.1:5432");
        let url = format!("postgres://{name}:pw@{host}/{name}");
        Self { name, url }
    }
}

impl Drop for OwnRole {
    fn drop(&mut self) {
        as_superuser(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
        as_superuser(&format!("DROP ROLE IF EXISTS {}", self.name));
    }
}

#[tokio::test]
async fn a_role_that_may_not_set_up_the_tenant_role_is_told_what_to_run() {
    TestDb::new().await; // makes sure the cluster is up and `durable_tenant` exists
    let role = OwnRole::new("NOCREATEROLE NOSUPERUSER");
    let store = durable::PgStore::connect(&role.url)
        .await
        .expect("the engine alone needs no extra role");

    let refused = Control::postgres(&store).await.unwrap_err().to_string();
    let grant = format!("GRANT durable_tenant TO \"{}\";", role.name);
    assert!(refused.contains(&grant), "{refused}");
    assert!(
        refused.contains("an administrator must run once"),
        "{refused}"
    );

    // Once the administrator has, the control plane starts.
    as_superuser(&format!("GRANT durable_tenant TO {}", role.name));
    Control::postgres(&store)
        .await
        .expect("the control plane starts");
}

#[tokio::test]
async fn a_role_that_may_create_roles_sets_the_tenant_role_up_itself() {
    TestDb::new().await;
    let role = OwnRole::new("CREATEROLE NOSUPERUSER");
    let store = durable::PgStore::connect(&role.url).await.unwrap();
    Control::postgres(&store)
        .await
        .expect("the control plane starts");
    let client = store.pool().get().await.unwrap();
    let member: bool = client
        .query_one(
            "SELECT pg_has_role(current_user, 'durable_tenant', 'MEMBER')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(member);
}
