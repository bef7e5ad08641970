//! Opening a SQLite database that cannot be used fails with an error naming the file and the
//! reason, and leaves the file (and its directory) exactly as it was.

use std::path::{Path, PathBuf};

use durable::{Error, SqliteStore};
use durable_tests::conformance::SqliteFile;

/// Every file in a directory, with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = if path.is_file() {
                std::fs::read(&path).unwrap()
            } else {
                Vec::new()
            };
            (path, bytes)
        })
        .collect();
    files.sort();
    files
}

/// Opens `path`, expecting an error; checks the directory did not change and returns it.
async fn refused(path: &Path) -> Error {
    let dir = path.parent().unwrap();
    let before = snapshot(dir);
    let err = SqliteStore::open(path)
        .await
        .expect_err("the open should fail");
    assert_eq!(
        snapshot(dir),
        before,
        "the failed open changed {}",
        dir.display()
    );
    println!("{err}");
    err
}

fn assert_not_a_durable_database(err: &Error, path: &Path) {
    let text = err.to_string();
    assert!(
        text.contains(&path.display().to_string()),
        "the path is named: {text}"
    );
    assert!(text.contains("not a Durable/SQLite database"), "{text}");
}

#[tokio::test]
async fn a_text_file_is_refused_and_left_unchanged() {
    let file = SqliteFile::new();
    std::fs::write(file.path(), "name,amount\nalice,42\n").unwrap();
    let err = refused(file.path()).await;
    assert_not_a_durable_database(&err, file.path());
}

#[tokio::test]
async fn a_short_file_is_refused_and_left_unchanged() {
    let file = SqliteFile::new();
    std::fs::write(file.path(), "SQLite").unwrap();
    let err = refused(file.path()).await;
    assert_not_a_durable_database(&err, file.path());
}

#[tokio::test]
async fn a_damaged_sqlite_file_is_refused_and_left_unchanged() {
    let file = SqliteFile::new();
    // The SQLite header, then bytes that are no valid page size or page.
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend(std::iter::repeat_n(0xA5, 8192));
    std::fs::write(file.path(), bytes).unwrap();
    let err = refused(file.path()).await;
    assert_not_a_durable_database(&err, file.path());
    // SQLite's own error is kept as the source.
    let sqlite = std::error::Error::source(&err)
        .and_then(|source| source.downcast_ref::<rusqlite::Error>())
        .unwrap_or_else(|| panic!("the rusqlite error is the source: {err:?}"));
    assert_eq!(sqlite.sqlite_error_code(), err.sqlite_code());
    assert!(
        matches!(
            err.sqlite_code(),
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
        ),
        "{err:?}"
    );
}

/// Another application's database, marked with its own `application_id` or not marked at
/// all: Durable adds no tables to it and does not switch it to WAL.
async fn assert_foreign_database_refused(pragma: &str) {
    let file = SqliteFile::new();
    {
        let conn = rusqlite::Connection::open(file.path()).unwrap();
        conn.execute_batch(&format!(
            "{pragma}
             CREATE TABLE contacts (name TEXT);
             INSERT INTO contacts VALUES ('alice');"
        ))
        .unwrap();
    }
    let err = refused(file.path()).await;
    assert_not_a_durable_database(&err, file.path());
    assert!(err.to_string().contains("another application"), "{err}");
}

#[tokio::test]
async fn another_applications_database_is_refused_and_left_unchanged() {
    assert_foreign_database_refused("PRAGMA application_id = 42;").await;
}

#[tokio::test]
async fn an_unmarked_database_with_other_tables_is_refused_and_left_unchanged() {
    assert_foreign_database_refused("").await;
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_left_unchanged() {
    let file = SqliteFile::new();
    drop(file.store().await);
    // What a newer build would leave: one more migration recorded.
    {
        let conn = rusqlite::Connection::open(file.path()).unwrap();
        let newer = durable::store::sqlite::schema_version() + 1;
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, 'from the future', 0)",
            [newer],
        )
        .unwrap();
    }
    // The first store's thread may still be closing its connection; wait until only the
    // database file is left, so the snapshot is of a file at rest.
    durable_tests::wait::until(
        "the database to be closed",
        std::time::Duration::from_secs(10),
        || async {
            let wal = PathBuf::from(format!("{}-wal", file.path().display()));
            (!wal.exists()).then_some(())
        },
    )
    .await;
    let err = refused(file.path()).await;
    match &err {
        Error::Schema {
            message, source, ..
        } => {
            assert!(message.contains("newer than this build"), "{message}");
            assert!(source.is_none(), "nothing underlies it: {source:?}");
            assert!(
                message.contains(&file.path().display().to_string()),
                "{message}"
            );
        }
        other => panic!("expected Error::Schema, got {other:?}"),
    }
}

/// As root, permission bits do not stop reads or writes, so `chmod 000` cannot make a file
/// unusable there; a path under a regular file is unusable for everyone (ENOTDIR), and that
/// is the case checked when running as root.
#[tokio::test]
async fn an_unusable_path_is_reported_with_the_os_reason() {
    let file = SqliteFile::new();
    let (path, reason) = if is_root() {
        let parent = file.path().with_file_name("plain-file");
        std::fs::write(&parent, "not a directory").unwrap();
        (parent.join("durable.db"), "Not a directory")
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(file.path(), "").unwrap();
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o000)).unwrap();
        (file.path().to_path_buf(), "Permission denied")
    };
    let dir = file.path().parent().unwrap();
    let before = snapshot(dir);
    let err = SqliteStore::open(&path)
        .await
        .expect_err("the open should fail");
    assert_eq!(snapshot(dir), before);
    let text = err.to_string();
    println!("{text}");
    assert!(
        text.contains(&path.display().to_string()),
        "the path is named: {text}"
    );
    assert!(text.contains(reason), "the OS reason is given: {text}");
}

#[tokio::test]
async fn a_directory_is_refused() {
    let file = SqliteFile::new();
    std::fs::create_dir(file.path()).unwrap();
    let err = SqliteStore::open(file.path())
        .await
        .expect_err("a directory is no database");
    let text = err.to_string();
    assert!(text.contains(&file.path().display().to_string()), "{text}");
    assert!(text.contains("is a directory"), "{text}");
}

#[tokio::test]
async fn a_missing_directory_is_reported_not_created() {
    let file = SqliteFile::new();
    let path = file.path().with_file_name("missing").join("durable.db");
    let err = SqliteStore::open(&path)
        .await
        .expect_err("its directory does not exist");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("No such file or directory"), "{text}");
    assert!(!path.parent().unwrap().exists());
}

#[tokio::test]
async fn a_new_file_is_created_in_wal_mode_with_the_schema() {
    let file = SqliteFile::new();
    let store = durable::store::connect(&file.url()).await.unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(file.path()).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .query_row("SELECT max(version) FROM schema_migrations", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(version, durable::store::sqlite::schema_version());
    let workspace: String = conn
        .query_row(
            "SELECT name FROM workspaces WHERE id = '00000000-0000-0000-0000-000000000000'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(workspace, "default");
}

fn is_root() -> bool {
    // Root owns /proc/self/… entries only when running as root; no unsafe call needed.
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}
