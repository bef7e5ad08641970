//! The guarded outbound client against real servers on loopback: the SSRF guard (literal
//! hosts, names through the resolver, redirects), the caps, the classification of failed
//! responses and the redaction of secrets from errors.

use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use durable_connectors::http::{HttpPolicy, HttpRequest, HttpResponse, Outbound, classify};
use durable_connectors::{CallError, ErrorKind, Secret};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{body_json, body_string, header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn allowing_loopback() -> HttpPolicy {
    HttpPolicy {
        allow_loopback: true,
        ..HttpPolicy::default()
    }
}

fn loopback_client() -> Outbound {
    Outbound::new(allowing_loopback())
}

/// A server answering `path` with `response`, expected to be called `calls` times.
async fn serving(path_: &str, response: ResponseTemplate, calls: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path(path_))
        .respond_with(response)
        .expect(calls)
        .mount(&server)
        .await;
    server
}

async fn get(client: &Outbound, url: &str) -> Result<HttpResponse, CallError> {
    client.send_checked(HttpRequest::new("GET", url)).await
}

fn refused(result: Result<HttpResponse, CallError>) -> CallError {
    let err = result.expect_err("the call is refused");
    assert_eq!(err.kind, ErrorKind::ForbiddenAddress, "{}", err.message);
    assert_eq!(err.status, None);
    err
}

#[tokio::test]
async fn loopback_is_refused_by_default() {
    let server = serving("/", ResponseTemplate::new(200), 0).await;
    let err = refused(get(&Outbound::new(HttpPolicy::default()), &server.uri()).await);
    assert_eq!(
        err.message,
        "127.0.0.1 is a loopback address; allow it with DURABLE_HTTP_ALLOW=loopback (HttpPolicy::allow_loopback)"
    );
}

#[tokio::test]
async fn loopback_is_allowed_with_allow_loopback() {
    let server = serving(
        "/hello",
        ResponseTemplate::new(200).set_body_string("hi"),
        1,
    )
    .await;
    let url = format!("{}/hello", server.uri());
    let response = get(&loopback_client(), &url).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "hi");
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_by_default_and_allowed_with_allow_loopback() {
    let server = serving("/", ResponseTemplate::new(200), 1).await;
    let url = format!("http://localhost:{}/", server.address().port());

    let err = refused(get(&Outbound::new(HttpPolicy::default()), &url).await);
    assert!(
        err.message
            .starts_with("localhost resolves only to refused addresses ("),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("is a loopback address"),
        "{}",
        err.message
    );

    let response = get(&loopback_client(), &url).await.unwrap();
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn the_metadata_address_is_refused_even_with_both_allows() {
    let client = Outbound::new(HttpPolicy {
        allow_loopback: true,
        allow_private: true,
        ..HttpPolicy::default()
    });
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://169.254.1.1/",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
    ] {
        let err = refused(get(&client, url).await);
        assert!(
            err.message.contains("may never reach"),
            "{url}: {}",
            err.message
        );
    }
}

#[tokio::test]
async fn only_http_urls_are_sent() {
    let client = loopback_client();
    for url in ["ftp://example.com/file", "file:///etc/passwd", "not a url"] {
        refused(get(&client, url).await);
    }
}

fn redirect_to(location: &str) -> ResponseTemplate {
    ResponseTemplate::new(302).insert_header("Location", location)
}

#[tokio::test]
async fn a_redirect_to_a_refused_address_is_refused() {
    let client = loopback_client();
    let cases = [
        ("http://10.0.0.1/", "10.0.0.1 is a private address"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254 is a cloud metadata address",
        ),
        ("ftp://127.0.0.1/", "`ftp` URLs are not allowed"),
    ];
    for (location, why) in cases {
        let server = serving("/", redirect_to(location), 1).await;
        let err = refused(get(&client, &server.uri()).await);
        assert!(
            err.message
                .starts_with("refused to follow the redirect from 127.0.0.1 to "),
            "{}",
            err.message
        );
        assert!(err.message.contains(why), "{}", err.message);
    }
}

