//! `Idempotency-Key` on mutating calls, with Stripe's semantics: the same key and the same
//! request get the stored response (errors too); the same key with another request gets 422;
//! a request while the first is still running gets 409. Records are kept 24 hours, per
//! workspace.
//!
//! The handler runs in its own task, so a client that hangs up does not leave an effect
//! without its recorded response. Server errors (5xx) are not stored: retrying them is the
//! point of the key.

use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::app::{AppState, BODY_LIMIT, body_problem};
use crate::auth::Auth;
use crate::db::{IdempotencyBegin, Scope};
use crate::problem::{PROBLEM_JSON, Problem};

/// How long a key's record is kept.
pub const KEY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The header's name.
pub const HEADER: &str = "idempotency-key";

/// Marks a replayed response.
pub const REPLAYED: &str = "idempotent-replayed";

/// The middleware.
pub async fn layer(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let applies = is_mutating(req.method())
        && req.headers().contains_key(HEADER)
        && req.headers().contains_key(header::AUTHORIZATION);
    if !applies {
        // Unauthenticated calls (webhook intake) are deduplicated by their delivery id.
        return next.run(req).await;
    }
    match handle(app, req, next).await {
        Ok(response) | Err(response) => response,
    }
}

fn is_mutating(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

async fn handle(app: AppState, req: Request, next: Next) -> Result<Response, Response> {
    let (mut parts, body) = req.into_parts();
    let auth = Auth::from_request_parts(&mut parts, &app)
        .await
        .map_err(IntoResponse::into_response)?;
    let key = idempotency_key(&parts.headers).map_err(IntoResponse::into_response)?;
    let body = to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| body_problem(StatusCode::PAYLOAD_TOO_LARGE, String::new()).into_response())?;
    let hash = request_hash(&parts.method, parts.uri.path(), parts.uri.query(), &body);
    let scope = auth.bookkeeping_scope();
    let begun = app
        .control
        .begin_idempotent(scope, &key, &hash, KEY_TTL)
        .await
        .map_err(|e| Problem::from(e).into_response())?;
    match begun {
        IdempotencyBegin::Fresh => {}
        IdempotencyBegin::Replay { status, body } => return Ok(replay(status, body)),
        IdempotencyBegin::Mismatch => return Err(reused().into_response()),
        IdempotencyBegin::InProgress => return Err(in_progress().into_response()),
    }
    let request = Request::from_parts(parts, Body::from(body));
    Ok(run_and_record(app, scope, key, request, next).await)
}

fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<String, Problem> {
    let value = headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let valid =
        !value.is_empty() && value.len() <= 255 && value.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(Problem::bad_request(
            "invalid-idempotency-key",
            "an Idempotency-Key has 1 to 255 visible ASCII characters",
        ));
    }
    Ok(value.to_owned())
}

/// The request's identity: method, path, query and body.
pub fn request_hash(method: &Method, path: &str, query: Option<&str>, body: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in [
        method.as_str().as_bytes(),
        path.as_bytes(),
        query.unwrap_or("").as_bytes(),
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.update(body);
    hasher.finalize().into()
}

/// Runs the handler to the end in its own task and records its response.
async fn run_and_record(
    app: AppState,
    scope: Scope,
    key: String,
    request: Request,
    next: Next,
) -> Response {
    let task = tokio::spawn(async move {
        let response = next.run(request).await;
        record(&app, scope, &key, response).await
    });
    match task.await {
        Ok(response) => response,
        Err(err) => Problem::internal(&err).into_response(),
    }
}

async fn record(app: &AppState, scope: Scope, key: &str, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let body = match to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(err) => {
            let _ = app.control.abandon_idempotent(scope, key).await;
            return Problem::internal(&err).into_response();
        }
    };
    let stored = if parts.status.is_server_error() {
        app.control.abandon_idempotent(scope, key).await
    } else {
        app.control
            .finish_idempotent(scope, key, parts.status.as_u16(), &body)
            .await
    };
    if let Err(err) = stored {
        tracing::error!(error = %err, "could not store an idempotent response");
    }
    Response::from_parts(parts, Body::from(body))
}

fn replay(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    if status != StatusCode::NO_CONTENT {
        let kind = if status.is_client_error() {
            PROBLEM_JSON
        } else {
            "application/json"
        };
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

fn reused() -> Problem {
    Problem::unprocessable(
        "idempotency-key-reused",
        "this Idempotency-Key was used with a different request; use a new key",
    )
}

fn in_progress() -> Problem {
    Problem::conflict(
        "idempotency-key-in-use",
        "a request with this Idempotency-Key is still being handled; retry later",
    )
}
