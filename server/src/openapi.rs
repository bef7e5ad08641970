//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api;

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
        api::audit::list,
    ),
    modifiers(&BearerAuth),
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

/// The document as a value.
pub fn spec() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `GET /v1/openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(spec())
}
