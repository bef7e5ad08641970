//! `/v1/keys`: create (the token is shown once), list, revoke.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::{ApiJson, ApiPath, AppState, created};
use crate::auth::{Auth, SCOPES, generate_key, role_scopes};
use crate::fields;
use crate::idempotency::secrets;
use crate::openapi::schemas;
use crate::problem::{ApiResult, Problem};
use durable_control::{ApiKey, NewApiKey, Scope};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/keys", get(list).post(create))
        .route("/v1/keys/{id}", delete(revoke))
}

/// A key to create: give `scopes`, or a member `role` whose scopes it takes. Its schema is
/// written out in [`crate::openapi::schemas`]: the derive cannot say "exactly one of".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// `owner`, `admin`, `member` or `viewer`.
    #[serde(default)]
    pub role: Option<String>,
}

/// A created key. `token` is shown this once and cannot be read again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewKeyResponse {
    #[serde(flatten)]
    pub key: ApiKey,
    #[schema(schema_with = schemas::shown_once)]
    pub token: String,
}

/// Creates an API key in the caller's workspace. A key cannot grant a scope its creator
/// lacks.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", operation_id = "create_key",
    request_body = NewKey,
    responses(
        (status = 201, description = "The key, with its token (shown this once).", body = NewKeyResponse),
        (status = 422, description = "An unknown scope or role, both or neither, a scope the \
            calling key lacks, or a name that breaks its rule: `unknown-scope`, \
            `unknown-role`, `scopes-or-role`, `scope-escalation`, `invalid-field`."),
    ))]
pub async fn create(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<NewKey>,
) -> ApiResult<impl IntoResponse> {
    let scope = auth.scope("keys:write")?;
    let name = fields::name("name", &body.name)?;
    let scopes = requested_scopes(&body)?;
    if let Some(missing) = scopes.iter().find(|s| !auth.scopes().contains(s)) {
        return Err(Problem::unprocessable(
            "scope-escalation",
            format!("a key cannot grant `{missing}`, which the calling key lacks"),
        ));
    }
    let key = issue_key(&app, scope, name, scopes).await?;
    Ok(secrets(&["/token"], created(key)))
}

fn requested_scopes(body: &NewKey) -> ApiResult<Vec<String>> {
    match (&body.scopes, &body.role) {
        (Some(scopes), None) => {
            if let Some(unknown) = scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
                return Err(Problem::unprocessable(
                    "unknown-scope",
                    format!(
                        "`scopes` holds unknown scope `{}`; known: {}",
                        fields::shown(unknown),
                        SCOPES.join(", ")
                    ),
                )
                .with_field("scopes"));
            }
            Ok(distinct(scopes))
        }
        (None, Some(role)) => role_scopes(role).ok_or_else(|| {
            Problem::unprocessable(
                "unknown-role",
                format!(
                    "`role` is `{}`, not a role; known: owner, admin, member, viewer",
                    fields::shown(role)
                ),
            )
            .with_field("role")
        }),
        _ => Err(Problem::unprocessable(
            "scopes-or-role",
            "give exactly one of `scopes` and `role`",
        )),
    }
}

/// `scopes` without repeats, in their first order: a key holds a scope once.
fn distinct(scopes: &[String]) -> Vec<String> {
    let mut seen = Vec::with_capacity(scopes.len());
    for scope in scopes {
        if !seen.contains(scope) {
            seen.push(scope.clone());
        }
    }
    seen
}

/// Generates and stores a key; the only place a token exists in clear.
pub async fn issue_key(
    app: &AppState,
    scope: Scope,
    name: &str,
    scopes: Vec<String>,
) -> ApiResult<NewKeyResponse> {
    let generated = generate_key();
    let key = app
        .control
        .create_api_key(
            scope,
            NewApiKey {
                name: name.to_owned(),
                token_hash: generated.hash,
                token_prefix: generated.shown_prefix.clone(),
                scopes,
            },
        )
        .await?;
    Ok(NewKeyResponse {
        key,
        token: generated.token,
    })
}

/// The workspace's keys, without their tokens.
#[utoipa::path(get, path = "/v1/keys", tag = "keys", operation_id = "list_keys",
    responses((status = 200, description = "The keys.", body = [ApiKey])))]
pub async fn list(State(app): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<ApiKey>>> {
    let scope = auth.scope("keys:read")?;
    Ok(Json(app.control.list_api_keys(scope).await?))
}

/// Revokes a key: requests with it fail from now on. A key may revoke only keys whose
/// scopes it holds all of (403 otherwise), and never the workspace's last key holding both
/// `keys:write` and `members:write` (409).
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys", operation_id = "revoke_key",
    params(("id" = Uuid, Path, description = "The key's id.")),
    responses(
        (status = 200, description = "The revoked key.", body = ApiKey),
        (status = 403, description = "The key holds a scope the calling key lacks: \
            `scope-escalation`."),
        (status = 409, description = "It is the workspace's last key able to manage keys \
            and members: `last-admin`."),
    ))]
pub async fn revoke(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ApiKey>> {
    let scope = auth.scope("keys:write")?;
    match app.control.revoke_api_key(scope, id, auth.scopes()).await? {
        Some(key) => Ok(Json(key)),
        None => Err(Problem::not_found("API key")),
    }
}
