//! Errors as RFC 9457 problem documents, each with a stable `type`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error answered as `application/problem+json`.
///
/// `type` is `urn:durable:problem:<slug>`: stable, so clients can match on it; `detail` is
/// for humans and may change.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:durable:problem:<slug>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// The request field (JSON member or query parameter) the problem is about, when it is
    /// about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    /// A problem of type `slug`.
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:durable:problem:{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
        }
    }

    /// The same problem, about request field `field`.
    pub fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
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

/// Result of a handler.
pub type ApiResult<T> = Result<T, Problem>;
