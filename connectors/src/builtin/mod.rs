//! The built-in connectors: `http`, `github` and `slack`, native Rust connectors whose
//! input and output schemas come from their Rust types.

mod github;
mod http;
mod slack;

pub use github::GitHub;
pub use http::Http;
pub use slack::Slack;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{CallError, ErrorKind};
use crate::manifest::SchemaSpec;

/// The JSON Schema of `T`, inline in a manifest.
fn schema_of<T: JsonSchema>() -> SchemaSpec {
    let schema = serde_json::to_value(schemars::schema_for!(T)).expect("a schema serializes");
    match schema {
        Value::Object(map) => SchemaSpec::Inline(map),
        _ => SchemaSpec::Inline(Map::new()),
    }
}

/// `input` as `T`; it passed `T`'s schema already, so a failure here is a bug in the schema.
fn input<T: DeserializeOwned>(input: Value) -> Result<T, CallError> {
    serde_json::from_value(input).map_err(|e| {
        CallError::new(
            ErrorKind::InvalidInput,
            format!("the input is invalid: {e}"),
        )
    })
}

/// `value` as JSON.
fn output<T: serde::Serialize>(value: &T) -> Result<Value, CallError> {
    serde_json::to_value(value).map_err(|e| {
        CallError::new(
            ErrorKind::InvalidOutput,
            format!("the output is invalid: {e}"),
        )
    })
}

fn unknown(connector: &str, what: &str, key: &str) -> CallError {
    CallError::new(
        ErrorKind::NotFound,
        format!("`{connector}` has no {what} `{key}`"),
    )
}
