//! `/v1/hooks`: webhook endpoints (created over the API with an API key) and their intake,
//! `POST /v1/hooks/{id}`, which a provider calls without a key: the hook's signature scheme
//! proves the sender instead.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use durable::{Client, WorkspaceId};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::app::{ApiJson, ApiPath, AppState, body_problem, created, optional_whole_number};
use crate::auth::Auth;
use crate::fields;
use crate::idempotency;
use crate::openapi::schemas;
use crate::problem::{ApiResult, Problem};
use durable_connectors::webhook::{self as verify, StandardHeaders, VerifyError};
use durable_control::{DeliveryClaim, Hook, HookScheme, HookWithSecrets};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/hooks", get(list).post(create))
        .route("/v1/hooks/{id}", get(read).delete(remove).post(intake))
        .route("/v1/hooks/{id}/rotate", post(rotate))
}

/// What a workflow started by a webhook receives as input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HookEvent {
    pub hook_id: Uuid,
    /// The provider's delivery id (`webhook-id`, `X-GitHub-Delivery`).
    pub delivery_id: String,
    /// The delivery's JSON body.
    pub payload: Value,
}

/// A webhook endpoint to create. Its schema is written out in [`crate::openapi::schemas`]:
/// what `secrets` must hold depends on `scheme`, which the derive cannot say.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewHook {
    /// The registered workflow each delivery starts.
    pub workflow: String,
    pub scheme: HookScheme,
    /// Verification secrets, newest first (more than one while rotating). When absent, one
    /// is generated and returned once.
    pub secrets: Option<Vec<String>>,
    /// Within this long (humantime, e.g. `"5m"`, at most `"24h"`; `"0s"` is off), a
    /// delivery whose body equals an earlier one's is answered as its duplicate. Default:
    /// `"5m"` for `github`, whose signature has no timestamp; off for the others.
    pub dedupe_window: Option<String>,
}

/// A webhook endpoint as the API shows it: never with its secrets.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HookView {
    #[serde(flatten)]
    pub hook: Hook,
    /// The path to deliver to.
    pub url: String,
}

impl From<Hook> for HookView {
    fn from(hook: Hook) -> Self {
        let url = format!("/v1/hooks/{}", hook.id);
        Self { hook, url }
    }
}

/// A created hook; `secret` is present, this once, when the server generated it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedHook {
    #[serde(flatten)]
    pub hook: HookView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Creates a webhook endpoint bound to a workflow.
#[utoipa::path(post, path = "/v1/hooks", tag = "hooks", operation_id = "create_hook",
    request_body = NewHook,
    responses(
        (status = 201, description = "The hook, with its secret if the server generated it.",
            body = CreatedHook),
        (status = 422, description = "No such workflow, secrets that do not fit the scheme, \
            or a malformed dedupe window: `unknown-workflow`, `invalid-secret`, \
            `invalid-field`."),
    ))]
pub async fn create(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<NewHook>,
) -> ApiResult<impl IntoResponse> {
    let scope = auth.scope("hooks:write")?;
    fields::workflow("workflow", &app.registry, &body.workflow)?;
    let window = fields::dedupe_window("dedupe_window", body.dedupe_window.as_deref())?;
    let (secrets, generated) = match body.secrets {
        Some(secrets) => (secrets, None),
        None if body.scheme == HookScheme::None => (Vec::new(), None),
        None => {
            let secret = generate_secret(body.scheme);
            (vec![secret.clone()], Some(secret))
        }
    };
    check_secrets(body.scheme, &secrets).map_err(|p| p.with_field("secrets"))?;
    let hook = app
        .control
        .create_hook(scope, &body.workflow, body.scheme, &secrets, window)
        .await?;
    let body = CreatedHook {
        hook: hook.into(),
        secret: generated,
    };
    Ok(idempotency::secrets(&["/secret"], created(body)))
}

fn generate_secret(scheme: HookScheme) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    match scheme {
        HookScheme::StandardWebhooks => format!("whsec_{}", STANDARD.encode(bytes)),
        _ => hex::encode(bytes),
    }
}

