//! The bounds of every name the control plane keeps, written once: the rules check them
//! before a row is written, on both stores alike, and the HTTP server checks the same
//! functions first to name the request's field in its answer.
//!
//! Each check returns the rule the value breaks, phrased to follow a field's name
//! ("`name` has …").

use std::time::Duration;

/// The longest name of a workspace, flow, API key or workflow, in characters.
pub const NAME_MAX_CHARS: usize = 100;
/// The longest name a catalog shows (a connector's display name), in characters.
pub const DISPLAY_NAME_MAX_CHARS: usize = 200;
/// The longest flow description, in characters.
pub const DESCRIPTION_MAX_CHARS: usize = 2000;
/// The longest email address, in bytes (RFC 5321's path limit, less the brackets).
pub const EMAIL_MAX_BYTES: usize = 254;
/// The longest tenant slug: a DNS label.
pub const SLUG_MAX_CHARS: usize = 63;
/// The longest window in which a hook answers a repeated body as a duplicate.
pub const MAX_DEDUPE_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
/// The dedupe window of a GitHub hook created without one: GitHub signs the body only, so a
/// captured delivery could otherwise be replayed under a fresh delivery id.
pub const GITHUB_DEDUPE_WINDOW: Duration = Duration::from_secs(5 * 60);

/// What a value must be, when it is not.
pub type Check = Result<(), &'static str>;

/// Names of workspaces, flows, API keys and workflows: 1 to 100 characters, not all
/// blank, without control characters or the invisible ones that reorder text.
pub fn name(value: &str) -> Check {
    const RULE: &str = "has 1 to 100 characters, not all blank, without control or \
                        bidirectional-formatting characters";
    let ok = !value.trim().is_empty()
        && value.chars().count() <= NAME_MAX_CHARS
        && !value.chars().any(|c| c.is_control() || is_bidi_control(c));
    ok.then_some(()).ok_or(RULE)
}

/// Names a catalog shows (a connector's display name): 1 to 200 characters, not all blank,
/// without control or bidirectional-formatting characters.
pub fn display_name(value: &str) -> Check {
    const RULE: &str = "has 1 to 200 characters, not all blank, without control or \
                        bidirectional-formatting characters";
    let ok = !value.trim().is_empty()
        && value.chars().count() <= DISPLAY_NAME_MAX_CHARS
        && !value.chars().any(|c| c.is_control() || is_bidi_control(c));
    ok.then_some(()).ok_or(RULE)
}

/// A SHA-256 digest as text: 64 lowercase hexadecimal digits.
pub fn sha256_hex(value: &str) -> Check {
    const RULE: &str = "is 64 lowercase hexadecimal digits (a SHA-256 digest)";
    let ok = value.len() == 64
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ok.then_some(()).ok_or(RULE)
}

/// Flow descriptions: up to 2,000 characters; line breaks and tabs are allowed, other
/// control characters and bidirectional formatting are not.
pub fn description(value: &str) -> Check {
    const RULE: &str = "has at most 2000 characters, without control characters other than \
                        line breaks and tabs, nor bidirectional-formatting characters";
    let allowed = |c: char| matches!(c, '\n' | '\r' | '\t');
    let ok = value.chars().count() <= DESCRIPTION_MAX_CHARS
        && !value
            .chars()
            .any(|c| (c.is_control() && !allowed(c)) || is_bidi_control(c));
    ok.then_some(()).ok_or(RULE)
}

/// Email addresses: at most 254 bytes, `local@domain` with a dot in the domain, no
/// whitespace or control characters. Deliberately loose otherwise: nothing is mailed here.
pub fn email(value: &str) -> Check {
    const RULE: &str = "is an address like name@example.com, at most 254 bytes, without \
                        spaces or control characters";
    let shaped = matches!(value.split_once('@'), Some((local, domain))
        if !local.is_empty() && domain.contains('.') && !domain.contains('@')
            && !domain.starts_with('.') && !domain.ends_with('.'));
    let ok = shaped
        && value.len() <= EMAIL_MAX_BYTES
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || is_bidi_control(c));
    ok.then_some(()).ok_or(RULE)
}

/// Tenant slugs: 1 to 63 of `a`–`z`, `0`–`9` and `-`, usable in a host name or a path.
pub fn tenant_slug(value: &str) -> Check {
    const RULE: &str = "has 1 to 63 characters among a-z, 0-9 and -";
    let ok = (1..=SLUG_MAX_CHARS).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then_some(()).ok_or(RULE)
}

/// A hook's dedupe window: whole seconds, at most 24 hours (zero turns dedupe off).
pub fn dedupe_window(window: Duration) -> Check {
    const RULE: &str = "is a whole number of seconds up to 24h, such as \"5m\" (\"0s\" is off)";
    let ok = window <= MAX_DEDUPE_WINDOW && window.subsec_nanos() == 0;
    ok.then_some(()).ok_or(RULE)
}

/// The characters that reorder how text displays (the "Trojan Source" set): a name holding
/// one can show as another name.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Refuses `value` as [`Error::Invalid`](crate::Error::Invalid) naming `what`, for the
/// rules' own checks.
pub(crate) fn require(what: &str, check: Check) -> crate::Result<()> {
    check.map_err(|rule| crate::Error::Invalid(format!("the {what} {rule}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["main", "crab 🦀", "é", &"x".repeat(100)] {
            assert_eq!(name(ok), Ok(()), "{ok:?}");
        }
        for bad in [
            "",
            "   ",
            "a\0b",
            "a\nb",
            "a\u{1b}[1m",
            "abc\u{202e}fed",
            &"x".repeat(101),
        ] {
            assert!(name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn descriptions() {
        for ok in ["", "two\nlines\tand a tab", &"x".repeat(2000)] {
            assert_eq!(description(ok), Ok(()), "{ok:?}");
        }
        for bad in ["a\0b", "a\u{7}", "\u{2067}x", &"x".repeat(2001)] {
            assert!(description(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn display_names_and_digests() {
        for ok in ["GitHub", &"x".repeat(200)] {
            assert_eq!(display_name(ok), Ok(()), "{ok:?}");
        }
        for bad in ["", " ", "a\nb", "a\u{202e}b", &"x".repeat(201)] {
            assert!(display_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(sha256_hex(&"0a".repeat(32)), Ok(()));
        for bad in ["", &"0A".repeat(32), &"0a".repeat(31), &"g".repeat(64)] {
            assert!(sha256_hex(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(email("ada@example.com"), Ok(()));
        let long = format!("{}@example.com", "a".repeat(243));
        assert_eq!(long.len(), 255);
        for bad in [
            "",
            "ada",
            "ada@localhost",
            "@example.com",
            "a b@example.com",
            "a@b@c.d",
            &long,
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn slugs_and_windows() {
        assert_eq!(tenant_slug("acme-2"), Ok(()));
        for bad in ["", "Acme", "a_b", "ä", &"a".repeat(64)] {
            assert!(tenant_slug(bad).is_err(), "{bad:?}");
        }
        assert_eq!(dedupe_window(MAX_DEDUPE_WINDOW), Ok(()));
        assert_eq!(dedupe_window(Duration::ZERO), Ok(()));
        assert!(dedupe_window(MAX_DEDUPE_WINDOW + Duration::from_secs(1)).is_err());
        assert!(dedupe_window(Duration::from_millis(1500)).is_err());
    }
}
