//! [`HttpPolicy`]: what outbound calls may reach and how much they may take, and how the
//! binaries read it from the environment.

use std::time::Duration;

/// Comma list of address ranges to open: `loopback`, `private`. Default: none.
pub const ENV_ALLOW: &str = "DURABLE_HTTP_ALLOW";
/// Time for one whole request, as a `humantime` duration (`30s`, `2m`). Default: 30 s.
pub const ENV_TIMEOUT: &str = "DURABLE_HTTP_TIMEOUT";
/// Largest response body accepted, in bytes. Default: 10 MiB.
pub const ENV_MAX_RESPONSE_BYTES: &str = "DURABLE_HTTP_MAX_RESPONSE_BYTES";
/// Redirects followed per request. Default: 5.
pub const ENV_MAX_REDIRECTS: &str = "DURABLE_HTTP_MAX_REDIRECTS";

/// What outbound calls may reach, and how much they may take.
///
/// Defaults: public addresses only, 30 s per request, 10 MiB per response body, 5
/// redirects. Link-local and cloud metadata addresses (169.254.169.254, fd00:ec2::254, …),
/// unspecified, multicast, broadcast and reserved addresses are refused whatever the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpPolicy {
    /// Allow loopback addresses (127.0.0.0/8, ::1). Off by default; tests turn it on for
    /// their fake providers.
    pub allow_loopback: bool,
    /// Allow private addresses (10/8, 172.16/12, 192.168/16, 100.64/10, 198.18/15,
    /// fc00::/7). Off by default.
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

/// An environment variable that does not hold a valid policy setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}={value:?} is not valid: {reason}")]
pub struct HttpPolicyError {
    pub variable: &'static str,
    pub value: String,
    pub reason: String,
}

impl HttpPolicy {
    /// The default policy with what `DURABLE_HTTP_ALLOW`, `DURABLE_HTTP_TIMEOUT`,
    /// `DURABLE_HTTP_MAX_RESPONSE_BYTES` and `DURABLE_HTTP_MAX_REDIRECTS` set; an unset
    /// variable keeps its default, an invalid one is an error that names it.
    pub fn from_env() -> Result<Self, HttpPolicyError> {
        // Lossy: a value that is not Unicode cannot be valid, and fails parsing by name.
        Self::from_lookup(|name| {
            std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
        })
    }

    /// [`from_env`](Self::from_env) with the variables read through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, HttpPolicyError> {
        let mut policy = Self::default();
        if let Some(value) = lookup(ENV_ALLOW) {
            (policy.allow_loopback, policy.allow_private) = parse_allow(&value)?;
        }
        if let Some(value) = lookup(ENV_TIMEOUT) {
            policy.timeout = parse_timeout(&value)?;
        }
        if let Some(value) = lookup(ENV_MAX_RESPONSE_BYTES) {
            policy.max_response_bytes = parse_count(ENV_MAX_RESPONSE_BYTES, &value, 1)?;
        }
        if let Some(value) = lookup(ENV_MAX_REDIRECTS) {
            policy.max_redirects = parse_count(ENV_MAX_REDIRECTS, &value, 0)?;
        }
        Ok(policy)
    }
}

fn invalid(variable: &'static str, value: &str, reason: impl Into<String>) -> HttpPolicyError {
    HttpPolicyError {
        variable,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// `(allow_loopback, allow_private)` from a comma list; empty items are ignored so that an
/// empty value means "nothing extra".
fn parse_allow(value: &str) -> Result<(bool, bool), HttpPolicyError> {
    let mut allow = (false, false);
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        match item.to_ascii_lowercase().as_str() {
            "loopback" => allow.0 = true,
            "private" => allow.1 = true,
            _ => {
                return Err(invalid(
                    ENV_ALLOW,
                    value,
                    format!("`{item}` is not one of `loopback`, `private`"),
                ));
            }
        }
    }
    Ok(allow)
}

fn parse_timeout(value: &str) -> Result<Duration, HttpPolicyError> {
    let timeout = humantime::parse_duration(value.trim()).map_err(|e| {
        invalid(
            ENV_TIMEOUT,
            value,
            format!("{e}; expected a duration like `30s`"),
        )
    })?;
    match timeout.is_zero() {
        true => Err(invalid(
            ENV_TIMEOUT,
            value,
            "the timeout must be more than zero",
        )),
        false => Ok(timeout),
    }
}

fn parse_count(variable: &'static str, value: &str, min: usize) -> Result<usize, HttpPolicyError> {
    match value.trim().parse::<usize>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(invalid(
            variable,
            value,
            format!("expected a whole number of at least {min}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<HttpPolicy, HttpPolicyError> {
        HttpPolicy::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn unset_variables_keep_the_defaults() {
        assert_eq!(from(&[]).unwrap(), HttpPolicy::default());
    }

    #[test]
    fn every_variable_is_read() {
        let policy = from(&[
            (ENV_ALLOW, "loopback, private"),
            (ENV_TIMEOUT, "2m 30s"),
            (ENV_MAX_RESPONSE_BYTES, "1024"),
            (ENV_MAX_REDIRECTS, "0"),
        ])
        .unwrap();
        assert!(policy.allow_loopback && policy.allow_private);
        assert_eq!(policy.timeout, Duration::from_secs(150));
        assert_eq!(policy.max_response_bytes, 1024);
        assert_eq!(policy.max_redirects, 0);

        let policy = from(&[(ENV_ALLOW, "private")]).unwrap();
        assert!(!policy.allow_loopback && policy.allow_private);
        assert_eq!(from(&[(ENV_ALLOW, "")]).unwrap(), HttpPolicy::default());
    }

    #[test]
    fn an_invalid_value_is_an_error_that_names_the_variable() {
        let cases = [
            (ENV_ALLOW, "loopback,metadata"),
            (ENV_TIMEOUT, "soon"),
            (ENV_TIMEOUT, "0s"),
            (ENV_MAX_RESPONSE_BYTES, "10MB"),
            (ENV_MAX_RESPONSE_BYTES, "0"),
            (ENV_MAX_REDIRECTS, "-1"),
        ];
        for (variable, value) in cases {
            let err = from(&[(variable, value)]).unwrap_err();
            assert_eq!(err.variable, variable);
            assert!(err.to_string().starts_with(variable), "{err}");
        }
    }
}