#[tokio::test]
async fn allowed_redirects_are_followed_up_to_the_limit() {
    let server = MockServer::start().await;
    Mock::given(path("/start"))
        .respond_with(redirect_to("/end"))
        .mount(&server)
        .await;
    Mock::given(path("/end"))
        .respond_with(ResponseTemplate::new(200).set_body_string("arrived"))
        .mount(&server)
        .await;
    Mock::given(path("/loop"))
        .respond_with(redirect_to("/loop"))
        .mount(&server)
        .await;
    let client = loopback_client();

    let response = get(&client, &format!("{}/start", server.uri()))
        .await
        .unwrap();
    assert_eq!(response.text(), "arrived");

    let err = get(&client, &format!("{}/loop", server.uri()))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Rejected);
    assert_eq!(
        err.message,
        "127.0.0.1 redirected more than 5 times (the most an outbound call follows)"
    );
    let requests = server.received_requests().await.unwrap();
    let loops = requests.iter().filter(|r| r.url.path() == "/loop").count();
    assert_eq!(loops, 6, "the first request and five redirects");
}

#[tokio::test]
async fn a_secret_header_is_not_carried_to_another_host_by_a_redirect() {
    let other = serving("/", ResponseTemplate::new(200), 0).await;
    let location = format!("http://localhost:{}/", other.address().port());
    let server = serving("/", redirect_to(&location), 1).await;
    let client = loopback_client().with_secret_header("X-Api-Key", Secret::new("key_123"));
    let err = refused(get(&client, &server.uri()).await);
    assert!(
        err.message
            .contains("the request carries a secret in a header that must not reach another host"),
        "{}",
        err.message
    );
}

async fn failing_with(response: ResponseTemplate) -> CallError {
    let server = serving("/", response, 1).await;
    get(&loopback_client(), &server.uri()).await.unwrap_err()
}

#[tokio::test]
async fn a_429_with_retry_after_seconds_is_rate_limited_for_that_long() {
    let err = failing_with(ResponseTemplate::new(429).insert_header("Retry-After", "3")).await;
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert_eq!(err.status, Some(429));
    assert_eq!(err.retry_after, Some(Duration::from_secs(3)));
    assert_eq!(
        err.message,
        "the provider answered 429 Too Many Requests and asked to wait 3s"
    );
}

#[tokio::test]
async fn a_429_with_retry_after_as_a_date_is_rate_limited_until_then() {
    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
    let err =
        failing_with(ResponseTemplate::new(429).insert_header("Retry-After", date.as_str())).await;
    assert_eq!(err.kind, ErrorKind::RateLimited);
    let wait = err.retry_after.expect("a wait");
    // The date has whole seconds, and time passed since it was written.
    assert!(
        wait <= Duration::from_secs(120) && wait >= Duration::from_secs(110),
        "{wait:?}"
    );
}

#[tokio::test]
async fn failed_statuses_are_classified() {
    let cases = [
        (
            ResponseTemplate::new(503).insert_header("Retry-After", "7"),
            ErrorKind::RateLimited,
            Some(Duration::from_secs(7)),
        ),
        (
            ResponseTemplate::new(503).insert_header("RateLimit", "limit=10, remaining=0, reset=9"),
            ErrorKind::RateLimited,
            Some(Duration::from_secs(9)),
        ),
        (ResponseTemplate::new(503), ErrorKind::Upstream, None),
        (ResponseTemplate::new(500), ErrorKind::Upstream, None),
        (ResponseTemplate::new(408), ErrorKind::Timeout, None),
        (ResponseTemplate::new(401), ErrorKind::AuthExpired, None),
        (ResponseTemplate::new(404), ErrorKind::Rejected, None),
        (ResponseTemplate::new(403), ErrorKind::Rejected, None),
        (
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", "30"),
            ErrorKind::RateLimited,
            Some(Duration::from_secs(30)),
        ),
    ];
    for (response, kind, wait) in cases {
        let err = failing_with(response).await;
        assert_eq!((err.kind, err.retry_after), (kind, wait), "{}", err.message);
    }
}

