//! From what a script returned or threw to the call's result: JSON values, and errors
//! classified by what stopped the script.

use std::time::Duration;

use rquickjs::{Ctx, Object, Value};
use serde_json::json;

use super::engine::JsLimits;
use super::memory::Budget;
use super::meter::Meter;
use crate::error::{CallError, ErrorKind};

/// The longest message kept from a script: the rest of a huge one only fills the step record.
const MAX_MESSAGE_CHARS: usize = 2000;

/// The longest wait a script may ask for with `retryAfterMs`.
const MAX_SCRIPT_RETRY_AFTER: Duration = Duration::from_secs(60 * 60);

/// Room given past the memory cap to read a failed script's error.
const ERROR_HEADROOM: usize = 1024 * 1024;

/// The kinds a script may give an error (`ctx.retryable`, `ctx.terminal`, or any thrown object
/// with a `kind`). The script limits are the engine's verdicts, not the script's.
const SCRIPT_KINDS: [ErrorKind; 12] = [
    ErrorKind::Upstream,
    ErrorKind::Timeout,
    ErrorKind::Connection,
    ErrorKind::RateLimited,
    ErrorKind::AuthExpired,
    ErrorKind::Rejected,
    ErrorKind::InvalidInput,
    ErrorKind::InvalidOutput,
    ErrorKind::ForbiddenAddress,
    ErrorKind::ResponseTooLarge,
    ErrorKind::ScriptError,
    ErrorKind::NotFound,
];

/// The kinds a script may use, for the prelude's `ctx.retryable` and `ctx.terminal`.
pub(crate) fn kinds_json() -> serde_json::Value {
    let names = |retryable: bool| -> Vec<&'static str> {
        SCRIPT_KINDS
            .iter()
            .filter(|k| k.is_retryable() == retryable)
            .map(|k| k.as_str())
            .collect()
    };
    json!({ "retryable": names(true), "terminal": names(false) })
}

/// `text`, cut to [`MAX_MESSAGE_CHARS`].
pub(crate) fn clip(text: String) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// An engine failure that is not a script's exception.
pub(crate) fn engine_error(err: &rquickjs::Error) -> CallError {
    match err {
        rquickjs::Error::Allocation => CallError::new(
            ErrorKind::ScriptMemory,
            "the script engine could not allocate memory",
        ),
        other => CallError::new(ErrorKind::ScriptError, clip(other.to_string())),
    }
}

/// A thrown value as a person reads it: `TypeError: x is not a function (at f (index.js:3:9))`.
pub(crate) fn describe(value: &Value<'_>) -> String {
    let Some(object) = value.as_object() else {
        return format!("the non-error value {}", plain(value));
    };
    let text = |key: &str| object.get::<_, Option<String>>(key).ok().flatten();
    let name = text("name").unwrap_or_else(|| "Error".to_owned());
    let message = text("message").unwrap_or_default();
    // The first frame in the package's code: frames of the sandbox's own modules
    // (`durable:prelude`, `durable:extras`) say where the engine refused, not where the
    // script asked.
    let at = text("stack").and_then(|stack| {
        let frames = || stack.lines().map(str::trim).filter(|l| !l.is_empty());
        let first = frames()
            .find(|l| !l.contains("durable:"))
            .or_else(|| frames().next())?;
        Some(first.trim_start_matches("at ").to_owned())
    });
    match at {
        Some(at) => format!("{name}: {message} (at {at})"),
        None => format!("{name}: {message}"),
    }
}

/// A value that is not an object, as JSON where it can be.
fn plain(value: &Value<'_>) -> String {
    if value.is_undefined() {
        return "undefined".to_owned();
    }
    value
        .ctx()
        .json_stringify(value.clone())
        .ok()
        .flatten()
        .and_then(|s| s.to_string().ok())
        .unwrap_or_else(|| format!("of type {}", value.type_name()))
}

/// Turns what stopped a script into the call's error.
pub(crate) struct Verdict<'a> {
    pub(crate) limits: &'a JsLimits,
    pub(crate) meter: &'a Meter,
    pub(crate) budget: &'a Budget,
}

