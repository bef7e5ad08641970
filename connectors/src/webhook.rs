//! Signature verification for inbound webhooks: the schemes a webhook trigger's manifest
//! names (`signature`), used by the intake of every webhook.
//!
//! Two schemes are supported:
//!
//! * [Standard Webhooks 1.0](https://www.standardwebhooks.com): HMAC-SHA256 over
//!   `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the base64-decoded part of a
//!   `whsec_…` secret, sent as a space-separated list of `v1,<base64>` entries in
//!   `webhook-signature`. The timestamp must be within [`TIMESTAMP_TOLERANCE_SECS`] of
//!   the server clock, which bounds how long a captured delivery can be replayed.
//! * GitHub: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 over the raw body keyed
//!   with the secret's raw bytes.
//!
//! Both accept several secrets so that a secret can be rotated without dropping
//! deliveries: a delivery is valid when any signature matches any configured secret.
//!
//! Everything here is pure (no I/O, the clock is a parameter) so the HTTP layer owns
//! header extraction and error rendering, and tests need no server.
//!
//! Security notes:
//! * signatures are compared with [`subtle::ConstantTimeEq`] after an explicit length
//!   check, so a truncated or empty signature is refused instead of matching a prefix;
//! * [`VerifyError`] messages never contain a secret, a key or an expected signature,
//!   so they are safe to log and to return to the sender.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far (in seconds, either direction) a Standard Webhooks timestamp may be from the
/// server clock. The spec recommends five minutes: long enough for clock drift and
/// sender retries in flight, short enough to limit replays.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 300;

/// Name of the Standard Webhooks message id header.
pub const STANDARD_ID_HEADER: &str = "webhook-id";
/// Name of the Standard Webhooks timestamp header.
pub const STANDARD_TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// Name of the Standard Webhooks signature header.
pub const STANDARD_SIGNATURE_HEADER: &str = "webhook-signature";
/// Name of GitHub's SHA-256 signature header.
pub const GITHUB_SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// Prefix of Standard Webhooks secrets; the rest is the base64-encoded key.
const STANDARD_SECRET_PREFIX: &str = "whsec_";
/// The only signature version Standard Webhooks 1.0 defines (symmetric HMAC-SHA256).
const STANDARD_SIGNATURE_VERSION: &str = "v1";
/// Prefix of GitHub's `X-Hub-Signature-256` value.
const GITHUB_SIGNATURE_PREFIX: &str = "sha256=";
/// Bounds on a decoded Standard Webhooks key: the spec asks for 24..=64 random bytes.
const STANDARD_KEY_LEN: std::ops::RangeInclusive<usize> = 24..=64;
/// Bounds on a GitHub secret, in bytes: GitHub takes any string, but a short one can be
/// guessed offline from one signed delivery, and a huge one is only a burden to store and
/// to hash on every delivery.
pub const GITHUB_SECRET_LEN: std::ops::RangeInclusive<usize> = 16..=256;

/// Standard-alphabet base64 that accepts input with or without `=` padding: secrets and
/// signatures produced by other tooling are not always padded, and padding carries no
/// information. Non-canonical trailing bits are still rejected.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

type HmacSha256 = Hmac<Sha256>;

/// Why a webhook delivery (or a secret) was refused.
///
/// Each variant maps to a stable slug via [`VerifyError::problem_type`] for the HTTP
/// problem document. Messages name headers but never include secrets or signatures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A required header is absent or empty. Carries the (lower-case) header name.
    #[error("missing required header `{0}`")]
    MissingHeader(&'static str),
    /// A header is present but cannot be parsed. Carries the (lower-case) header name.
    #[error("malformed header `{0}`")]
    MalformedHeader(&'static str),
    /// The Standard Webhooks timestamp is too far from the server clock.
    /// `skew_secs` is `now - timestamp`: positive when the delivery is in the past.
    #[error(
        "webhook timestamp is {skew_secs} s away from server time \
         (tolerance {TIMESTAMP_TOLERANCE_SECS} s)"
    )]
    TimestampOutOfWindow {
        /// `now - timestamp`, in seconds.
        skew_secs: i64,
    },
    /// The signatures are well formed but none matches any configured secret.
    #[error("no signature matches any configured secret")]
    NoMatchingSignature,
    /// A configured (or proposed) secret is unusable: not decodable, wrong length, or
    /// there is no secret at all.
    #[error(
        "webhook secret is not usable: Standard Webhooks secrets must be base64 \
         (optionally prefixed with `whsec_`) of 24 to 64 bytes, GitHub secrets 16 to 256 bytes \
         without control characters"
    )]
    BadSecret,
}

