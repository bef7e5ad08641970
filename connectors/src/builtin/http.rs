//! `http`: a generic request action, and a polling trigger over a JSON feed.

use std::collections::BTreeMap;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{input, output, schema_of, unknown};
use crate::connector::{ActionCall, Connector, PollCall, Polled};
use crate::error::{CallError, ErrorKind};
use crate::http::{Body, HttpRequest};
use crate::manifest::{Action, Auth, Idempotency, Manifest, PollingTrigger, Trigger};

/// The `http` connector.
#[derive(Debug, Clone)]
pub struct Http {
    manifest: Manifest,
}

/// A request to send.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestInput {
    /// `GET`, `POST`, …
    #[schemars(regex(pattern = r"^[A-Z]{3,7}$"))]
    pub method: String,
    /// An absolute `http` or `https` URL.
    #[schemars(regex(pattern = r"^https?://"))]
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body.
    #[serde(default)]
    pub json: Option<Value>,
    /// A text body.
    #[serde(default)]
    pub body: Option<String>,
    /// A form-encoded body.
    #[serde(default)]
    pub form: Option<BTreeMap<String, String>>,
}

/// The answer, when its status is 2xx (any other status fails the step, classified).
#[derive(Debug, Serialize, JsonSchema)]
pub struct RequestOutput {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    /// The body as text.
    pub body: String,
    /// The body parsed, when it is JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
}

/// The settings of the JSON feed trigger.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FeedParams {
    /// The feed's URL: it answers a JSON document.
    #[schemars(regex(pattern = r"^https?://"))]
    pub url: String,
    /// Where the array of items is in that document, as a JSON pointer (empty: the root).
    #[serde(default)]
    pub items: String,
}

impl Http {
    pub fn new() -> Self {
        let request = Action {
            key: "request".to_owned(),
            display_name: Some("Send an HTTP request".to_owned()),
            description: Some(
                "Sends a request with an Idempotency-Key header; a non-2xx answer fails the step, \
                 classified (retried for 5xx, timeouts and 429)."
                    .to_owned(),
            ),
            input_schema: schema_of::<RequestInput>(),
            output_schema: Some(schema_of::<RequestOutput>()),
            idempotency: Some(Idempotency::Header("Idempotency-Key".to_owned())),
            endpoint: None,
        };
        let feed = PollingTrigger {
            key: "json_feed".to_owned(),
            display_name: Some("New item in a JSON feed".to_owned()),
            description: Some(
                "Polls a URL answering a JSON array of items; each item is emitted once."
                    .to_owned(),
            ),
            payload_schema: None,
            params_schema: Some(schema_of::<FeedParams>()),
            interval: "5m".to_owned(),
            dedupe_field: "/id".to_owned(),
        };
        Self {
            manifest: Manifest {
                name: "http".to_owned(),
                version: "0.1.0".to_owned(),
                display_name: Some("HTTP".to_owned()),
                description: Some("Any HTTP API: send a request, or poll a JSON feed.".to_owned()),
                base_url: None,
                main: None,
                auth: Auth::None,
                triggers: vec![Trigger::Polling(feed)],
                actions: vec![request],
                schemas: Default::default(),
                rate_limits: Vec::new(),
            },
        }
    }
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Connector for Http {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    async fn call(&self, action: &str, call: ActionCall) -> Result<Value, CallError> {
        if action != "request" {
            return Err(unknown("http", "action", action));
        }
        let req: RequestInput = input(call.input)?;
        let body = match (req.json, req.body, req.form) {
            (Some(json), None, None) => Body::Json(json),
            (None, Some(text), None) => Body::Text(text),
            (None, None, Some(form)) => Body::Form(form.into_iter().collect()),
            (None, None, None) => Body::Empty,
            _ => {
                return Err(CallError::new(
                    ErrorKind::InvalidInput,
                    "give at most one of `json`, `body` and `form`",
                ));
            }
        };
        let request = HttpRequest {
            method: req.method,
            url: req.url,
            headers: req.headers.into_iter().collect(),
            body,
            timeout: None,
        };
        let response = call.http.send_checked(request).await?;
        output(&RequestOutput {
            status: response.status,
            json: serde_json::from_slice(&response.body).ok(),
            body: response.text(),
            headers: response.headers.into_iter().collect(),
        })
    }

    async fn poll(&self, trigger: &str, poll: PollCall) -> Result<Polled, CallError> {
        if trigger != "json_feed" {
            return Err(unknown("http", "polling trigger", trigger));
        }
        let params: FeedParams = input(poll.params)?;
        let response = poll
            .http
            .send_checked(HttpRequest::new("GET", &params.url))
            .await?;
        let document = response.json()?;
        let items = document
            .pointer(&params.items)
            .and_then(Value::as_array)
            .ok_or_else(|| {
                CallError::new(
                    ErrorKind::InvalidOutput,
                    format!("the feed has no array at `{}`", params.items),
                )
            })?;
        Ok(Polled {
            events: items.clone(),
            cursor: poll.cursor,
        })
    }
}
