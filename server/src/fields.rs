//! The rule of every field the API takes, each applied in one place and refused in one
//! shape: `422 invalid-field` for a body member, `400 invalid-query` for a query parameter,
//! with the member's name in `field` and at the start of `detail`.
//!
//! Rules that belong to the data (names, descriptions, emails, dedupe windows) are
//! `durable_control::limits`, which the control plane checks again for its library users;
//! the reserved workflow-id namespaces are `durable::workflow_id`. What is added here is
//! the API's own: client-chosen workflow ids, JSON documents, page sizes.

use std::ops::RangeInclusive;
use std::time::Duration;

use durable::WorkflowSpec;
use durable::workflow_id::{CHILD_PATTERN, RESERVED_PREFIXES, reserved};
use durable_control::limits::{self, Check};
use serde_json::Value;

use crate::app::Registry;
use crate::problem::{ApiResult, Problem};

/// The longest workflow id a client may choose: room is left under the engine's bound for
/// the ids the engine makes.
pub const WORKFLOW_ID_MAX: usize = 200;
/// The page sizes of list endpoints.
pub const LIMIT_RANGE: RangeInclusive<u32> = 1..=1000;
/// The page size when none is asked for.
pub const DEFAULT_LIMIT: u32 = 100;

/// 422 `invalid-field`: body member `field` breaks `rule`.
pub fn invalid(field: &str, rule: &str) -> Problem {
    Problem::unprocessable("invalid-field", format!("`{field}` {rule}")).with_field(field)
}

/// 400 `invalid-query`: query parameter `field` breaks `rule`.
pub fn invalid_query(field: &str, rule: &str) -> Problem {
    Problem::bad_request("invalid-query", format!("`{field}` {rule}")).with_field(field)
}

fn checked(field: &str, check: Check) -> ApiResult<()> {
    check.map_err(|rule| invalid(field, rule))
}

/// A name (workspace, flow, key): trimmed, then [`limits::name`].
pub fn name<'a>(field: &str, value: &'a str) -> ApiResult<&'a str> {
    let value = value.trim();
    checked(field, limits::name(value))?;
    Ok(value)
}

/// A flow description: trimmed, then [`limits::description`].
pub fn description<'a>(field: &str, value: &'a str) -> ApiResult<&'a str> {
    let value = value.trim();
    checked(field, limits::description(value))?;
    Ok(value)
}

/// An email address: trimmed and lower-cased, then [`limits::email`].
pub fn email(field: &str, value: &str) -> ApiResult<String> {
    let value = value.trim().to_lowercase();
    checked(field, limits::email(&value))?;
    Ok(value)
}

/// A registered workflow, by name. The name's shape is checked first so that the answer
/// never echoes more than a name's worth of it.
pub fn workflow<'r>(
    field: &str,
    registry: &'r Registry,
    value: &str,
) -> ApiResult<&'r WorkflowSpec> {
    checked(field, limits::name(value))?;
    registry.get(value).map_err(|p| p.with_field(field))
}

/// A workflow id chosen by a client: 1 to 200 visible ASCII characters, outside the
/// namespaces of the ids the engine and the server make (a client holding one could take
/// a webhook delivery's run, a schedule's tick or a child's place).
pub fn workflow_id(field: &str, value: Option<String>) -> ApiResult<Option<String>> {
    let Some(value) = value else {
        return Ok(None);
    };
    if !visible_ascii(&value, WORKFLOW_ID_MAX) {
        return Err(invalid(
            field,
            "has 1 to 200 visible ASCII characters (`!` to `~`)",
        ));
    }
    if let Some(namespace) = reserved(&value) {
        return Err(reserved_id(field, namespace));
    }
    Ok(Some(value))
}

/// 422 `reserved-workflow-id`, naming the namespace and every reserved one.
fn reserved_id(field: &str, namespace: &str) -> Problem {
    let what = if namespace == CHILD_PATTERN {
        format!("has the shape of a child run's id, `{CHILD_PATTERN}`,")
    } else {
        format!("starts with `{namespace}`,")
    };
    let all: Vec<String> = RESERVED_PREFIXES.iter().map(|p| format!("`{p}`")).collect();
    Problem::unprocessable(
        "reserved-workflow-id",
        format!(
            "`{field}` {what} which is reserved for the runs the engine and the server start \
             (reserved: {} and `{CHILD_PATTERN}`)",
            all.join(", ")
        ),
    )
    .with_field(field)
}

