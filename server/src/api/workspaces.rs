//! `/v1/workspace` (the key's own) and `/v1/workspaces` (new ones in the key's tenant).

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::keys::{NewKeyResponse, issue_key};
use crate::app::{ApiJson, AppState, created};
use crate::auth::{Auth, role_scopes};
use crate::fields;
use crate::idempotency::secrets;
use crate::openapi::schemas;
use crate::problem::ApiResult;
use durable_control::{Scope, Workspace};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/workspace", get(current))
        .route("/v1/workspaces", post(create))
}

/// The workspace of the calling key.
#[utoipa::path(get, path = "/v1/workspace", tag = "workspaces", operation_id = "get_workspace",
    responses((status = 200, description = "The workspace.", body = Workspace)))]
pub async fn current(State(app): State<AppState>, auth: Auth) -> ApiResult<Json<Workspace>> {
    let scope = auth.scope("workspaces:read")?;
    Ok(Json(app.control.workspace(scope).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkspace {
    #[schema(schema_with = schemas::name)]
    pub name: String,
}

/// A new workspace and an owner key for it (shown once).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedWorkspace {
    pub workspace: Workspace,
    pub owner_key: NewKeyResponse,
}

/// Creates a workspace in the calling key's tenant, with a first owner key.
#[utoipa::path(post, path = "/v1/workspaces", tag = "workspaces", operation_id = "create_workspace",
    request_body = NewWorkspace,
    responses(
        (status = 201, description = "The workspace and its owner key.", body = CreatedWorkspace),
        (status = 422, description = "The name breaks its rule: `invalid-field`."),
    ))]
pub async fn create(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<NewWorkspace>,
) -> ApiResult<impl IntoResponse> {
    let scope = auth.scope("workspaces:write")?;
    let name = fields::name("name", &body.name)?;
    let workspace = app
        .control
        .create_workspace(auth.tenant(), name, scope.actor)
        .await?;
    let owner_scope = Scope {
        workspace: workspace.id,
        actor: scope.actor,
    };
    let scopes = role_scopes("owner").unwrap_or_default();
    let owner_key = issue_key(&app, owner_scope, "owner", scopes).await?;
    let body = CreatedWorkspace {
        workspace,
        owner_key,
    };
    Ok(secrets(&["/owner_key/token"], created(body)))
}
