//! The host side of a call: the two functions the prelude builds `ctx` around (`log` and
//! `http`), the requests a script has made and not yet sent, and their answers.
//!
//! The credential stays here. A script asks for it with `auth: true`; the request is
//! authorized in Rust, only towards the origin of the call's base URL, and the credential's
//! text is cut out of whatever comes back before the script sees it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rquickjs::function::Opt;
use rquickjs::{Ctx, Exception, Function, JsLifetime, Object, Promise, Value};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Map;

use super::compile;
use crate::connector::Credential;
use crate::error::CallError;
use crate::http::{Body, HttpRequest, HttpResponse, Outbound, classify};
use crate::manifest::Auth;
use crate::secret::REDACTED;

/// Log lines one call may write; the rest are dropped (once said so).
const MAX_LOG_LINES: u32 = 1000;
/// The longest log message and fields kept, in bytes.
const MAX_LOG_BYTES: usize = 8 * 1024;

/// What the host keeps for one call.
#[derive(Debug)]
pub(crate) struct Host {
    pub(crate) connector: String,
    /// `action create_note`, `trigger new_notes`: the log's field and the errors' subject.
    pub(crate) operation: String,
    /// Absent where the call may not reach out (a webhook's `receive`, the load check).
    pub(crate) http: Option<HttpAccess>,
    outgoing: Mutex<Vec<Outgoing>>,
    next_id: AtomicU32,
    log_lines: AtomicU32,
}

/// Where a call may send requests with its credential, and which texts to keep from it.
#[derive(Debug, Clone)]
pub(crate) struct HttpAccess {
    pub(crate) base_url: String,
    pub(crate) auth: Auth,
    pub(crate) credential: Option<Credential>,
    secrets: Vec<String>,
}

impl HttpAccess {
    pub(crate) fn new(base_url: String, auth: Auth, credential: Option<Credential>) -> Self {
        let secrets = credential
            .as_ref()
            .map(|c| secret_texts(c, &auth))
            .unwrap_or_default();
        Self {
            base_url,
            auth,
            credential,
            secrets,
        }
    }

    /// `text` with the credential's texts replaced by `[REDACTED]`.
    fn redact(&self, text: String) -> String {
        self.secrets
            .iter()
            .filter(|s| text.contains(s.as_str()))
            .fold(text.clone(), |t, s| t.replace(s.as_str(), REDACTED))
    }
}

/// Every text of `credential` a provider could echo back: the raw secret and the header
/// values built from it.
fn secret_texts(credential: &Credential, auth: &Auth) -> Vec<String> {
    let mut texts: Vec<String> = match credential {
        Credential::Token(token) => vec![token.expose().to_owned()],
        Credential::Basic { password, .. } => vec![password.expose().to_owned()],
    };
    let applied = credential.apply(auth, HttpRequest::new("GET", ""));
    texts.extend(applied.headers.into_iter().map(|(_, v)| v));
    // Longest first, so that a header value is cut whole before the token inside it.
    texts.sort_by_key(|t| std::cmp::Reverse(t.len()));
    texts.retain(|t| t.len() >= 4);
    texts.dedup();
    texts
}

/// A request the script made, authorized, not yet sent.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) id: u32,
    pub(crate) request: HttpRequest,
}

/// The JavaScript values a call keeps between its segments: the promise of each request in
/// flight (by id), and what the entry point returned.
#[derive(JsLifetime, Default)]
pub(crate) struct Slots<'js> {
    pub(crate) pending: RefCell<HashMap<u32, Function<'js>>>,
    pub(crate) result: RefCell<Option<Value<'js>>>,
}

impl Host {
    pub(crate) fn new(connector: &str, operation: String, http: Option<HttpAccess>) -> Self {
        Self {
            connector: connector.to_owned(),
            operation,
            http,
            outgoing: Mutex::new(Vec::new()),
            next_id: AtomicU32::new(0),
            log_lines: AtomicU32::new(0),
        }
    }

    /// The requests made since the last call.
    pub(crate) fn take_outgoing(&self) -> Vec<Outgoing> {
        std::mem::take(&mut *self.outgoing.lock().expect("outgoing lock"))
    }

