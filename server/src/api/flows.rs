//! `/v1/flows` and their versions. A version is a draft until published; published versions
//! never change, so a run can always tell which graph it walked.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::app::{ApiJson, ApiPath, AppState, created};
use crate::auth::Auth;
use crate::fields;
use crate::openapi::schemas;
use crate::problem::{ApiResult, Problem};
use durable_control::{Flow, FlowPatch, FlowVersion};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/flows", get(list).post(create))
        .route("/v1/flows/{id}", get(read).patch(update).delete(remove))
        .route(
            "/v1/flows/{id}/versions",
            get(list_versions).post(create_version),
        )
        .route(
            "/v1/flows/{id}/versions/{version}",
            get(read_version).put(update_version).delete(remove_version),
        )
        .route("/v1/flows/{id}/versions/{version}/publish", post(publish))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFlow {
    /// Unique in the workspace.
    #[schema(schema_with = schemas::name)]
    pub name: String,
    #[serde(default)]
    #[schema(schema_with = schemas::description, required = false)]
    pub description: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateFlow {
    /// A new name, unique in the workspace; absent or `null` keeps the current one.
    #[schema(schema_with = schemas::optional_name, required = false)]
    pub name: Option<String>,
    /// A new description; absent or `null` keeps the current one.
    #[schema(schema_with = schemas::optional_description, required = false)]
    pub description: Option<String>,
}

/// A flow definition: a JSON object (the graph of trigger, transform and action nodes).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    #[schema(schema_with = schemas::definition)]
    pub definition: Value,
}

fn check_definition(definition: &Value) -> ApiResult<()> {
    if !definition.is_object() {
        return Err(fields::invalid("definition", "is a JSON object"));
    }
    fields::json("definition", definition)
}

/// Creates a flow.
#[utoipa::path(post, path = "/v1/flows", tag = "flows", operation_id = "create_flow",
    request_body = NewFlow,
    responses(
        (status = 201, description = "The flow.", body = Flow),
        (status = 409, description = "The workspace has a flow of this name: `already-exists`."),
        (status = 422, description = "The name or description breaks its rule: `invalid-field`."),
    ))]
pub async fn create(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<NewFlow>,
) -> ApiResult<impl IntoResponse> {
    let scope = auth.scope("flows:write")?;
    let name = fields::name("name", &body.name)?;
    let description = fields::description("description", &body.description)?;
    let flow = app.control.create_flow(scope, name, description).await?;
    Ok(created(flow))
}

/// The workspace's flows.
#[utoipa::path(get, path = "/v1/flows", tag = "flows", operation_id = "list_flows",
    responses((status = 200, description = "The flows.", body = [Flow])))]
pub async fn list(State(app): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<Flow>>> {
    let scope = auth.scope("flows:read")?;
    Ok(Json(app.control.list_flows(scope).await?))
}

/// One flow.
#[utoipa::path(get, path = "/v1/flows/{id}", tag = "flows", operation_id = "get_flow",
    params(("id" = Uuid, Path, description = "The flow's id.")),
    responses((status = 200, description = "The flow.", body = Flow)))]
pub async fn read(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Flow>> {
    let scope = auth.scope("flows:read")?;
    let flow = app.control.get_flow(scope, id).await?;
    flow.map(Json).ok_or_else(|| Problem::not_found("flow"))
}

/// Renames a flow or changes its description.
#[utoipa::path(patch, path = "/v1/flows/{id}", tag = "flows", operation_id = "update_flow",
    params(("id" = Uuid, Path, description = "The flow's id.")), request_body = UpdateFlow,
    responses(
        (status = 200, description = "The changed flow.", body = Flow),
        (status = 409, description = "Another flow has this name: `already-exists`."),
        (status = 422, description = "The name or description breaks its rule: `invalid-field`."),
    ))]
pub async fn update(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateFlow>,
) -> ApiResult<Json<Flow>> {
    let scope = auth.scope("flows:write")?;
    let name = body.name.as_deref().map(|n| fields::name("name", n));
    let description = (body.description.as_deref()).map(|d| fields::description("description", d));
    let patch = FlowPatch {
        name: name.transpose()?.map(str::to_owned),
        description: description.transpose()?.map(str::to_owned),
    };
    let flow = app.control.update_flow(scope, id, patch).await?;
    flow.map(Json).ok_or_else(|| Problem::not_found("flow"))
}

/// Deletes a flow and all its versions.
#[utoipa::path(delete, path = "/v1/flows/{id}", tag = "flows", operation_id = "delete_flow",
    params(("id" = Uuid, Path, description = "The flow's id.")),
    responses((status = 204, description = "Deleted, with its versions.")))]
