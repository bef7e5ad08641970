//! A real server on a loopback port, over a real store, with a real HTTP client.
#![allow(dead_code)]

use durable_control::{NewApiKey, Scope};
use durable_server::auth::{SCOPES, generate_key};
use durable_server::{Backend, dev};
use durable_tests::TestDb;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Runs `body(server)` once with a server on Postgres and once on SQLite.
#[macro_export]
macro_rules! with_server_on_both_stores {
    ($($name:ident),* $(,)?) => {
        durable_tests::on_both_stores!(
            postgres: $crate::common::TestServer::postgres().await,
            sqlite: $crate::common::TestServer::sqlite().await;
            $($name),*
        );
    };
}

pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub backend: Backend,
    /// The Postgres database, when the server runs on one.
    pub db: Option<TestDb>,
    stop: CancellationToken,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A workspace of its own and a key for it.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub workspace: Uuid,
    pub key: String,
    pub key_id: Uuid,
}

impl TestServer {
    pub async fn postgres() -> Self {
        let db = TestDb::new().await;
        let store = db.store().await;
        Self::start(
            Backend::postgres(store).await.expect("the control plane"),
            Some(db),
        )
        .await
    }

    /// A server on a SQLite file, for tests that look at the file itself.
    pub async fn sqlite_file(file: &durable_tests::conformance::SqliteFile) -> Self {
        let store = file.store().await;
        Self::start(
            Backend::sqlite(store).await.expect("the control plane"),
            None,
        )
        .await
    }

    pub async fn sqlite() -> Self {
        let store = durable::SqliteStore::connect("sqlite::memory:")
            .await
            .expect("in-memory SQLite store");
        Self::start(
            Backend::sqlite(store).await.expect("the control plane"),
            None,
        )
        .await
    }

    async fn start(backend: Backend, db: Option<TestDb>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let state = backend.state(dev::registry());
        let shutdown = stop.clone().cancelled_owned();
        tokio::spawn(durable_server::serve(listener, state, shutdown));
        Self {
            base,
            http: reqwest::Client::new(),
            backend,
            db,
            stop,
        }
    }

    /// A new tenant with one workspace and a key holding `scopes` (all when empty).
    pub async fn tenant_with(&self, scopes: &[&str]) -> Tenant {
        let control = &self.backend.control;
        let slug = format!("t-{}", Uuid::now_v7().simple());
        let tenant = control.create_tenant(&slug, "free").await.unwrap();
        let workspace = control
            .create_workspace(tenant.id, "main", None)
            .await
            .unwrap();
        let (key, key_id) = self.issue_key(workspace.id, scopes).await;
        Tenant {
            workspace: workspace.id,
            key,
            key_id,
        }
    }

    pub async fn tenant(&self) -> Tenant {
        self.tenant_with(&[]).await
    }

    /// Another key in `workspace`.
    pub async fn key_for(&self, workspace: Uuid, scopes: &[&str]) -> String {
        self.issue_key(workspace, scopes).await.0
    }

    /// Another key in `workspace`: its token and its id.
    pub async fn issue_key(&self, workspace: Uuid, scopes: &[&str]) -> (String, Uuid) {
        let scopes = if scopes.is_empty() { SCOPES } else { scopes };
        let generated = generate_key();
        let scope = Scope {
            workspace,
            actor: None,
        };
        let key = NewApiKey {
            name: "test".to_owned(),
            token_hash: generated.hash,
            token_prefix: generated.shown_prefix.clone(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        };
        let stored = self.backend.control.create_api_key(scope, key).await;
        (generated.token, stored.unwrap().id)
    }

    pub fn request(&self, method: Method, path: &str, key: Option<&str>) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    pub async fn get(&self, key: &str, path: &str) -> Response {
        self.request(Method::GET, path, Some(key))
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, key: &str, path: &str, body: &Value) -> Response {
        let request = self.request(Method::POST, path, Some(key)).json(body);
        request.send().await.unwrap()
    }

    pub async fn delete(&self, key: &str, path: &str) -> Response {
        self.request(Method::DELETE, path, Some(key))
            .send()
            .await
            .unwrap()
    }
}

/// Asserts the status and returns the JSON body.
pub async fn json(response: Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    assert_eq!(got, status, "unexpected status; body: {text}");
    if status >= 400 {
        assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    }
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Asserts a problem document of type `slug` with `status`.
pub async fn problem(response: Response, status: u16, slug: &str) -> Value {
    let body = json(response, status).await;
    assert_eq!(
        body["type"],
        format!("urn:durable:problem:{slug}"),
        "{body}"
    );
    assert_eq!(body["status"], status);
    body
}
