//! TLS to Postgres over rustls, configured as libpq users expect: `sslmode` and `sslrootcert`
//! in the connection string.
//!
//! `tokio_postgres::Config` knows only `sslmode=disable|prefer|require` and has no
//! `sslrootcert`, so [`split`] takes both out of the connection string before tokio-postgres
//! parses the rest, and [`TlsSettings`] turns them into a tokio-postgres mode and a rustls
//! connector that verifies exactly as much as the mode asks.

use std::error::Error as StdError;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use rustls::{SignatureScheme, crypto};
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{Error, Result};

/// How much TLS a connection asks for: libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS if the server offers it, plain if it refuses.
    Prefer,
    /// TLS, or no connection.
    Require,
    /// TLS with a certificate chain to a trusted CA, whatever host name it names.
    VerifyCa,
    /// TLS with a certificate chain to a trusted CA, for the host connected to.
    VerifyFull,
}

impl SslMode {
    const ALLOWED: &str = "disable, prefer, require, verify-ca, verify-full";

    fn parse(value: &str) -> Result<Self> {
        match value {
            "disable" => Ok(Self::Disable),
            "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "verify-ca" => Ok(Self::VerifyCa),
            "verify-full" => Ok(Self::VerifyFull),
            other => Err(Error::Invalid(format!(
                "sslmode `{other}` is not supported: use one of {}",
                Self::ALLOWED
            ))),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// What the server's certificate is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verification {
    /// Nothing: the connection is encrypted but may be intercepted.
    Nothing,
    /// The chain to a trusted CA, not the host name.
    Chain,
    /// The chain to a trusted CA and the host name.
    ChainAndName,
}

/// The TLS settings of one connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The mode in force, after the default rule.
    pub mode: SslMode,
    /// PEM file of the CAs to trust; `None` trusts the webpki (Mozilla) roots.
    pub root_cert: Option<PathBuf>,
}

impl TlsSettings {
    /// Applies the default rule to what the connection string said.
    ///
    /// Without `sslmode`, a string that names a CA file asks for TLS without saying how much
    /// to verify, so it gets everything (`verify-full`); one with neither stays plain, as
    /// before TLS existed here. libpq would say `prefer` there, which encrypts whenever the
    /// server can but verifies nothing: protection in name only.
    fn new(mode: Option<SslMode>, root_cert: Option<PathBuf>) -> Self {
        let mode = mode.unwrap_or(match root_cert {
            Some(_) => SslMode::VerifyFull,
            None => SslMode::Disable,
        });
        Self { mode, root_cert }
    }

    /// The mode to give tokio-postgres, which only decides whether TLS is negotiated; the
    /// connector decides what is verified.
    pub fn tokio_postgres_mode(&self) -> PgSslMode {
        match self.mode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
        }
    }

    /// As libpq does, a CA file given to `prefer` or `require` is used: the chain is
    /// verified (the host name is not).
    fn verification(&self) -> Verification {
        match self.mode {
            SslMode::Disable => Verification::Nothing,
            SslMode::Prefer | SslMode::Require if self.root_cert.is_none() => Verification::Nothing,
            SslMode::Prefer | SslMode::Require | SslMode::VerifyCa => Verification::Chain,
            SslMode::VerifyFull => Verification::ChainAndName,
        }
    }

    /// A connector for tokio-postgres that verifies what the mode asks, with the `ring`
    /// crypto provider. Reads `sslrootcert` now, so a bad file fails the connect at once.
    pub fn connector(&self) -> Result<MakeRustlsConnect> {
        let provider = Arc::new(crypto::ring::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Invalid(format!("TLS set-up failed: {e}")))?;
        let config = match self.verification() {
            Verification::ChainAndName => builder.with_root_certificates(self.roots()?),
            Verification::Chain => {
                let verifier = NoHostName::new(Some(self.roots()?), algorithms);
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verifier))
            }
            Verification::Nothing => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoHostName::new(None, algorithms))),
        };
        Ok(MakeRustlsConnect::new(config.with_no_client_auth()))
    }

    fn roots(&self) -> Result<RootCertStore> {
        match &self.root_cert {
            Some(path) => load_roots(path),
            None => Ok(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            }),
        }
    }

    /// The error for a failed first connection: when the server's certificate was refused it
    /// says which check refused it and what to change, which a bare handshake error does not.
    pub fn connect_error(&self, err: deadpool_postgres::PoolError) -> Error {
        let refused = match &err {
            deadpool_postgres::PoolError::Backend(e) => certificate_error(e),
            _ => None,
        };
        let Some(refused) = refused else {
            return err.into();
        };
        let why = match refused {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "the server's certificate does not match the host name connected to \
                 (verify-full checks it; verify-ca does not)"
                    .to_owned()
            }
            CertificateError::UnknownIssuer => match &self.root_cert {
                Some(path) => format!(
                    "the server's certificate is not signed by a CA in sslrootcert `{}`",
                    path.display()
                ),
                None => "the server's certificate is not signed by a CA in the webpki roots; \
                         name its CA with sslrootcert"
                    .to_owned(),
            },
            _ => "the server's certificate was refused".to_owned(),
        };
        let message = format!(
            "TLS to Postgres failed under sslmode={}: {why}: {refused}",
            self.mode.as_str()
        );
        Error::database_caused_by(message, err)
    }
}

