//! [`Secret`]: a value that prints, logs and serializes as a redaction marker.

use std::fmt;

use serde::{Serialize, Serializer};

/// What a secret prints as, wherever it is printed.
pub const REDACTED: &str = "[REDACTED]";

/// A secret string. `Debug`, `Display` and `Serialize` give [`REDACTED`]; the plaintext is
/// reachable only through [`expose`](Self::expose), inside the call that uses it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The plaintext. Use it to build a request, never to log or return it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}
