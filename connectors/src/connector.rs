//! The [`Connector`] trait, implemented by native connectors and by the JavaScript runtime
//! for packaged ones, and what a call receives.

use std::fmt;

use async_trait::async_trait;
use serde_json::Value;

use crate::error::{CallError, ErrorKind};
use crate::http::{HttpRequest, Outbound};
use crate::manifest::{Auth, Manifest};
use crate::secret::Secret;

/// A connector: a manifest and the code behind its actions and triggers.
#[async_trait]
pub trait Connector: Send + Sync + fmt::Debug {
    /// The connector's manifest, validated.
    fn manifest(&self) -> &Manifest;

    /// Runs action `action` once. The input was validated against the action's input schema;
    /// the output is validated against its output schema after the call.
    async fn call(&self, action: &str, call: ActionCall) -> Result<Value, CallError>;

    /// Polls trigger `trigger` once from `poll.cursor`.
    async fn poll(&self, trigger: &str, _poll: PollCall) -> Result<Polled, CallError> {
        Err(CallError::new(
            ErrorKind::NotFound,
            format!(
                "`{}` has no polling trigger `{trigger}`",
                self.manifest().name
            ),
        ))
    }

    /// Turns a verified webhook delivery for `trigger` into events (none: not for this trigger).
    fn receive(&self, trigger: &str, _delivery: &Delivery) -> Result<Vec<Value>, CallError> {
        Err(CallError::new(
            ErrorKind::NotFound,
            format!(
                "`{}` has no webhook trigger `{trigger}`",
                self.manifest().name
            ),
        ))
    }
}

/// Everything one action call may use. The HTTP client already carries the idempotency key
/// where the manifest says the provider takes it.
#[derive(Debug, Clone)]
pub struct ActionCall {
    pub input: Value,
    /// Stable across retries, replays and crashes.
    pub idempotency_key: String,
    /// From 1.
    pub attempt: u32,
    /// The provider's base URL (the manifest's `baseUrl`, unless the host overrides it).
    pub base_url: String,
    pub http: Outbound,
    pub credential: Option<Credential>,
}

impl ActionCall {
    /// `request` with the credential applied the way the manifest's auth kind says.
    pub fn authorize(&self, auth: &Auth, request: HttpRequest) -> HttpRequest {
        match &self.credential {
            Some(credential) => credential.apply(auth, request),
            None => request,
        }
    }
}

/// One poll of a polling trigger.
#[derive(Debug, Clone)]
pub struct PollCall {
    /// The trigger's settings (the feed URL, say).
    pub params: Value,
    /// Where the previous poll stopped; `None` on the first.
    pub cursor: Option<Value>,
    pub base_url: String,
    pub http: Outbound,
    pub credential: Option<Credential>,
}

/// What a poll found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Polled {
    /// New items, oldest first. The poller dedupes them on the trigger's `dedupeField`.
    pub events: Vec<Value>,
    /// Where the next poll starts.
    pub cursor: Option<Value>,
}

/// A webhook delivery whose signature was verified.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Delivery {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Credential material for one call, resolved by reference just before it.
#[derive(Debug, Clone)]
pub enum Credential {
    /// An API key, a bearer token or an OAuth2 access token.
    Token(Secret),
    Basic {
        username: String,
        password: Secret,
    },
}

impl Credential {
    /// The secret parts, for redaction.
    pub fn secrets(&self) -> Vec<&Secret> {
        match self {
            Credential::Token(token) => vec![token],
            Credential::Basic { password, .. } => vec![password],
        }
    }

    /// `request` with this credential where `auth` says it goes.
    pub fn apply(&self, auth: &Auth, request: HttpRequest) -> HttpRequest {
        match (self, auth) {
            (Credential::Token(token), Auth::ApiKey { header, prefix, .. }) => {
                let value = match prefix {
                    Some(prefix) => format!("{prefix} {}", token.expose()),
                    None => token.expose().to_owned(),
                };
                request.header(header.clone(), value)
            }
            (Credential::Token(token), _) => {
                request.header("Authorization", format!("Bearer {}", token.expose()))
            }
            (Credential::Basic { username, password }, _) => {
                use base64::Engine as _;
                let pair = format!("{username}:{}", password.expose());
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                request.header("Authorization", format!("Basic {encoded}"))
            }
        }
    }
}
