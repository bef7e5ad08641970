//! A fresh database owned by a fresh login role with no privilege beyond owning it: what an
//! application gets on a managed Postgres. Created by the superuser; removed by
//! [`OwnedDb::remove`] when the test passes, kept (and named in the output) when it fails.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::superuser::Superuser;

/// How the names of these roles and databases begin; the rest is the creation time in seconds
/// since the epoch and a random suffix. A role has no creation time in the catalog: the name
/// tells `test-db-sweep` how old a leftover is.
pub const PREFIX: &str = "durable_hostapp_";

/// A role and the database it owns, both named [`name`](Self::name).
#[derive(Debug)]
pub struct OwnedDb {
    pub name: String,
    /// The URL to connect as the role to its database.
    pub url: String,
    superuser: Superuser,
    removed: bool,
}

impl OwnedDb {
    /// Creates the role (`NOSUPERUSER NOCREATEDB NOCREATEROLE`) and its database.
    pub async fn create(superuser: Superuser) -> Self {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_secs();
        let random = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("{PREFIX}{created}_{}", &random[..8]);
        let password = uuid::Uuid::new_v4().simple().to_string();
        superuser
            .run(&format!(
                "CREATE ROLE {name} LOGIN PASSWORD '{password}' \
                 NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
            ))
            .await;
        superuser
            .run(&format!("CREATE DATABASE {name} OWNER {name}"))
            .await;
        Self {
            url: crate::db::url_for(&name, &password, &name),
            name,
            superuser,
            removed: false,
        }
    }

    /// Drops the database and the role. Connections to the database are closed first.
    pub async fn remove(mut self) {
        let name = &self.name;
        let superuser = &self.superuser;
        superuser
            .run(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
        superuser.run(&format!("DROP ROLE IF EXISTS {name}")).await;
        self.removed = true;
    }
}

impl Drop for OwnedDb {
    fn drop(&mut self) {
        if !self.removed {
            eprintln!(
                "the role and database `{}` are kept for inspection; \
                 `test-db-sweep` removes them after a day",
                self.name
            );
        }
    }
}
