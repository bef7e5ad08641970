//! Workflow ids: what the engine accepts, and the namespaces in which the engine (and the
//! server over it) make ids of their own.
//!
//! A workflow id is unique per workspace, so whoever picks an id inside one of these
//! namespaces takes it from its owner: a run started as `hook:<hook>:<delivery>` before the
//! genuine delivery arrives makes that delivery a "duplicate" of a forged run. Callers that
//! take ids from outside the program (an HTTP API) refuse them with [`reserved`]; the
//! engine itself does not, since its own starts use these namespaces.

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

use crate::{Error, Result, RunId};

/// The longest workflow id, in bytes. Both stores keep ids in a unique index; Postgres
/// refuses an index entry over 2,704 bytes, so the bound sits well below it, and applies on
/// SQLite too so that an id valid on one store is valid on the other.
pub const MAX_BYTES: usize = 1024;

/// Runs started by a webhook delivery: `hook:<hook id>:<delivery id>`.
pub const HOOK_PREFIX: &str = "hook:";
/// Runs started by a schedule's tick: `schedule:<name>:<tick>`.
pub const SCHEDULE_PREFIX: &str = "schedule:";
/// Runs started by a flow's trigger: kept for them, so that no client id is in the way.
pub const TRIGGER_PREFIX: &str = "trigger:";

/// Every prefix of ids the engine or the server makes. Child runs have no prefix: their ids
/// are `<parent run id>:<step>` (see [`child`]).
pub const RESERVED_PREFIXES: &[&str] = &[HOOK_PREFIX, SCHEDULE_PREFIX, TRIGGER_PREFIX];

/// What [`reserved`] says of a child's id.
pub const CHILD_PATTERN: &str = "<run id>:<step>";

/// Checks a workflow id chosen by a caller: 1 to [`MAX_BYTES`] bytes, no control
/// characters (Postgres cannot store NUL; SQLite could, and then the stores would differ).
pub fn check(id: &str) -> Result<()> {
    let why = if id.is_empty() {
        "it is empty"
    } else if id.len() > MAX_BYTES {
        "it is longer than 1024 bytes"
    } else if id.chars().any(char::is_control) {
        "it holds control characters"
    } else {
        return Ok(());
    };
    Err(Error::Invalid(format!("invalid workflow id: {why}")))
}

/// The namespace `id` falls in, if it is one of the engine's: a prefix of
/// [`RESERVED_PREFIXES`], or [`CHILD_PATTERN`].
pub fn reserved(id: &str) -> Option<&'static str> {
    if let Some(prefix) = RESERVED_PREFIXES.iter().find(|p| id.starts_with(**p)) {
        return Some(prefix);
    }
    is_child(id).then_some(CHILD_PATTERN)
}

/// Whether `id` has the shape of a child's id: a UUID in any spelling, `:`, digits.
fn is_child(id: &str) -> bool {
    let Some((parent, step)) = id.rsplit_once(':') else {
        return false;
    };
    !step.is_empty() && step.bytes().all(|b| b.is_ascii_digit()) && Uuid::parse_str(parent).is_ok()
}

/// The id of the child a run starts at step `seq`.
pub fn child(parent: RunId, seq: u32) -> String {
    format!("{parent}:{seq}")
}

/// The id of the run a webhook delivery starts.
pub fn hook(hook: Uuid, delivery: &str) -> String {
    format!("{HOOK_PREFIX}{hook}:{delivery}")
}

/// The id of the run schedule `name` starts at `tick`:
/// `schedule:<name>:<tick in RFC 3339, UTC, whole seconds>`.
pub fn schedule_tick(name: &str, tick: DateTime<Utc>) -> String {
    format!(
        "{SCHEDULE_PREFIX}{name}:{}",
        tick.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engines_own_ids_are_reserved() {
        let run = RunId::new();
        assert_eq!(reserved(&child(run, 3)), Some(CHILD_PATTERN));
        assert_eq!(reserved(&child(run, 3).to_uppercase()), Some(CHILD_PATTERN));
        assert_eq!(reserved(&hook(Uuid::nil(), "d1")), Some(HOOK_PREFIX));
        let tick = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(reserved(&schedule_tick("n", tick)), Some(SCHEDULE_PREFIX));
        assert_eq!(reserved("trigger:x"), Some(TRIGGER_PREFIX));
        for free in [
            "order-42",
            "hooks:x",
            "Hook:x",
            "abc:12",
            &format!("{run}:x"),
            "",
        ] {
            assert_eq!(reserved(free), None, "{free}");
        }
    }

    #[test]
    fn ids_are_bounded_and_printable() {
        assert!(check("order-42").is_ok());
        assert!(check(&"é".repeat(MAX_BYTES / 2)).is_ok());
        for bad in [
            String::new(),
            "x".repeat(MAX_BYTES + 1),
            "a\0b".to_owned(),
            "a\nb".to_owned(),
        ] {
            assert!(matches!(check(&bad), Err(Error::Invalid(_))), "{bad:?}");
        }
    }
}
