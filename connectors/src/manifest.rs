//! The connector manifest (`manifest.json`): its Rust types, from which its published JSON
//! Schema is generated (`connectors/manifest.schema.json`), and the JSON Schema itself.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The identifier of the manifest schema, as `$id` and as served by the API.
pub const SCHEMA_ID: &str = "https://durable.dev/schemas/connector-manifest.json";

/// A connector's manifest: what it is, how it authenticates, its triggers and its actions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "Durable connector manifest", extend("$id" = SCHEMA_ID))]
pub struct Manifest {
    /// The connector's name: lower case letters, digits, `_` and `-`, starting with a letter.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_-]{0,62}$"))]
    pub name: String,
    /// A semantic version (`1.2.3`, `0.1.0-beta.1`). A published version never changes.
    #[schemars(regex(
        pattern = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"
    ))]
    pub version: String,
    /// The name shown in the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub display_name: Option<String>,
    /// What the connector does, for the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2000))]
    pub description: Option<String>,
    /// The provider's API root, which actions build their URLs on (`https://api.github.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub base_url: Option<String>,
    /// The JavaScript module of a packaged connector, relative to the package (`index.js`).
    /// Absent for native connectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_./-]*\.m?js$"))]
    pub main: Option<String>,
    /// How calls authenticate.
    pub auth: Auth,
    /// Sources of events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<Trigger>,
    /// Steps with side effects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    /// Named JSON Schemas that triggers and actions refer to by name: each a schema inline,
    /// or `{"$ref": "schemas/issue.json"}` naming a file of the package.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub schemas: BTreeMap<String, Map<String, Value>>,
    /// Limits the provider enforces, per endpoint: hints for the rate limiter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<RateLimit>,
}

/// How a connector's calls authenticate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// No credential.
    None,
    /// A key sent in a header.
    ApiKey {
        /// The header that carries the key.
        #[serde(default = "default_key_header")]
        header: String,
        /// Written before the key, with a space (`Bearer`, `token`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
    },
    /// HTTP Basic: a user name and a password.
    Basic,
    /// OAuth 2.0 authorization code flow, with refresh.
    Oauth2 {
        /// Where the user is sent to grant access.
        #[serde(rename = "authorizeUrl")]
        #[schemars(regex(pattern = r"^https?://"))]
        authorize_url: String,
        /// Where codes and refresh tokens are exchanged.
        #[serde(rename = "tokenUrl")]
        #[schemars(regex(pattern = r"^https?://"))]
        token_url: String,
        /// The scopes asked for.
        #[serde(default)]
        scopes: Vec<String>,
    },
}

fn default_key_header() -> String {
    "Authorization".to_owned()
}

/// A JSON Schema: the name of one in the manifest's `schemas`, or a schema inline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SchemaSpec {
    /// The name of an entry of `schemas`.
    Named(String),
    /// A JSON Schema object.
    Inline(Map<String, Value>),
}

/// A source of events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Trigger {
    /// Events the provider pushes to a webhook URL.
    Webhook(WebhookTrigger),
    /// Events found by polling the provider.
    Polling(PollingTrigger),
}

impl Trigger {
    /// The trigger's key.
    pub fn key(&self) -> &str {
        match self {
            Trigger::Webhook(t) => &t.key,
            Trigger::Polling(t) => &t.key,
        }
    }

    /// `webhook` or `polling`.
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Webhook(_) => "webhook",
            Trigger::Polling(_) => "polling",
        }
    }

    /// The schema of the events it emits.
    pub fn payload_schema(&self) -> Option<&SchemaSpec> {
        match self {
            Trigger::Webhook(t) => t.payload_schema.as_ref(),
            Trigger::Polling(t) => t.payload_schema.as_ref(),
        }
    }

    /// The catalog's name and description.
    pub fn labels(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Trigger::Webhook(t) => (t.display_name.as_deref(), t.description.as_deref()),
            Trigger::Polling(t) => (t.display_name.as_deref(), t.description.as_deref()),
        }
    }
}

/// A webhook trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookTrigger {
    /// Unique among the connector's triggers.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_]{0,62}$"))]
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2000))]
    pub description: Option<String>,
    /// The schema of the events it emits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_schema: Option<SchemaSpec>,
    /// How deliveries are signed.
    #[serde(default)]
    pub signature: SignatureScheme,
    /// The header holding the provider's delivery id, for dedupe (`X-GitHub-Delivery`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id_header: Option<String>,
}

/// How a webhook delivery proves where it came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignatureScheme {
    /// Not signed.
    #[default]
    None,
    /// Standard Webhooks 1.0 (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    StandardWebhooks,
    /// GitHub's `X-Hub-Signature-256`: HMAC-SHA256 of the body, hex.
    GithubSha256,
}

/// A polling trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PollingTrigger {
    /// Unique among the connector's triggers.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_]{0,62}$"))]
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2000))]
    pub description: Option<String>,
    /// The schema of the events it emits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_schema: Option<SchemaSpec>,
    /// The schema of the trigger's settings (the feed URL, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params_schema: Option<SchemaSpec>,
    /// How often to poll, as a duration (`30s`, `5m`).
    pub interval: String,
    /// The JSON pointer, within an event, of the value that identifies it (`/id`): an event
    /// seen before is not emitted again.
    #[schemars(regex(pattern = r"^(/[^/]*)+$"))]
    pub dedupe_field: String,
}

/// A step with side effects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Action {
    /// Unique among the connector's actions.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_]{0,62}$"))]
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2000))]
    pub description: Option<String>,
    /// The schema the input must satisfy; checked before the call.
    pub input_schema: SchemaSpec,
    /// The schema the output must satisfy; checked after the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<SchemaSpec>,
    /// How the provider takes an idempotency key; the engine sends its key that way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency: Option<Idempotency>,
    /// The endpoint of `rateLimits` this action spends from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// Where the engine's idempotency key goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Idempotency {
    /// In this request header (`Idempotency-Key`).
    Header(String),
    /// In this top-level field of the input (`client_msg_id`).
    Field(String),
}

/// A limit the provider enforces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    /// The endpoint it applies to, as actions name it, or `*` for all.
    #[schemars(length(min = 1, max = 200))]
    pub endpoint: String,
    /// Requests allowed per `per`.
    #[schemars(range(min = 1))]
    pub requests: u32,
    /// The window, as a duration (`1s`, `1m`).
    pub per: String,
    /// Requests allowed at once above the steady rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

impl Manifest {
    /// The action `key`.
    pub fn action(&self, key: &str) -> Option<&Action> {
        self.actions.iter().find(|a| a.key == key)
    }

    /// The trigger `key`.
    pub fn trigger(&self, key: &str) -> Option<&Trigger> {
        self.triggers.iter().find(|t| t.key() == key)
    }
}

/// The manifest's JSON Schema, generated from these types.
pub fn json_schema() -> Value {
    let schema = schemars::schema_for!(Manifest);
    serde_json::to_value(schema).expect("a schema serializes")
}
