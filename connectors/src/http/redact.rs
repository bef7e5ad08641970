//! Keeping a call's secrets out of the errors built from its responses and failures:
//! upstreams echo credentials back (the request's `Authorization` in a 401 body, an API key
//! in a query string quoted by a validation error), and errors are stored with the step.

use base64::Engine as _;

use crate::secret::REDACTED;

/// The strings replaced by [`REDACTED`] in error messages.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    /// Longest first, so that a secret is replaced whole before any secret inside it.
    needles: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} strings)", self.needles.len())
    }
}

impl Redactor {
    /// Redacts `secret` and the forms an upstream may echo it in (JSON-escaped, with `/`
    /// escaped as PHP does, percent-encoded).
    pub fn add(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        for form in echoed_forms(secret) {
            if !self.needles.contains(&form) {
                self.needles.push(form);
            }
        }
        self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    }

    /// Redacts the credential in an `Authorization`-style header value: the whole value,
    /// the part after the scheme, and for Basic the decoded `user:password` and password.
    pub fn add_credential(&mut self, value: &str) {
        self.add(value.trim());
        let Some((scheme, credential)) = value.trim().split_once(' ') else {
            return;
        };
        let credential = credential.trim();
        self.add(credential);
        if scheme.eq_ignore_ascii_case("basic") {
            self.add_basic(credential);
        }
    }

    fn add_basic(&mut self, encoded: &str) {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
            return;
        };
        let pair = String::from_utf8_lossy(&decoded).into_owned();
        if let Some((_, password)) = pair.split_once(':') {
            self.add(password);
        }
        self.add(&pair);
    }

    /// Redacts the password of a URL's user info, as written and as reqwest sends it: decoded,
    /// in a Basic `Authorization` header.
    pub fn add_userinfo(&mut self, username: &str, password: Option<&str>) {
        let Some(password) = password else {
            return;
        };
        self.add(password);
        let pair = format!("{}:{}", percent_decode(username), percent_decode(password));
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        self.add_credential(&format!("Basic {encoded}"));
    }

    /// Whether `text` holds a registered secret as it is.
    pub fn matches(&self, text: &str) -> bool {
        self.needles.iter().any(|n| text.contains(n.as_str()))
    }

    /// `text` with every registered secret replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for needle in &self.needles {
            if text.contains(needle.as_str()) {
                text = text.replace(needle.as_str(), REDACTED);
            }
        }
        text
    }

    /// The length in characters of the longest string redacted: how far past a cut a secret
    /// that starts before it may reach.
    pub fn longest(&self) -> usize {
        self.needles
            .iter()
            .map(|n| n.chars().count())
            .max()
            .unwrap_or(0)
    }
}

fn echoed_forms(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).expect("a string serializes");
    let json = json[1..json.len() - 1].to_owned();
    let php = json.replace('/', "\\/");
    vec![secret.to_owned(), json, php, percent_encode(secret)]
}

/// Percent-encodes everything but RFC 3986's unreserved characters, as query strings carry
/// a key; upper-case hex, as `url` and most servers write it.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte))
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_redacted_in_every_echoed_form() {
        let mut redactor = Redactor::default();
        redactor.add("s3cr/t+\"key\"");
        let text = r#"raw s3cr/t+"key" json "s3cr/t+\"key\"" php s3cr\/t+\"key\" url s3cr%2Ft%2B%22key%22"#;
        let redacted = redactor.redact(text);
        assert_eq!(
            redacted,
            "raw [REDACTED] json \"[REDACTED]\" php [REDACTED] url [REDACTED]"
        );
    }

    #[test]
    fn a_basic_credential_is_redacted_encoded_and_decoded() {
        let mut redactor = Redactor::default();
        // "alice:hunter2"
        redactor.add_credential("Basic YWxpY2U6aHVudGVyMg==");
        let redacted = redactor.redact("got Basic YWxpY2U6aHVudGVyMg== for alice:hunter2, hunter2");
        assert!(!redacted.contains("YWxpY2U6aHVudGVyMg"), "{redacted}");
        assert!(!redacted.contains("hunter2"), "{redacted}");
    }

    #[test]
    fn a_bearer_token_is_redacted_without_its_scheme() {
        let mut redactor = Redactor::default();
        redactor.add_credential("Bearer tok_123");
        assert_eq!(
            redactor.redact("token tok_123 was bad"),
            "token [REDACTED] was bad"
        );
    }

    #[test]
    fn a_url_password_is_redacted_as_written_and_as_sent() {
        let mut redactor = Redactor::default();
        redactor.add_userinfo("ada", Some("p%40ss"));
        // "ada:p@ss"
        let redacted = redactor.redact("p%40ss p@ss YWRhOnBAc3M=");
        assert_eq!(redacted, "[REDACTED] [REDACTED] [REDACTED]");
    }

    #[test]
    fn an_empty_secret_redacts_nothing() {
        let mut redactor = Redactor::default();
        redactor.add("");
        assert_eq!(redactor.redact("plain"), "plain");
        assert_eq!(redactor.longest(), 0);
    }
}
