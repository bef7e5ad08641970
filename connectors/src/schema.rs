//! JSON Schemas of action inputs, outputs and trigger payloads, compiled once per package.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

/// A compiled JSON Schema.
#[derive(Clone)]
pub struct CompiledSchema {
    schema: Arc<Value>,
    validator: Arc<jsonschema::Validator>,
}

/// One way a value fails a schema: where (a JSON pointer) and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub pointer: String,
    pub expected: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pointer.as_str() {
            "" => write!(f, "{}", self.expected),
            pointer => write!(f, "at {pointer}: {}", self.expected),
        }
    }
}

/// At most this many violations are reported for one value.
const MAX_VIOLATIONS: usize = 10;

impl CompiledSchema {
    /// Compiles `schema`; references to other documents are not followed (no network, no
    /// file system), so a schema is self-contained or fails here.
    pub fn compile(schema: &Value) -> Result<Self, String> {
        let validator = jsonschema::validator_for(schema).map_err(|e| e.to_string())?;
        Ok(Self {
            schema: Arc::new(schema.clone()),
            validator: Arc::new(validator),
        })
    }

    /// The schema as written.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// Every way `value` fails the schema (the first few), or nothing.
    pub fn check(&self, value: &Value) -> Result<(), Vec<Violation>> {
        let violations: Vec<_> = self
            .validator
            .iter_errors(value)
            .take(MAX_VIOLATIONS)
            .map(|e| Violation {
                pointer: e.instance_path.to_string(),
                expected: e.to_string(),
            })
            .collect();
        match violations.is_empty() {
            true => Ok(()),
            false => Err(violations),
        }
    }
}

impl fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CompiledSchema").field(&self.schema).finish()
    }
}

/// `violations` as one line: `at /title: 5 is not of type "string"; …`.
pub fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