#[tokio::test]
async fn the_message_quotes_the_start_of_the_body() {
    let body = format!("{{\"error\":\"no such repo\"}}\n{}", "x".repeat(1000));
    let err = failing_with(ResponseTemplate::new(404).set_body_string(body)).await;
    assert!(
        err.message
            .starts_with("the provider answered 404 Not Found: {\"error\":\"no such repo\"}\\nxxx"),
        "{}",
        err.message
    );
    assert!(err.message.ends_with('…'));
}

#[tokio::test]
async fn a_response_slower_than_the_timeout_times_out() {
    let slow = || ResponseTemplate::new(200).set_delay(Duration::from_secs(30));

    let server = serving("/", slow(), 1).await;
    let started = Instant::now();
    let request = HttpRequest::new("GET", server.uri()).with_timeout(Duration::from_millis(200));
    let err = loopback_client().send(request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Timeout, "{}", err.message);
    assert_eq!(err.message, "127.0.0.1 did not answer within 200ms");
    assert!(started.elapsed() < Duration::from_secs(10));

    // A request's own timeout shortens the policy's, never extends it.
    let server = serving("/", slow(), 1).await;
    let client = Outbound::new(HttpPolicy {
        timeout: Duration::from_millis(200),
        ..allowing_loopback()
    });
    let request = HttpRequest::new("GET", server.uri()).with_timeout(Duration::from_secs(60));
    let err = client.send(request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Timeout, "{}", err.message);
}

fn capped(bytes: usize) -> Outbound {
    Outbound::new(HttpPolicy {
        max_response_bytes: bytes,
        ..allowing_loopback()
    })
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused() {
    let server = serving(
        "/",
        ResponseTemplate::new(200).set_body_bytes(vec![b'a'; 4096]),
        2,
    )
    .await;
    let err = get(&capped(1024), &server.uri()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ResponseTooLarge);
    assert_eq!(
        err.message,
        "the response from 127.0.0.1 is larger than the 1024-byte cap (DURABLE_HTTP_MAX_RESPONSE_BYTES)"
    );
    assert_eq!(err.status, Some(200));

    let at_cap = get(&capped(4096), &server.uri()).await.unwrap();
    assert_eq!(at_cap.body.len(), 4096);
}

/// Serves one chunked response of `chunks` chunks of 1 KiB: no declared length to trust.
async fn chunked_server(chunks: usize) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 4096];
        let _ = socket.read(&mut request).await;
        let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
        let _ = socket.write_all(head.as_bytes()).await;
        let chunk = format!("400\r\n{}\r\n", "b".repeat(1024));
        for _ in 0..chunks {
            if socket.write_all(chunk.as_bytes()).await.is_err() {
                return;
            }
        }
        let _ = socket.write_all(b"0\r\n\r\n").await;
    });
    url
}

#[tokio::test]
async fn a_chunked_body_is_refused_once_it_passes_the_cap() {
    let url = chunked_server(64).await;
    let err = get(&capped(10 * 1024), &url).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ResponseTooLarge, "{}", err.message);

    let url = chunked_server(10).await;
    let response = get(&capped(10 * 1024), &url).await.unwrap();
    assert_eq!(response.body.len(), 10 * 1024);
}

