//! The OpenAPI document: the contract between the server and its clients, checked against
//! the running server by Schemathesis in CI (`scripts/schemathesis`).
//!
//! The handlers' annotations give each operation's own answers; [`answers`] adds the ones
//! operations share and declares every error answer a problem document; [`schemas`] states
//! the limits the handlers enforce. The registered workflows' names are the server's
//! configuration, so the document is completed with them when served.

mod answers;
pub mod schemas;

use axum::Json;
use axum::extract::State;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api;
use crate::app::{AppState, Registry};
use crate::problem::Problem;
use answers::SharedAnswers;

#[derive(OpenApi)]
#[openapi(
    info(title = "Durable API", description = "Tenants, flows, runs and webhook intake."),
    paths(
        api::workspaces::current, api::workspaces::create,
        api::keys::create, api::keys::list, api::keys::revoke,
        api::members::put, api::members::list, api::members::remove,
        api::flows::create, api::flows::list, api::flows::read, api::flows::update,
        api::flows::remove, api::flows::create_version, api::flows::list_versions,
        api::flows::read_version, api::flows::update_version, api::flows::publish,
        api::flows::remove_version,
        api::runs::start, api::runs::list, api::runs::read, api::runs::cancel,
        api::runs::terminate, api::runs::pause, api::runs::resume, api::runs::fork, api::runs::workflows,
        api::hooks::create, api::hooks::list, api::hooks::read, api::hooks::remove,
        api::hooks::intake, api::hooks::rotate,
        api::connectors::install, api::connectors::list, api::connectors::read,
        api::connectors::manifest_schema,
        api::audit::list,
    ),
    components(schemas(Problem)),
    modifiers(&BearerAuth, &SharedAnswers),
    security(("api_key" = [])),
)]
struct ApiDoc;

/// Declares `Authorization: Bearer <key>` as the API's security scheme.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document for a server that can start the workflows of `registry`.
pub fn spec(registry: &Registry) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let names = registry.specs().map(|spec| spec.name.as_str());
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.insert(
        schemas::WORKFLOW_NAME.to_owned(),
        schemas::workflow_names(names).into(),
    );
    schemas::declare_withheld(components);
    doc
}

/// `GET /v1/openapi.json`.
pub async fn document(State(app): State<AppState>) -> Json<utoipa::openapi::OpenApi> {
    Json(spec(&app.registry))
}
