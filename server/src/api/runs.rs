//! `/v1/runs`: start a registered workflow, list and read runs with their steps, cancel,
//! pause, resume and fork them.

use std::str::FromStr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use durable::{Client, RunFilter, RunId, RunInfo, RunStatus, StepRecord, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::app::{ApiJson, ApiPath, ApiQuery, AppState, step_seq};
use crate::auth::Auth;
use crate::fields;
use crate::openapi::schemas;
use crate::problem::{ApiResult, Problem};
use durable_control::{AuditEvent, RunAction, Scope};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/runs", get(list).post(start))
        .route("/v1/runs/{id}", get(read))
        .route("/v1/runs/{id}/cancel", post(cancel))
        .route("/v1/runs/{id}/terminate", post(terminate))
        .route("/v1/runs/{id}/pause", post(pause))
        .route("/v1/runs/{id}/resume", post(resume))
        .route("/v1/runs/{id}/fork", post(fork))
}

/// Records a run action in the audit log, with the acting key. The action has happened by
/// then; if the entry cannot be written the request fails (5xx, so an `Idempotency-Key`
/// retry runs again), and the retry, idempotent for runs, writes it.
async fn audit(
    app: &AppState,
    scope: Scope,
    action: RunAction,
    run: Uuid,
    workflow: Option<String>,
) -> ApiResult<()> {
    let event = AuditEvent::Run {
        action,
        run,
        workflow,
    };
    Ok(app.control.record(scope, event).await?)
}

/// The run client of the scope's workspace.
fn client(app: &AppState, scope: Scope) -> Client {
    Client::from_arc(app.runs.clone()).in_workspace(WorkspaceId(scope.workspace))
}

/// A run as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunView {
    pub id: Uuid,
    pub workflow_id: String,
    pub workflow_name: String,
    pub workflow_version: u32,
    /// pending, running, sleeping, completed, failed, cancelled or parked.
    pub status: String,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub claims: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub wake_at: Option<DateTime<Utc>>,
    pub waiting_for: Option<String>,
    pub parent_run_id: Option<Uuid>,
    pub forked_from: Option<Uuid>,
}

impl From<RunInfo> for RunView {
    fn from(run: RunInfo) -> Self {
        Self {
            id: run.id.0,
            workflow_id: run.workflow_id,
            workflow_name: run.workflow_name,
            workflow_version: run.workflow_version,
            status: run.status.as_str().to_owned(),
            input: run.input,
            output: run.output,
            error: run.error,
            claims: run.claims,
            created_at: run.created_at,
            updated_at: run.updated_at,
            wake_at: run.wake_at,
            waiting_for: run.waiting_for,
            parent_run_id: run.parent_run_id.map(|id| id.0),
            forked_from: run.forked_from.map(|id| id.0),
        }
    }
}

/// A recorded step.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StepView {
    pub seq: u32,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub output: Option<Value>,
    pub error: Option<Value>,
    pub attempts: u32,
    pub wake_at: Option<DateTime<Utc>>,
}

impl From<StepRecord> for StepView {
    fn from(step: StepRecord) -> Self {
        Self {
            seq: step.seq,
            name: step.name,
            kind: step.kind.as_str().to_owned(),
            status: step.status.as_str().to_owned(),
            output: step.output,
            error: step.error,
            attempts: step.attempts,
            wake_at: step.wake_at,
        }
    }
}

/// A run with its steps.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: RunView,
    pub steps: Vec<StepView>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRunRequest {
    /// A registered workflow's name (see `GET /v1/workflows`).
    #[schema(schema_with = schemas::workflow_name)]
    pub workflow: String,
    /// The workflow's input (`null` when absent); no string in it may hold NUL.
    #[serde(default)]
    pub input: Value,
    /// Unique in the workspace: starting it again with the same workflow and input returns
    /// the same run.
    #[schema(schema_with = schemas::workflow_id, required = false)]
    pub workflow_id: Option<String>,
}

/// A started (or found) run.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StartedRunView {
    pub id: Uuid,
    /// False when a run with this workflow id already existed.
    pub created: bool,
}

/// Starts a run: 201 when created, 200 when the workflow id named an existing run.
#[utoipa::path(post, path = "/v1/runs", tag = "runs", operation_id = "start_run",
    request_body = StartRunRequest,
    responses(
        (status = 201, description = "The run was created.", body = StartedRunView),
        (status = 200, description = "The workflow id named an existing run with this \
            workflow and input.", body = StartedRunView),
        (status = 409, description = "The workflow id names a run of another workflow or \
            input: `workflow-id-conflict`."),
        (status = 422, description = "No such workflow, a malformed or reserved workflow id, \
            or a NUL in the input: `unknown-workflow`, `invalid-field`, \
            `reserved-workflow-id`."),
    ))]