/// The rustls certificate error somewhere in `err`'s chain of causes.
fn certificate_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a CertificateError> {
    let mut next = Some(err);
    while let Some(current) = next {
        if let Some(rustls::Error::InvalidCertificate(refused)) = current.downcast_ref() {
            return Some(refused);
        }
        // An io::Error's `source` skips the error it wraps, and tokio-rustls wraps rustls's
        // errors in one, so look inside it by hand.
        let wrapped = current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn StdError + 'static));
        next = wrapped.or_else(|| current.source());
    }
    None
}

/// Every certificate in the PEM file at `path`, as trusted roots.
fn load_roots(path: &Path) -> Result<RootCertStore> {
    let invalid = |why: String| Error::Invalid(format!("sslrootcert `{}` {why}", path.display()));
    let pem = std::fs::read(path).map_err(|e| invalid(format!("cannot be read: {e}")))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| invalid(format!("is not valid PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| invalid(format!("holds a certificate that cannot be a CA: {e}")))?;
    }
    if roots.is_empty() {
        return Err(invalid("holds no PEM certificate".to_owned()));
    }
    Ok(roots)
}

/// Verifies the server's certificate chain against `roots` when there are some, and never its
/// host name: `verify-ca`, and `prefer`/`require` (with a CA file, or else nothing at all).
/// The handshake signatures are always checked, so the peer does hold the certificate's key.
#[derive(Debug)]
struct NoHostName {
    roots: Option<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl NoHostName {
    fn new(roots: Option<RootCertStore>, algorithms: WebPkiSupportedAlgorithms) -> Self {
        Self { roots, algorithms }
    }
}

impl ServerCertVerifier for NoHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Takes `sslmode` and `sslrootcert` out of a connection string (a `postgres://` URL or a
/// libpq `key=value` string): returns the rest, for tokio-postgres, and the TLS settings.
/// When a parameter is given twice the last one counts, as in tokio-postgres.
pub fn split(conn: &str) -> Result<(String, TlsSettings)> {
    let (rest, taken) = if is_url(conn) {
        take_from_url(conn)?
    } else {
        take_from_key_values(conn)
    };
    let mut mode = None;
    let mut root_cert = None;
    for (key, value) in taken {
        match key {
            Key::SslMode => mode = Some(SslMode::parse(&value)?),
            Key::SslRootCert if value.is_empty() => {
                return Err(Error::Invalid(
                    "sslrootcert is empty: give the path of a PEM file of CA certificates"
                        .to_owned(),
                ));
            }
            Key::SslRootCert => root_cert = Some(PathBuf::from(value)),
        }
    }
    Ok((rest, TlsSettings::new(mode, root_cert)))
}

/// The parameters [`split`] takes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    SslMode,
    SslRootCert,
}

impl Key {
    fn of(name: &str) -> Option<Self> {
        match name {
            "sslmode" => Some(Self::SslMode),
            "sslrootcert" => Some(Self::SslRootCert),
            _ => None,
        }
    }
}

fn is_url(conn: &str) -> bool {
    conn.starts_with("postgres://") || conn.starts_with("postgresql://")
}

/// `postgres://h/db?a=1&sslmode=require` → (`postgres://h/db?a=1`, [(sslmode, require)]).
fn take_from_url(url: &str) -> Result<(String, Vec<(Key, String)>)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), Vec::new()));
    };
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for pair in query.split('&') {
        match pair
            .split_once('=')
            .and_then(|(k, v)| Some((Key::of(k)?, v)))
        {
            Some((key, value)) => taken.push((key, percent_decode(value)?)),
            None => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, taken))
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays as it is, as in
/// tokio-postgres.
fn percent_decode(value: &str) -> Result<String> {
    let bytes = value.as_bytes();
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
    String::from_utf8(out).map_err(|_| {
        Error::Invalid("a TLS parameter of the Postgres URL is not UTF-8 once decoded".to_owned())
    })
}

