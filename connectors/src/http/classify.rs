//! What a failed response means: its [`ErrorKind`], how long the provider asked to wait,
//! and a message that names the status and quotes the start of the body with the call's
//! secrets redacted.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::HttpResponse;
use super::redact::Redactor;
use crate::error::{CallError, ErrorKind};

/// The longest wait honoured: a provider asking for more is retried after this anyway, so a
/// bad header cannot park a step for days.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60 * 60);

/// Characters of the body quoted in an error message.
pub const EXCERPT_CHARS: usize = 300;

/// `X-RateLimit-Reset` values from here on are Unix times (GitHub's, in 2001 and later), below
/// it a number of seconds: no provider asks for a wait of 31 years.
const EPOCH_THRESHOLD: u64 = 1_000_000_000;

/// A 2xx response passes; any other is a classified error whose message holds no secret
/// known to `redactor`.
pub(crate) fn classify(
    response: HttpResponse,
    redactor: &Redactor,
) -> Result<HttpResponse, CallError> {
    if (200..300).contains(&response.status) {
        return Ok(response);
    }
    Err(failure(&response, redactor, SystemTime::now()))
}

fn failure(response: &HttpResponse, redactor: &Redactor, now: SystemTime) -> CallError {
    let kind = kind_of(response);
    let wait = requested_wait(response, kind, now);
    CallError::new(kind, message(response, wait, redactor))
        .with_status(response.status)
        .with_retry_after(wait)
}

fn kind_of(response: &HttpResponse) -> ErrorKind {
    match response.status {
        429 => ErrorKind::RateLimited,
        503 if asked_to_wait(response) => ErrorKind::RateLimited,
        500..=599 => ErrorKind::Upstream,
        408 => ErrorKind::Timeout,
        401 => ErrorKind::AuthExpired,
        // GitHub answers an exhausted primary limit with 403 and `x-ratelimit-remaining: 0`,
        // a secondary limit with 403 and `Retry-After`.
        403 if asked_to_wait(response) => ErrorKind::RateLimited,
        _ => ErrorKind::Rejected,
    }
}

/// Whether the response says the client is over a limit: `Retry-After`, or a rate limit
/// header with nothing remaining. The limit headers alone do not count: many providers send
/// them on every response, outages included.
fn asked_to_wait(response: &HttpResponse) -> bool {
    response.header("retry-after").is_some() || quota_exhausted(response)
}

fn quota_exhausted(response: &HttpResponse) -> bool {
    let structured = response
        .header("ratelimit")
        .and_then(|v| ratelimit_param(v, &["remaining", "r"]));
    let legacy = ["ratelimit-remaining", "x-ratelimit-remaining"]
        .iter()
        .find_map(|name| response.header(name))
        .and_then(|v| v.trim().parse::<u64>().ok());
    structured.or(legacy) == Some(0)
}

/// The wait the provider asked for, capped at [`MAX_RETRY_AFTER`]. `Retry-After` is honoured
/// on any retryable failure; the limit's reset time only when the limit is the failure.
fn requested_wait(response: &HttpResponse, kind: ErrorKind, now: SystemTime) -> Option<Duration> {
    let retry_after = response
        .header("retry-after")
        .and_then(|v| parse_retry_after(v, now));
    let wait = match kind {
        ErrorKind::RateLimited => retry_after.or_else(|| reset_wait(response, now)),
        kind if kind.is_retryable() => retry_after,
        _ => None,
    };
    wait.map(|w| w.min(MAX_RETRY_AFTER))
}

/// `Retry-After`: delta-seconds or an HTTP-date (a date in the past means now).
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Some(seconds) = parse_seconds(value) {
        return Some(seconds);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A non-negative whole number of seconds; too many digits saturate rather than fail, as
/// the cap applies anyway.
fn parse_seconds(value: &str) -> Option<Duration> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)))
}

/// The reset time of an exhausted limit: the IETF `RateLimit` header (`reset=30` in the early
/// drafts, `t=30` in the later ones), `RateLimit-Reset` (seconds), or `X-RateLimit-Reset`
/// (seconds, or a Unix time as GitHub sends).
fn reset_wait(response: &HttpResponse, now: SystemTime) -> Option<Duration> {
    if let Some(seconds) = response
        .header("ratelimit")
        .and_then(|v| ratelimit_param(v, &["reset", "t"]))
    {
        return Some(Duration::from_secs(seconds));
    }
    if let Some(wait) = response
        .header("ratelimit-reset")
        .and_then(|v| parse_seconds(v.trim()))
    {
        return Some(wait);
    }
    let reset = response
        .header("x-ratelimit-reset")?
        .trim()
        .parse::<u64>()
        .ok()?;
    match reset >= EPOCH_THRESHOLD {
        true => Some(until_epoch(reset, now)),
        false => Some(Duration::from_secs(reset)),
    }
}

