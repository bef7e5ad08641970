//! The SSRF guard inside reqwest: a resolver that hands reqwest only checked addresses (so
//! the connection is pinned to what was checked, with no second lookup to race), a check of
//! URLs with an IP literal host (which reqwest connects to without resolving), and a
//! redirect policy that checks every hop.

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::{Attempt, Policy};

use super::HttpPolicy;
use super::address::{self, Refused};
use crate::error::ErrorKind;

/// A request the guard stopped. It travels through reqwest's error chain from the resolver
/// or the redirect policy, and is found there again so that it is reported as the terminal
/// refusal it is rather than as a retryable connection failure.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refusal {
    pub kind: ErrorKind,
    pub message: String,
}

impl Refusal {
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::ForbiddenAddress,
            message: message.into(),
        }
    }

    /// The refusal somewhere in `err`'s chain of sources.
    pub fn find<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Refusal> {
        let mut next = Some(err);
        while let Some(err) = next {
            if let Some(refusal) = err.downcast_ref::<Refusal>() {
                return Some(refusal);
            }
            next = err.source();
        }
        None
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for Refusal {}

/// The host of `url` as it is named in messages.
pub(crate) fn host_of(url: &Url) -> String {
    url.host_str().unwrap_or("the provider").to_owned()
}

/// Checks what can be checked before connecting: the scheme, and the address when the host
/// is an IP literal. Named hosts are checked by [`GuardedResolver`] when reqwest connects.
pub(crate) fn check_url(url: &Url, policy: &HttpPolicy) -> Result<(), Refusal> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refusal::forbidden(format!(
            "`{}` URLs are not allowed; outbound calls use http or https",
            url.scheme()
        )));
    }
    match literal_ip(url) {
        Some(ip) => address::check(ip, policy).map_err(|r| Refusal::forbidden(r.to_string())),
        None if url.host_str().is_none_or(str::is_empty) => {
            Err(Refusal::forbidden("the URL has no host"))
        }
        None => Ok(()),
    }
}

/// The host as an IP address, when it is one. `url` has already normalized the odd IPv4
/// spellings (`0x7f.1`, `2130706433`) to dotted decimal, so parsing its host is enough.
fn literal_ip(url: &Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.parse().ok()
}

/// Resolves with tokio and keeps only the addresses the policy allows; refuses when none is
/// left.
#[derive(Debug)]
pub(crate) struct GuardedResolver {
    pub policy: Arc<HttpPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed = allowed_addrs(&host, found, &policy)?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

fn allowed_addrs(
    host: &str,
    found: Vec<SocketAddr>,
    policy: &HttpPolicy,
) -> Result<Vec<SocketAddr>, Refusal> {
    let mut refused: Vec<Refused> = Vec::new();
    let mut allowed = Vec::new();
    for addr in found {
        match address::check(addr.ip(), policy) {
            Ok(()) => allowed.push(addr),
            Err(reason) => refused.push(reason),
        }
    }
    match (allowed.is_empty(), refused.first()) {
        (true, Some(first)) => Err(Refusal::forbidden(format!(
            "{host} resolves only to refused addresses ({}): {first}",
            list(&refused)
        ))),
        _ => Ok(allowed),
    }
}

fn list(refused: &[Refused]) -> String {
    let ips: Vec<String> = refused.iter().map(|r| r.ip.to_string()).collect();
    ips.join(", ")
}

/// Follows at most `max_redirects` hops, each to an http(s) URL whose literal address the
/// policy allows, never from https down to http (the request's headers would travel in the
/// clear). With `same_origin`, a hop must also stay on the same scheme, host and port: the
/// request carries a secret in a header that reqwest does not strip on a cross-host hop
/// (it strips only `Authorization`, `Cookie` and the like).
pub(crate) fn redirect_policy(policy: Arc<HttpPolicy>, same_origin: bool) -> Policy {
    Policy::custom(move |attempt: Attempt<'_>| {
        match check_hop(attempt.url(), attempt.previous(), &policy, same_origin) {
            Ok(()) => attempt.follow(),
            Err(refusal) => attempt.error(refusal),
        }
    })
}

