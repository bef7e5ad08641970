//! The application: shared state, the router, and the pieces every handler uses.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use durable::{Store, Workflow, WorkflowSpec};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use tower_http::trace::TraceLayer;

use crate::problem::Problem;
use crate::{api, idempotency, openapi};
use durable_control::Control;

/// The largest request body accepted, webhooks included.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The workflows this server may start, by name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    workflows: BTreeMap<String, WorkflowSpec>,
}

impl Registry {
    /// Adds workflow `W`.
    pub fn register<W: Workflow>(mut self, _workflow: W) -> Self {
        let spec = WorkflowSpec::of::<W>();
        self.workflows.insert(spec.name.clone(), spec);
        self
    }

    /// Adds a workflow known by its spec only (one built at run time).
    pub fn register_spec(mut self, spec: WorkflowSpec) -> Self {
        self.workflows.insert(spec.name.clone(), spec);
        self
    }

    /// The workflow named `name`, or a 422 naming the known ones.
    pub fn get(&self, name: &str) -> Result<&WorkflowSpec, Problem> {
        self.workflows.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.workflows.keys().map(String::as_str).collect();
            Problem::unprocessable(
                "unknown-workflow",
                format!(
                    "no workflow named `{}` is registered; known: {}",
                    crate::fields::shown(name),
                    known.join(", ")
                ),
            )
        })
    }

    /// Every registered workflow.
    pub fn specs(&self) -> impl Iterator<Item = &WorkflowSpec> {
        self.workflows.values()
    }
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Tenants, keys, flows, hooks, idempotency records, audit log.
    pub control: Control,
    /// Runs and steps.
    pub runs: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    /// The connectors this process runs: the API loads a package's script with them to
    /// refuse one that does not compile.
    pub connectors: Arc<durable_connectors::Connectors>,
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/openapi.json", get(openapi::document))
        .merge(api::workspaces::routes())
        .merge(api::keys::routes())
        .merge(api::members::routes())
        .merge(api::flows::routes())
        .merge(api::runs::routes())
        .merge(api::hooks::routes())
        .merge(api::connectors::routes())
        .route("/v1/audit", get(api::audit::list))
        .route("/v1/workflows", get(api::runs::workflows))
        .route("/healthz", get(|| async { "ok" }))
        .route("/", post(not_found).get(not_found))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(crate::oversized::answer))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no-such-route",
        "Not found",
        "no such route; the API is documented at /v1/openapi.json",
    )
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this route does not take this method; see /v1/openapi.json",
    )
}

/// A JSON object body whose rejections are problem documents.
///
/// Every request body is a JSON object, and only an object is read: serde would also read a
/// struct from an array of its fields in order (`["sync", "d"]` as a flow), which no schema
/// describes.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let value = match Json::<serde_json::Value>::from_request(req, state).await {
            Ok(Json(value)) => value,
            Err(rejection) => return Err(body_problem(rejection.status(), rejection.body_text())),
        };
        if !value.is_object() {
            let detail = "the body must be a JSON object".to_owned();
            return Err(body_problem(StatusCode::UNPROCESSABLE_ENTITY, detail));
        }
        serde_path_to_error::deserialize(value)
            .map(ApiJson)
            .map_err(|err| body_problem(StatusCode::UNPROCESSABLE_ENTITY, misfit(&err)))
    }
}

/// What does not fit in a body, with where (`from_seq: invalid type: …`).
fn misfit(err: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = err.path().to_string();
    if path == "." {
        format!("the body does not fit its schema: {}", err.inner())
    } else {
        format!("the body does not fit its schema: {path}: {}", err.inner())
    }
}

/// A path parameter whose rejections are problem documents.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(Problem::bad_request("invalid-path", rejection.body_text())),
        }
    }
}

/// A query string whose rejections are problem documents.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(Problem::bad_request("invalid-query", rejection.body_text())),
        }
    }
}

/// A whole number as JSON Schema counts one: `3`, `3.0` and `3e0` alike. serde refuses a
/// float for an integer field, but a value with no fraction is an `integer` to the schema
/// that clients (and their generators) follow.
pub fn whole_number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole = number.as_u64().or_else(|| {
        let float = number.as_f64()?;
        // Below 2^53 a float holds every whole number exactly.
        (float.fract() == 0.0 && (0.0..9_007_199_254_740_992.0).contains(&float))
            .then_some(float as u64)
    });
    whole
        .and_then(|whole| T::try_from(whole).ok())
        .ok_or_else(|| D::Error::custom(format!("expected a whole number in range, got {number}")))
}

/// A step sequence number: a whole number up to 2^31 - 1, the most a Postgres store keeps.
pub fn step_seq<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let seq: i32 = whole_number(deserializer)?;
    Ok(seq.unsigned_abs())
}

/// [`whole_number`] for an optional field; `null` is `None`.
pub fn optional_whole_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    #[derive(Deserialize)]
    struct Whole<T: TryFrom<u64>>(#[serde(deserialize_with = "whole_number")] T);
    Ok(Option::<Whole<T>>::deserialize(deserializer)?.map(|Whole(value)| value))
}

/// The problem for a body that could not be read or parsed.
pub fn body_problem(status: StatusCode, detail: String) -> Problem {
    let (slug, title) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ("body-too-large", "Payload too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported-media-type", "Unsupported media type"),
        StatusCode::UNPROCESSABLE_ENTITY => ("invalid-body", "Unprocessable content"),
        _ => ("malformed-body", "Bad request"),
    };
    let detail = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!("the body is larger than the limit of {BODY_LIMIT} bytes")
    } else {
        detail
    };
    Problem::new(status, slug, title, detail)
}

/// `201 Created` with a JSON body.
pub fn created<T: serde::Serialize>(value: T) -> impl IntoResponse {
    (StatusCode::CREATED, Json(value))
}
