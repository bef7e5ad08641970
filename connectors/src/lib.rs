//! Durable's connector SDK: the manifest and its published JSON Schema, the [`Connector`]
//! trait for native connectors, a sandboxed JavaScript runtime for packaged ones, the guarded
//! outbound HTTP client every call goes through, and the built-in connectors.

pub mod builtin;
pub mod connector;
pub mod error;
pub mod http;
pub mod js;
pub mod manifest;
pub mod package;
pub mod runtime;
pub mod schema;
pub mod secret;
pub mod webhook;
pub mod workflow;

pub use connector::{ActionCall, Connector, Credential, Delivery, PollCall, Polled};
pub use error::{CallError, ErrorKind};
pub use http::{HttpPolicy, Outbound};
pub use js::{JsConfig, JsLimits, JsRuntime, ScriptConnector};
pub use manifest::Manifest;
pub use package::{ManifestError, ManifestErrors, Package};
pub use runtime::{
    ActionRequest, CallContext, Connectors, CredentialSource, PackageSource, StoredPackage,
};
pub use secret::Secret;
pub use workflow::{ACTION_WORKFLOW, ActionWorkflow, run_action};