fn until_epoch(seconds: u64, now: SystemTime) -> Duration {
    let at = UNIX_EPOCH + Duration::from_secs(seconds);
    at.duration_since(now).unwrap_or(Duration::ZERO)
}

/// A numeric parameter of the IETF `RateLimit` header, in either draft's syntax:
/// `limit=100, remaining=0, reset=30` or `"default";r=0;t=30`.
fn ratelimit_param(value: &str, names: &[&str]) -> Option<u64> {
    value
        .split([',', ';'])
        .filter_map(|item| item.split_once('='))
        .find(|(name, _)| names.iter().any(|n| name.trim().eq_ignore_ascii_case(n)))
        .and_then(|(_, v)| v.trim().trim_matches('"').parse().ok())
}

fn message(response: &HttpResponse, wait: Option<Duration>, redactor: &Redactor) -> String {
    let status = response.status;
    let mut message = match reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("the provider answered {status} {reason}"),
        None => format!("the provider answered {status}"),
    };
    if let Some(wait) = wait {
        message.push_str(&format!(
            " and asked to wait {}",
            humantime::format_duration(wait)
        ));
    }
    let excerpt = excerpt(&response.body, redactor);
    if !excerpt.is_empty() {
        message.push_str(": ");
        message.push_str(&excerpt);
    }
    message
}

/// The start of `body`, at most [`EXCERPT_CHARS`] characters, secrets redacted and control
/// characters escaped. Redaction runs before the cut, over enough text that a secret that
/// starts before the cut is replaced whole rather than left half visible.
pub(crate) fn excerpt(body: &[u8], redactor: &Redactor) -> String {
    let window = EXCERPT_CHARS + redactor.longest();
    // A character takes at most 4 bytes: this holds the window's characters whole.
    let bytes = &body[..body.len().min(window * 4)];
    let text: String = String::from_utf8_lossy(bytes)
        .chars()
        .take(window)
        .collect();
    let text = escape_controls(redactor.redact(&text).trim());
    truncate(text, EXCERPT_CHARS)
}

fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c.is_control() {
            true => out.extend(c.escape_default()),
            false => out.push(c),
        }
    }
    out
}

