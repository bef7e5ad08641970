//! `/v1/audit`: who changed what in the workspace, and when.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use crate::app::{ApiQuery, AppState};
use crate::auth::Auth;
use crate::fields;
use crate::openapi::schemas;
use crate::problem::ApiResult;
use durable_control::AuditEntry;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// At most this many entries: 1 to 1000 (default 100).
    #[param(schema_with = schemas::limit)]
    pub limit: Option<u32>,
}

/// The workspace's audit log, newest first.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", operation_id = "list_audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "The entries.", body = [AuditEntry]),
        (status = 400, description = "A limit out of range: `invalid-query`."),
    ))]
pub async fn list(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    let scope = auth.scope("audit:read")?;
    let limit = fields::limit(query.limit)?;
    Ok(Json(app.control.list_audit(scope, limit).await?))
}