fn check_secrets(scheme: HookScheme, secrets: &[String]) -> ApiResult<()> {
    let invalid = |detail: &str| Problem::unprocessable("invalid-secret", detail);
    match scheme {
        HookScheme::None if !secrets.is_empty() => {
            Err(invalid("a hook with scheme `none` takes no secrets"))
        }
        HookScheme::None => Ok(()),
        _ if secrets.is_empty() || secrets.len() > 5 => {
            Err(invalid("give 1 to 5 secrets, newest first"))
        }
        _ => {
            let standard = scheme == HookScheme::StandardWebhooks;
            for secret in secrets {
                verify::validate_secret(standard, secret).map_err(|_| {
                    invalid(if standard {
                        "a Standard Webhooks secret is `whsec_` and 24 to 64 bytes in base64"
                    } else {
                        "a GitHub secret has 16 to 256 bytes, without control characters"
                    })
                })?;
            }
            Ok(())
        }
    }
}

/// The workspace's hooks.
#[utoipa::path(get, path = "/v1/hooks", tag = "hooks", operation_id = "list_hooks",
    responses((status = 200, description = "The hooks.", body = [HookView])))]
pub async fn list(State(app): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<HookView>>> {
    let scope = auth.scope("hooks:read")?;
    let hooks = app.control.list_hooks(scope).await?;
    Ok(Json(hooks.into_iter().map(HookView::from).collect()))
}

/// One hook.
#[utoipa::path(get, path = "/v1/hooks/{id}", tag = "hooks", operation_id = "get_hook",
    params(("id" = Uuid, Path, description = "The hook's id.")),
    responses((status = 200, description = "The hook.", body = HookView)))]
pub async fn read(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<HookView>> {
    let scope = auth.scope("hooks:read")?;
    let hook = app.control.get_hook(scope, id).await?;
    hook.map(|h| Json(h.into()))
        .ok_or_else(|| Problem::not_found("hook"))
}

/// Deletes a hook: deliveries to it get 404 from now on.
#[utoipa::path(delete, path = "/v1/hooks/{id}", tag = "hooks", operation_id = "delete_hook",
    params(("id" = Uuid, Path, description = "The hook's id.")),
    responses((status = 204, description = "Deleted.")))]
pub async fn remove(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let scope = auth.scope("hooks:write")?;
    if app.control.delete_hook(scope, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("hook"))
    }
}

/// The answer to an accepted delivery.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub run_id: Uuid,
    /// True when this delivery id was seen before: the original run is returned.
    pub duplicate: bool,
}

/// Receives a delivery: verifies it, starts the hook's workflow once per delivery id, and
/// answers 202 with the run id without waiting for the run.
#[utoipa::path(post, path = "/v1/hooks/{id}", tag = "hooks", operation_id = "receive_delivery",
    params(
        ("id" = Uuid, Path, description = "The hook's id."),
        ("webhook-id" = Option<String>, Header,
            description = "Standard Webhooks (and scheme `none`): the delivery id, 1 to 200 \
            visible ASCII characters; scheme `none` makes one up when absent. Each header is \
            read only by the schemes named, so none has a schema of its own."),
        ("webhook-timestamp" = Option<String>, Header,
            description = "Standard Webhooks: seconds since the Unix epoch, within 5 minutes \
            of the server's clock."),
        ("webhook-signature" = Option<String>, Header,
            description = "Standard Webhooks: `v1,<base64>` entries, space-separated."),
        ("X-Hub-Signature-256" = Option<String>, Header,
            description = "GitHub: `sha256=<hex>` over the body."),
        ("X-GitHub-Delivery" = Option<String>, Header,
            description = "GitHub: the delivery id, 1 to 200 visible ASCII characters."),
    ),
    request_body(content = Value, description = "The provider's payload: JSON, or empty \
        (read as `null`). Which headers must come with it depends on the hook's scheme."),
    security(()),
    responses(
        (status = 202, description = "Accepted: the run will be executed by a worker.",
            body = Accepted, headers(("Location" = String, description = "The run."))),
        (status = 400, description = "A header the scheme needs is missing or malformed, or \
            the body is not JSON: `missing-signature-header`, `malformed-signature`, \
            `malformed-delivery-id`, `missing-delivery-id`, `malformed-body`."),
        (status = 401, description = "The signature does not verify, or the timestamp is \
            out of the window: `invalid-signature`, `timestamp-out-of-window`."),
        (status = 404, description = "No such hook: `not-found`."),
        (status = 409, description = "This delivery id came before with another body: \
            `delivery-id-reused`."),
        (status = 413, description = "The body is larger than 1 MiB: `body-too-large`."),
        (status = 422, description = "The payload holds a NUL character, or the hook's \
            workflow is no longer registered: `invalid-payload`, `unknown-workflow`."),
    ))]
