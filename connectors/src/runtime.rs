//! [`Connectors`]: the connectors a process can call, and one action call as the engine
//! runs it — resolve, validate the input, call with the idempotency key where the provider
//! takes it, validate the output.
//!
//! Native connectors are registered in code. Packaged ones come from a [`PackageSource`]
//! (the control plane's registry) when first called, so a package installed while the
//! worker runs is callable at once, with no restart. A published version never changes,
//! so a loaded package is kept for the life of the process.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use durable::{ActivityCtx, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::connector::{ActionCall, Connector, Credential};
use crate::error::{CallError, ErrorKind};
use crate::http::Outbound;
use crate::manifest::Idempotency;
use crate::package::Package;
use crate::schema::describe;

/// One connector action to run: what a flow's action node or an API call names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// The connector's name.
    pub connector: String,
    /// Its version, exactly: a run uses the version it was started with.
    pub version: String,
    /// The action's key.
    pub action: String,
    /// The action's input.
    #[serde(default)]
    pub input: Value,
    /// The credential to call with, by id; resolved only inside the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Uuid>,
}

impl ActionRequest {
    /// The step name the action is recorded under.
    pub fn step_name(&self) -> String {
        format!("{}.{}@{}", self.connector, self.action, self.version)
    }
}

/// Who is calling: the run's workspace, and the step's idempotency key and attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    pub workspace: WorkspaceId,
    /// Stable across retries, replays and crashes of the step.
    pub idempotency_key: String,
    /// From 1.
    pub attempt: u32,
}

impl From<&ActivityCtx> for CallContext {
    fn from(actx: &ActivityCtx) -> Self {
        Self {
            workspace: actx.workspace_id(),
            idempotency_key: actx.idempotency_key().to_owned(),
            attempt: actx.attempt(),
        }
    }
}

/// A package as stored in the registry.
#[derive(Debug, Clone)]
pub struct StoredPackage {
    pub manifest: Value,
    pub files: std::collections::BTreeMap<String, String>,
}

/// Where packaged connectors come from: the registry, as the workspace sees it (its own
/// connectors and the global ones).
#[async_trait]
pub trait PackageSource: Send + Sync + fmt::Debug {
    async fn package(
        &self,
        workspace: WorkspaceId,
        name: &str,
        version: &str,
    ) -> Result<Option<StoredPackage>, String>;
}

/// Where credentials come from, by id, for the workspace of the run.
#[async_trait]
pub trait CredentialSource: Send + Sync + fmt::Debug {
    async fn credential(&self, workspace: WorkspaceId, id: Uuid) -> Result<Credential, CallError>;
}

/// Turns a package with a JavaScript module into a connector.
pub type ScriptLoader =
    Arc<dyn Fn(Arc<Package>) -> Result<Arc<dyn Connector>, CallError> + Send + Sync>;

/// A connector ready to call, with its validated package.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub connector: Arc<dyn Connector>,
    pub package: Arc<Package>,
}

/// The connectors a process can call. Cheap to share behind an `Arc`.
pub struct Connectors {
    native: HashMap<(String, String), Loaded>,
    packages: Option<Arc<dyn PackageSource>>,
    credentials: Option<Arc<dyn CredentialSource>>,
    scripts: Option<ScriptLoader>,
    loaded: Mutex<HashMap<(WorkspaceId, String, String), Loaded>>,
    base_urls: HashMap<String, String>,
    outbound: Outbound,
}

impl fmt::Debug for Connectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connectors")
            .field("native", &self.native.keys().collect::<Vec<_>>())
            .field("packages", &self.packages)
            .finish_non_exhaustive()
    }
}

impl Connectors {
    /// No connectors, calling out through `outbound`.
    pub fn new(outbound: Outbound) -> Self {
        Self {
            native: HashMap::new(),
            packages: None,
            credentials: None,
            scripts: None,
            loaded: Mutex::new(HashMap::new()),
            base_urls: HashMap::new(),
            outbound,
        }
    }

    /// Adds a native connector. Its manifest must be valid: a built-in with a broken
    /// manifest is a bug, reported here rather than at its first call.
    pub fn native(
        mut self,
        connector: impl Connector + 'static,
    ) -> Result<Self, crate::ManifestErrors> {
        let package = Package::native(connector.manifest().clone())?;
        let key = (
            package.manifest().name.clone(),
            package.manifest().version.clone(),
        );
        let loaded = Loaded {
            connector: Arc::new(connector),
            package: Arc::new(package),
        };
        self.native.insert(key, loaded);
        Ok(self)
    }

    /// Packaged connectors come from `source`, run by `scripts`.
    pub fn packages(mut self, source: Arc<dyn PackageSource>, scripts: ScriptLoader) -> Self {
        self.packages = Some(source);
        self.scripts = Some(scripts);
        self
    }

    /// Credentials come from `source`.
    pub fn credentials(mut self, source: Arc<dyn CredentialSource>) -> Self {
        self.credentials = Some(source);
        self
    }

    /// Calls connector `name` at `base_url` instead of its manifest's (a fake provider in
    /// tests, an enterprise install of the provider).
    pub fn base_url(mut self, name: &str, base_url: impl Into<String>) -> Self {
        self.base_urls.insert(name.to_owned(), base_url.into());
        self
    }

