//! `/v1/connectors`: the catalog a workspace sees (its own connectors and the global ones)
//! and installing a workspace's own packaged connector; `/v1/schemas/connector-manifest.json`:
//! the manifest's published JSON Schema.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use crate::app::{ApiJson, ApiPath, AppState};
use crate::auth::Auth;
use crate::connectors::new_version;
use crate::problem::{ApiResult, PackageError, Problem};
use durable_connectors::{ManifestError, Package};
use durable_control::{ConnectorSummary, ConnectorVersion, InstalledConnector};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/connectors", get(list).post(install))
        .route("/v1/connectors/{name}/{version}", get(read))
        .route("/v1/schemas/connector-manifest.json", get(manifest_schema))
}

/// A connector package: `manifest.json` and the package's other files.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageUpload {
    /// The manifest, as in `manifest.json`; see `/v1/schemas/connector-manifest.json`.
    #[schema(value_type = Object)]
    pub manifest: Value,
    /// The package's other files, path (relative, `/`-separated) to text: the JavaScript
    /// module the manifest names as `main`, and schema files it refers to.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

/// Installs a version of one of the workspace's own connectors.
///
/// The package is validated whole before anything is stored: the manifest against its JSON
/// Schema and its own rules, its schema files, and its JavaScript module, which must
/// compile. A published version never changes: the same package again answers 200 with the
/// version already installed; another package under the same version is refused.
#[utoipa::path(post, path = "/v1/connectors", tag = "connectors", operation_id = "install_connector",
    request_body = PackageUpload,
    responses(
        (status = 201, description = "The version was installed.", body = InstalledConnector),
        (status = 200, description = "This very package was installed before.", body = InstalledConnector),
        (status = 409, description = "The version is installed with other contents (`immutable`), or a global connector has the name (`already-exists`)."),
        (status = 422, description = "The package is invalid: `invalid-package`, each problem in `errors`."),
    ))]
pub async fn install(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<PackageUpload>,
) -> ApiResult<impl IntoResponse> {
    let scope = auth.scope("connectors:write")?;
    let package =
        Package::from_parts(body.manifest, body.files).map_err(|e| invalid_package(e.0))?;
    app.connectors
        .check_script(Arc::new(package.clone()))
        .map_err(|e| {
            let file = package.manifest().main.clone().unwrap_or_default();
            invalid_package(vec![ManifestError {
                file,
                pointer: String::new(),
                expected: e.message,
            }])
        })?;
    let installed = app
        .control
        .install_connector(scope, new_version(&package))
        .await?;
    let status = match installed.created {
        true => StatusCode::CREATED,
        false => StatusCode::OK,
    };
    Ok((status, Json(installed)))
}

/// 422 `invalid-package`, with every problem found.
fn invalid_package(errors: Vec<ManifestError>) -> Problem {
    let first = errors.first().map(ToString::to_string).unwrap_or_default();
    let detail = match errors.len() {
        1 => format!("the package is invalid: {first}"),
        n => format!("the package has {n} problems, listed in `errors`; the first: {first}"),
    };
    let errors = errors
        .into_iter()
        .map(|e| PackageError {
            file: e.file,
            pointer: e.pointer,
            expected: e.expected,
        })
        .collect();
    Problem::unprocessable("invalid-package", detail).with_errors(errors)
}

/// The connectors the workspace sees: its own and the global ones.
#[utoipa::path(get, path = "/v1/connectors", tag = "connectors", operation_id = "list_connectors",
    responses((status = 200, description = "The catalog.", body = [ConnectorSummary])))]
pub async fn list(
    State(app): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<ConnectorSummary>>> {
    let scope = auth.scope("connectors:read")?;
    Ok(Json(app.control.list_connectors(scope).await?))
}

/// One version of a connector, whole: manifest, files, triggers and actions with their
/// JSON Schemas.
#[utoipa::path(get, path = "/v1/connectors/{name}/{version}", tag = "connectors",
    operation_id = "get_connector_version",
    params(
        ("name" = String, Path, description = "The connector's name."),
        ("version" = String, Path, description = "The version, exactly (`0.1.0`)."),
    ),
    responses((status = 200, description = "The version.", body = ConnectorVersion)))]
pub async fn read(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath((name, version)): ApiPath<(String, String)>,
) -> ApiResult<Json<ConnectorVersion>> {
    let scope = auth.scope("connectors:read")?;
    let found = app
        .control
        .get_connector_version(scope, &name, &version)
        .await?;
    found.map(Json).ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!(
                "no connector `{}` version `{}` in this workspace's catalog",
                crate::fields::shown(&name),
                crate::fields::shown(&version)
            ),
        )
    })
}

/// The JSON Schema every connector manifest is validated against.
#[utoipa::path(get, path = "/v1/schemas/connector-manifest.json", tag = "connectors",
    operation_id = "connector_manifest_schema", security(()),
    responses((status = 200, description = "The manifest's JSON Schema (draft 2020-12).", body = Object)))]
pub async fn manifest_schema() -> Json<Value> {
    Json(durable_connectors::manifest::json_schema())
}
