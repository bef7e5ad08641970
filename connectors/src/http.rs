//! The outbound HTTP client every connector call goes through: guarded against SSRF, with
//! response size and time capped, and a classification of failed responses.
//!
//! The guard: only http and https; IP literal hosts are checked before sending, named hosts
//! by a resolver that hands reqwest only the addresses the [`HttpPolicy`] allows (so the
//! connection goes to the address that was checked); every redirect hop is checked again;
//! no proxy, so an environment proxy cannot route around any of it. A refusal is a terminal
//! [`ErrorKind::ForbiddenAddress`] naming the host and why.
//!
//! Errors built from a response or a failed request never hold the call's secrets: register
//! them with [`Outbound::with_redaction`] or [`Outbound::with_secret_header`]; the
//! credentials in a request's `Authorization` header are redacted without being registered.

mod address;
mod classify;
mod guard;
mod policy;
mod redact;
mod transport;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::error::{CallError, ErrorKind};
use crate::secret::Secret;

pub use classify::{EXCERPT_CHARS, MAX_RETRY_AFTER};
pub use policy::{
    ENV_ALLOW, ENV_MAX_REDIRECTS, ENV_MAX_RESPONSE_BYTES, ENV_TIMEOUT, HttpPolicy, HttpPolicyError,
};

use guard::{GuardedResolver, Refusal};
use redact::Redactor;

/// A request body.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Body {
    #[default]
    Empty,
    /// Sent as `application/json` unless the request sets its own `Content-Type`.
    Json(Value),
    /// Sent as `text/plain; charset=utf-8` unless the request sets its own `Content-Type`.
    Text(String),
    /// Sent as `application/x-www-form-urlencoded`.
    Form(Vec<(String, String)>),
}

impl Body {
    fn kind(&self) -> &'static str {
        match self {
            Body::Empty => "empty",
            Body::Json(_) => "json",
            Body::Text(_) => "text",
            Body::Form(_) => "form",
        }
    }
}

/// An outbound request.
#[derive(Clone, Default)]
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

    pub fn text(mut self, body: impl Into<String>) -> Self {
        self.body = Body::Text(body.into());
        self
    }

    pub fn form(mut self, fields: Vec<(String, String)>) -> Self {
        self.body = Body::Form(fields);
        self
    }

    /// Gives the request less time than the policy's timeout (never more).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// Header values and the body often carry credentials, and the URL's query an API key: a
/// request prints only the method, the URL without query or user info, header names and
/// the body's kind.
impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &printable_url(&self.url))
            .field("headers", &headers)
            .field("body", &self.body.kind())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `url` without what may hold a secret: user info, query string and fragment.
fn printable_url(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        let start: String = url
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .chars()
            .take(100)
            .collect();
        return start.split('@').next_back().unwrap_or("").to_owned();
    };
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    parsed.set_fragment(None);
    let had_query = parsed.query().is_some();
    parsed.set_query(None);
    match had_query {
        true => format!("{parsed}?…"),
        false => parsed.to_string(),
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

/// A header added to every request by [`Outbound`]; a secret one never prints.
#[derive(Debug, Clone)]
enum HeaderValue {
    Plain(String),
    Secret(Secret),
}

impl HeaderValue {
    fn expose(&self) -> &str {
        match self {
            HeaderValue::Plain(value) => value,
            HeaderValue::Secret(secret) => secret.expose(),
        }
    }
}

/// The guarded client. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    /// The same guard, but redirects must stay on the request's origin: for requests with a
    /// secret in a header reqwest would carry to another host.
    same_origin: reqwest::Client,
    policy: Arc<HttpPolicy>,
    /// Headers added to every request (the engine's idempotency key, say).
    extra_headers: Vec<(String, HeaderValue)>,
    /// The call's registered secrets.
    redactor: Redactor,
}

/// Prints header names only: a plain header may still hold a secret registered separately.
impl fmt::Debug for Outbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<&str> = self.extra_headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Outbound")
            .field("policy", &self.policy)
            .field("headers", &headers)
            .field("redactions", &self.redactor)
            .finish()
    }
}

impl Outbound {
    pub fn new(policy: HttpPolicy) -> Self {
        let policy = Arc::new(policy);
        Self {
            client: build_client(&policy, false),
            same_origin: build_client(&policy, true),
            policy,
            extra_headers: Vec::new(),
            redactor: Redactor::default(),
        }
    }

    pub fn policy(&self) -> &HttpPolicy {
        &self.policy
    }