impl VerifyError {
    /// Stable short slug identifying the kind of failure, for the problem `type` URI.
    /// These strings are part of the public API: do not change them.
    pub fn problem_type(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "missing-signature-header",
            Self::MalformedHeader(_) => "malformed-signature",
            Self::TimestampOutOfWindow { .. } => "timestamp-out-of-window",
            Self::NoMatchingSignature => "invalid-signature",
            Self::BadSecret => "bad-secret",
        }
    }
}

/// The Standard Webhooks headers of a delivery, as raw header values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StandardHeaders<'a> {
    /// `webhook-id`.
    pub id: Option<&'a str>,
    /// `webhook-timestamp` (unix seconds).
    pub timestamp: Option<&'a str>,
    /// `webhook-signature` (space-separated `v1,<base64>` entries).
    pub signature: Option<&'a str>,
}

// ---------------------------------------------------------------------------------------
// Standard Webhooks
// ---------------------------------------------------------------------------------------

/// Verifies a Standard Webhooks delivery against every configured secret.
///
/// Checks, in order: headers present; timestamp numeric and within
/// [`TIMESTAMP_TOLERANCE_SECS`] of `now` (inclusive); secrets decodable; some `v1`
/// signature matches some secret. Entries of other versions (`v1a`, `v2`, …) are ignored,
/// as the spec requires. Refuses with [`VerifyError::BadSecret`] if `secrets` is empty or
/// any secret cannot be decoded: a broken configuration should fail loudly and
/// deterministically rather than depend on which secret the sender happened to use.
pub fn verify_standard(
    secrets: &[String],
    headers: &StandardHeaders<'_>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), VerifyError> {
    let id = required(headers.id, STANDARD_ID_HEADER)?;
    let timestamp_raw = required(headers.timestamp, STANDARD_TIMESTAMP_HEADER)?;
    let signature_header = required(headers.signature, STANDARD_SIGNATURE_HEADER)?;

    let timestamp = parse_timestamp(timestamp_raw)?;
    check_window(timestamp, now)?;
    let keys = decode_standard_secrets(secrets)?;
    let candidates = parse_standard_signatures(signature_header)?;

    // The signed content uses the timestamp exactly as sent, not a re-rendering of the
    // parsed number, so that e.g. a leading `+` still verifies against what was signed.
    let expected: Vec<[u8; 32]> = keys
        .iter()
        .map(|key| standard_mac(key, id, timestamp_raw, body))
        .collect();
    if any_match(&expected, &candidates) {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

/// Signs a Standard Webhooks message, returning one `v1,<base64>` signature entry.
///
/// Used by tests and by the dev command's sample `curl`.
pub fn sign_standard(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, VerifyError> {
    let key = decode_standard_secret(secret)?;
    let mac = standard_mac(&key, id, &timestamp.to_string(), body);
    Ok(format!(
        "{STANDARD_SIGNATURE_VERSION},{}",
        BASE64.encode(mac)
    ))
}

/// HMAC-SHA256 over `{id}.{timestamp}.{body}`, fed in pieces to avoid copying the body.
fn standard_mac(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> [u8; 32] {
    hmac_sha256(
        key,
        &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    )
}

/// Parses `webhook-timestamp` as integer unix seconds.
fn parse_timestamp(raw: &str) -> Result<i64, VerifyError> {
    raw.parse::<i64>()
        .map_err(|_| VerifyError::MalformedHeader(STANDARD_TIMESTAMP_HEADER))
}

/// Refuses timestamps more than the tolerance away from `now`, in either direction:
/// old ones limit replay, future ones would otherwise extend the replay window.
fn check_window(timestamp: i64, now: DateTime<Utc>) -> Result<(), VerifyError> {
    // Saturating: a hostile timestamp near i64::MIN/MAX must not overflow.
    let skew_secs = now.timestamp().saturating_sub(timestamp);
    if skew_secs.unsigned_abs() > TIMESTAMP_TOLERANCE_SECS.unsigned_abs() {
        return Err(VerifyError::TimestampOutOfWindow { skew_secs });
    }
    Ok(())
}

/// Decodes every configured secret; see [`verify_standard`] for why one bad secret
/// (or none at all) refuses the delivery.
fn decode_standard_secrets(secrets: &[String]) -> Result<Vec<Vec<u8>>, VerifyError> {
    if secrets.is_empty() {
        return Err(VerifyError::BadSecret);
    }
    secrets.iter().map(|s| decode_standard_secret(s)).collect()
}

/// Decodes a `whsec_<base64>` secret (or bare base64) to its HMAC key. An empty key is
/// refused: HMAC would accept it, but it is a key everyone knows.
fn decode_standard_secret(secret: &str) -> Result<Vec<u8>, VerifyError> {
    let encoded = secret
        .strip_prefix(STANDARD_SECRET_PREFIX)
        .unwrap_or(secret);
    match BASE64.decode(encoded) {
        Ok(key) if !key.is_empty() => Ok(key),
        _ => Err(VerifyError::BadSecret),
    }
}

/// Extracts the decoded `v1` signatures from `webhook-signature`.
///
/// Entries of other versions are skipped (the spec lets senders add schemes we do not
/// know). A `v1` entry that is empty or not base64 cannot be a signature from a holder
/// of the secret, so the header is reported malformed. A decodable `v1` entry of the
/// wrong length is kept: it simply fails the length check in [`ct_eq`].
fn parse_standard_signatures(header: &str) -> Result<Vec<Vec<u8>>, VerifyError> {
    let malformed = VerifyError::MalformedHeader(STANDARD_SIGNATURE_HEADER);
    // A header with no entries at all is malformed; one with only unknown versions is
    // well formed but carries nothing we can check, which is a signature mismatch.
    if header.split_ascii_whitespace().next().is_none() {
        return Err(malformed);
    }
    let mut signatures = Vec::new();
    for entry in header.split_ascii_whitespace() {
        let (version, encoded) = entry.split_once(',').ok_or_else(|| malformed.clone())?;
        if version != STANDARD_SIGNATURE_VERSION {
            continue;
        }
        match BASE64.decode(encoded) {
            Ok(sig) if !sig.is_empty() => signatures.push(sig),
            _ => return Err(malformed),
        }
    }
    Ok(signatures)
}

// ---------------------------------------------------------------------------------------
// GitHub
// ---------------------------------------------------------------------------------------

/// Verifies GitHub's `X-Hub-Signature-256` (`sha256=<hex>`) against every configured
/// secret. Refuses with [`VerifyError::BadSecret`] if `secrets` is empty or any secret
/// is empty, for the same reason as [`verify_standard`].
pub fn verify_github(
    secrets: &[String],
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), VerifyError> {
    let header = required(signature, GITHUB_SIGNATURE_HEADER)?;
    let candidate = parse_github_signature(header)?;
    if secrets.is_empty() || secrets.iter().any(String::is_empty) {
        return Err(VerifyError::BadSecret);
    }
    let expected: Vec<[u8; 32]> = secrets
        .iter()
        .map(|secret| hmac_sha256(secret.as_bytes(), &[body]))
        .collect();
    if any_match(&expected, std::slice::from_ref(&candidate)) {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

/// Signs a body the way GitHub does, returning the full `sha256=<hex>` header value.
pub fn sign_github(secret: &str, body: &[u8]) -> String {
    let mac = hmac_sha256(secret.as_bytes(), &[body]);
    format!("{GITHUB_SIGNATURE_PREFIX}{}", hex::encode(mac))
}

/// Decodes the hex digest after `sha256=`. Only the lower-case prefix is accepted, as
/// GitHub sends it; the hex itself may be either case.
fn parse_github_signature(header: &str) -> Result<Vec<u8>, VerifyError> {
    let malformed = VerifyError::MalformedHeader(GITHUB_SIGNATURE_HEADER);
    let encoded = header
        .strip_prefix(GITHUB_SIGNATURE_PREFIX)
        .ok_or_else(|| malformed.clone())?;
    match hex::decode(encoded) {
        Ok(sig) if !sig.is_empty() => Ok(sig),
        _ => Err(malformed),
    }
}

// ---------------------------------------------------------------------------------------
// Secrets at hook creation
// ---------------------------------------------------------------------------------------

/// Checks a secret proposed for a new hook, so bad secrets are refused at creation
/// rather than failing every delivery later.
///
/// Standard Webhooks: must decode (with or without `whsec_`) to 24..=64 bytes, the
/// range the spec asks for. GitHub: [`GITHUB_SECRET_LEN`] bytes without control
/// characters. Deliveries still verify against a shorter GitHub secret stored before this
/// bound: only new secrets are held to it.
pub fn validate_secret(scheme_is_standard: bool, secret: &str) -> Result<(), VerifyError> {
    let ok = if scheme_is_standard {
        decode_standard_secret(secret).is_ok_and(|key| STANDARD_KEY_LEN.contains(&key.len()))
    } else {
        GITHUB_SECRET_LEN.contains(&secret.len()) && !secret.chars().any(char::is_control)
    };
    if ok {
        Ok(())
    } else {
        Err(VerifyError::BadSecret)
    }
}

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

/// Treats an empty header value like an absent one: neither can carry a signature, and
/// the sender should be told the header is missing rather than malformed.
fn required<'a>(value: Option<&'a str>, name: &'static str) -> Result<&'a str, VerifyError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or(VerifyError::MissingHeader(name))
}

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length (long ones are hashed, short ones padded), so
    // `new_from_slice` cannot fail for Hmac<Sha256>; the crate documents this.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// True if any candidate equals any expected MAC. Every pair is compared (no early exit)
/// so timing does not reveal which secret or which entry matched.
fn any_match(expected: &[[u8; 32]], candidates: &[Vec<u8>]) -> bool {
    let mut matched = false;
    for mac in expected {
        for candidate in candidates {
            matched |= ct_eq(mac, candidate);
        }
    }
    matched
}

/// Constant-time equality that refuses different lengths up front. `subtle` returns
/// "not equal" for unequal lengths too, but the explicit check documents that a
/// truncated signature is never compared as a prefix.
fn ct_eq(expected: &[u8], candidate: &[u8]) -> bool {
    expected.len() == candidate.len() && bool::from(expected.ct_eq(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Published example from the Standard Webhooks spec.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1_614_265_330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    const ID: &str = "msg_test";
    const TS: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"hello":"world"}"#;

    fn at(ts: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(ts, 0).expect("valid timestamp")
    }

    /// A well-formed Standard Webhooks secret whose key is 32 copies of `byte`.
    fn std_secret(byte: u8) -> String {
        format!("whsec_{}", BASE64.encode([byte; 32]))
    }

    fn headers<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> StandardHeaders<'a> {
        StandardHeaders {
            id: Some(id),
            timestamp: Some(ts),
            signature: Some(sig),
        }
    }

    /// Signs `BODY` with `secret` at `TS` and verifies with `configured` at `now`.
    fn check_std(secret: &str, configured: &[String], now: i64) -> Result<(), VerifyError> {
        let sig = sign_standard(secret, ID, TS, BODY).unwrap();
        let ts = TS.to_string();
        verify_standard(configured, &headers(ID, &ts, &sig), BODY, at(now))
    }

    #[test]
    fn spec_known_answer_verifies() {
        let secrets = [SPEC_SECRET.to_owned()];
        let ts = SPEC_TS.to_string();
        let h = headers(SPEC_ID, &ts, SPEC_SIG);
        assert_eq!(
            verify_standard(&secrets, &h, SPEC_BODY, at(SPEC_TS)),
            Ok(())
        );
        assert_eq!(
            sign_standard(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY).unwrap(),
            SPEC_SIG
        );
    }

    #[test]
    fn secret_without_prefix_is_raw_base64() {
        let bare = SPEC_SECRET.strip_prefix("whsec_").unwrap().to_owned();
        let ts = SPEC_TS.to_string();
        let h = headers(SPEC_ID, &ts, SPEC_SIG);
        assert_eq!(verify_standard(&[bare], &h, SPEC_BODY, at(SPEC_TS)), Ok(()));
    }

    #[test]
    fn valid_signature() {
        let s = std_secret(1);
        assert_eq!(check_std(&s, std::slice::from_ref(&s), TS), Ok(()));
    }

    #[test]
    fn wrong_secret_is_refused() {
        assert_eq!(
            check_std(&std_secret(1), &[std_secret(2)], TS),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn tampered_body_is_refused() {
        let s = std_secret(1);
        let sig = sign_standard(&s, ID, TS, BODY).unwrap();
        let ts = TS.to_string();
        let r = verify_standard(&[s], &headers(ID, &ts, &sig), b"{}", at(TS));
        assert_eq!(r, Err(VerifyError::NoMatchingSignature));
    }

    #[test]
    fn empty_v1_signature_is_refused() {
        let ts = TS.to_string();
        for sig in ["v1,", "v1, v2,abc"] {
            let r = verify_standard(&[std_secret(1)], &headers(ID, &ts, sig), BODY, at(TS));
            assert_eq!(r, Err(VerifyError::MalformedHeader("webhook-signature")));
        }
    }

    #[test]
    fn truncated_signature_is_refused() {
        let s = std_secret(1);
        let full = sign_standard(&s, ID, TS, BODY).unwrap();
        let raw = BASE64.decode(full.strip_prefix("v1,").unwrap()).unwrap();
        let ts = TS.to_string();
        // Valid base64 of a prefix of the real MAC: must fail the length check, not
        // match as a prefix.
        for len in [1, 16, 31] {
            let sig = format!("v1,{}", BASE64.encode(&raw[..len]));
            let r = verify_standard(
                std::slice::from_ref(&s),
                &headers(ID, &ts, &sig),
                BODY,
                at(TS),
            );
            assert_eq!(r, Err(VerifyError::NoMatchingSignature), "len {len}");
        }
        // Chopped text that is no longer valid base64.
        let chopped = &full[..full.len() - 3];
        let r = verify_standard(&[s], &headers(ID, &ts, chopped), BODY, at(TS));
        assert!(r.is_err());
    }

    #[test]
    fn other_version_only_is_refused() {
        let s = std_secret(1);
        let v1 = sign_standard(&s, ID, TS, BODY).unwrap();
        // Even the correct MAC under another version tag must not be accepted.
        let v2 = v1.replacen("v1,", "v2,", 1);
        let ts = TS.to_string();
        let r = verify_standard(&[s], &headers(ID, &ts, &v2), BODY, at(TS));
        assert_eq!(r, Err(VerifyError::NoMatchingSignature));
    }

    #[test]
    fn second_of_several_signatures_matches() {
        let s = std_secret(1);
        let wrong = sign_standard(&std_secret(9), ID, TS, BODY).unwrap();
        let right = sign_standard(&s, ID, TS, BODY).unwrap();
        let header = format!("v2,abc {wrong} {right}");
        let ts = TS.to_string();
        let r = verify_standard(&[s], &headers(ID, &ts, &header), BODY, at(TS));
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn rotated_secrets() {
        let (old, new) = (std_secret(1), std_secret(2));
        // Old secret still configured alongside the new one: still accepted.
        assert_eq!(check_std(&old, &[new.clone(), old.clone()], TS), Ok(()));
        assert_eq!(check_std(&new, &[new.clone(), old.clone()], TS), Ok(()));
        // Old secret removed: refused.
        assert_eq!(
            check_std(&old, &[new], TS),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn timestamp_window_is_inclusive_300s() {
        let s = std_secret(1);
        let cfg = [s.clone()];
        assert_eq!(check_std(&s, &cfg, TS + 300), Ok(()));
        assert_eq!(check_std(&s, &cfg, TS - 300), Ok(()));
        assert_eq!(
            check_std(&s, &cfg, TS + 301),
            Err(VerifyError::TimestampOutOfWindow { skew_secs: 301 })
        );
        assert_eq!(
            check_std(&s, &cfg, TS - 301),
            Err(VerifyError::TimestampOutOfWindow { skew_secs: -301 })
        );
    }

    #[test]
    fn extreme_timestamp_does_not_overflow() {
        let ts = i64::MIN.to_string();
        let r = verify_standard(&[std_secret(1)], &headers(ID, &ts, "v1,AA=="), BODY, at(TS));
        assert!(matches!(r, Err(VerifyError::TimestampOutOfWindow { .. })));
    }

    #[test]
    fn non_numeric_timestamp_is_malformed() {
        for ts in ["abc", "1700000000.5", " 1700000000", "0x10"] {
            let r = verify_standard(&[std_secret(1)], &headers(ID, ts, "v1,AA=="), BODY, at(TS));
            assert_eq!(r, Err(VerifyError::MalformedHeader("webhook-timestamp")));
        }
    }

    #[test]
    fn missing_headers() {
        let ts = TS.to_string();
        let full = headers(ID, &ts, "v1,AA==");
        let cases = [
            (StandardHeaders { id: None, ..full }, "webhook-id"),
            (
                StandardHeaders {
                    id: Some(""),
                    ..full
                },
                "webhook-id",
            ),
            (
                StandardHeaders {
                    timestamp: None,
                    ..full
                },
                "webhook-timestamp",
            ),
            (
                StandardHeaders {
                    signature: None,
                    ..full
                },
                "webhook-signature",
            ),
            (StandardHeaders::default(), "webhook-id"),
        ];
        for (h, name) in cases {
            let r = verify_standard(&[std_secret(1)], &h, BODY, at(TS));
            assert_eq!(r, Err(VerifyError::MissingHeader(name)));
        }
    }

    #[test]
    fn malformed_signature_header() {
        let ts = TS.to_string();
        for sig in ["   ", "v1", "v1,!!!notbase64", "garbage"] {
            let r = verify_standard(&[std_secret(1)], &headers(ID, &ts, sig), BODY, at(TS));
            assert_eq!(
                r,
                Err(VerifyError::MalformedHeader("webhook-signature")),
                "{sig:?}"
            );
        }
    }

    #[test]
    fn unusable_configured_secrets() {
        let s = std_secret(1);
        assert_eq!(check_std(&s, &[], TS), Err(VerifyError::BadSecret));
        assert_eq!(
            check_std(&s, &[s.clone(), "whsec_***".to_owned()], TS),
            Err(VerifyError::BadSecret)
        );
        assert_eq!(
            sign_standard("whsec_", ID, TS, BODY),
            Err(VerifyError::BadSecret)
        );
    }

    #[test]
    fn github_valid() {
        let sig = sign_github("It's a Secret to Everybody", b"Hello, World!");
        // GitHub's documented example.
        assert_eq!(
            sig,
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        let secrets = ["It's a Secret to Everybody".to_owned()];
        assert_eq!(
            verify_github(&secrets, Some(&sig), b"Hello, World!"),
            Ok(())
        );
        // Upper-case hex is the same digest.
        let upper = format!("sha256={}", sig["sha256=".len()..].to_uppercase());
        assert_eq!(
            verify_github(&secrets, Some(&upper), b"Hello, World!"),
            Ok(())
        );
    }

    #[test]
    fn github_wrong_secret_and_rotation() {
        let sig = sign_github("old", BODY);
        assert_eq!(
            verify_github(&["new".to_owned()], Some(&sig), BODY),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            verify_github(&["new".to_owned(), "old".to_owned()], Some(&sig), BODY),
            Ok(())
        );
    }

    #[test]
    fn github_malformed_and_missing() {
        let secrets = ["s".to_owned()];
        let sig = sign_github("s", BODY);
        let hex_only = sig.strip_prefix("sha256=").unwrap();
        let malformed = Err(VerifyError::MalformedHeader("x-hub-signature-256"));
        // Missing `sha256=` prefix, or the SHA-1 header's prefix.
        assert_eq!(verify_github(&secrets, Some(hex_only), BODY), malformed);
        let sha1 = format!("sha1={hex_only}");
        assert_eq!(verify_github(&secrets, Some(&sha1), BODY), malformed);
        // Non-hex, odd-length hex, empty digest.
        assert_eq!(verify_github(&secrets, Some("sha256=zz"), BODY), malformed);
        let odd = &sig[..sig.len() - 1];
        assert_eq!(verify_github(&secrets, Some(odd), BODY), malformed);
        assert_eq!(verify_github(&secrets, Some("sha256="), BODY), malformed);
        // Missing header (absent or empty).
        let missing = Err(VerifyError::MissingHeader("x-hub-signature-256"));
        assert_eq!(verify_github(&secrets, None, BODY), missing);
        assert_eq!(verify_github(&secrets, Some(""), BODY), missing);
    }

    #[test]
    fn github_truncated_hex_is_refused() {
        let secrets = ["s".to_owned()];
        let sig = sign_github("s", BODY);
        // Even-length prefixes decode fine and must fail on length, not prefix-match.
        for keep in [2, 32, 62] {
            let truncated = &sig[.."sha256=".len() + keep];
            assert_eq!(
                verify_github(&secrets, Some(truncated), BODY),
                Err(VerifyError::NoMatchingSignature),
                "{keep} hex chars"
            );
        }
    }

    #[test]
    fn github_unusable_secrets() {
        let sig = sign_github("s", BODY);
        assert_eq!(
            verify_github(&[], Some(&sig), BODY),
            Err(VerifyError::BadSecret)
        );
        assert_eq!(
            verify_github(&["s".to_owned(), String::new()], Some(&sig), BODY),
            Err(VerifyError::BadSecret)
        );
    }

    #[test]
    fn validate_secret_rules() {
        assert_eq!(validate_secret(true, SPEC_SECRET), Ok(()));
        assert_eq!(validate_secret(true, &std_secret(1)), Ok(()));
        let bare = BASE64.encode([3u8; 64]);
        assert_eq!(validate_secret(true, &bare), Ok(()));
        for bad in [
            String::new(),
            "whsec_".to_owned(),
            "whsec_not base64!".to_owned(),
            format!("whsec_{}", BASE64.encode([1u8; 23])),
            format!("whsec_{}", BASE64.encode([1u8; 65])),
        ] {
            assert_eq!(
                validate_secret(true, &bad),
                Err(VerifyError::BadSecret),
                "{bad:?}"
            );
        }
        assert_eq!(validate_secret(false, "sixteen bytes ok"), Ok(()));
        assert_eq!(validate_secret(false, &"x".repeat(256)), Ok(()));
        for bad in [
            String::new(),
            "a".to_owned(),
            "x".repeat(257),
            "sixteen\0bytes ok".to_owned(),
        ] {
            assert_eq!(
                validate_secret(false, &bad),
                Err(VerifyError::BadSecret),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn problem_types_are_stable_and_messages_leak_nothing() {
        let cases = [
            (
                VerifyError::MissingHeader("webhook-id"),
                "missing-signature-header",
            ),
            (
                VerifyError::MalformedHeader("webhook-signature"),
                "malformed-signature",
            ),
            (
                VerifyError::TimestampOutOfWindow { skew_secs: 301 },
                "timestamp-out-of-window",
            ),
            (VerifyError::NoMatchingSignature, "invalid-signature"),
            (VerifyError::BadSecret, "bad-secret"),
        ];
        for (err, slug) in cases {
            assert_eq!(err.problem_type(), slug);
        }
        // Messages are built only from header names and numbers; spot-check that a
        // failed verification's message carries neither the secret nor the expected MAC.
        let s = std_secret(7);
        let expected = sign_standard(&s, ID, TS, BODY).unwrap();
        let err = check_std(&std_secret(8), std::slice::from_ref(&s), TS).unwrap_err();
        let msg = err.to_string();
        assert!(
            !msg.contains(&s[6..]) && !msg.contains(&expected[3..]),
            "{msg}"
        );
    }
}
