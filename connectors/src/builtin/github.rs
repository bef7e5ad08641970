//! `github`: the `issue_opened` webhook trigger (signed with `X-Hub-Signature-256`) and the
//! `create_issue` and `add_comment` actions.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{input, output, schema_of, unknown};
use crate::connector::{ActionCall, Connector, Delivery};
use crate::error::{CallError, ErrorKind};
use crate::http::HttpRequest;
use crate::manifest::{
    Action, Auth, Manifest, RateLimit, SignatureScheme, Trigger, WebhookTrigger,
};

/// The `github` connector.
#[derive(Debug, Clone)]
pub struct GitHub {
    manifest: Manifest,
}

/// A new issue.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIssue {
    /// The repository's owner (user or organisation).
    #[schemars(length(min = 1))]
    pub owner: String,
    /// The repository's name.
    #[schemars(length(min = 1))]
    pub repo: String,
    #[schemars(length(min = 1, max = 256))]
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
}

/// A comment on an issue or pull request.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddComment {
    #[schemars(length(min = 1))]
    pub owner: String,
    #[schemars(length(min = 1))]
    pub repo: String,
    #[schemars(range(min = 1))]
    pub issue_number: u64,
    #[schemars(length(min = 1))]
    pub body: String,
}

/// What GitHub created.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Created {
    pub id: u64,
    /// The issue's number (for a comment: the issue it is on).
    pub number: u64,
    /// Its page on GitHub.
    pub url: String,
}

/// An issue that was opened.
#[derive(Debug, Serialize, JsonSchema)]
pub struct IssueEvent {
    /// `owner/name`.
    pub repository: String,
    pub number: u64,
    pub title: String,
    pub body: Option<String>,
    pub url: String,
    /// The login of who opened it.
    pub author: String,
    pub labels: Vec<String>,
}

impl GitHub {
    pub fn new() -> Self {
        let issue_opened = WebhookTrigger {
            key: "issue_opened".to_owned(),
            display_name: Some("Issue opened".to_owned()),
            description: Some(
                "An issue was opened in a repository the webhook watches.".to_owned(),
            ),
            payload_schema: Some(schema_of::<IssueEvent>()),
            signature: SignatureScheme::GithubSha256,
            delivery_id_header: Some("X-GitHub-Delivery".to_owned()),
        };
        let action = |key: &str, name: &str, input| Action {
            key: key.to_owned(),
            display_name: Some(name.to_owned()),
            description: None,
            input_schema: input,
            output_schema: Some(schema_of::<Created>()),
            // GitHub takes no idempotency key: a retry after a lost answer may create twice.
            idempotency: None,
            endpoint: Some("rest".to_owned()),
        };
        Self {
            manifest: Manifest {
                name: "github".to_owned(),
                version: "0.1.0".to_owned(),
                display_name: Some("GitHub".to_owned()),
                description: Some("Issues and comments on GitHub repositories.".to_owned()),
                base_url: Some("https://api.github.com".to_owned()),
                main: None,
                auth: Auth::Oauth2 {
                    authorize_url: "https://github.com/login/oauth/authorize".to_owned(),
                    token_url: "https://github.com/login/oauth/access_token".to_owned(),
                    scopes: vec!["repo".to_owned()],
                },
                triggers: vec![Trigger::Webhook(issue_opened)],
                actions: vec![
                    action(
                        "create_issue",
                        "Create an issue",
                        schema_of::<CreateIssue>(),
                    ),
                    action(
                        "add_comment",
                        "Comment on an issue",
                        schema_of::<AddComment>(),
                    ),
                ],
                schemas: Default::default(),
                // GitHub's documented budget for an OAuth token: 5,000 requests an hour.
                rate_limits: vec![RateLimit {
                    endpoint: "rest".to_owned(),
                    requests: 5000,
                    per: "1h".to_owned(),
                    burst: None,
                }],
            },
        }
    }

