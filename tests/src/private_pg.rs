//! A Postgres server of a test's own, in a temporary directory, for faults that would hurt
//! every other test on the shared one: a crash and restart of the whole server.
//!
//! It runs the machine's Postgres binaries as the `postgres` user (Postgres refuses root),
//! listens on a free loopback port, and is killed and removed when dropped. It may also serve
//! TLS with a certificate the test made, for TLS tests.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::db::connect;
use crate::wait;

/// A running private Postgres server.
#[derive(Debug)]
pub struct PrivatePostgres {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    /// `postgres://durable:durable@127.0.0.1:<port>/durable`, migrated by the first store.
    pub url: String,
}

/// A certificate chain and its private key, in PEM, for the server to offer TLS with.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub cert_pem: String,
    pub key_pem: String,
}

impl PrivatePostgres {
    /// Creates a cluster, starts it, and creates the `durable` role and database.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Like [`start`](Self::start), with `ssl = on` and `tls`'s certificate. Its `pg_hba.conf`
    /// (`host … trust`) admits plain connections as well as TLS ones.
    pub async fn start_with_tls(tls: &ServerTls) -> Self {
        Self::start_with(Some(tls)).await
    }

    async fn start_with(tls: Option<&ServerTls>) -> Self {
        let bin = binaries();
        let dir = PathBuf::from(as_postgres("mktemp", &["-d", "/tmp/durable-pg.XXXXXX"]));
        let port = free_port();
        let data = dir.to_string_lossy().into_owned();
        as_postgres(
            bin.join("initdb").to_str().unwrap(),
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        if let Some(tls) = tls {
            enable_tls(&dir, tls);
        }
        let server = Self {
            url: format!("postgres://durable:durable@127.0.0.1:{port}/durable"),
            dir,
            port,
            bin,
        };
        server.run_server().await;
        let admin = connect(&format!("postgres://postgres@127.0.0.1:{port}/postgres")).await;
        for statement in [
            "CREATE ROLE durable LOGIN SUPERUSER PASSWORD 'durable'",
            "CREATE ROLE durable_tenant NOLOGIN",
            "GRANT durable_tenant TO durable",
            "CREATE DATABASE durable OWNER durable",
        ] {
            admin
                .batch_execute(statement)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        server
    }

    /// Kills the server the way a power cut would (no shutdown checkpoint), then starts it
    /// again: it recovers from its write-ahead log.
    pub async fn crash_and_restart(&self) {
        self.pg_ctl(&["stop", "-m", "immediate"]);
        self.run_server().await;
    }

    async fn run_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        self.pg_ctl(&["start", "-w", "-o", &options, "-l", &self.log()]);
        let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        wait::until(
            "the private server to accept connections",
            Duration::from_secs(30),
            || {
                let admin = admin.clone();
                async move {
                    tokio_postgres::connect(&admin, tokio_postgres::NoTls)
                        .await
                        .ok()
                        .map(|_| ())
                }
            },
        )
        .await;
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.data();
        let mut all = vec!["-D", data.as_str(), "-s"];
        all.extend_from_slice(args);
        as_postgres(self.bin.join("pg_ctl").to_str().unwrap(), &all);
    }

    fn data(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }

    fn log(&self) -> String {
        format!("{}/server.log", self.data())
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data();
        let pg_ctl = self.bin.join("pg_ctl");
        let _ = runuser(
            pg_ctl.to_str().unwrap(),
            &["-D", &data, "-s", "stop", "-m", "immediate"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes the certificate and key into the data directory and turns `ssl` on. The files must
/// belong to the server's user, and the key be private to it, or Postgres refuses to start.
fn enable_tls(data: &Path, tls: &ServerTls) {
    let owner = std::fs::metadata(data).expect("the data directory");
    for (name, pem) in [("server.crt", &tls.cert_pem), ("server.key", &tls.key_pem)] {
        let path = data.join(name);
        std::fs::write(&path, pem).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid())).unwrap();
    }
    let mut conf = std::fs::OpenOptions::new()
        .append(true)
        .open(data.join("postgresql.conf"))
        .unwrap();
    std::io::Write::write_all(
        &mut conf,
        b"ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
    )
    .unwrap();
}

/// Where the machine's Postgres server binaries are (`pg_config --bindir`).
fn binaries() -> PathBuf {
    let output = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .expect("pg_config is installed with Postgres");
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

/// Runs `program` as the `postgres` user and returns its standard output; panics on failure.
fn as_postgres(program: &str, args: &[&str]) -> String {
    let output = runuser(program, args).unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn runuser(program: &str, args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new("runuser")
        .args(["-u", "postgres", "--", program])
        .args(args)
        .stdin(Stdio::null())
        .output()
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().unwrap().port()
}
