//! `durable-server`: tenants, workspaces and API keys; webhook intake; the REST API over
//! runs and flows. [`serve`] runs it on a listener; the `durable-server` binary wraps it.
#![allow(missing_docs)]

pub mod api;
pub mod app;
pub mod auth;
pub mod connectors;
pub mod dev;
pub mod fields;
pub mod idempotency;
pub mod openapi;
pub mod oversized;
pub mod problem;
pub mod transport;

use std::sync::Arc;

use durable::{PgStore, SqliteStore, Store};
use durable_control::Control;

pub use api::hooks::HookEvent;
pub use app::{AppState, Registry, router};

/// A store with its control plane: what the server runs on.
#[derive(Debug, Clone)]
pub struct Backend {
    /// The store as workers use it.
    pub runs: Arc<dyn Store>,
    /// The store as the API uses it for a key's workspace: on Postgres, as the tenant role,
    /// so that row-level security applies to every run query the API makes.
    pub api_runs: Arc<dyn Store>,
    pub control: Control,
}

impl Backend {
    /// Connects to `postgres://…` or `sqlite://…` and migrates the engine's tables, then
    /// the control plane's.
    pub async fn connect(url: &str) -> durable_control::Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let store = PgStore::connect(url).await?;
            Self::postgres(store).await
        } else {
            let store = SqliteStore::connect(url).await?;
            Self::sqlite(store).await
        }
    }

    pub async fn postgres(store: PgStore) -> durable_control::Result<Self> {
        Ok(Self {
            control: Control::postgres(&store).await?,
            api_runs: Arc::new(store.as_tenant(durable_control::postgres::TENANT_ROLE)),
            runs: Arc::new(store),
        })
    }

    pub async fn sqlite(store: SqliteStore) -> durable_control::Result<Self> {
        Ok(Self {
            control: Control::sqlite(&store).await?,
            api_runs: Arc::new(store.clone()),
            runs: Arc::new(store),
        })
    }

    /// The application state for `registry`, with the default connector settings.
    pub fn state(&self, registry: Registry) -> AppState {
        let settings = connectors::ConnectorSettings::default();
        self.state_with(registry, connectors::connectors(&self.control, &settings))
    }

    /// The application state for `registry` and the process's `connectors`.
    pub fn state_with(
        &self,
        registry: Registry,
        connectors: Arc<durable_connectors::Connectors>,
    ) -> AppState {
        AppState {
            control: self.control.clone(),
            runs: self.api_runs.clone(),
            registry: Arc::new(registry),
            connectors,
        }
    }
}

/// Serves the API on `listener` until `shutdown` completes. Requests hyper cannot parse are
/// answered with problem documents too (see [`transport`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(transport::ProblemListener(listener), router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
