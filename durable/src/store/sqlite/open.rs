//! Opening a database: the checks that change nothing come first (is it there, may we write
//! it, is it SQLite, is it Durable's, is its schema one we understand), then the connection's
//! settings, then the migrations.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, ffi::ErrorCode};

use super::migrate;
use crate::{Error, Result};

/// How long a write waits for another connection's write lock before giving up. Writes are
/// short (one checkpoint), so reaching it means something holds the lock far too long.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The first 16 bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Where a database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Location {
    /// A file on a local filesystem.
    File(PathBuf),
    /// A private in-memory database, gone when the store is dropped (for tests).
    Memory,
}

impl Location {
    /// How errors and logs name it.
    pub(super) fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Memory => ":memory:".to_owned(),
        }
    }
}

/// Opens, checks, configures and migrates the database.
pub(super) fn open(location: &Location) -> Result<Connection> {
    let at = location.describe();
    let mut conn = match location {
        Location::File(path) => {
            preflight(path)?;
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            Connection::open_with_flags(path, flags).map_err(|e| explain(&at, e))?
        }
        Location::Memory => Connection::open_in_memory()?,
    };
    prepare(&mut conn, &at, location == &Location::Memory)?;
    Ok(conn)
}

fn prepare(conn: &mut Connection, at: &str, in_memory: bool) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| explain(at, e))?;
    // The first read of the file: SQLite reports a damaged or foreign file here.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|e| explain(at, e))?;
    let current = migrate::check(conn, at)?;
    configure(conn, at, in_memory)?;
    if current < migrate::latest_version() {
        migrate::migrate(conn, at)?;
    }
    Ok(())
}

/// WAL lets readers and one writer work at once, across processes; `synchronous = FULL`
/// syncs the log on every commit, so a committed checkpoint survives a power cut, not just
/// a crash of the process.
fn configure(conn: &Connection, at: &str, in_memory: bool) -> Result<()> {
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(|e| explain(at, e))?;
    // An in-memory database has one connection and no file: its journal stays in memory.
    if !in_memory && !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::database(format!(
            "cannot use the SQLite database at {at}: it could not be switched to WAL mode \
             (its journal mode stays `{mode}`); Durable needs WAL, which needs a local filesystem"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

/// Creates the file if it is missing, or checks that the one there is a SQLite database we
/// may write, so that the OS's own reason is reported (SQLite would only say "unable to open
/// database file", or silently open a write-protected file read-only).
fn preflight(path: &Path) -> Result<()> {
    // An empty file is an empty SQLite database; `create_new` never touches an existing one.
    match OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => inspect_existing(path),
        Err(e) => Err(os_error(path, "create", e)),
    }
}

fn inspect_existing(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| os_error(path, "open", e))?;
    if meta.is_dir() {
        return Err(Error::database(format!(
            "{} is a directory, not a Durable/SQLite database file",
            path.display()
        )));
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| os_error(path, "open", e))?;
    if meta.len() == 0 {
        return Ok(());
    }
    let mut header = [0u8; 16];
    let complete = match file.read_exact(&mut header) {
        Ok(()) => true,
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => false,
        Err(e) => return Err(os_error(path, "read", e)),
    };
    if !complete || &header != SQLITE_HEADER {
        return Err(Error::database(format!(
            "{} is not a Durable/SQLite database: it does not start with the SQLite file \
             header; nothing was changed",
            path.display()
        )));
    }
    Ok(())
}

fn os_error(path: &Path, verb: &str, err: std::io::Error) -> Error {
    let message = format!(
        "cannot {verb} the SQLite database at {}: {err}",
        path.display()
    );
    Error::database_caused_by(message, err)
}

/// Names the database in a SQLite error, and says what the common ones mean.
fn explain(at: &str, err: rusqlite::Error) -> Error {
    let message = match err.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => format!(
            "{at} is not a Durable/SQLite database (SQLite says: {err}); nothing was changed"
        ),
        Some(ErrorCode::CannotOpen) => format!(
            "cannot open the SQLite database at {at}: {err}; SQLite also creates `-wal` and \
             `-shm` files beside it, so its directory must be writable"
        ),
        _ => format!("SQLite database at {at}: {err}"),
    };
    Error::database_caused_by(message, err)
}