impl Verdict<'_> {
    /// The error for an engine call that failed while `what` ran.
    pub(crate) fn failure(&self, ctx: &Ctx<'_>, err: rquickjs::Error, what: &str) -> CallError {
        match err {
            rquickjs::Error::Exception => self.thrown(&ctx.catch(), what),
            other => self.limit(what).unwrap_or_else(|| {
                let err = engine_error(&other);
                CallError::new(err.kind, clip(format!("{what}: {}", err.message)))
            }),
        }
    }

    /// The error for `value`, thrown by `what` (an action, a trigger, a module).
    pub(crate) fn thrown(&self, value: &Value<'_>, what: &str) -> CallError {
        if let Some(limit) = self.limit(what) {
            // An error thrown after the limit was hit (a `null` QuickJS threw for lack of
            // memory, the script's own rethrow) is a consequence, not the cause.
            return limit;
        }
        self.budget.widen(ERROR_HEADROOM);
        if let Some(object) = value.as_object() {
            if let Some(classified) = classified(object) {
                return classified;
            }
            if is_stack_overflow(object) {
                let kib = self.limits.stack_bytes / 1024;
                return CallError::new(
                    ErrorKind::ScriptMemory,
                    format!("{what} went over its stack limit of {kib} KiB (recursion too deep)"),
                );
            }
        }
        CallError::new(
            ErrorKind::ScriptError,
            clip(format!("{what} threw {}", describe(value))),
        )
    }

    /// The limit the script ran into, if any.
    fn limit(&self, what: &str) -> Option<CallError> {
        if self.meter.tripped() {
            let cpu = self.limits.cpu_time;
            return Some(CallError::new(
                ErrorKind::ScriptTimeout,
                format!("{what} ran past its CPU time limit of {cpu:?} and was stopped"),
            ));
        }
        if self.budget.exceeded() {
            let mib = self.limits.memory_bytes as f64 / (1024.0 * 1024.0);
            return Some(CallError::new(
                ErrorKind::ScriptMemory,
                format!("{what} went over its memory limit of {mib} MiB and was stopped"),
            ));
        }
        None
    }

    /// `value`, returned by `what`, as JSON: `undefined` is `null`; a value JSON cannot
    /// represent (a function, a BigInt, a cycle) is a script error.
    pub(crate) fn to_json<'js>(
        &self,
        ctx: &Ctx<'js>,
        value: Value<'js>,
        what: &str,
    ) -> Result<serde_json::Value, CallError> {
        if value.is_undefined() {
            return Ok(serde_json::Value::Null);
        }
        let type_name = value.type_name();
        let text = match ctx.json_stringify(value) {
            Ok(Some(text)) => text.to_string().map_err(|e| engine_error(&e))?,
            Ok(None) => {
                return Err(CallError::new(
                    ErrorKind::ScriptError,
                    format!("{what} returned a {type_name}, which is not JSON"),
                ));
            }
            Err(rquickjs::Error::Exception) => {
                let err = self.thrown(&ctx.catch(), what);
                return Err(match err.kind {
                    ErrorKind::ScriptError => CallError::new(
                        ErrorKind::ScriptError,
                        clip(format!(
                            "{what} returned a value that is not JSON: {}",
                            err.message
                        )),
                    ),
                    _ => err,
                });
            }
            Err(other) => return Err(self.failure(ctx, other, what)),
        };
        serde_json::from_str(&text).map_err(|e| {
            CallError::new(
                ErrorKind::ScriptError,
                format!("{what} returned JSON the host cannot read: {e}"),
            )
        })
    }
}

/// An error that names its own kind: from `ctx.retryable`, `ctx.terminal`, a failed
/// `ctx.http.request`, or any object with a `kind` a script may use.
fn classified(object: &Object<'_>) -> Option<CallError> {
    let kind: String = object.get::<_, Option<String>>("kind").ok().flatten()?;
    let kind = ErrorKind::parse(&kind).filter(|k| SCRIPT_KINDS.contains(k))?;
    let message: String = object
        .get::<_, Option<String>>("message")
        .ok()
        .flatten()
        .unwrap_or_else(|| kind.as_str().to_owned());
    let number = |key: &str| object.get::<_, Option<f64>>(key).ok().flatten();
    let status = number("status")
        .filter(|s| (100.0..=599.0).contains(s))
        .map(|s| s as u16);
    let retry_after = number("retryAfterMs")
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .map(|ms| Duration::from_secs_f64(ms / 1000.0).min(MAX_SCRIPT_RETRY_AFTER));
    let mut error = CallError::new(kind, clip(message)).with_retry_after(retry_after);
    if let Some(status) = status {
        error = error.with_status(status);
    }
    Some(error)
}

fn is_stack_overflow(object: &Object<'_>) -> bool {
    let text = |key: &str| object.get::<_, Option<String>>(key).ok().flatten();
    text("name").as_deref() == Some("RangeError")
        && text("message").as_deref() == Some("Maximum call stack size exceeded")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_a_script_uses_is_named_once() {
        let kinds = kinds_json();
        let all: Vec<&str> = ["retryable", "terminal"]
            .iter()
            .flat_map(|k| kinds[k].as_array().unwrap())
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(all.len(), SCRIPT_KINDS.len());
        assert!(all.contains(&"rate_limited") && all.contains(&"rejected"));
        assert!(!all.contains(&"script_timeout") && !all.contains(&"script_memory"));
    }

    #[test]
    fn clip_keeps_short_text_and_cuts_long() {
        assert_eq!(clip("short".into()), "short");
        let long = "é".repeat(MAX_MESSAGE_CHARS + 10);
        assert_eq!(clip(long).chars().count(), MAX_MESSAGE_CHARS + 1);
    }
}