pub async fn intake(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<impl IntoResponse> {
    let body = body.map_err(|r| body_problem(r.status(), r.body_text()))?;
    let found = app.control.hook_for_intake(id).await?;
    let hook = found.ok_or_else(|| Problem::not_found("hook"))?;
    let delivery_id = verify_delivery(&hook, &headers, &body)?;
    let payload = parse_payload(&body)?;
    let spec = app.registry.get(&hook.hook.workflow_name)?;
    let hook = hook.hook;
    // A body the hook saw within its dedupe window is the delivery that brought it first.
    let digest = hook
        .dedupe_window
        .map(|_| <[u8; 32]>::from(Sha256::digest(&body)));
    let first = match digest {
        Some(digest) => first_delivery(&app, &hook, &digest, &delivery_id).await?,
        None => delivery_id.clone(),
    };
    let started = start_delivery(&app, &hook, spec, &first, payload).await;
    // Only the claim's owner releases it: a repeat did not make one.
    if let (Err(_), Some(digest)) = (&started, digest)
        && first == delivery_id
    {
        release_delivery(&app, &hook, &digest, &delivery_id).await;
    }
    let started = started?;
    let location = format!("/v1/runs/{}", started.id);
    let mut response = (
        StatusCode::ACCEPTED,
        Json(Accepted {
            run_id: started.id.0,
            duplicate: !started.created || first != delivery_id,
        }),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// The delivery whose run this one gets: itself, unless the hook saw its body within the
/// dedupe window.
async fn first_delivery(
    app: &AppState,
    hook: &Hook,
    digest: &[u8; 32],
    delivery_id: &str,
) -> ApiResult<String> {
    let claim = app
        .control
        .claim_delivery(hook, digest, delivery_id)
        .await?;
    Ok(match claim {
        DeliveryClaim::Repeat { delivery_id } => delivery_id,
        _ => delivery_id.to_owned(),
    })
}

/// Forgets this delivery's claim on its body after its run failed to start, so that a retry
/// is not answered with a run that does not exist. A failure here is logged: the claim then
/// lapses with the window.
async fn release_delivery(app: &AppState, hook: &Hook, digest: &[u8; 32], delivery_id: &str) {
    if let Err(err) = app
        .control
        .release_delivery(hook, digest, delivery_id)
        .await
    {
        tracing::warn!(error = %err, hook = %hook.id, "could not release a delivery's claim");
    }
}

/// Starts the run of delivery `delivery_id`, or finds it: its workflow id makes the start
/// idempotent, so a duplicate gets the same run, even one whose first request died before
/// starting it.
async fn start_delivery(
    app: &AppState,
    hook: &Hook,
    spec: &durable::WorkflowSpec,
    delivery_id: &str,
    payload: Value,
) -> ApiResult<durable::StartedJson> {
    let event = HookEvent {
        hook_id: hook.id,
        delivery_id: delivery_id.to_owned(),
        payload,
    };
    let input = serde_json::to_value(&event).map_err(|e| Problem::internal(&e))?;
    let client = Client::from_arc(app.runs.clone()).in_workspace(WorkspaceId(hook.workspace_id));
    let workflow_id = durable::workflow_id::hook(hook.id, delivery_id);
    client
        .start_json(spec, input, Some(workflow_id))
        .await
        .map_err(|err| match err {
            durable::Error::IdConflict { .. } => Problem::conflict(
                "delivery-id-reused",
                "this delivery id was already received with a different body",
            ),
            other => Problem::from(other),
        })
}

/// Checks the delivery's signature; returns its delivery id.
fn verify_delivery(hook: &HookWithSecrets, headers: &HeaderMap, body: &[u8]) -> ApiResult<String> {
    // A header that is not visible ASCII is not ignored as if absent (a `none` hook would
    // then make up a delivery id): it reads as a value that no check accepts.
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or(NOT_TEXT));
    let result = match hook.hook.scheme {
        HookScheme::StandardWebhooks => {
            let signed = StandardHeaders {
                id: header("webhook-id"),
                timestamp: header("webhook-timestamp"),
                signature: header("webhook-signature"),
            };
            verify::verify_standard(&hook.secrets, &signed, body, chrono::Utc::now())
                .map(|()| header("webhook-id"))
        }
        HookScheme::Github => {
            verify::verify_github(&hook.secrets, header("x-hub-signature-256"), body)
                .map(|()| header("x-github-delivery"))
        }
        HookScheme::None => Ok(header("webhook-id")),
    };
    match result {
        Ok(Some(id)) if fields::visible_ascii(id, DELIVERY_ID_MAX) => Ok(id.to_owned()),
        Ok(Some(_)) => Err(Problem::bad_request(
            "malformed-delivery-id",
            "a delivery id has 1 to 200 visible ASCII characters",
        )),
        Ok(None) if hook.hook.scheme == HookScheme::Github => Err(Problem::bad_request(
            "missing-delivery-id",
            "a GitHub delivery carries X-GitHub-Delivery",
        )),
        Ok(None) => Ok(Uuid::now_v7().to_string()),
        Err(err) => Err(verify_problem(&err)),
    }
}

/// What a header that is not text reads as.
const NOT_TEXT: &str = "\u{fffd}";

/// The longest delivery id: with the hook's id it makes a workflow id well inside the
/// engine's bound.
const DELIVERY_ID_MAX: usize = 200;

/// Signature failures are 401, except a malformed or missing header, which is 400. The
/// detail never says which secret or signature was expected.
fn verify_problem(err: &VerifyError) -> Problem {
    let status = match err {
        VerifyError::MissingHeader(_) | VerifyError::MalformedHeader(_) => StatusCode::BAD_REQUEST,
        VerifyError::BadSecret => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNAUTHORIZED,
    };
    Problem::new(
        status,
        err.problem_type(),
        "Webhook not verified",
        err.to_string(),
    )
}

fn parse_payload(body: &[u8]) -> ApiResult<Value> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    let payload = serde_json::from_slice(body).map_err(|e| {
        Problem::bad_request("malformed-body", format!("the body is not valid JSON: {e}"))
    })?;
    // Refused on both stores alike: Postgres cannot keep NUL in JSON.
    if fields::holds_nul(&payload) {
        return Err(Problem::unprocessable(
            "invalid-payload",
            "the body holds a NUL character (\\u0000), which cannot be stored",
        ));
    }
    Ok(payload)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// The new secret; generated (and returned once) when absent.
    #[schema(schema_with = schemas::rotated_secret, required = false)]
    pub secret: Option<String>,
    /// How many of the current secrets keep verifying after the new one (default 1, so
    /// senders can switch over; 0 retires them all; at most 4).
    #[schema(schema_with = schemas::keep_previous, required = false)]
    #[serde(default, deserialize_with = "optional_whole_number")]
    pub keep_previous: Option<usize>,
}

/// Adds a new verification secret, keeping the newest `keep_previous` old ones.
#[utoipa::path(post, path = "/v1/hooks/{id}/rotate", tag = "hooks",
    operation_id = "rotate_hook_secret",
    params(("id" = Uuid, Path, description = "The hook's id.")), request_body = RotateSecret,
    responses(
        (status = 200, description = "The hook, with its new secret if the server generated \
            it.", body = CreatedHook),
        (status = 422, description = "The hook has scheme `none`, the secret does not fit \
            its scheme, or `keep_previous` is over 4: `invalid-secret`."),
    ))]
