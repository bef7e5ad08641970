//! Statements that need the cluster's superuser (creating a role, reading the data directory),
//! run by `psql` as the `postgres` system user. The `durable` role the tests connect as may
//! create databases but not roles, and should not be able to: a test of what an ordinary role
//! can do would prove little if the tests' own role were privileged. So this works only where
//! the tests run as root on the machine of the server, as they do in CI.

use std::os::unix::fs::MetadataExt;
use std::str::FromStr;

use tokio_postgres::config::Host;

/// The superuser of the test server.
#[derive(Debug)]
pub struct Superuser {
    port: u16,
}

impl Superuser {
    /// The superuser of the server at [`admin_url`](crate::db::admin_url), or why it cannot
    /// be used from here.
    pub fn get() -> Result<Superuser, String> {
        if !running_as_root() {
            return Err("the tests do not run as root, so they cannot act as `postgres`".into());
        }
        let url = crate::db::admin_url();
        let config = tokio_postgres::Config::from_str(&url)
            .map_err(|e| format!("cannot parse the test database URL: {e}"))?;
        let local = config.get_hosts().iter().all(|host| match host {
            Host::Tcp(name) => ["127.0.0.1", "localhost", "::1"].contains(&name.as_str()),
            Host::Unix(_) => true,
        });
        if !local {
            return Err("the test Postgres is not on this machine".into());
        }
        let port = config.get_ports().first().copied().unwrap_or(5432);
        Ok(Superuser { port })
    }

    /// Runs one statement and returns its output, a row a line, columns separated by `|`.
    /// Panics if it fails. (One at a time: `psql -c` sends several as one transaction, which
    /// `CREATE DATABASE` refuses.)
    pub async fn run(&self, sql: &str) -> String {
        let output = tokio::process::Command::new("runuser")
            .args(["-u", "postgres", "--", "psql", "-X", "-q", "-A", "-t"])
            .args(["-v", "ON_ERROR_STOP=1", "-d", "postgres", "-p"])
            .arg(self.port.to_string())
            .arg("-c")
            .arg(sql)
            .output()
            .await
            .expect("run psql as postgres");
        assert!(
            output.status.success(),
            "psql as postgres failed on `{sql}`: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("psql prints UTF-8")
    }
}

/// `/proc/self` belongs to the process's effective user.
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