/// Checks the hop to `next` after the URLs in `previous` (the first request's included).
fn check_hop(
    next: &Url,
    previous: &[Url],
    policy: &HttpPolicy,
    same_origin: bool,
) -> Result<(), Refusal> {
    let Some(from) = previous.last() else {
        return check_url(next, policy);
    };
    // `previous` holds the first URL too, so its length is the number of this hop.
    if previous.len() > policy.max_redirects {
        return Err(Refusal {
            kind: ErrorKind::Rejected,
            message: format!(
                "{} redirected more than {} times (the most an outbound call follows)",
                host_of(from),
                policy.max_redirects
            ),
        });
    }
    let refuse = |why: &str| {
        Refusal::forbidden(format!(
            "refused to follow the redirect from {} to {}: {why}",
            host_of(from),
            host_of(next)
        ))
    };
    check_url(next, policy).map_err(|r| refuse(&r.message))?;
    if from.scheme() == "https" && next.scheme() == "http" {
        return Err(refuse("it goes from https down to http"));
    }
    if same_origin && from.origin() != next.origin() {
        return Err(refuse(
            "the request carries a secret in a header that must not reach another host",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn literal_hosts_are_checked_in_every_spelling() {
        let policy = HttpPolicy::default();
        for text in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://0x7f.0.0.1/",
            "http://2130706433/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0:8080/",
            "https://169.254.169.254/latest/meta-data/",
        ] {
            let refusal = check_url(&url(text), &policy).unwrap_err();
            assert_eq!(refusal.kind, ErrorKind::ForbiddenAddress, "{text}");
        }
        assert!(check_url(&url("https://8.8.8.8/"), &policy).is_ok());
        assert!(check_url(&url("https://api.example.com/"), &policy).is_ok());
    }

    #[test]
    fn only_http_and_https_are_allowed() {
        let policy = HttpPolicy::default();
        for text in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://example.com/",
        ] {
            let refusal = check_url(&url(text), &policy).unwrap_err();
            assert_eq!(refusal.kind, ErrorKind::ForbiddenAddress, "{text}");
        }
    }

    #[test]
    fn a_name_resolving_only_to_refused_addresses_is_refused() {
        let policy = HttpPolicy::default();
        let found = vec!["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()];
        let refusal = allowed_addrs("localhost", found, &policy).unwrap_err();
        assert!(
            refusal
                .message
                .starts_with("localhost resolves only to refused addresses (127.0.0.1, ::1): 127.0.0.1 is a loopback address"),
            "{}",
            refusal.message
        );
    }

    #[test]
    fn refused_addresses_are_dropped_and_allowed_ones_kept() {
        let policy = HttpPolicy::default();
        let found = vec![
            "10.0.0.1:0".parse().unwrap(),
            "93.184.216.34:0".parse().unwrap(),
        ];
        let allowed = allowed_addrs("mixed.example", found, &policy).unwrap();
        assert_eq!(allowed, vec!["93.184.216.34:0".parse().unwrap()]);
    }

    fn hop(next: &str, previous: &[&str], same_origin: bool) -> Result<(), Refusal> {
        let previous: Vec<Url> = previous.iter().map(|p| url(p)).collect();
        check_hop(&url(next), &previous, &HttpPolicy::default(), same_origin)
    }

    #[test]
    fn redirect_hops_are_checked() {
        let api = "https://api.example.com/v1";
        assert!(hop("https://cdn.example.net/file", &[api], false).is_ok());
        assert!(hop("https://api.example.com/v2", &[api], true).is_ok());

        let private = hop("https://10.0.0.1/", &[api], false).unwrap_err();
        assert_eq!(
            private.message,
            "refused to follow the redirect from api.example.com to 10.0.0.1: 10.0.0.1 is a private address; allow it with DURABLE_HTTP_ALLOW=private (HttpPolicy::allow_private)"
        );
        let downgrade = hop("http://api.example.com/v1", &[api], false).unwrap_err();
        assert!(
            downgrade
                .message
                .ends_with("it goes from https down to http")
        );
        assert_eq!(downgrade.kind, ErrorKind::ForbiddenAddress);
        for other_origin in [
            "https://cdn.example.net/",
            "https://api.example.com:8443/v1",
        ] {
            let refusal = hop(other_origin, &[api], true).unwrap_err();
            assert!(
                refusal.message.contains("must not reach another host"),
                "{other_origin}"
            );
        }
    }

    #[test]
    fn redirects_stop_after_the_limit() {
        let chain = ["https://a.example/"; 5];
        assert!(hop("https://a.example/", &chain, false).is_ok());
        let chain = ["https://a.example/"; 6];
        let refusal = hop("https://a.example/", &chain, false).unwrap_err();
        assert_eq!(refusal.kind, ErrorKind::Rejected);
        assert_eq!(
            refusal.message,
            "a.example redirected more than 5 times (the most an outbound call follows)"
        );
    }

    #[test]
    fn a_refusal_is_found_deep_in_an_error_chain() {
        #[derive(Debug)]
        struct Wrapper(Box<dyn StdError + Send + Sync>);
        impl fmt::Display for Wrapper {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("wrapper")
            }
        }
        impl StdError for Wrapper {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&*self.0)
            }
        }
        let err = Wrapper(Box::new(Wrapper(Box::new(Refusal::forbidden("no")))));
        assert_eq!(Refusal::find(&err).unwrap().message, "no");
    }
}