/// `host=h sslmode=require` → (`host=h `, [(sslmode, require)]). A string this scan cannot
/// read is left whole, for tokio-postgres to report.
fn take_from_key_values(conn: &str) -> (String, Vec<(Key, String)>) {
    let Some(pairs) = key_values(conn) else {
        return (conn.to_owned(), Vec::new());
    };
    let mut rest = String::with_capacity(conn.len());
    let mut taken = Vec::new();
    let mut copied_to = 0;
    for (name, value, span) in pairs {
        if let Some(key) = Key::of(name) {
            rest.push_str(&conn[copied_to..span.start]);
            copied_to = span.end;
            taken.push((key, value));
        }
    }
    rest.push_str(&conn[copied_to..]);
    (rest, taken)
}

type Chars<'a> = std::iter::Peekable<std::str::CharIndices<'a>>;

/// The `key = value` pairs of a libpq key/value string, each with the bytes it spans; the
/// grammar is tokio-postgres's (values bare or single-quoted, `\` escapes the next character).
fn key_values(conn: &str) -> Option<Vec<(&str, String, Range<usize>)>> {
    let mut chars = conn.char_indices().peekable();
    let offset = |chars: &mut Chars<'_>| chars.peek().map_or(conn.len(), |&(i, _)| i);
    let mut pairs = Vec::new();
    loop {
        skip_whitespace(&mut chars);
        let start = offset(&mut chars);
        if start == conn.len() {
            return Some(pairs);
        }
        while chars
            .next_if(|&(_, c)| c != '=' && !c.is_whitespace())
            .is_some()
        {}
        let name = &conn[start..offset(&mut chars)];
        skip_whitespace(&mut chars);
        chars.next_if(|&(_, c)| c == '=')?;
        skip_whitespace(&mut chars);
        let value = value(&mut chars)?;
        pairs.push((name, value, start..offset(&mut chars)));
    }
}

fn skip_whitespace(chars: &mut Chars<'_>) {
    while chars.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
}

fn value(chars: &mut Chars<'_>) -> Option<String> {
    let quoted = chars.next_if(|&(_, c)| c == '\'').is_some();
    let mut value = String::new();
    while let Some((_, c)) = chars.next_if(|&(_, c)| !ends_value(c, quoted)) {
        match c {
            '\\' => value.push(chars.next()?.1),
            c => value.push(c),
        }
    }
    if quoted {
        chars.next_if(|&(_, c)| c == '\'')?;
    } else if value.is_empty() {
        return None;
    }
    Some(value)
}

