//! The outbound HTTP client every connector call goes through: guarded against SSRF, with
//! response size and time capped, and a classification of failed responses.

use std::time::Duration;

use serde_json::Value;

use crate::error::{CallError, ErrorKind};

/// What outbound calls may reach, and how much they may take.
#[derive(Debug, Clone)]
pub struct HttpPolicy {
    /// Allow loopback addresses (127.0.0.0/8, ::1). Off by default; tests turn it on for
    /// their fake providers.
    pub allow_loopback: bool,
    /// Allow private addresses (10/8, 172.16/12, 192.168/16, fc00::/7). Off by default.
    pub allow_private: bool,
    /// Time for one whole request, from connect to the last byte of the body.
    pub timeout: Duration,
    /// Largest response body accepted, in bytes.
    pub max_response_bytes: usize,
    /// Redirects followed, each re-checked against this policy.
    pub max_redirects: usize,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        Self {
            allow_loopback: false,
            allow_private: false,
            timeout: Duration::from_secs(30),
            max_response_bytes: 10 * 1024 * 1024,
            max_redirects: 5,
        }
    }
}

/// A request body.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Body {
    #[default]
    Empty,
    Json(Value),
    Text(String),
    Form(Vec<(String, String)>),
}

/// An outbound request.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Shorter than the policy's timeout, if set.
    pub timeout: Option<Duration>,
}

impl HttpRequest {
    pub fn new(method: &str, url: impl Into<String>) -> Self {
        Self {
            method: method.to_owned(),
            url: url.into(),
            ..Self::default()
        }
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn json(mut self, body: Value) -> Self {
        self.body = Body::Json(body);
        self
    }
}

/// A response, whatever its status.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<Value, CallError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            CallError::new(
                ErrorKind::InvalidOutput,
                format!(
                    "the provider answered {} with a body that is not JSON: {e}",
                    self.status
                ),
            )
            .with_status(self.status)
        })
    }
}

/// The guarded client. Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct Outbound {
    client: reqwest::Client,
    policy: std::sync::Arc<HttpPolicy>,
    /// Headers added to every request (the engine's idempotency key, say).
    extra_headers: Vec<(String, String)>,
}

impl Outbound {
    pub fn new(policy: HttpPolicy) -> Self {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("a client with no custom TLS settings builds");
        Self {
            client,
            policy: std::sync::Arc::new(policy),
            extra_headers: Vec::new(),
        }
    }

    pub fn policy(&self) -> &HttpPolicy {
        &self.policy
    }

    /// A client that adds `name: value` to every request it sends.
    pub fn with_header(&self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let mut next = self.clone();
        next.extra_headers.push((name.into(), value.into()));
        next
    }

    /// Sends `request`. Any status is an `Ok` answer; transport failures are classified errors.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, CallError> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes()).map_err(|_| {
            CallError::new(
                ErrorKind::Rejected,
                format!("`{}` is not an HTTP method", request.method),
            )
        })?;
        let mut builder = self.client.request(method, &request.url);
        for (name, value) in self.extra_headers.iter().chain(&request.headers) {
            builder = builder.header(name, value);
        }
        builder = match request.body {
            Body::Empty => builder,
            Body::Json(value) => builder.json(&value),
            Body::Text(text) => builder.body(text),
            Body::Form(fields) => builder.form(&fields),
        };
        let response = builder
            .timeout(request.timeout.unwrap_or(self.policy.timeout))
            .send()
            .await
            .map_err(|e| CallError::new(ErrorKind::Connection, e.to_string()))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|e| CallError::new(ErrorKind::Connection, e.to_string()))?
            .to_vec();
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

/// A response with a 2xx status passes; any other is a classified error.
pub fn classify(response: HttpResponse) -> Result<HttpResponse, CallError> {
    if (200..300).contains(&response.status) {
        return Ok(response);
    }
    let kind = match response.status {
        401 => ErrorKind::AuthExpired,
        429 => ErrorKind::RateLimited,
        500..=599 => ErrorKind::Upstream,
        _ => ErrorKind::Rejected,
    };
    Err(
        CallError::new(kind, format!("the provider answered {}", response.status))
            .with_status(response.status),
    )
}