    /// A client that adds `name: value` to every request it sends.
    pub fn with_header(&self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let mut next = self.clone();
        next.extra_headers
            .push((name.into(), HeaderValue::Plain(value.into())));
        next
    }

    /// A client that adds `name: secret` to every request it sends, and redacts `secret`
    /// from its errors.
    pub fn with_secret_header(&self, name: impl Into<String>, secret: Secret) -> Self {
        let mut next = self.with_redaction(&secret);
        next.extra_headers
            .push((name.into(), HeaderValue::Secret(secret)));
        next
    }

    /// A client whose errors never show `secret` (nor its JSON-escaped or percent-encoded
    /// forms): register every secret a call puts in a header, URL or body.
    pub fn with_redaction(&self, secret: &Secret) -> Self {
        let mut next = self.clone();
        next.redactor.add(secret.expose());
        next
    }

    /// `text` with the registered secrets replaced by `[REDACTED]`: for messages built
    /// outside this client (a script's error, say) that may quote a response.
    pub fn redact(&self, text: &str) -> String {
        self.redactor.redact(text)
    }

    /// Sends `request`. Any status is an `Ok` answer; transport failures are classified errors.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, CallError> {
        let redactor = self.redactor_for(&request);
        self.exchange(request)
            .await
            .map_err(|err| redacted(err, &redactor))
    }

    /// Sends `request` and [`check`](Self::check)s the answer, redacting the credentials in
    /// this request's headers as well as the registered secrets.
    pub async fn send_checked(&self, request: HttpRequest) -> Result<HttpResponse, CallError> {
        let redactor = self.redactor_for(&request);
        let response = self
            .exchange(request)
            .await
            .map_err(|err| redacted(err, &redactor))?;
        classify::classify(response, &redactor)
    }

    /// Like [`classify`], with the registered secrets redacted from the error. Credentials
    /// that were only in the request's headers are unknown here: prefer
    /// [`send_checked`](Self::send_checked), or register them.
    pub fn check(&self, response: HttpResponse) -> Result<HttpResponse, CallError> {
        let mut redactor = self.redactor.clone();
        self.add_header_credentials(&mut redactor, &[]);
        classify::classify(response, &redactor)
    }

    /// The registered secrets, plus the credentials in this request's auth headers and URL:
    /// a secret need not be registered to be kept out of the errors its own request causes.
    fn redactor_for(&self, request: &HttpRequest) -> Redactor {
        let mut redactor = self.redactor.clone();
        self.add_header_credentials(&mut redactor, &request.headers);
        if let Ok(url) = reqwest::Url::parse(&request.url) {
            redactor.add_userinfo(url.username(), url.password());
        }
        redactor
    }

    fn add_header_credentials(&self, redactor: &mut Redactor, headers: &[(String, String)]) {
        let extra = self
            .extra_headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.expose()));
        let own = headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        for (name, value) in extra.chain(own) {
            if is_auth_header(name) {
                redactor.add_credential(value);
            }
        }
    }

    async fn exchange(&self, request: HttpRequest) -> Result<HttpResponse, CallError> {
        let url = parse_url(&request.url)?;
        guard::check_url(&url, &self.policy).map_err(refusal_error)?;
        let host = guard::host_of(&url);
        let limit = self.time_limit(&request);
        let builder = self.build(request, url)?;
        // One deadline over connecting, every redirect and reading the body, whichever of
        // them is slow.
        match tokio::time::timeout(limit, self.fetch(builder, &host)).await {
            Ok(result) => result,
            Err(_) => Err(transport::timed_out(&host, limit)),
        }
    }

    fn time_limit(&self, request: &HttpRequest) -> Duration {
        match request.timeout {
            Some(timeout) => timeout.min(self.policy.timeout),
            None => self.policy.timeout,
        }
    }

    fn build(
        &self,
        request: HttpRequest,
        url: reqwest::Url,
    ) -> Result<reqwest::RequestBuilder, CallError> {
        let method = parse_method(&request.method)?;
        let headers: Vec<(&str, &str)> = self
            .extra_headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.expose()))
            .chain(
                request
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str())),
            )
            .collect();
        let client = match carries_portable_secret(&headers, &self.redactor) {
            true => &self.same_origin,
            false => &self.client,
        };
        let mut builder = client.request(method, url);
        for (name, value) in &headers {
            builder = builder.header(*name, *value);
        }
        let has_content_type = headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
        Ok(attach_body(builder, request.body, has_content_type))
    }

    async fn fetch(
        &self,
        builder: reqwest::RequestBuilder,
        host: &str,
    ) -> Result<HttpResponse, CallError> {
        let response = builder
            .send()
            .await
            .map_err(|err| transport::failure(err, host))?;
        read_response(response, self.policy.max_response_bytes, host).await
    }
}

