//! The connectors a server process runs: the built-ins, and packages from the registry run
//! in the JavaScript sandbox; and how packages get into the registry (at start from the
//! built-ins and `--connectors DIR`, or through `POST /v1/connectors`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use durable::WorkspaceId;
use durable_connectors::builtin::{GitHub, Http, Slack};
use durable_connectors::manifest::Trigger;
use durable_connectors::{
    Connectors, HttpPolicy, Outbound, Package, PackageSource, StoredPackage, js,
};
use durable_control::{
    ConnectorAction, ConnectorTrigger, Control, InstalledConnector, NewConnectorVersion,
    TriggerKind,
};

/// How a process's connectors are set up.
#[derive(Debug, Clone, Default)]
pub struct ConnectorSettings {
    /// Outbound HTTP: what calls may reach, and their caps.
    pub http: HttpPolicy,
    /// `(connector, base URL)`: calls of that connector go there instead of its manifest's
    /// `baseUrl` (an enterprise install of the provider, or a fake one in tests).
    pub base_urls: Vec<(String, String)>,
    /// The JavaScript engine of packaged connectors: its limits and threads.
    pub js: js::JsConfig,
}

/// The registry, as a source of packages for the runtime.
#[derive(Debug, Clone)]
struct RegistryPackages(Control);

#[async_trait]
impl PackageSource for RegistryPackages {
    async fn package(
        &self,
        workspace: WorkspaceId,
        name: &str,
        version: &str,
    ) -> Result<Option<StoredPackage>, String> {
        let found = self
            .0
            .connector_version_for(workspace.0, name, version)
            .await;
        Ok(found.map_err(|e| e.to_string())?.map(|v| StoredPackage {
            manifest: v.manifest,
            files: v.files,
        }))
    }
}

/// The built-in connectors, and the registry's packages run in the sandbox.
pub fn connectors(control: &Control, settings: &ConnectorSettings) -> Arc<Connectors> {
    let scripts = js::JsRuntime::new(settings.js.clone()).script_loader();
    let mut connectors = builtins(Outbound::new(settings.http.clone()))
        .packages(Arc::new(RegistryPackages(control.clone())), scripts);
    for (name, url) in &settings.base_urls {
        connectors = connectors.base_url(name, url);
    }
    Arc::new(connectors)
}

fn builtins(outbound: Outbound) -> Connectors {
    Connectors::new(outbound)
        .native(Http::new())
        .and_then(|c| c.native(GitHub::new()))
        .and_then(|c| c.native(Slack::new()))
        .expect("the built-in connectors' manifests are valid")
}

/// Registers the built-ins as global connectors, then installs every package found in the
/// sub-directories of `dirs` (or `dirs` themselves, when they hold a `manifest.json`) as
/// global too. A package that is invalid or clashes with an installed version stops the
/// start with an error naming it: a server must not come up half-configured.
pub async fn install_at_start(
    control: &Control,
    connectors: &Connectors,
    dirs: &[PathBuf],
) -> anyhow::Result<()> {
    for package in connectors.native_packages() {
        control
            .install_global_connector(new_version(package))
            .await?;
    }
    for dir in dirs {
        for package_dir in package_dirs(dir)? {
            let package = Package::load_dir(&package_dir)
                .map_err(|e| anyhow::anyhow!("{}: {e}", package_dir.display()))?;
            connectors
                .check_script(Arc::new(package.clone()))
                .map_err(|e| anyhow::anyhow!("{}: {e}", package_dir.display()))?;
            let installed = control
                .install_global_connector(new_version(&package))
                .await
                .with_context(|| format!("cannot install {}", package_dir.display()))?;
            log_installed(&installed, &package_dir);
        }
    }
    Ok(())
}

fn log_installed(installed: &InstalledConnector, from: &Path) {
    tracing::info!(
        connector = %installed.name,
        version = %installed.version,
        from = %from.display(),
        new = installed.created,
        "connector package installed"
    );
}

/// `dir` itself if it is a package, else its sub-directories that are.
fn package_dirs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if dir
        .join(durable_connectors::package::MANIFEST_FILE)
        .is_file()
    {
        return Ok(vec![dir.to_owned()]);
    }
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the connectors directory {}", dir.display()))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(durable_connectors::package::MANIFEST_FILE).is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// What the registry stores of a validated package.
pub fn new_version(package: &Package) -> NewConnectorVersion {
    let manifest = package.manifest();
    let schema =
        |s: Option<&durable_connectors::schema::CompiledSchema>| s.map(|s| s.schema().clone());
    NewConnectorVersion {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        display_name: manifest
            .display_name
            .clone()
            .unwrap_or_else(|| manifest.name.clone()),
        description: manifest.description.clone().unwrap_or_default(),
        manifest: package.manifest_json().clone(),
        files: package.files().clone(),
        digest: package.digest().to_owned(),
        triggers: manifest
            .triggers
            .iter()
            .map(|t| {
                let (display_name, description) = t.labels();
                ConnectorTrigger {
                    key: t.key().to_owned(),
                    kind: match t {
                        Trigger::Webhook(_) => TriggerKind::Webhook,
                        Trigger::Polling(_) => TriggerKind::Polling,
                    },
                    display_name: display_name.unwrap_or_default().to_owned(),
                    description: description.unwrap_or_default().to_owned(),
                    payload_schema: schema(package.payload_schema(t.key())),
                }
            })
            .collect(),
        actions: manifest
            .actions
            .iter()
            .map(|a| ConnectorAction {
                key: a.key.clone(),
                display_name: a.display_name.clone().unwrap_or_default(),
                description: a.description.clone().unwrap_or_default(),
                input_schema: schema(package.input_schema(&a.key)).unwrap_or_default(),
                output_schema: schema(package.output_schema(&a.key)),
            })
            .collect(),
    }
}