    /// Loads `package`'s script the way a call would, so that a package whose module does not
    /// compile is refused when it is installed rather than at its first call.
    pub fn check_script(&self, package: Arc<Package>) -> Result<(), CallError> {
        match &self.scripts {
            Some(load) => load(package).map(drop),
            None => Err(CallError::new(
                ErrorKind::NotFound,
                "this process runs no packaged connectors",
            )),
        }
    }

    /// The native connectors' packages, for the registry's catalog.
    pub fn native_packages(&self) -> impl Iterator<Item = &Arc<Package>> {
        self.native.values().map(|l| &l.package)
    }

    /// Connector `name` at `version` as `workspace` sees it.
    pub async fn resolve(
        &self,
        workspace: WorkspaceId,
        name: &str,
        version: &str,
    ) -> Result<Loaded, CallError> {
        if let Some(loaded) = self.native.get(&(name.to_owned(), version.to_owned())) {
            return Ok(loaded.clone());
        }
        let key = (workspace, name.to_owned(), version.to_owned());
        if let Some(loaded) = self.loaded.lock().expect("not poisoned").get(&key) {
            return Ok(loaded.clone());
        }
        let loaded = self.load(workspace, name, version).await?;
        self.loaded
            .lock()
            .expect("not poisoned")
            .insert(key, loaded.clone());
        Ok(loaded)
    }

    async fn load(
        &self,
        workspace: WorkspaceId,
        name: &str,
        version: &str,
    ) -> Result<Loaded, CallError> {
        let not_found = || {
            CallError::new(
                ErrorKind::NotFound,
                format!("no connector `{name}` version {version} is installed for this workspace"),
            )
        };
        let (Some(source), Some(scripts)) = (&self.packages, &self.scripts) else {
            return Err(not_found());
        };
        let stored = source
            .package(workspace, name, version)
            .await
            .map_err(|e| {
                CallError::new(ErrorKind::Connection, format!("the registry failed: {e}"))
            })?
            .ok_or_else(not_found)?;
        let package = Package::from_parts(stored.manifest, stored.files).map_err(|e| {
            CallError::new(
                ErrorKind::NotFound,
                format!("connector `{name}` {version}: {e}"),
            )
        })?;
        let package = Arc::new(package);
        let connector = scripts(package.clone())?;
        Ok(Loaded { connector, package })
    }

    /// Runs one attempt of `request`.
    pub async fn call(
        &self,
        request: &ActionRequest,
        cx: &CallContext,
    ) -> Result<Value, CallError> {
        let workspace = cx.workspace;
        let loaded = self
            .resolve(workspace, &request.connector, &request.version)
            .await?;
        let manifest = loaded.package.manifest();
        let action = manifest.action(&request.action).ok_or_else(|| {
            CallError::new(
                ErrorKind::NotFound,
                format!(
                    "connector `{}` {} has no action `{}`",
                    manifest.name, manifest.version, request.action
                ),
            )
        })?;
        let mut input = request.input.clone();
        let mut http = self.outbound.clone();
        match &action.idempotency {
            Some(Idempotency::Header(header)) => {
                http = http.with_header(header, cx.idempotency_key.as_str())
            }
            Some(Idempotency::Field(field)) => {
                if let Value::Object(map) = &mut input {
                    map.insert(
                        field.clone(),
                        Value::String(cx.idempotency_key.as_str().to_owned()),
                    );
                }
            }
            None => {}
        }
        if let Some(schema) = loaded.package.input_schema(&action.key) {
            schema.check(&input).map_err(|v| {
                CallError::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "the input of `{}` is invalid: {}",
                        request.step_name(),
                        describe(&v)
                    ),
                )
            })?;
        }
        let credential = self.credential(workspace, request.credential).await?;
        // An upstream error body may echo the credential back: scrub it from every error.
        for secret in credential.iter().flat_map(Credential::secrets) {
            http = http.with_redaction(secret);
        }
        let call = ActionCall {
            input,
            idempotency_key: cx.idempotency_key.clone(),
            attempt: cx.attempt,
            base_url: self.base_url_of(&manifest.name, manifest.base_url.as_deref()),
            http,
            credential,
        };
        let output = loaded.connector.call(&action.key, call).await?;
        if let Some(schema) = loaded.package.output_schema(&action.key) {
            schema.check(&output).map_err(|v| {
                CallError::new(
                    ErrorKind::InvalidOutput,
                    format!(
                        "the output of `{}` is invalid: {}",
                        request.step_name(),
                        describe(&v)
                    ),
                )
            })?;
        }
        Ok(output)
    }

    async fn credential(
        &self,
        workspace: WorkspaceId,
        id: Option<Uuid>,
    ) -> Result<Option<Credential>, CallError> {
        let Some(id) = id else { return Ok(None) };
        let source = self.credentials.as_ref().ok_or_else(|| {
            CallError::new(
                ErrorKind::NotFound,
                format!("credential {id}: no credential store is configured"),
            )
        })?;
        source.credential(workspace, id).await.map(Some)
    }

    fn base_url_of(&self, name: &str, manifest: Option<&str>) -> String {
        self.base_urls
            .get(name)
            .cloned()
            .or_else(|| manifest.map(str::to_owned))
            .unwrap_or_default()
    }

    /// The outbound client calls go through.
    pub fn outbound(&self) -> &Outbound {
        &self.outbound
    }
}