pub async fn rotate(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<RotateSecret>,
) -> ApiResult<Response> {
    let scope = auth.scope("hooks:write")?;
    let hook = app.control.get_hook(scope, id).await?;
    let hook = hook.ok_or_else(|| Problem::not_found("hook"))?;
    if hook.scheme == HookScheme::None {
        return Err(Problem::unprocessable(
            "invalid-secret",
            "a hook with scheme `none` has no secrets to rotate",
        ));
    }
    let keep = body.keep_previous.unwrap_or(1);
    if keep > 4 {
        return Err(Problem::unprocessable(
            "invalid-secret",
            "`keep_previous` is 0 to 4: a hook has at most 5 secrets",
        )
        .with_field("keep_previous"));
    }
    let (secret, generated) = match body.secret {
        Some(secret) => (secret, None),
        None => {
            let secret = generate_secret(hook.scheme);
            (secret.clone(), Some(secret))
        }
    };
    check_secrets(hook.scheme, std::slice::from_ref(&secret))
        .map_err(|p| p.with_field("secret"))?;
    let rotated = app
        .control
        .rotate_hook_secret(scope, id, &secret, keep)
        .await?;
    let hook = rotated.ok_or_else(|| Problem::not_found("hook"))?;
    let body = CreatedHook {
        hook: hook.into(),
        secret: generated,
    };
    Ok(idempotency::secrets(&["/secret"], Json(body)))
}
