//! The `/v1` REST API, one module per resource.

pub mod audit;
pub mod connectors;
pub mod flows;
pub mod hooks;
pub mod keys;
pub mod members;
pub mod runs;
pub mod workspaces;
