//! `/v1/members`: who belongs to the workspace, with which role.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use uuid::Uuid;

use crate::app::{ApiJson, ApiPath, AppState};
use crate::auth::Auth;
use crate::fields;
use crate::openapi::schemas;
use crate::problem::{ApiResult, Problem};
use durable_control::{Member, ROLES};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/members", get(list).put(put))
        .route("/v1/members/{user_id}", delete(remove))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutMember {
    #[schema(schema_with = schemas::email)]
    pub email: String,
    #[schema(schema_with = schemas::role)]
    pub role: String,
}

/// Adds a member, or changes a member's role; the workspace's last owner cannot be demoted
/// (409).
#[utoipa::path(put, path = "/v1/members", tag = "members", operation_id = "put_member",
    request_body = PutMember,
    responses(
        (status = 200, description = "The member.", body = Member),
        (status = 409, description = "It would demote the workspace's last owner: `last-admin`."),
        (status = 422, description = "A malformed email or an unknown role: `invalid-field`, \
            `unknown-role`."),
    ))]
pub async fn put(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<PutMember>,
) -> ApiResult<Json<Member>> {
    let scope = auth.scope("members:write")?;
    let email = fields::email("email", &body.email)?;
    if !ROLES.contains(&body.role.as_str()) {
        return Err(Problem::unprocessable(
            "unknown-role",
            "`role` must be one of owner, admin, member, viewer",
        )
        .with_field("role"));
    }
    Ok(Json(
        app.control.put_member(scope, &email, &body.role).await?,
    ))
}

/// The workspace's members.
#[utoipa::path(get, path = "/v1/members", tag = "members", operation_id = "list_members",
    responses((status = 200, description = "The members.", body = [Member])))]
pub async fn list(State(app): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<Member>>> {
    let scope = auth.scope("members:read")?;
    Ok(Json(app.control.list_members(scope).await?))
}

/// Removes a member; never the workspace's last owner (409).
#[utoipa::path(delete, path = "/v1/members/{user_id}", tag = "members",
    operation_id = "remove_member",
    params(("user_id" = Uuid, Path, description = "The member's user id.")),
    responses(
        (status = 204, description = "Removed."),
        (status = 409, description = "It is the workspace's last owner: `last-admin`."),
    ))]
pub async fn remove(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(user_id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let scope = auth.scope("members:write")?;
    if app.control.remove_member(scope, user_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("member"))
    }
}