/// Whether `value` has 1 to `max` visible ASCII characters: ids that travel in headers,
/// URLs and logs unchanged.
pub fn visible_ascii(value: &str, max: usize) -> bool {
    (1..=max).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic())
}

/// A JSON document the store keeps (a run's input, a flow's definition): Postgres cannot
/// store a NUL character in JSON, so it is refused on both stores, before either sees it.
pub fn json(field: &str, value: &Value) -> ApiResult<()> {
    if holds_nul(value) {
        return Err(invalid(
            field,
            "holds a NUL character (\\u0000), which cannot be stored",
        ));
    }
    Ok(())
}

/// Whether any string or key in `value` holds NUL. Recursion is bounded by the JSON
/// parser's own depth limit.
pub fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(members) => members
            .iter()
            .any(|(key, value)| key.contains('\0') || holds_nul(value)),
        _ => false,
    }
}

/// A hook's dedupe window, as humantime text (`"5m"`, `"0s"` for off); `None` when absent.
pub fn dedupe_window(field: &str, value: Option<&str>) -> ApiResult<Option<Duration>> {
    let Some(text) = value else {
        return Ok(None);
    };
    let rule = "is a duration of whole seconds up to 24h, such as \"5m\" (\"0s\" turns dedupe off)";
    let window = humantime::parse_duration(text).map_err(|_| invalid(field, rule))?;
    limits::dedupe_window(window).map_err(|_| invalid(field, rule))?;
    Ok(Some(window))
}

/// The page size of a list: [`LIMIT_RANGE`], [`DEFAULT_LIMIT`] when absent.
pub fn limit(value: Option<u32>) -> ApiResult<u32> {
    let limit = value.unwrap_or(DEFAULT_LIMIT);
    if !LIMIT_RANGE.contains(&limit) {
        return Err(invalid_query("limit", "is 1 to 1000 (default 100)"));
    }
    Ok(limit)
}

/// A workflow name to filter by: shaped like one ([`limits::name`]); it need not be
/// registered, since runs of retired workflows stay listed.
pub fn workflow_filter(value: Option<String>) -> ApiResult<Option<String>> {
    if let Some(name) = &value {
        limits::name(name).map_err(|rule| invalid_query("workflow", rule))?;
    }
    Ok(value)
}

/// `value` as it may appear in an answer: at most 40 characters, control characters
/// escaped, so that a refusal never echoes a large or unprintable input back.
pub fn shown(value: &str) -> String {
    let head: String = value.chars().take(40).collect();
    let more = if value.chars().nth(40).is_some() {
        "…"
    } else {
        ""
    };
    format!("{}{more}", head.escape_debug())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_workflow_ids_are_visible_ascii_outside_the_reserved_namespaces() {
        assert_eq!(
            workflow_id("w", Some("order-42".into()))
                .unwrap()
                .as_deref(),
            Some("order-42")
        );
        for bad in ["", "a b", "é", &"x".repeat(201)] {
            let problem = workflow_id("w", Some(bad.into())).unwrap_err();
            assert_eq!(problem.kind, "urn:durable:problem:invalid-field", "{bad:?}");
        }
        let child = format!("{}:1", uuid::Uuid::now_v7());
        for reserved in ["hook:x:y", "schedule:n:t", "trigger:x", &child] {
            let problem = workflow_id("w", Some(reserved.into())).unwrap_err();
            assert_eq!(problem.kind, "urn:durable:problem:reserved-workflow-id");
            assert_eq!(problem.field.as_deref(), Some("w"));
        }
    }

    #[test]
    fn limits_are_one_to_a_thousand() {
        assert_eq!(limit(None).unwrap(), 100);
        assert_eq!(limit(Some(1000)).unwrap(), 1000);
        for bad in [0, 1001] {
            assert_eq!(limit(Some(bad)).unwrap_err().status, 400);
        }
    }

    #[test]
    fn echoes_are_short_and_printable() {
        assert_eq!(shown("abc"), "abc");
        assert_eq!(shown("a\0b"), "a\\0b");
        assert_eq!(shown(&"x".repeat(41)), format!("{}…", "x".repeat(40)));
    }
}