    async fn post(&self, call: &ActionCall, path: &str, body: Value) -> Result<Value, CallError> {
        let request = HttpRequest::new("POST", format!("{}{path}", call.base_url))
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .header("User-Agent", "durable-connectors")
            .json(body);
        let request = call.authorize(&self.manifest.auth, request);
        call.http.send_checked(request).await?.json()
    }
}

impl Default for GitHub {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Connector for GitHub {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    async fn call(&self, action: &str, call: ActionCall) -> Result<Value, CallError> {
        match action {
            "create_issue" => {
                let issue: CreateIssue = input(call.input.clone())?;
                let path = format!("/repos/{}/{}/issues", issue.owner, issue.repo);
                let body =
                    json!({ "title": issue.title, "body": issue.body, "labels": issue.labels });
                let created = self.post(&call, &path, body).await?;
                output(&created_from(&created, None)?)
            }
            "add_comment" => {
                let comment: AddComment = input(call.input.clone())?;
                let path = format!(
                    "/repos/{}/{}/issues/{}/comments",
                    comment.owner, comment.repo, comment.issue_number
                );
                let created = self
                    .post(&call, &path, json!({ "body": comment.body }))
                    .await?;
                output(&created_from(&created, Some(comment.issue_number))?)
            }
            other => Err(unknown("github", "action", other)),
        }
    }

    fn receive(&self, trigger: &str, delivery: &Delivery) -> Result<Vec<Value>, CallError> {
        if trigger != "issue_opened" {
            return Err(unknown("github", "webhook trigger", trigger));
        }
        if delivery.header("X-GitHub-Event") != Some("issues") {
            return Ok(Vec::new());
        }
        let payload = payload_of(delivery)?;
        if payload["action"] != "opened" {
            return Ok(Vec::new());
        }
        Ok(vec![output(&issue_event(&payload)?)?])
    }
}

/// The JSON payload: the body itself, or its `payload` field when GitHub was set to send
/// `application/x-www-form-urlencoded`.
fn payload_of(delivery: &Delivery) -> Result<Value, CallError> {
    let form = delivery
        .header("Content-Type")
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    let json = match form {
        true => form_urlencoded::parse(&delivery.body)
            .find(|(name, _)| name == "payload")
            .map(|(_, value)| value.into_owned().into_bytes())
            .ok_or_else(|| bad_payload("a form without a `payload` field"))?,
        false => delivery.body.clone(),
    };
    serde_json::from_slice(&json).map_err(|e| bad_payload(&format!("not JSON ({e})")))
}

fn issue_event(payload: &Value) -> Result<IssueEvent, CallError> {
    let issue = &payload["issue"];
    let text = |v: &Value, what: &str| {
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| bad_payload(&format!("no `{what}`")))
    };
    Ok(IssueEvent {
        repository: text(&payload["repository"]["full_name"], "repository.full_name")?,
        number: issue["number"]
            .as_u64()
            .ok_or_else(|| bad_payload("no `issue.number`"))?,
        title: text(&issue["title"], "issue.title")?,
        body: issue["body"].as_str().map(str::to_owned),
        url: text(&issue["html_url"], "issue.html_url")?,
        author: text(&issue["user"]["login"], "issue.user.login")?,
        labels: issue["labels"]
            .as_array()
            .map(|labels| {
                labels
                    .iter()
                    .filter_map(|l| l["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

fn created_from(created: &Value, issue_number: Option<u64>) -> Result<Created, CallError> {
    let field = |name: &str| {
        created[name].as_u64().ok_or_else(|| {
            CallError::new(
                ErrorKind::InvalidOutput,
                format!("GitHub's answer has no `{name}`"),
            )
        })
    };
    Ok(Created {
        id: field("id")?,
        number: match issue_number {
            Some(n) => n,
            None => field("number")?,
        },
        url: created["html_url"].as_str().unwrap_or_default().to_owned(),
    })
}

fn bad_payload(what: &str) -> CallError {
    CallError::new(
        ErrorKind::InvalidInput,
        format!("the GitHub delivery is {what}"),
    )
}