pub async fn start(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<StartRunRequest>,
) -> ApiResult<impl IntoResponse> {
    let scope = auth.scope("runs:write")?;
    let spec = fields::workflow("workflow", &app.registry, &body.workflow)?;
    let workflow_id = fields::workflow_id("workflow_id", body.workflow_id)?;
    fields::json("input", &body.input)?;
    let started = client(&app, scope)
        .start_json(spec, body.input, workflow_id)
        .await?;
    let workflow = Some(spec.name.clone());
    audit(&app, scope, RunAction::Start, started.id.0, workflow).await?;
    let status = if started.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let view = StartedRunView {
        id: started.id.0,
        created: started.created,
    };
    Ok((status, Json(view)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only runs in this status.
    #[param(schema_with = schemas::run_status)]
    pub status: Option<String>,
    /// Only runs of this workflow (registered or not: runs of retired workflows stay listed).
    #[param(schema_with = schemas::workflow_filter)]
    pub workflow: Option<String>,
    /// Only runs created at or after this time (RFC 3339).
    #[param(schema_with = schemas::date_time)]
    pub created_after: Option<DateTime<Utc>>,
    /// Only runs created before this time (RFC 3339).
    #[param(schema_with = schemas::date_time)]
    pub created_before: Option<DateTime<Utc>>,
    /// At most this many: 1 to 1000 (default 100).
    #[param(schema_with = schemas::limit)]
    pub limit: Option<u32>,
}

/// Runs of the workspace, newest first.
#[utoipa::path(get, path = "/v1/runs", tag = "runs", operation_id = "list_runs",
    params(ListQuery),
    responses(
        (status = 200, description = "The runs.", body = [RunView]),
        (status = 400, description = "A query parameter breaks its rule: `invalid-query`."),
    ))]
pub async fn list(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<RunView>>> {
    let scope = auth.scope("runs:read")?;
    let status = query
        .status
        .as_deref()
        .map(|s| {
            RunStatus::from_str(s).map_err(|_| {
                let rule = format!("is `{}`, not a run status", fields::shown(s));
                fields::invalid_query("status", &rule)
            })
        })
        .transpose()?;
    let filter = RunFilter {
        status,
        workflow_name: fields::workflow_filter(query.workflow)?,
        created_after: query.created_after,
        created_before: query.created_before,
        limit: Some(fields::limit(query.limit)?),
    };
    let runs = client(&app, scope).list(filter).await?;
    Ok(Json(runs.into_iter().map(RunView::from).collect()))
}

/// One run with its recorded steps.
#[utoipa::path(get, path = "/v1/runs/{id}", tag = "runs", operation_id = "get_run",
    params(("id" = Uuid, Path, description = "The run's id.")),
    responses((status = 200, description = "The run and its steps.", body = RunDetail)))]
pub async fn read(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<RunDetail>> {
    let scope = auth.scope("runs:read")?;
    let client = client(&app, scope);
    let run = client.get(RunId(id)).await?;
    let steps = client.steps(RunId(id)).await?;
    Ok(Json(RunDetail {
        run: run.into(),
        steps: steps.into_iter().map(StepView::from).collect(),
    }))
}

/// A run's status after a lifecycle call.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunStatusView {
    pub id: Uuid,
    pub status: String,
}

fn status_view(id: Uuid, status: RunStatus) -> Json<RunStatusView> {
    Json(RunStatusView {
        id,
        status: status.as_str().to_owned(),
    })
}

/// Asks a run and its children to cancel: each learns it at its next durable operation and
/// may clean up before it ends `cancelled`. A run no worker has started ends at once.
#[utoipa::path(post, path = "/v1/runs/{id}/cancel", tag = "runs", operation_id = "cancel_run",
    params(("id" = Uuid, Path, description = "The run's id.")),
    responses((status = 200, description = "The run's status once asked to cancel.", body = RunStatusView)))]
pub async fn cancel(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<RunStatusView>> {
    let scope = auth.scope("runs:write")?;
    let status = client(&app, scope).cancel(RunId(id)).await?;
    audit(&app, scope, RunAction::Cancel, id, None).await?;
    Ok(status_view(id, status))
}

/// Ends a run and its children now, without cleanup.
#[utoipa::path(post, path = "/v1/runs/{id}/terminate", tag = "runs", operation_id = "terminate_run",
    params(("id" = Uuid, Path, description = "The run's id.")),
    responses((status = 200, description = "The run's status once ended.", body = RunStatusView)))]
