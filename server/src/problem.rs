//! Errors as RFC 9457 problem documents, each with a stable `type`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The most characters of a client's value that a `detail` repeats back. Enough to recognise
/// the value; more would let a client make every error answer as large as its request.
pub const ECHO_LIMIT: usize = 200;

/// The most characters of a whole `detail`: the backstop for a value echoed without quotes.
pub const DETAIL_LIMIT: usize = 1000;

/// An error answered as `application/problem+json`.
///
/// `type` is `urn:durable:problem:<slug>`: stable, so clients can match on it; `detail` is
/// for humans and may change.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:durable:problem:<slug>`.
    #[serde(rename = "type")]
    #[schema(pattern = "^urn:durable:problem:[a-z0-9-]+$")]
    pub kind: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// What went wrong with this request; values it repeats are cut to 200 characters.
    pub detail: String,
    /// The request field (JSON member or query parameter) the problem is about, when it is
    /// about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Each problem found in an uploaded connector package (`invalid-package`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<PackageError>>)]
    // Boxed: every handler returns `Result<_, Problem>`, so its size is paid everywhere.
    pub errors: Option<Box<[PackageError]>>,
}

/// One problem in a connector package: the file, where in it, and what was expected there.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PackageError {
    /// The package file (`manifest.json`, `schemas/note.json`, `index.js`).
    pub file: String,
    /// Where in that file, as a JSON pointer; empty for the whole file.
    pub pointer: String,
    /// What was expected there.
    pub expected: String,
}

impl Problem {
    /// A problem of type `slug`. The detail is made safe to show: see [`clip_detail`].
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:durable:problem:{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: clip_detail(&detail.into()),
            field: None,
            errors: None,
        }
    }

    /// The same problem, about request field `field`.
    pub fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    /// The same problem, listing each problem of a connector package.
    pub fn with_errors(mut self, errors: Vec<PackageError>) -> Self {
        self.errors = Some(errors.into_boxed_slice());
        self
    }

    /// 400: the request is malformed.
    pub fn bad_request(slug: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, slug, "Bad request", detail)
    }

    /// 404 for a resource that does not exist in the caller's workspace. Another workspace's
    /// resource gets the same answer, so ids cannot be probed.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("no {what} with this id in this workspace"),
        )
    }

    /// 409: the request conflicts with the current state.
    pub fn conflict(slug: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, slug, "Conflict", detail)
    }

    /// 422: well-formed but unacceptable input.
    pub fn unprocessable(slug: &str, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            slug,
            "Unprocessable content",
            detail,
        )
    }

    /// 500 without internals: the cause goes to the log, not to the client.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
            "the server failed to handle the request; it was logged",
        )
    }

    /// The status as a `StatusCode`.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let mut response = (status, Json(self)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: say which scheme would have worked.
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"durable\""),
            );
        }
        response
    }
}

impl From<durable_control::Error> for Problem {
    fn from(err: durable_control::Error) -> Self {
        use durable_control::Error as E;
        match err {
            E::Conflict(detail) => Problem::conflict("already-exists", detail),
            E::Immutable(detail) => Problem::conflict("immutable", detail),
            E::Invalid(detail) => Problem::unprocessable("invalid-request", detail),
            E::Forbidden(detail) => Problem::new(
                StatusCode::FORBIDDEN,
                "scope-escalation",
                "Forbidden",
                detail,
            ),
            E::LastAdmin(detail) => Problem::conflict("last-admin", detail),
            E::Database(err) => Problem::from(err),
            other => Problem::internal(&other),
        }
    }
}

impl From<durable::Error> for Problem {
    fn from(err: durable::Error) -> Self {
        use durable::Error as E;
        match err {
            E::RunNotFound(_) => Problem::not_found("run"),
            E::IdConflict { .. } => Problem::conflict("workflow-id-conflict", err.to_string()),
            E::Invalid(detail) => Problem::unprocessable("invalid-request", detail),
            E::Refused { message, .. } => Problem::unprocessable("refused-value", message),
            other => Problem::internal(&other),
        }
    }
}

/// `detail` with its control characters escaped, each quoted value (between backticks, as
/// the server's own messages quote, or double quotes, as serde's do) cut to [`ECHO_LIMIT`]
/// characters, and the whole cut to [`DETAIL_LIMIT`]; a cut ends in `…`.
///
/// Details repeat what the client sent (a workflow name, a scope, serde's view of a bad
/// value): unbounded, an error answer could be as large as the request, and a control
/// character in it could forge lines in a log or a terminal that shows it.
pub fn clip_detail(detail: &str) -> String {
    let mut out = String::with_capacity(detail.len().min(DETAIL_LIMIT));
    let mut chars = detail.chars().peekable();
    let mut shown = 0;
    while let Some(c) = chars.next() {
        if shown >= DETAIL_LIMIT {
            out.push('…');
            break;
        }
        push_escaped(&mut out, c);
        shown += 1;
        if c == '`' || c == '"' {
            shown += clip_quoted(&mut out, &mut chars, c);
        }
    }
    out
}

/// Copies a quoted value up to and including its closing `quote`, keeping at most
/// [`ECHO_LIMIT`] of its characters; returns how many characters it wrote. Inside double
/// quotes a backslash escapes the next character (serde quotes with Rust's `Debug`).
fn clip_quoted(
    out: &mut String,
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    quote: char,
) -> usize {
    let mut kept = 0;
    let mut cut = false;
    let mut escaped = false;
    for c in chars.by_ref() {
        let closes = c == quote && !escaped;
        escaped = quote == '"' && c == '\\' && !escaped;
        if closes {
            if cut {
                out.push('…');
            }
            out.push(c);
            return kept + 1;
        }
        if kept < ECHO_LIMIT {
            push_escaped(out, c);
            kept += 1;
        } else {
            cut = true;
        }
    }
    if cut {
        out.push('…');
    }
    kept
}

/// Pushes `c`, or its Rust escape (`\n`, `\u{1b}`) when it is a control character.
fn push_escaped(out: &mut String, c: char) {
    if c.is_control() {
        out.extend(c.escape_default());
    } else {
        out.push(c);
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, Problem>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_quoted_value_is_cut_and_the_rest_kept() {
        let value = "x".repeat(10_000);
        let detail = clip_detail(&format!("no workflow named `{value}` is registered"));
        let shown = format!("`{}…`", "x".repeat(ECHO_LIMIT));
        assert_eq!(detail, format!("no workflow named {shown} is registered"));
    }

    #[test]
    fn serde_quoted_values_are_cut_past_their_escapes() {
        let detail = clip_detail(&format!(
            r#"invalid type: string "\"{}", expected u32"#,
            "y".repeat(500)
        ));
        assert!(detail.ends_with(r#"…", expected u32"#), "{detail}");
        assert!(detail.chars().count() < 260, "{detail}");
    }

    #[test]
    fn control_characters_are_escaped() {
        let detail = clip_detail("unknown role `a\nb\u{1b}[31m`");
        assert_eq!(detail, r"unknown role `a\nb\u{1b}[31m`");
    }

    #[test]
    fn a_detail_without_quotes_is_cut_as_a_whole() {
        let detail = clip_detail(&"z".repeat(5_000));
        assert_eq!(detail.chars().count(), DETAIL_LIMIT + 1);
        assert!(detail.ends_with('…'));
    }

    #[test]
    fn short_details_are_unchanged() {
        let detail = "a flow named `sync` exists; known: \"a\", \"b\"";
        assert_eq!(clip_detail(detail), detail);
    }
}