#[tokio::test]
async fn form_text_and_json_bodies_are_sent_as_such() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/form"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string("name=Ada+Lovelace&tags=a%26b"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/text"))
        .and(header("content-type", "text/plain; charset=utf-8"))
        .and(body_string("hello\nworld"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/csv"))
        .and(header("content-type", "text/csv"))
        .and(body_string("a,b\n1,2\n"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/json"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({"amount": 5})))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    let client = loopback_client();
    let uri = server.uri();
    let form = vec![
        ("name".to_owned(), "Ada Lovelace".to_owned()),
        ("tags".to_owned(), "a&b".to_owned()),
    ];
    let requests = [
        HttpRequest::new("POST", format!("{uri}/form")).form(form),
        HttpRequest::new("put", format!("{uri}/text")).text("hello\nworld"),
        HttpRequest::new("POST", format!("{uri}/csv"))
            .header("Content-Type", "text/csv")
            .text("a,b\n1,2\n"),
        HttpRequest::new("POST", format!("{uri}/json")).json(json!({"amount": 5})),
    ];
    for request in requests {
        let response = client.send_checked(request).await.unwrap();
        assert!(response.status == 200 || response.status == 201);
    }
}

/// Answers with `status` and a body quoting the request's URL and headers, as providers'
/// error pages do.
struct Echo(u16);

impl Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let headers: Vec<String> = request
            .headers
            .iter()
            .map(|(n, v)| format!("{n}={}", v.to_str().unwrap_or("")))
            .collect();
        let body =
            json!({"error": "bad credentials", "url": request.url.as_str(), "headers": headers});
        ResponseTemplate::new(self.0).set_body_string(body.to_string())
    }
}

async fn echoing(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(Echo(status))
        .mount(&server)
        .await;
    server
}

fn assert_clean(err: &CallError, secrets: &[&str]) {
    assert!(err.message.contains("[REDACTED]"), "{}", err.message);
    for secret in secrets {
        assert!(!err.message.contains(secret), "{secret} in {}", err.message);
    }
}

#[tokio::test]
async fn an_error_body_echoing_a_registered_secret_does_not_show_it() {
    let server = echoing(401).await;
    let token = Secret::new("sk_live_51HqLyjWDarjtT1zdp7dc");
    let client = loopback_client()
        .with_secret_header(
            "Authorization",
            Secret::new(format!("Bearer {}", token.expose())),
        )
        .with_redaction(&token);
    let err = get(&client, &server.uri()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AuthExpired);
    assert_clean(&err, &["sk_live_51HqLyjWDarjtT1zdp7dc"]);

    // The same response through `check`, and a key that travels in the query string.
    let key = Secret::new("k3y/with+odd=chars");
    let client = loopback_client().with_redaction(&key);
    let url = format!("{}/?api_key=k3y%2Fwith%2Bodd%3Dchars", server.uri());
    let response = client.send(HttpRequest::new("GET", url)).await.unwrap();
    let err = client.check(response).unwrap_err();
    assert_clean(&err, &["k3y", "odd"]);
}

#[tokio::test]
async fn credentials_in_the_request_headers_are_redacted_without_being_registered() {
    let server = echoing(403).await;
    let encoded = base64::engine::general_purpose::STANDARD.encode("ada:correct-horse-battery");
    let request =
        HttpRequest::new("GET", server.uri()).header("Authorization", format!("Basic {encoded}"));
    let err = loopback_client().send_checked(request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Rejected);
    assert_clean(&err, &[encoded.as_str(), "correct-horse-battery"]);

    // The free `classify` knows no secrets: it is the one to avoid on such responses.
    let request =
        HttpRequest::new("GET", server.uri()).header("Authorization", format!("Basic {encoded}"));
    let response = loopback_client().send(request).await.unwrap();
    assert!(classify(response).unwrap_err().message.contains(&encoded));
}

#[tokio::test]
async fn a_connection_failure_is_retryable_and_names_the_host() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let err = get(&loopback_client(), &format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Connection, "{}", err.message);
    assert!(
        err.message.starts_with("could not reach 127.0.0.1: "),
        "{}",
        err.message
    );
    assert!(err.kind.is_retryable());
}

#[test]
fn secrets_do_not_print() {
    let client = loopback_client()
        .with_secret_header("X-Api-Key", Secret::new("key_abc"))
        .with_header("Authorization", "Bearer tok_abc");
    let printed = format!("{client:?}");
    assert!(
        !printed.contains("key_abc") && !printed.contains("tok_abc"),
        "{printed}"
    );

    let request = HttpRequest::new("POST", "https://user:pw@api.example.com/v1?api_key=key_abc")
        .header("Authorization", "Bearer tok_abc")
        .text("password=hunter2");
    let printed = format!("{request:?}");
    for secret in ["key_abc", "tok_abc", "hunter2", "pw@"] {
        assert!(!printed.contains(secret), "{secret} in {printed}");
    }
}
