//! Where a run measures: a Postgres database of its own (created for the run, dropped at the
//! end) and an SQLite file in a temporary directory.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use anyhow::{Context, bail};
use durable::Store;
use tempfile::TempDir;
use tokio_postgres::NoTls;

/// A store backend under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreKind {
    Postgres,
    Sqlite,
}

impl StoreKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Sqlite => "sqlite",
        }
    }
}

/// A store under test, connected.
#[derive(Debug)]
pub(crate) struct StoreTarget {
    pub(crate) url: String,
    /// What the in-process workers use.
    pub(crate) store: Arc<dyn Store>,
    /// What the clients starting runs use: on Postgres a pool of its own, as a service
    /// separate from its workers would have, so starts and checkpoints do not queue for the
    /// same 16 connections; on SQLite the same store, as an embedding application has one
    /// file and one writer.
    pub(crate) client_store: Arc<dyn Store>,
    /// Holds the SQLite file; removed when the target is dropped.
    _dir: Option<TempDir>,
}

impl StoreTarget {
    /// Postgres: the run's database. SQLite: a new file in a temporary directory.
    pub(crate) async fn open(kind: StoreKind, pg: &PgDatabase) -> anyhow::Result<Self> {
        let (url, dir) = match kind {
            StoreKind::Postgres => (pg.url.clone(), None),
            StoreKind::Sqlite => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}/bench.db", dir.path().display());
                (url, Some(dir))
            }
        };
        let store = connect(&url).await?;
        let client_store = match kind {
            StoreKind::Postgres => connect(&url).await?,
            StoreKind::Sqlite => store.clone(),
        };
        Ok(Self {
            url,
            store,
            client_store,
            _dir: dir,
        })
    }
}

/// Connects a store by URL.
pub(crate) async fn connect(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    Ok(durable::store::connect(url).await?)
}

/// A Postgres database that exists for this run only.
#[derive(Debug)]
pub(crate) struct PgDatabase {
    admin_url: String,
    name: String,
    pub(crate) url: String,
}

impl PgDatabase {
    /// Creates `durable_bench_<random>` on the server named by `DURABLE_BENCH_DATABASE_URL`,
    /// or else on the local server that `scripts/pg-up` starts.
    pub(crate) async fn create() -> anyhow::Result<Self> {
        let admin_url = match std::env::var("DURABLE_BENCH_DATABASE_URL") {
            Ok(url) => url,
            Err(_) => pg_up().await?,
        };
        let name = format!(
            "durable_bench_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let admin = pg_connect(&admin_url).await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("create database {name} (the role needs CREATEDB)"))?;
        Ok(Self {
            url: with_database(&admin_url, &name)?,
            admin_url,
            name,
        })
    }

    /// Drops the database, disconnecting whatever still uses it.
    pub(crate) async fn drop(self) -> anyhow::Result<()> {
        let admin = pg_connect(&self.admin_url).await?;
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        admin.batch_execute(&drop).await?;
        Ok(())
    }
}

/// Runs `scripts/pg-up`, which starts the local cluster and prints a URL whose role may
/// create databases.
async fn pg_up() -> anyhow::Result<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-up");
    let output = tokio::process::Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .await
        .with_context(|| format!("run {}", script.display()))?;
    if !output.status.success() {
        bail!("{} failed: {}", script.display(), output.status);
    }
    let stdout = String::from_utf8(output.stdout)?;
    match stdout.lines().rev().find(|l| l.starts_with("postgres")) {
        Some(url) => Ok(url.trim().to_owned()),
        None => bail!("{} printed no URL", script.display()),
    }
}

/// A plain connection, driven in the background.
pub(crate) async fn pg_connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .with_context(|| format!("connect to {}", redact(url)))?;
    tokio::spawn(connection);
    Ok(client)
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let scheme_end = url.find("://").context("a URL with a scheme")? + 3;
    let (base, query) = match url.find('?') {
        Some(q) => url.split_at(q),
        None => (url, ""),
    };
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    Ok(format!("{}/{name}{query}", &base[..authority_end]))
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_name() {
        let url = "postgres://durable:durable@127.0.0.1:5432/durable";
        assert_eq!(
            with_database(url, "x").unwrap(),
            "postgres://durable:durable@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://h/db?sslmode=disable", "x").unwrap(),
            "postgres://h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h", "x").unwrap(),
            "postgres://h/x"
        );
    }

    #[test]
    fn hides_credentials() {
        assert_eq!(redact("postgres://u:p@h/db"), "postgres://***@h/db");
    }
}