pub async fn remove(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let scope = auth.scope("flows:write")?;
    if app.control.delete_flow(scope, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("flow"))
    }
}

/// Adds a draft version.
#[utoipa::path(post, path = "/v1/flows/{id}/versions", tag = "flows",
    operation_id = "create_flow_version",
    params(("id" = Uuid, Path, description = "The flow's id.")), request_body = Definition,
    responses(
        (status = 201, description = "The draft.", body = FlowVersion),
        (status = 422, description = "The definition is not a JSON object, or holds a NUL \
            character: `invalid-field`."),
    ))]
pub async fn create_version(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<Definition>,
) -> ApiResult<impl IntoResponse> {
    let scope = auth.scope("flows:write")?;
    check_definition(&body.definition)?;
    let version = app
        .control
        .create_flow_version(scope, id, &body.definition)
        .await?;
    version
        .map(created)
        .ok_or_else(|| Problem::not_found("flow"))
}

/// A flow's versions, oldest first.
#[utoipa::path(get, path = "/v1/flows/{id}/versions", tag = "flows",
    operation_id = "list_flow_versions",
    params(("id" = Uuid, Path, description = "The flow's id.")),
    responses((status = 200, description = "The versions.", body = [FlowVersion])))]
pub async fn list_versions(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Vec<FlowVersion>>> {
    let scope = auth.scope("flows:read")?;
    if app.control.get_flow(scope, id).await?.is_none() {
        return Err(Problem::not_found("flow"));
    }
    Ok(Json(app.control.list_flow_versions(scope, id).await?))
}

/// One version.
#[utoipa::path(get, path = "/v1/flows/{id}/versions/{version}", tag = "flows",
    operation_id = "get_flow_version",
    params(("id" = Uuid, Path, description = "The flow's id."),
        ("version" = i32, Path, description = "The version's number.")),
    responses((status = 200, description = "The version.", body = FlowVersion)))]
pub async fn read_version(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath((id, version)): ApiPath<(Uuid, i32)>,
) -> ApiResult<Json<FlowVersion>> {
    let scope = auth.scope("flows:read")?;
    let found = app.control.get_flow_version(scope, id, version).await?;
    found
        .map(Json)
        .ok_or_else(|| Problem::not_found("flow version"))
}

/// Replaces a draft's definition; a published version answers 409.
#[utoipa::path(put, path = "/v1/flows/{id}/versions/{version}", tag = "flows",
    operation_id = "update_flow_version",
    params(("id" = Uuid, Path, description = "The flow's id."),
        ("version" = i32, Path, description = "The version's number.")),
    request_body = Definition,
    responses(
        (status = 200, description = "The changed draft.", body = FlowVersion),
        (status = 409, description = "The version is published: `immutable`."),
        (status = 422, description = "The definition is not a JSON object, or holds a NUL \
            character: `invalid-field`."),
    ))]
pub async fn update_version(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath((id, version)): ApiPath<(Uuid, i32)>,
    ApiJson(body): ApiJson<Definition>,
) -> ApiResult<Json<FlowVersion>> {
    let scope = auth.scope("flows:write")?;
    check_definition(&body.definition)?;
    let updated = app
        .control
        .update_flow_version(scope, id, version, &body.definition)
        .await?;
    updated
        .map(Json)
        .ok_or_else(|| Problem::not_found("flow version"))
}

/// Publishes a draft: from now on it never changes.
#[utoipa::path(post, path = "/v1/flows/{id}/versions/{version}/publish", tag = "flows",
    operation_id = "publish_flow_version",
    params(("id" = Uuid, Path, description = "The flow's id."),
        ("version" = i32, Path, description = "The version's number.")),
    responses((status = 200, description = "The published version (unchanged if it was \
        published already).", body = FlowVersion)))]
pub async fn publish(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath((id, version)): ApiPath<(Uuid, i32)>,
) -> ApiResult<Json<FlowVersion>> {
    let scope = auth.scope("flows:write")?;
    let published = app.control.publish_flow_version(scope, id, version).await?;
    published
        .map(Json)
        .ok_or_else(|| Problem::not_found("flow version"))
}

/// Deletes a draft; a published version answers 409.
#[utoipa::path(delete, path = "/v1/flows/{id}/versions/{version}", tag = "flows",
    operation_id = "delete_flow_version",
    params(("id" = Uuid, Path, description = "The flow's id."),
        ("version" = i32, Path, description = "The version's number.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 409, description = "The version is published: `immutable`."),
    ))]
pub async fn remove_version(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath((id, version)): ApiPath<(Uuid, i32)>,
) -> ApiResult<StatusCode> {
    let scope = auth.scope("flows:write")?;
    if app.control.delete_flow_version(scope, id, version).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("flow version"))
    }
}
