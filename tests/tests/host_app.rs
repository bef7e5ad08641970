//! A host application outside the workspace (`tests/host-app`: the engine and the worker by
//! path, nothing else of the workspace), on a fresh database owned by an ordinary role: its
//! workflow runs through `PgStore::connect`; killed inside a step and started again, it
//! finishes the run without running the earlier steps again. The database gets no table of
//! the control plane and the cluster no role.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use durable_tests::owned_db::OwnedDb;
use durable_tests::process::WorkerProcess;
use durable_tests::superuser::Superuser;

const LEASE: Duration = Duration::from_secs(1);
const DEADLINE: Duration = Duration::from_secs(60);
/// The host app's workflow has 4 steps; the first process hangs inside this one.
const HANG_AT: u32 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_app_on_an_ordinary_roles_database_survives_a_kill() {
    let superuser = match Superuser::get() {
        Ok(superuser) => superuser,
        Err(why) => {
            println!("SKIPPED: creating the test's role needs the Postgres superuser, but {why}");
            return;
        }
    };
    let app = build_host_app().await;
    let roles_before = roles().await;
    let db = OwnedDb::create(superuser).await;
    let effects = tempfile::tempdir().unwrap();
    let effects = effects.path().join("effects");

    let first = start(&app, &db, &effects, &[("HANG_AT", &HANG_AT.to_string())]);
    let run = first.wait_for_line("run ", DEADLINE).await;
    first
        .wait_for_line(&format!("step {HANG_AT} started"), DEADLINE)
        .await;
    first.kill().await;
    assert_eq!(executed(&effects), [0, 1, 2]);

    let mut second = start(&app, &db, &effects, &[]);
    let completed = second.wait_for_line("completed: ", DEADLINE).await;
    assert!(second.wait_exit(DEADLINE).await.success());
    assert_eq!(
        second.wait_for_line("run ", DEADLINE).await,
        run,
        "same run"
    );
    assert_eq!(
        completed,
        "completed: result 0, result 1, result 2, result 3"
    );
    assert_eq!(
        executed(&effects),
        [0, 1, 2, 2, 3],
        "steps 0 and 1 are replayed, not run again; step 2 runs again as it never finished"
    );

    assert_only_the_engines_schema(&db).await;
    let mut expected_roles = roles_before;
    expected_roles.insert(db.name.clone());
    assert_eq!(roles().await, expected_roles, "no role but the test's own");
    db.remove().await;
}

/// The host app's lockfile must pin the root's versions, or its build compiles its own copies
/// of the dependencies (see `scripts/host-app-lock`).
#[test]
fn the_host_apps_lockfile_pins_the_roots_versions() {
    let root = locked_packages(&repo().join("Cargo.lock"));
    let host = locked_packages(&repo().join("tests/host-app/Cargo.lock"));
    let own: Vec<_> = host.iter().filter(|p| p.0 == "durable-host-app").collect();
    assert_eq!(own.len(), 1, "the host app's lockfile locks the host app");
    let differing: Vec<_> = host
        .iter()
        .filter(|p| p.0 != "durable-host-app" && !root.contains(p))
        .collect();
    assert!(
        differing.is_empty(),
        "tests/host-app/Cargo.lock pins versions the root Cargo.lock does not: {differing:?}; \
         run scripts/host-app-lock"
    );
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is inside the repository")
}

/// Builds the host app into the target directory these tests were built in (where its
/// dependencies are already compiled), against its committed lockfile; returns the binary.
async fn build_host_app() -> PathBuf {
    // `CARGO_TARGET_TMPDIR` is `<target dir>/tmp` however that directory was chosen
    // (`CARGO_TARGET_DIR`, `--target-dir`, a config file, or the default `<repo>/target`).
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("a target directory")
        .to_owned();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = tokio::process::Command::new(cargo)
        .args(["build", "--locked", "--manifest-path"])
        .arg(repo().join("tests/host-app/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .await
        .expect("run cargo");
    assert!(
        status.success(),
        "building tests/host-app failed (if its lockfile is stale: scripts/host-app-lock)"
    );
    target.join("debug/durable-host-app")
}

fn start(app: &Path, db: &OwnedDb, effects: &Path, env: &[(&str, &str)]) -> WorkerProcess {
    let effects = effects.to_str().expect("a UTF-8 temporary path");
    let mut env = env.to_vec();
    env.push(("EFFECTS", effects));
    WorkerProcess::spawn_with(app.to_str().expect("a UTF-8 path"), &db.url, LEASE, &env)
}

/// The steps whose activity ran, in order, from the app's effects file.
fn executed(effects: &Path) -> Vec<u32> {
    std::fs::read_to_string(effects)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            line.strip_prefix("ran step ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected effect `{line}`"))
        })
        .collect()
}

/// Every role of the cluster (the `durable` role may read the catalog).
async fn roles() -> BTreeSet<String> {
    let admin = durable_tests::db::connect(&durable_tests::db::admin_url()).await;
    let rows = admin
        .query("SELECT rolname::text FROM pg_roles", &[])
        .await
        .unwrap();
    rows.iter().map(|row| row.get(0)).collect()
}

/// The engine's tables are there, owned by the app's role; none of the control plane's
/// (named from its sources) and no row-level policy are.
async fn assert_only_the_engines_schema(db: &OwnedDb) {
    let client = durable_tests::db::connect(&db.url).await;
    let rows = client
        .query(
            "SELECT c.relname::text, pg_get_userbyid(c.relowner)::text \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'durable' AND c.relkind IN ('r', 'p')",
            &[],
        )
        .await
        .unwrap();
    let tables: BTreeSet<String> = rows.iter().map(|row| row.get(0)).collect();
    assert!(
        tables.contains("runs") && tables.contains("steps"),
        "{tables:?}"
    );
    for row in &rows {
        let (table, owner): (String, String) = (row.get(0), row.get(1));
        assert_eq!(owner, db.name, "the owner of durable.{table}");
    }
    let control = control_plane_tables();
    assert!(control.contains("tenants"), "{control:?}");
    let present: Vec<_> = tables.intersection(&control).collect();
    assert!(present.is_empty(), "control-plane tables: {present:?}");
    let policies: i64 = client
        .query_one("SELECT count(*) FROM pg_policy", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(policies, 0, "row-level policies");
}

/// The tables the control plane creates in the `durable` schema, read from its sources.
fn control_plane_tables() -> BTreeSet<String> {
    let mut sources = Vec::new();
    for dir in ["control/migrations/postgres", "control/src/db/postgres"] {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
            sources.push(std::fs::read_to_string(entry.unwrap().path()).unwrap());
        }
    }
    sources
        .iter()
        .flat_map(|text| text.split("CREATE TABLE ").skip(1))
        .filter_map(|rest| {
            let rest = rest.strip_prefix("IF NOT EXISTS ").unwrap_or(rest);
            let name = rest.strip_prefix("durable.")?;
            let end = name.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
            Some(name[..end].to_owned())
        })
        .collect()
}

/// The `(name, version)` of every package a lockfile locks.
fn locked_packages(lockfile: &Path) -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(lockfile).unwrap();
    let value = |line: &str, key: &str| {
        line.strip_prefix(key)
            .map(|v| v.trim_matches('"').to_owned())
    };
    let mut packages = BTreeSet::new();
    let mut name = None;
    for line in text.lines() {
        if let Some(n) = value(line, "name = ") {
            name = Some(n);
        } else if let (Some(version), Some(n)) = (value(line, "version = "), name.take()) {
            packages.insert((n, version));
        }
    }
    packages
}