    fn log(&self, level: &str, message: &str, fields: Option<&str>) {
        let line = self.log_lines.fetch_add(1, Ordering::Relaxed);
        if line > MAX_LOG_LINES {
            return;
        }
        let (connector, operation) = (&self.connector, &self.operation);
        if line == MAX_LOG_LINES {
            tracing::warn!(
                connector,
                operation,
                "the script's further log lines are dropped"
            );
            return;
        }
        let message = cut(message);
        let fields = fields.map(cut).unwrap_or_default();
        match level {
            "debug" => tracing::debug!(connector, operation, fields, "{message}"),
            "warn" => tracing::warn!(connector, operation, fields, "{message}"),
            "error" => tracing::error!(connector, operation, fields, "{message}"),
            _ => tracing::info!(connector, operation, fields, "{message}"),
        }
    }

    /// Reads the prelude's request spec, and authorizes it if asked to.
    fn request(&self, spec: &str) -> Result<Outgoing, String> {
        let access = self
            .http
            .as_ref()
            .ok_or("this entry point cannot make HTTP requests")?;
        let spec: RequestSpec =
            serde_json::from_str(spec).map_err(|e| format!("ctx.http.request: {e}"))?;
        let auth = spec.auth;
        let mut request = spec.into_request()?;
        if auth {
            request = authorize(access, request)?;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        Ok(Outgoing { id, request })
    }
}

/// A log text cut to [`MAX_LOG_BYTES`], on a character boundary.
fn cut(text: &str) -> &str {
    if text.len() <= MAX_LOG_BYTES {
        return text;
    }
    let mut end = MAX_LOG_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `request` with the call's credential, if it goes to the base URL's origin: a script may
/// choose its URLs, and must not be able to send the credential to one of its own.
fn authorize(access: &HttpAccess, request: HttpRequest) -> Result<HttpRequest, String> {
    let Some(credential) = &access.credential else {
        return Err("ctx.http.request: `auth: true`, but this call has no credential".into());
    };
    let origin = |url: &str| reqwest::Url::parse(url).ok().map(|u| u.origin());
    let base = origin(&access.base_url).filter(|o| o.is_tuple());
    if base.is_none() || origin(&request.url) != base {
        return Err(format!(
            "ctx.http.request: `auth: true` applies the credential only to requests to the \
             connector's base URL ({}), not to {}",
            access.base_url, request.url
        ));
    }
    Ok(credential.apply(&access.auth, request))
}

/// The request as the prelude sends it (`requestSpec` in `prelude.js`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RequestSpec {
    method: String,
    url: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
    /// Present, even as `null`, means a JSON body.
    #[serde(default, deserialize_with = "present")]
    json: Option<serde_json::Value>,
    body: Option<String>,
    form: Option<Vec<(String, String)>>,
    timeout_ms: Option<f64>,
    auth: bool,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

impl RequestSpec {
    fn into_request(self) -> Result<HttpRequest, String> {
        let mut request = HttpRequest::new(&self.method, self.url);
        request.headers = self.headers;
        request.body = match (self.json, self.body, self.form) {
            (Some(json), _, _) => Body::Json(json),
            (_, Some(text), _) => Body::Text(text),
            (_, _, Some(form)) => Body::Form(form),
            _ => Body::Empty,
        };
        if let Some(ms) = self.timeout_ms {
            let timeout = Duration::try_from_secs_f64(ms / 1000.0)
                .map_err(|_| "ctx.http.request: `timeout` is out of range".to_owned())?;
            request.timeout = Some(timeout);
        }
        Ok(request)
    }
}

/// The object the prelude's `install` receives: `log`, `extras`, and `http` where the call
/// may reach out.
pub(crate) fn host_object<'js>(
    ctx: &Ctx<'js>,
    host: &Arc<Host>,
    extras: &Arc<[u8]>,
) -> rquickjs::Result<Object<'js>> {
    let object = Object::new(ctx.clone())?;
    let extras = Arc::clone(extras);
    let load_extras = Function::new(ctx.clone(), move |ctx: Ctx<'js>| {
        compile::evaluate(&ctx, &extras)
    })?;
    object.set("extras", load_extras)?;
    let for_log = Arc::clone(host);
    let log = Function::new(
        ctx.clone(),
        move |level: String, message: String, fields: Opt<String>| {
            for_log.log(&level, &message, fields.0.as_deref());
        },
    )?;
    object.set("log", log)?;
    if host.http.is_some() {
        let for_http = Arc::clone(host);
        let http = Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, spec: String| -> rquickjs::Result<Promise<'js>> {
                let outgoing = for_http
                    .request(&spec)
                    .map_err(|message| Exception::throw_type(&ctx, &message))?;
                let (promise, resolve, _reject) = ctx.promise()?;
                let slots = ctx
                    .userdata::<Slots>()
                    .ok_or_else(|| Exception::throw_internal(&ctx, "the call's slots are gone"))?;
                slots.pending.borrow_mut().insert(outgoing.id, resolve);
                for_http
                    .outgoing
                    .lock()
                    .expect("outgoing lock")
                    .push(outgoing);
                Ok(promise)
            },
        )?;
        object.set("http", http)?;
    }
    Ok(object)
}