pub async fn terminate(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<RunStatusView>> {
    let scope = auth.scope("runs:write")?;
    let status = client(&app, scope).terminate(RunId(id)).await?;
    audit(&app, scope, RunAction::Terminate, id, None).await?;
    Ok(status_view(id, status))
}

/// Pauses a run after its current step.
#[utoipa::path(post, path = "/v1/runs/{id}/pause", tag = "runs", operation_id = "pause_run",
    params(("id" = Uuid, Path, description = "The run's id.")),
    responses((status = 200, description = "The run's status once paused.", body = RunStatusView)))]
pub async fn pause(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<RunStatusView>> {
    let scope = auth.scope("runs:write")?;
    let status = client(&app, scope).pause(RunId(id)).await?;
    audit(&app, scope, RunAction::Pause, id, None).await?;
    Ok(status_view(id, status))
}

/// Resumes a paused or parked run.
#[utoipa::path(post, path = "/v1/runs/{id}/resume", tag = "runs", operation_id = "resume_run",
    params(("id" = Uuid, Path, description = "The run's id.")),
    responses((status = 200, description = "The run's status once resumed.", body = RunStatusView)))]
pub async fn resume(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<RunStatusView>> {
    let scope = auth.scope("runs:write")?;
    let status = client(&app, scope).resume(RunId(id)).await?;
    audit(&app, scope, RunAction::Resume, id, None).await?;
    Ok(status_view(id, status))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForkRequest {
    #[schema(schema_with = schemas::seq)]
    #[serde(deserialize_with = "step_seq")]
    pub from_seq: u32,
    /// A new input; the origin's when absent or `null`. No string in it may hold NUL.
    pub input: Option<Value>,
    /// The fork's workflow id, bounded as in `POST /v1/runs`; a generated one when absent.
    #[schema(schema_with = schemas::workflow_id, required = false)]
    pub workflow_id: Option<String>,
}

/// Starts a new run from step `from_seq` of this one.
#[utoipa::path(post, path = "/v1/runs/{id}/fork", tag = "runs", operation_id = "fork_run",
    params(("id" = Uuid, Path, description = "The run's id.")), request_body = ForkRequest,
    responses(
        (status = 201, description = "The fork.", body = StartedRunView),
        (status = 409, description = "The workflow id names another run: \
            `workflow-id-conflict`."),
        (status = 422, description = "A malformed or reserved workflow id, a NUL in the \
            input, or a fork that would copy a child's start: `invalid-field`, \
            `reserved-workflow-id`, `invalid-request`."),
    ))]
pub async fn fork(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ForkRequest>,
) -> ApiResult<impl IntoResponse> {
    let scope = auth.scope("runs:write")?;
    let workflow_id = fields::workflow_id("workflow_id", body.workflow_id)?;
    if let Some(input) = &body.input {
        fields::json("input", input)?;
    }
    let client = client(&app, scope);
    let mut fork = client.fork(RunId(id), body.from_seq);
    if let Some(input) = &body.input {
        fork = fork.input(input);
    }
    if let Some(workflow_id) = workflow_id {
        fork = fork.id(workflow_id);
    }
    let forked = fork.await.map_err(taken_workflow_id)?;
    audit(&app, scope, RunAction::Fork, forked.0, None).await?;
    let view = StartedRunView {
        id: forked.0,
        created: true,
    };
    Ok((StatusCode::CREATED, Json(view)))
}

/// A fork whose workflow id another run has: the store's unique key refuses it.
fn taken_workflow_id(err: durable::Error) -> Problem {
    if err.is_unique_violation() {
        return Problem::conflict(
            "workflow-id-conflict",
            "another run of this workspace has this workflow id; pick another",
        );
    }
    Problem::from(err)
}

/// A workflow this server can start.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkflowView {
    pub name: String,
    pub version: u32,
    pub max_attempts: u32,
}

/// The workflows this server can start.
#[utoipa::path(get, path = "/v1/workflows", tag = "runs", operation_id = "list_workflows",
    responses((status = 200, description = "The workflows.", body = [WorkflowView])))]
pub async fn workflows(
    State(app): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<WorkflowView>>> {
    auth.scope("runs:read")?;
    let views = app.registry.specs().map(|spec| WorkflowView {
        name: spec.name.clone(),
        version: spec.version,
        max_attempts: spec.max_attempts,
    });
    Ok(Json(views.collect()))
}
