//! TLS to Postgres: a private server with `ssl = on` and a certificate made here, reached with
//! each `sslmode`. `pg_stat_ssl` says whether each connection, the LISTEN one included, really
//! is encrypted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use durable::PgStore;
use durable::prelude::*;
use durable_tests::private_pg::{PrivatePostgres, ServerTls};
use durable_tests::workflows::sleeper;
use durable_tests::{init_tracing, wait, while_working, worker};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;

/// A CA that signed the server's certificate (for `localhost` and `127.0.0.1`), and another
/// that did not, each in a PEM file.
struct Pki {
    dir: TempDir,
    server: ServerTls,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = new_ca("durable test CA");
        let other = new_ca("another CA");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("other-ca.pem"), other.pem()).unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        Self {
            dir,
            server: ServerTls {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            },
        }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn other_ca(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// `server`'s URL with `query` appended and an `application_name` that tells this store's
/// connections apart from any other's.
fn url(server: &PrivatePostgres, query: &str, name: &str) -> String {
    format!("{}?application_name={name}&{query}", server.url)
}

/// The same, for connecting to `host` (whose address is still 127.0.0.1).
fn url_for_host(server: &PrivatePostgres, host: &str, query: &str, name: &str) -> String {
    url(server, query, name).replacen("@127.0.0.1:", &format!("@{host}:"), 1)
}

fn sslrootcert(path: &Path) -> String {
    format!("sslrootcert={}", path.display())
}

/// Whether the pool's connections, and then the store's LISTEN connection, use TLS.
async fn tls_in_use(store: &PgStore, name: &str) -> (bool, bool) {
    let client = store.pool().get().await.unwrap();
    let pooled: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // The listener connects in the background: wait for it to have LISTENed.
    let listener = wait::until(
        "the store's LISTEN connection",
        Duration::from_secs(10),
        || async {
            client
                .query_opt(
                    "SELECT s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
                     WHERE a.application_name = $1 AND a.query LIKE 'LISTEN%'",
                    &[&name],
                )
                .await
                .unwrap()
                .map(|row| row.get::<_, bool>(0))
        },
    )
    .await;
    (pooled, listener)
}

/// Connects with `url` and checks whether the store's connections use TLS.
async fn connects(url: &str, name: &str, tls: bool) -> PgStore {
    let store = PgStore::connect(url)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        tls_in_use(&store, name).await,
        (tls, tls),
        "{name}: TLS in use"
    );
    store
}

async fn refused(url: &str) -> String {
    let err = PgStore::connect(url)
        .await
        .expect_err("the connection is refused");
    let text = err.to_string();
    assert!(!text.contains(":durable@"), "the password leaked: {text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_encrypts_and_runs_a_workflow() {
    init_tracing();
    let pki = Pki::new();
    let server = PrivatePostgres::start_with_tls(&pki.server).await;
    let store = connects(&url(&server, "sslmode=require", "require"), "require", true).await;
    let client = Client::new(store.clone());
    let handle = client.start(sleeper, 10).await.unwrap();
    let (before, after) = while_working(worker(store), async {
        handle.result_timeout(Duration::from_secs(30)).await
    })
    .await
    .unwrap();
    assert!(after >= before);
    let info = client.get(handle.id()).await.unwrap();
    assert_eq!(info.status, RunStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_mode_encrypts_or_not_as_it_says() {
    let pki = Pki::new();
    let server = PrivatePostgres::start_with_tls(&pki.server).await;
    let ca = sslrootcert(&pki.ca());
    for (name, url, tls) in [
        ("plain", url(&server, "connect_timeout=10", "plain"), false),
        ("disable", url(&server, "sslmode=disable", "disable"), false),
        ("prefer", url(&server, "sslmode=prefer", "prefer"), true),
        (
            "full_ip",
            url(&server, &format!("sslmode=verify-full&{ca}"), "full_ip"),
            true,
        ),
        (
            "full_name",
            url_for_host(
                &server,
                "localhost",
                &format!("sslmode=verify-full&{ca}"),
                "full_name",
            ),
            true,
        ),
        // verify-ca checks the chain only: a name the certificate lacks is fine.
        (
            "ca_other_name",
            url_for_host(
                &server,
                "wrong.invalid",
                &format!("hostaddr=127.0.0.1&sslmode=verify-ca&{ca}"),
                "ca_other_name",
            ),
            true,
        ),
        // A CA file alone asks for TLS, verified in full.
        ("ca_only", url(&server, &ca, "ca_only"), true),
    ] {
        drop(connects(&url, name, tls).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_that_fail_verification_are_refused() {
    let pki = Pki::new();
    let server = PrivatePostgres::start_with_tls(&pki.server).await;
    let ca = sslrootcert(&pki.ca());
    let wrong_name = |query: &str| {
        url_for_host(
            &server,
            "wrong.invalid",
            &format!("hostaddr=127.0.0.1&{query}"),
            "refused",
        )
    };

    for query in [format!("sslmode=verify-full&{ca}"), ca.clone()] {
        let text = refused(&wrong_name(&query)).await;
        assert!(
            text.contains("certificate does not match the host name")
                && text.contains("verify-full"),
            "{text}"
        );
        assert!(text.contains("wrong.invalid"), "{text}");
    }

    let other_ca = sslrootcert(&pki.other_ca());
    let text = refused(&url(
        &server,
        &format!("sslmode=verify-ca&{other_ca}"),
        "refused",
    ))
    .await;
    assert!(
        text.contains("not signed by a CA in sslrootcert") && text.contains("other-ca.pem"),
        "{text}"
    );

    let text = refused(&url(&server, "sslmode=verify-full", "refused")).await;
    assert!(
        text.contains("not signed by a CA in the webpki roots"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefer_falls_back_to_plain_where_require_is_refused() {
    let server = PrivatePostgres::start().await;
    drop(connects(&url(&server, "sslmode=prefer", "prefer"), "prefer", false).await);
    let text = refused(&url(&server, "sslmode=require", "require")).await;
    assert!(text.contains("server does not support TLS"), "{text}");
}

#[tokio::test]
async fn bad_tls_parameters_are_refused_before_connecting() {
    let text = refused("postgres://durable:durable@127.0.0.1:1/durable?sslmode=verify_full").await;
    assert!(
        text.contains("sslmode `verify_full`")
            && text.contains("disable, prefer, require, verify-ca, verify-full"),
        "{text}"
    );
    let text =
        refused("postgres://durable:durable@127.0.0.1:1/durable?sslrootcert=/nonexistent/ca.pem")
            .await;
    assert!(
        text.contains("sslrootcert `/nonexistent/ca.pem` cannot be read"),
        "{text}"
    );
}