fn truncate(text: String, max: usize) -> String {
    match text.chars().count() > max {
        true => {
            let mut cut: String = text.chars().take(max - 1).collect();
            cut.push('…');
            cut
        }
        false => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    const NOW: u64 = 1_700_000_000;

    fn fail(status: u16, headers: &[(&str, &str)]) -> CallError {
        failure(
            &response(status, headers, ""),
            &Redactor::default(),
            at(NOW),
        )
    }

    #[test]
    fn statuses_map_to_kinds() {
        let cases = [
            (429, ErrorKind::RateLimited),
            (503, ErrorKind::Upstream),
            (500, ErrorKind::Upstream),
            (502, ErrorKind::Upstream),
            (408, ErrorKind::Timeout),
            (401, ErrorKind::AuthExpired),
            (403, ErrorKind::Rejected),
            (404, ErrorKind::Rejected),
            (422, ErrorKind::Rejected),
            (302, ErrorKind::Rejected),
        ];
        for (status, kind) in cases {
            assert_eq!(fail(status, &[]).kind, kind, "{status}");
        }
    }

    #[test]
    fn a_limited_503_or_403_is_rate_limited() {
        assert_eq!(
            fail(503, &[("Retry-After", "5")]).kind,
            ErrorKind::RateLimited
        );
        let ietf = [("RateLimit", "limit=100, remaining=0, reset=30")];
        assert_eq!(fail(503, &ietf).retry_after, Some(Duration::from_secs(30)));
        assert_eq!(fail(503, &ietf).kind, ErrorKind::RateLimited);
        let github = [
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1700000042"),
        ];
        let err = fail(403, &github);
        assert_eq!(err.kind, ErrorKind::RateLimited);
        assert_eq!(err.retry_after, Some(Duration::from_secs(42)));
        assert_eq!(
            fail(403, &[("Retry-After", "60")]).kind,
            ErrorKind::RateLimited
        );
        // Limit headers on every response do not make an outage a rate limit.
        let quota_left = [
            ("x-ratelimit-remaining", "4999"),
            ("x-ratelimit-reset", "1700003600"),
        ];
        assert_eq!(fail(503, &quota_left).kind, ErrorKind::Upstream);
        assert_eq!(fail(503, &quota_left).retry_after, None);
        assert_eq!(fail(403, &quota_left).kind, ErrorKind::Rejected);
    }

    #[test]
    fn retry_after_is_read_in_both_forms() {
        let seconds = fail(429, &[("Retry-After", " 3 ")]);
        assert_eq!(seconds.retry_after, Some(Duration::from_secs(3)));
        let date = httpdate::fmt_http_date(at(NOW + 120));
        assert_eq!(
            fail(429, &[("Retry-After", &date)]).retry_after,
            Some(Duration::from_secs(120))
        );
        let past = httpdate::fmt_http_date(at(NOW - 120));
        assert_eq!(
            fail(429, &[("Retry-After", &past)]).retry_after,
            Some(Duration::ZERO)
        );
        assert_eq!(fail(429, &[("Retry-After", "soon")]).retry_after, None);
        assert_eq!(fail(429, &[("Retry-After", "-3")]).retry_after, None);
    }

    #[test]
    fn reset_headers_give_the_wait_of_a_rate_limit() {
        let cases: [(&str, &str, u64); 5] = [
            ("RateLimit", "limit=100, remaining=0, reset=30", 30),
            ("RateLimit", "\"default\";r=0;t=45", 45),
            ("RateLimit-Reset", "12", 12),
            ("X-RateLimit-Reset", "7", 7),
            ("X-RateLimit-Reset", "1700000010", 10),
        ];
        for (name, value, seconds) in cases {
            let err = fail(429, &[(name, value)]);
            assert_eq!(
                err.retry_after,
                Some(Duration::from_secs(seconds)),
                "{name}: {value}"
            );
        }
        let both = fail(429, &[("Retry-After", "2"), ("RateLimit-Reset", "50")]);
        assert_eq!(both.retry_after, Some(Duration::from_secs(2)));
    }

    #[test]
    fn waits_are_capped_and_only_kept_on_retryable_failures() {
        let huge = fail(429, &[("Retry-After", "99999999999999999999999")]);
        assert_eq!(huge.retry_after, Some(MAX_RETRY_AFTER));
        assert_eq!(
            fail(500, &[("Retry-After", "4")]).retry_after,
            Some(Duration::from_secs(4))
        );
        assert_eq!(fail(500, &[("RateLimit-Reset", "4")]).retry_after, None);
        assert_eq!(fail(404, &[("Retry-After", "4")]).retry_after, None);
    }

    #[test]
    fn the_message_names_the_status_and_quotes_the_body() {
        let err = failure(
            &response(429, &[("Retry-After", "3")], "slow\r\ndown\u{1b}"),
            &Redactor::default(),
            at(NOW),
        );
        assert_eq!(
            err.message,
            "the provider answered 429 Too Many Requests and asked to wait 3s: slow\\r\\ndown\\u{1b}"
        );
        assert_eq!(err.status, Some(429));
        let err = failure(&response(599, &[], ""), &Redactor::default(), at(NOW));
        assert_eq!(err.message, "the provider answered 599");
    }

    #[test]
    fn the_excerpt_is_cut_after_redaction() {
        let long = "x".repeat(1000);
        assert_eq!(
            excerpt(long.as_bytes(), &Redactor::default())
                .chars()
                .count(),
            EXCERPT_CHARS
        );

        // A secret straddling the cut is not left half visible.
        let secret = "abcdefghijklmnopqrstuvwxyz0123456789";
        let mut redactor = Redactor::default();
        redactor.add(secret);
        let body = format!("{}{secret}", "y".repeat(EXCERPT_CHARS - 10));
        let cut = excerpt(body.as_bytes(), &redactor);
        assert!(!cut.contains("abcdefghi"), "{cut}");
        assert!(cut.chars().count() <= EXCERPT_CHARS);
    }

    #[test]
    fn the_excerpt_survives_multibyte_and_invalid_utf8() {
        let body = "é".repeat(400);
        assert_eq!(
            excerpt(body.as_bytes(), &Redactor::default())
                .chars()
                .count(),
            EXCERPT_CHARS
        );
        assert_eq!(
            excerpt(&[0xff, b'o', b'k'], &Redactor::default()),
            "\u{fffd}ok"
        );
    }
}