/// How a request ended, as the prelude's `request` reads it.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Settlement {
    /// An answer, with the classification of a status other than 2xx.
    Response {
        response: ResponseJson,
        error: Option<ErrorJson>,
    },
    /// No answer: refused, unreachable, timed out, too large.
    Failure { failure: ErrorJson },
}

#[derive(Debug, Serialize)]
pub(crate) struct ResponseJson {
    status: u16,
    headers: Map<String, serde_json::Value>,
    body: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorJson {
    kind: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<u64>,
}

impl ErrorJson {
    fn new(err: CallError, access: &HttpAccess) -> Self {
        Self {
            kind: err.kind.as_str(),
            message: access.redact(err.message),
            status: err.status,
            retry_after_ms: err
                .retry_after
                .map(|d| d.as_millis().min(u128::from(u64::MAX)) as u64),
        }
    }
}

/// Sends one request and reads its answer for the script.
pub(crate) async fn exchange(
    http: Outbound,
    access: HttpAccess,
    outgoing: Outgoing,
) -> (u32, Settlement) {
    let settlement = match http.send(outgoing.request).await {
        Ok(response) => answer(response, &access),
        Err(err) => Settlement::Failure {
            failure: ErrorJson::new(err, &access),
        },
    };
    (outgoing.id, settlement)
}

fn answer(response: HttpResponse, access: &HttpAccess) -> Settlement {
    let error = match (200..300).contains(&response.status) {
        true => None,
        false => classify(response.clone())
            .err()
            .map(|e| ErrorJson::new(e, access)),
    };
    let mut headers = Map::new();
    for (name, value) in &response.headers {
        let value = access.redact(value.clone());
        let joined = match headers.remove(&name.to_ascii_lowercase()) {
            Some(serde_json::Value::String(earlier)) => format!("{earlier}, {value}"),
            _ => value,
        };
        headers.insert(name.to_ascii_lowercase(), joined.into());
    }
    Settlement::Response {
        response: ResponseJson {
            status: response.status,
            headers,
            body: access.redact(response.text()),
        },
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn access(base: &str) -> HttpAccess {
        let auth = Auth::ApiKey {
            header: "Authorization".into(),
            prefix: Some("Bearer".into()),
        };
        HttpAccess::new(
            base.into(),
            auth,
            Some(Credential::Token(Secret::new("tok-123456"))),
        )
    }

    #[test]
    fn credential_goes_only_to_the_base_origin() {
        let access = access("https://api.example.com/v1");
        let ok = authorize(
            &access,
            HttpRequest::new("GET", "https://api.example.com/x"),
        );
        assert_eq!(
            ok.unwrap().headers,
            [("Authorization".to_owned(), "Bearer tok-123456".to_owned())]
        );
        for url in [
            "https://evil.example.net/x",
            "http://api.example.com/x",
            "https://api.example.com:444/x",
            "not a url",
        ] {
            let refused = authorize(&access, HttpRequest::new("GET", url));
            assert!(refused.unwrap_err().contains("only to requests"), "{url}");
        }
    }

    #[test]
    fn echoed_credentials_are_cut_out() {
        let access = access("https://api.example.com");
        let text = "you sent Bearer tok-123456 and tok-123456".to_owned();
        assert_eq!(access.redact(text), "you sent [REDACTED] and [REDACTED]");
    }

    #[test]
    fn json_null_is_a_body() {
        let spec: RequestSpec =
            serde_json::from_str(r#"{"method":"POST","url":"u","json":null,"auth":false}"#)
                .unwrap();
        assert_eq!(
            spec.into_request().unwrap().body,
            Body::Json(serde_json::Value::Null)
        );
    }
}