/// A response with a 2xx status passes; any other is a classified error. The message quotes
/// the start of the body; use [`Outbound::check`] or [`Outbound::send_checked`] to have the
/// call's secrets redacted from it.
pub fn classify(response: HttpResponse) -> Result<HttpResponse, CallError> {
    classify::classify(response, &Redactor::default())
}

fn build_client(policy: &Arc<HttpPolicy>, same_origin: bool) -> reqwest::Client {
    reqwest::Client::builder()
        // An environment proxy would resolve and connect on our behalf, past the guard.
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver {
            policy: Arc::clone(policy),
        }))
        .redirect(guard::redirect_policy(Arc::clone(policy), same_origin))
        // The Referer would carry the previous URL, query string and any key in it, to the
        // next host.
        .referer(false)
        .build()
        .expect("a client with no custom TLS settings builds")
}

fn is_auth_header(name: &str) -> bool {
    name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("proxy-authorization")
}

/// Whether a header reqwest keeps on a cross-host redirect holds a registered secret (an API
/// key header, say): such a request may only be redirected within its origin.
fn carries_portable_secret(headers: &[(&str, &str)], secrets: &Redactor) -> bool {
    headers
        .iter()
        .any(|(name, value)| !stripped_on_redirect(name) && secrets.matches(value))
}

/// The headers reqwest removes when a redirect goes to another host or port.
fn stripped_on_redirect(name: &str) -> bool {
    [
        "authorization",
        "proxy-authorization",
        "cookie",
        "cookie2",
        "www-authenticate",
    ]
    .iter()
    .any(|n| name.eq_ignore_ascii_case(n))
}

fn attach_body(
    builder: reqwest::RequestBuilder,
    body: Body,
    has_content_type: bool,
) -> reqwest::RequestBuilder {
    match body {
        Body::Empty => builder,
        // reqwest's `json` and `form` set their content type only when none is set.
        Body::Json(value) => builder.json(&value),
        Body::Form(fields) => builder.form(&fields),
        Body::Text(text) if has_content_type => builder.body(text),
        Body::Text(text) => builder
            .header("content-type", "text/plain; charset=utf-8")
            .body(text),
    }
}

fn parse_url(url: &str) -> Result<reqwest::Url, CallError> {
    reqwest::Url::parse(url).map_err(|e| {
        CallError::new(
            ErrorKind::ForbiddenAddress,
            format!("`{}` is not a valid URL: {e}", printable_url(url)),
        )
    })
}

/// The method, with the standard ones upper-cased as `fetch` does: `get` is GET, not an
/// extension method nobody implements.
fn parse_method(method: &str) -> Result<reqwest::Method, CallError> {
    let standard = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    let method = match standard.iter().find(|m| m.eq_ignore_ascii_case(method)) {
        Some(m) => (*m).to_owned(),
        None => method.to_owned(),
    };
    reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| {
        CallError::new(
            ErrorKind::Rejected,
            format!("`{method}` is not an HTTP method"),
        )
    })
}

fn refusal_error(refusal: Refusal) -> CallError {
    CallError::new(refusal.kind, refusal.message)
}

fn redacted(mut err: CallError, redactor: &Redactor) -> CallError {
    err.message = redactor.redact(&err.message);
    err
}

/// Reads the body chunk by chunk, refusing it as soon as it passes `cap`: a declared length
/// is not trusted, and a body is never held whole before it is measured.
async fn read_response(
    mut response: reqwest::Response,
    cap: usize,
    host: &str,
) -> Result<HttpResponse, CallError> {
    let status = response.status().as_u16();
    let too_large = || {
        CallError::new(
            ErrorKind::ResponseTooLarge,
            format!(
                "the response from {host} is larger than the {cap}-byte cap ({ENV_MAX_RESPONSE_BYTES})"
            ),
        )
        .with_status(status)
    };
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_large());
    }
    let headers = response_headers(&response);
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| transport::failure(err, host))?
    {
        if body.len() + chunk.len() > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn response_headers(response: &reqwest::Response) -> Vec<(String, String)> {
    response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}
