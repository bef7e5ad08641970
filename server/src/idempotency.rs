//! `Idempotency-Key` on mutating calls, with Stripe's semantics: the same key and the same
//! request get the stored response (errors too); the same key with another request gets 422;
//! a request while the first is still running gets 409. Records are kept 24 hours, per API
//! key: another key, even of the same workspace, never sees them.
//!
//! A replay is checked first: the calling key must still hold the permission the first
//! request's handler checked. A stored response never holds a secret: a handler that returns
//! one (a new API key's token, a hook's generated secret) marks where with [`secrets`], and
//! the record keeps `null` there, with the withheld JSON pointers listed in a top-level
//! `withheld` field; a replay carries them in the `Durable-Withheld` header too.
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
use crate::problem::{PROBLEM_JSON, Problem};
use durable_control::{IdempotencyBegin, IdempotencyRequest};
use serde_json::{Value, json};

/// How long a key's record is kept.
pub const KEY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The header's name.
pub const HEADER: &str = "idempotency-key";

/// Marks a replayed response.
pub const REPLAYED: &str = "idempotent-replayed";

/// On a replayed response, the JSON pointers of the secrets it withholds, comma-separated.
pub const WITHHELD: &str = "durable-withheld";

/// Where a response carries secrets, as JSON pointers: they are never stored.
#[derive(Debug, Clone, Copy)]
pub struct Secrets(pub &'static [&'static str]);

/// Marks the secrets of `response` at `pointers`, so that an idempotency record keeps none.
pub fn secrets(pointers: &'static [&'static str], response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response.extensions_mut().insert(Secrets(pointers));
    response
}

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
    let request = IdempotencyRequest {
        key: &key,
        request_hash: &hash,
    };
    let begun = app
        .control
        .begin_idempotent(scope, request, KEY_TTL)
        .await
        .map_err(|e| Problem::from(e).into_response())?;
    match begun {
        IdempotencyBegin::Fresh => {}
        IdempotencyBegin::Replay {
            status,
            body,
            permission,
        } => {
            if let Some(permission) = permission {
                auth.scope(&permission)
                    .map_err(IntoResponse::into_response)?;
            }
            return Ok(replay(status, body));
        }
        IdempotencyBegin::Mismatch => return Err(reused().into_response()),
        _ => return Err(in_progress().into_response()),
    }
    let request = Request::from_parts(parts, Body::from(body));
    Ok(run_and_record(app, auth, key, request, next).await)
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
    auth: Auth,
    key: String,
    request: Request,
    next: Next,
) -> Response {
    let task = tokio::spawn(async move {
        let response = next.run(request).await;
        record(&app, &auth, &key, response).await
    });
    match task.await {
        Ok(response) => response,
        Err(err) => Problem::internal(&err).into_response(),
    }
}

async fn record(app: &AppState, auth: &Auth, key: &str, response: Response) -> Response {
    let scope = auth.bookkeeping_scope();
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
        let stored = withhold(&body, parts.extensions.get::<Secrets>());
        let permission = auth.checked_permission();
        app.control
            .finish_idempotent(
                scope,
                key,
                parts.status.as_u16(),
                &stored,
                permission.as_deref(),
            )
            .await
    };
    if let Err(err) = stored {
        tracing::error!(error = %err, "could not store an idempotent response");
    }
    Response::from_parts(parts, Body::from(body))
}

/// The body to store: `body` with its secrets replaced by `null` and listed in `withheld`.
fn withhold(body: &[u8], secrets: Option<&Secrets>) -> Vec<u8> {
    let Some(Secrets(pointers)) = secrets else {
        return body.to_vec();
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        // A marked response that is not JSON cannot be cleaned: store nothing of it.
        return b"{}".to_vec();
    };
    let mut withheld = Vec::new();
    for pointer in *pointers {
        if let Some(field) = value.pointer_mut(pointer).filter(|f| !f.is_null()) {
            *field = Value::Null;
            withheld.push(*pointer);
        }
    }
    if let Some(object) = value.as_object_mut() {
        object.insert("withheld".to_owned(), json!(withheld));
    }
    serde_json::to_vec(&value).unwrap_or_default()
}

/// The JSON pointers a stored body withheld, for the replay's header.
fn withheld_pointers(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let pointers: Vec<&str> = value
        .get("withheld")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    (!pointers.is_empty()).then(|| pointers.join(","))
}

fn replay(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let withheld = withheld_pointers(&body);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    if let Some(value) = withheld.and_then(|w| HeaderValue::from_str(&w).ok()) {
        headers.insert(WITHHELD, value);
    }
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
