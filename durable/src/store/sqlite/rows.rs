//! The SQLite store's clock, and conversions between records and SQLite values.
//!
//! Timestamps are integer microseconds since the Unix epoch (UTC): the precision Postgres
//! keeps, so a record round-trips the same through either store. UUIDs are hyphenated
//! lowercase text, whose text order is their byte order (as Postgres sorts them). JSON is text.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use rusqlite::Row;
use serde_json::Value;
use uuid::Uuid;

use crate::run::{RunId, RunInfo, StepRecord, WorkspaceId};
use crate::store::{ClaimedRun, Lease};
use crate::{Error, Result};

/// The store's clock: the system clock of the machine that holds the database file, which
/// every process using the file shares. Every timestamp the store writes comes from here.
pub(super) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A timestamp as stored.
pub(super) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// `at + length`, as stored; saturates instead of overflowing on absurd lengths.
pub(super) fn micros_after(at: DateTime<Utc>, length: Duration) -> i64 {
    let length = i64::try_from(length.as_micros()).unwrap_or(i64::MAX);
    micros(at).saturating_add(length)
}

/// A stored timestamp.
pub(super) fn timestamp(us: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| Error::database(format!("timestamp {us} µs is out of range")))
}

/// A UUID as stored.
pub(super) fn uuid_text(id: Uuid) -> String {
    id.hyphenated().to_string()
}

/// A JSON value as stored.
pub(super) fn json_text(value: &Value) -> Result<String> {
    Ok(serde_json::to_string(value)?)
}

/// A stored value this build cannot read, and why (kept as the source).
pub(super) fn corrupt<E>(message: String, cause: E) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    Error::database_caused_by(message, cause)
}

fn uuid_col(row: &Row<'_>, col: &str) -> Result<Uuid> {
    let text: String = row.get(col)?;
    Uuid::parse_str(&text)
        .map_err(|e| corrupt(format!("column {col} holds `{text}`, not a UUID: {e}"), e))
}

fn json_col(row: &Row<'_>, col: &str) -> Result<Option<Value>> {
    let text: Option<String> = row.get(col)?;
    Ok(text.as_deref().map(serde_json::from_str).transpose()?)
}

fn time_col(row: &Row<'_>, col: &str) -> Result<Option<DateTime<Utc>>> {
    row.get::<_, Option<i64>>(col)?.map(timestamp).transpose()
}

fn u32_col(row: &Row<'_>, col: &str) -> Result<u32> {
    let value: i64 = row.get(col)?;
    u32::try_from(value)
        .map_err(|_| Error::database(format!("column {col} holds {value}, out of range")))
}

fn parsed_col<T: std::str::FromStr<Err = Error>>(row: &Row<'_>, col: &str) -> Result<T> {
    row.get::<_, String>(col)?.parse()
}

/// A `runs` row.
pub(super) fn run_from_row(row: &Row<'_>) -> Result<RunInfo> {
    Ok(RunInfo {
        id: RunId(uuid_col(row, "id")?),
        workspace_id: WorkspaceId(uuid_col(row, "workspace_id")?),
        workflow_id: row.get("workflow_id")?,
        workflow_name: row.get("workflow_name")?,
        workflow_version: u32_col(row, "workflow_version")?,
        status: parsed_col(row, "status")?,
        input: json_col(row, "input")?.unwrap_or(Value::Null),
        output: json_col(row, "output")?,
        error: row.get("error")?,
        claims: u32_col(row, "claims")?,
        max_claims: u32_col(row, "max_claims")?,
        created_at: timestamp(row.get("created_at")?)?,
        updated_at: timestamp(row.get("updated_at")?)?,
        wake_at: time_col(row, "wake_at")?,
        waiting_for: row.get("waiting_topic")?,
        parent_run_id: row
            .get::<_, Option<String>>("parent_run_id")?
            .map(|p| p.parse().map(RunId))
            .transpose()
            .map_err(|e| corrupt(format!("bad parent run id: {e}"), e))?,
        forked_from: row
            .get::<_, Option<String>>("forked_from")?
            .map(|p| p.parse().map(RunId))
            .transpose()
            .map_err(|e| corrupt(format!("bad origin run id: {e}"), e))?,
        cancel_requested: row.get("cancel_requested")?,
        deadline: time_col(row, "deadline_at")?,
    })
}

/// A `runs` row returned by a claim.
pub(super) fn claimed_from_row(row: &Row<'_>, db_now: DateTime<Utc>) -> Result<ClaimedRun> {
    let info = run_from_row(row)?;
    Ok(ClaimedRun {
        lease: Lease {
            run_id: info.id,
            epoch: row.get("epoch")?,
        },
        db_now,
        info,
        history: Vec::new(),
    })
}

/// A `steps` row.
pub(super) fn step_from_row(row: &Row<'_>) -> Result<StepRecord> {
    Ok(StepRecord {
        seq: u32_col(row, "seq")?,
        name: row.get("name")?,
        kind: parsed_col(row, "kind")?,
        status: parsed_col(row, "status")?,
        output: json_col(row, "output")?,
        error: json_col(row, "error")?,
        attempts: u32_col(row, "attempts")?,
        wake_at: time_col(row, "wake_at")?,
        first_attempt_at: time_col(row, "first_attempt_at")?,
    })
}

/// Runs a query and converts each row.
pub(super) fn collect<T>(
    statement: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
    convert: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut rows = statement.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(convert(row)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_at_microsecond_precision() {
        let at = now();
        assert_eq!(timestamp(micros(at)).unwrap(), at);
        assert_eq!(at.timestamp_subsec_nanos() % 1000, 0);
    }

    #[test]
    fn lease_ends_saturate() {
        let at = now();
        assert_eq!(
            micros_after(at, Duration::from_millis(3)),
            micros(at) + 3000
        );
        assert_eq!(micros_after(at, Duration::MAX), i64::MAX);
    }

    #[test]
    fn uuids_are_stored_as_lowercase_text_in_byte_order() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(u128::MAX));
        assert!(uuid_text(a) < uuid_text(b));
        assert_eq!(uuid_text(b), "ffffffff-ffff-ffff-ffff-ffffffffffff");
    }
}
