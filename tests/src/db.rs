//! A fresh database per test, cloned from a migrated template; dropped when the test passes,
//! kept (and named in the output) when it fails, for inspection.

use std::time::Duration;

use tokio_postgres::NoTls;

/// Where the tests find Postgres; `scripts/test` starts it and sets this.
pub fn admin_url() -> String {
    std::env::var("DURABLE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://durable:durable@127.0.0.1:5432/durable".to_owned())
}

const TEMPLATE_LOCK: i64 = 0x7465_7374_746d_706c;

/// A database of its own for one test.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    pub name: String,
}

impl TestDb {
    /// Creates a database cloned from the migrated template (creating the template first if
    /// this build's schema has none yet).
    pub async fn new() -> Self {
        let admin = connect(&admin_url()).await;
        let template = ensure_template(&admin).await;
        let name = format!("durable_test_{}", uuid::Uuid::new_v4().simple());
        let create = format!("CREATE DATABASE {name} TEMPLATE {template}");
        retry_busy(|| admin.batch_execute(&create)).await;
        Self {
            url: with_database(&admin_url(), &name),
            name,
        }
    }

    /// A store on this database (migrations are already applied).
    pub async fn store(&self) -> durable::PgStore {
        durable::PgStore::connect(&self.url)
            .await
            .expect("connect to the test database")
    }

    /// A plain connection, for assertions on the tables themselves.
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "test failed: its database `{}` is kept for inspection",
                self.name
            );
            return;
        }
        // A detached psql does the drop. Waiting for it here could deadlock: DROP … FORCE
        // waits for every backend of the database, including one this process may still be
        // opening (a store reconnecting), which cannot finish while this thread blocks.
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let spawned = std::process::Command::new("psql")
            .arg(admin_url())
            .args(["-q", "-c", &drop])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if let Err(err) = spawned {
            eprintln!("could not drop test database `{}`: {err}", self.name);
        }
    }
}

/// Connects and drives the connection in the background.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("cannot connect to {url}: {e}; is Postgres up (scripts/pg-up)?")
        });
    tokio::spawn(connection);
    client
}

/// The name of this build's template: it carries a hash of the schema, so a changed migration
/// gets a new template.
pub fn template_name() -> String {
    format!("durable_tmpl_{:016x}", schema_fingerprint())
}

/// This build's template, created if it does not exist yet.
async fn ensure_template(admin: &tokio_postgres::Client) -> String {
    let name = template_name();
    admin
        .execute("SELECT pg_advisory_lock($1)", &[&TEMPLATE_LOCK])
        .await
        .unwrap();
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap()
        .is_some();
    if !exists {
        build_template(admin, &name).await;
    }
    admin
        .execute("SELECT pg_advisory_unlock($1)", &[&TEMPLATE_LOCK])
        .await
        .unwrap();
    name
}

async fn build_template(admin: &tokio_postgres::Client, name: &str) {
    let building = format!("{name}_building");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
        .await
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {building}"))
        .await
        .unwrap();
    let url = with_database(&admin_url(), &building);
    {
        let store = durable::PgStore::connect(&url)
            .await
            .expect("migrate the template");
        drop(store);
        let client = connect(&url).await;
        client.batch_execute(crate::ledger::SCHEMA).await.unwrap();
    }
    // The store's listener connection closes asynchronously; a template must have none.
    admin
        .batch_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{building}'"
        ))
        .await
        .unwrap();
    let rename = format!("ALTER DATABASE {building} RENAME TO {name}");
    retry_busy(|| admin.batch_execute(&rename)).await;
}

/// Retries a statement that fails while another session still uses the database involved.
async fn retry_busy<F, Fut>(mut statement: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), tokio_postgres::Error>>,
{
    let mut last = None;
    for _ in 0..50 {
        match statement().await {
            Ok(()) => return,
            Err(e)
                if e.to_string().contains("being accessed by other users")
                    || format!("{e:?}").contains("being accessed") =>
            {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    panic!("database stayed busy: {last:?}");
}

fn schema_fingerprint() -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    durable::store::postgres::schema_fingerprint().hash(&mut hasher);
    crate::ledger::SCHEMA.hash(&mut hasher);
    hasher.finish()
}

/// The URL of the test server for `user` and `database`.
pub fn url_for(user: &str, password: &str, database: &str) -> String {
    let url = admin_url();
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url.as_str()));
    let server = rest.rsplit_once('@').map_or(rest, |(_, server)| server);
    let server = server.split_once('/').map_or(server, |(server, _)| server);
    format!("{scheme}://{user}:{password}@{server}/{database}")
}

fn with_database(url: &str, database: &str) -> String {
    let base = url.rsplit_once('/').map_or(url, |(base, _)| base);
    format!("{base}/{database}")
}
