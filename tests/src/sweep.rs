//! Removes what test runs left on the test server more than a day ago: the databases of
//! failed tests (kept for inspection), templates of other builds, and the roles and databases
//! of the host-app test. `scripts/test` runs it (`test-db-sweep`) before the tests.

use crate::superuser::Superuser;

/// A leftover younger than this may still be looked at, or in use by a run in progress
/// (another checkout's, on the same server).
pub const MAX_AGE: &str = "1 day";

/// Drops the stale databases, then the stale roles; returns what it dropped.
pub async fn sweep(superuser: &Superuser) -> Vec<String> {
    let mut dropped = Vec::new();
    for database in stale_databases(superuser).await {
        superuser
            .run(&format!(
                "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
            ))
            .await;
        dropped.push(format!("database {database}"));
    }
    for role in stale_roles(superuser).await {
        superuser
            .run(&format!("DROP ROLE IF EXISTS \"{role}\""))
            .await;
        dropped.push(format!("role {role}"));
    }
    dropped
}

/// Test databases, host-app databases and templates other than this build's, whose directory
/// has not changed for [`MAX_AGE`].
///
/// Postgres records no creation time for a database. Its directory under the data directory
/// is made by `CREATE DATABASE` and modified only when a file is added or removed in it (a new
/// table, the cache file a connection writes): so its modification time is never before the
/// creation, and a database whose directory has not changed for a day is at least that old and
/// not used by any test still running (they run for minutes). Reading it takes `pg_stat_file`, a superuser's function, which this needs anyway for
/// the roles; unlike a time encoded in the name, it also covers databases named before that.
/// A database in another tablespace has no such directory and is left alone.
async fn stale_databases(superuser: &Superuser) -> Vec<String> {
    let current_template = crate::db::template_name();
    let prefix = like_prefix(crate::owned_db::PREFIX);
    let sql = format!(
        "SELECT datname FROM pg_database \
         WHERE (datname LIKE 'durable\\_test\\_%' \
                OR datname LIKE 'durable\\_tmpl\\_%' \
                OR datname LIKE '{prefix}%') \
           AND datname <> '{current_template}' \
           AND (pg_stat_file('base/' || oid, true)).modification < now() - interval '{MAX_AGE}' \
         ORDER BY datname"
    );
    lines(&superuser.run(&sql).await)
}

/// Host-app roles created more than [`MAX_AGE`] ago, by the time in their name.
async fn stale_roles(superuser: &Superuser) -> Vec<String> {
    let prefix = crate::owned_db::PREFIX;
    let sql = format!(
        "SELECT rolname FROM pg_roles \
         WHERE rolname ~ '^{prefix}[0-9]+_' \
           AND to_timestamp(split_part(substr(rolname, {start}), '_', 1)::bigint) \
               < now() - interval '{MAX_AGE}' \
         ORDER BY rolname",
        start = prefix.len() + 1,
    );
    lines(&superuser.run(&sql).await)
}

/// `prefix` for a `LIKE` pattern, where `_` would match any character.
fn like_prefix(prefix: &str) -> String {
    prefix.replace('_', "\\_")
}

fn lines(output: &str) -> Vec<String> {
    output
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}