fn ends_value(c: char, quoted: bool) -> bool {
    if quoted { c == '\'' } else { c.is_whitespace() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(mode: SslMode, root_cert: Option<&str>) -> TlsSettings {
        TlsSettings {
            mode,
            root_cert: root_cert.map(PathBuf::from),
        }
    }

    #[test]
    fn a_plain_url_stays_plain_and_untouched() {
        let url = "postgres://durable:durable@127.0.0.1:5432/durable";
        let (rest, tls) = split(url).unwrap();
        assert_eq!(rest, url);
        assert_eq!(tls, settings(SslMode::Disable, None));
        assert_eq!(tls.tokio_postgres_mode(), PgSslMode::Disable);
    }

    #[test]
    fn every_mode_parses_and_leaves_the_url() {
        for (value, mode) in [
            ("disable", SslMode::Disable),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
        ] {
            let (rest, tls) = split(&format!(
                "postgresql://u@h/db?sslmode={value}&application_name=x"
            ))
            .unwrap();
            assert_eq!(rest, "postgresql://u@h/db?application_name=x");
            assert_eq!(tls.mode, mode);
            assert_eq!(tls.mode.as_str(), value);
        }
    }

    #[test]
    fn a_ca_file_without_a_mode_means_verify_full() {
        let (rest, tls) = split("postgres://u@h/db?sslrootcert=/etc/ca%20dir/ca.pem").unwrap();
        assert_eq!(rest, "postgres://u@h/db");
        assert_eq!(
            tls,
            settings(SslMode::VerifyFull, Some("/etc/ca dir/ca.pem"))
        );
        assert_eq!(tls.verification(), Verification::ChainAndName);
    }

    #[test]
    fn require_verifies_the_chain_only_when_given_a_ca_file() {
        assert_eq!(
            settings(SslMode::Require, None).verification(),
            Verification::Nothing
        );
        assert_eq!(
            settings(SslMode::Require, Some("ca.pem")).verification(),
            Verification::Chain
        );
        assert_eq!(
            settings(SslMode::VerifyCa, None).verification(),
            Verification::Chain
        );
        assert_eq!(
            settings(SslMode::Disable, Some("ca.pem")).verification(),
            Verification::Nothing
        );
    }

    #[test]
    fn verifying_modes_make_tokio_postgres_require_tls() {
        assert_eq!(
            settings(SslMode::Prefer, None).tokio_postgres_mode(),
            PgSslMode::Prefer
        );
        for mode in [SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull] {
            assert_eq!(
                settings(mode, None).tokio_postgres_mode(),
                PgSslMode::Require
            );
        }
    }

    #[test]
    fn the_last_of_a_repeated_parameter_counts() {
        let (rest, tls) = split("postgres://h/db?sslmode=disable&sslmode=verify-ca").unwrap();
        assert_eq!(rest, "postgres://h/db");
        assert_eq!(tls.mode, SslMode::VerifyCa);
    }

    #[test]
    fn a_bad_mode_names_the_parameter_and_the_allowed_values_but_no_password() {
        for bad in ["verify_full", "allow", "", "REQUIRE"] {
            let err = split(&format!("postgres://u:hunter2@h/db?sslmode={bad}")).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, Error::Invalid(_)), "{err:?}");
            assert!(text.contains("sslmode"), "{text}");
            assert!(text.contains(SslMode::ALLOWED), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }

    #[test]
    fn an_empty_ca_path_is_refused() {
        let err = split("postgres://h/db?sslrootcert=").unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
        assert!(err.to_string().contains("sslrootcert"), "{err}");
    }

    #[test]
    fn key_value_strings_lose_only_the_tls_parameters() {
        let conn = "host=h sslmode = 'verify-full'  sslrootcert='/a b/c\\'a.pem' user=u";
        let (rest, tls) = split(conn).unwrap();
        assert_eq!(rest, "host=h    user=u");
        assert_eq!(tls, settings(SslMode::VerifyFull, Some("/a b/c'a.pem")));
        let (rest, tls) = split("host=h user=u").unwrap();
        assert_eq!(rest, "host=h user=u");
        assert_eq!(tls.mode, SslMode::Disable);
    }

    #[test]
    fn an_unreadable_key_value_string_is_left_to_tokio_postgres() {
        let conn = "host=h sslmode=";
        assert_eq!(take_from_key_values(conn), (conn.to_owned(), Vec::new()));
    }

    #[test]
    fn percent_escapes_decode_and_stray_percents_stay() {
        assert_eq!(percent_decode("a%2Fb%20c").unwrap(), "a/b c");
        assert_eq!(percent_decode("100%").unwrap(), "100%");
        assert_eq!(percent_decode("%zz%4").unwrap(), "%zz%4");
        assert!(percent_decode("%ff").is_err());
    }

    #[test]
    fn a_missing_or_empty_ca_file_fails_the_connector_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        for path in [missing, empty] {
            let tls = TlsSettings::new(Some(SslMode::VerifyCa), Some(path.clone()));
            let Err(err) = tls.connector() else {
                panic!("{} was accepted as a CA file", path.display());
            };
            assert!(matches!(err, Error::Invalid(_)), "{err:?}");
            let text = err.to_string();
            assert!(text.contains(&*path.to_string_lossy()), "{text}");
        }
    }

    #[test]
    fn the_webpki_roots_serve_when_no_ca_file_is_named() {
        let tls = TlsSettings::new(Some(SslMode::VerifyFull), None);
        assert!(tls.connector().is_ok());
        assert!(!tls.roots().unwrap().is_empty());
    }
}
