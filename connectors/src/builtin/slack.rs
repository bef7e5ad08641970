//! `slack`: the `post_message` action. Slack answers most failures with 200 and
//! `{"ok": false, "error": "…"}`; those are classified like HTTP failures, and its 429 with
//! `Retry-After` is honoured.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{input, output, schema_of, unknown};
use crate::connector::{ActionCall, Connector};
use crate::error::{CallError, ErrorKind};
use crate::http::HttpRequest;
use crate::manifest::{Action, Auth, Manifest, RateLimit};

/// The `slack` connector.
#[derive(Debug, Clone)]
pub struct Slack {
    manifest: Manifest,
}

/// A message to post.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    /// A channel id (`C0123…`) or name.
    #[schemars(length(min = 1))]
    pub channel: String,
    #[schemars(length(min = 1, max = 40000))]
    pub text: String,
    /// Posts as a reply in this thread.
    #[serde(default)]
    pub thread_ts: Option<String>,
    /// Block Kit blocks.
    #[serde(default)]
    pub blocks: Option<Vec<Value>>,
}

/// The message posted.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Posted {
    pub channel: String,
    /// The message's timestamp: its id within the channel.
    pub ts: String,
}

impl Slack {
    pub fn new() -> Self {
        let post_message = Action {
            key: "post_message".to_owned(),
            display_name: Some("Post a message".to_owned()),
            description: Some("Posts a message to a channel, or a reply in a thread.".to_owned()),
            input_schema: schema_of::<PostMessage>(),
            output_schema: Some(schema_of::<Posted>()),
            idempotency: None,
            endpoint: Some("chat.postMessage".to_owned()),
        };
        Self {
            manifest: Manifest {
                name: "slack".to_owned(),
                version: "0.1.0".to_owned(),
                display_name: Some("Slack".to_owned()),
                description: Some("Messages in Slack channels.".to_owned()),
                base_url: Some("https://slack.com/api".to_owned()),
                main: None,
                auth: Auth::Oauth2 {
                    authorize_url: "https://slack.com/oauth/v2/authorize".to_owned(),
                    token_url: "https://slack.com/api/oauth.v2.access".to_owned(),
                    scopes: vec!["chat:write".to_owned()],
                },
                triggers: Vec::new(),
                actions: vec![post_message],
                schemas: Default::default(),
                // Slack allows about one message a second per channel, with short bursts.
                rate_limits: vec![RateLimit {
                    endpoint: "chat.postMessage".to_owned(),
                    requests: 1,
                    per: "1s".to_owned(),
                    burst: Some(3),
                }],
            },
        }
    }
}

impl Default for Slack {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Connector for Slack {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    async fn call(&self, action: &str, call: ActionCall) -> Result<Value, CallError> {
        if action != "post_message" {
            return Err(unknown("slack", "action", action));
        }
        let message: PostMessage = input(call.input.clone())?;
        let body = json!({
            "channel": message.channel, "text": message.text,
            "thread_ts": message.thread_ts, "blocks": message.blocks,
        });
        let request =
            HttpRequest::new("POST", format!("{}/chat.postMessage", call.base_url)).json(body);
        let request = call.authorize(&self.manifest.auth, request);
        let answer = call.http.send_checked(request).await?.json()?;
        if answer["ok"] != true {
            return Err(slack_error(
                answer["error"].as_str().unwrap_or("unknown_error"),
            ));
        }
        output(&Posted {
            channel: answer["channel"].as_str().unwrap_or_default().to_owned(),
            ts: answer["ts"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

/// Slack's `error` codes, classified.
fn slack_error(code: &str) -> CallError {
    let kind = match code {
        "ratelimited" => ErrorKind::RateLimited,
        "invalid_auth" | "not_authed" | "token_expired" | "token_revoked" | "account_inactive" => {
            ErrorKind::AuthExpired
        }
        "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" => {
            ErrorKind::Upstream
        }
        _ => ErrorKind::Rejected,
    };
    CallError::new(kind, format!("Slack refused the message: {code}"))
}
