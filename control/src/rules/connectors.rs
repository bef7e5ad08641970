//! The connector registry. A connector is global (installed by the system: built-in
//! connectors, an operator's packages) or owned by one workspace; a workspace sees its own and
//! the global ones, never another workspace's. An installed version never changes: the same
//! name and version always mean the same package, so a run replays against the code it first
//! ran. Packages arrive validated (by `durable-connectors`); these rules only decide where
//! they go and whether they may.

use std::collections::{BTreeSet, HashMap};

use uuid::Uuid;

use crate::db::{Access, ConnectorRow, ConnectorVersionRow, Tx};
use crate::limits::{self, require};
use crate::{
    AuditEvent, ConnectorOwner, ConnectorSummary, ConnectorVersion, Control, Error,
    InstalledConnector, NewConnectorVersion, Result, Scope, record, transaction,
};

impl Control {
    /// Installs a version of one of the scope's workspace's own connectors, creating the
    /// connector with its first version, audited as `connector.install`.
    ///
    /// Installing a version again with the same digest returns it with `created: false`, and
    /// records nothing. [`Error::Immutable`] if that version is installed with another
    /// digest; [`Error::Conflict`] if a global connector has the name (unless the workspace
    /// already owns a connector of that name, made before the global one); [`Error::Invalid`]
    /// if a field breaks [`limits`] or the manifest names another connector or version.
    pub async fn install_connector(
        &self,
        scope: Scope,
        package: NewConnectorVersion,
    ) -> Result<InstalledConnector> {
        check(&package)?;
        transaction!(self, scope, |tx| {
            let installed = install(&mut *tx, Some(scope.workspace), &package).await?;
            if installed.created {
                let event = AuditEvent::ConnectorInstalled {
                    connector: installed.connector_id,
                    name: installed.name.clone(),
                    version: installed.version.clone(),
                    digest: installed.digest.clone(),
                };
                record(&mut *tx, scope, event).await?;
            }
            Ok(installed)
        })
    }

    /// Installs a version of a global connector, which every workspace sees: for the system
    /// (built-in connectors at start-up, an operator's packages), never for a tenant's
    /// request. The same answers as [`Control::install_connector`], except that a workspace
    /// owning a connector of the same name is no conflict: that workspace keeps resolving the
    /// name to its own. Not audited, as the audit log is a workspace's and this belongs to
    /// none; it is logged instead.
    pub async fn install_global_connector(
        &self,
        package: NewConnectorVersion,
    ) -> Result<InstalledConnector> {
        check(&package)?;
        let installed = transaction!(self, Access::System, |tx| {
            install(&mut *tx, None, &package).await
        })?;
        if installed.created {
            tracing::info!(
                connector = %installed.name,
                version = %installed.version,
                digest = %installed.digest,
                "installed a global connector"
            );
        }
        Ok(installed)
    }

    /// The catalog the scope's workspace sees: its own connectors and the global ones, by
    /// name, each with its versions, most recently installed first.
    pub async fn list_connectors(&self, scope: Scope) -> Result<Vec<ConnectorSummary>> {
        transaction!(self, scope, |tx| {
            let connectors = tx.visible_connectors(scope.workspace).await?;
            let mut versions: HashMap<Uuid, Vec<_>> = HashMap::new();
            for (connector, info) in tx.visible_connector_versions(scope.workspace).await? {
                versions.entry(connector).or_default().push(info);
            }
            let summaries = connectors.into_iter().map(|c| {
                let versions = versions.remove(&c.id).unwrap_or_default();
                summary(c, versions)
            });
            Ok(summaries.collect())
        })
    }

    /// Version `version` of connector `name` as the scope's workspace sees it: its own
    /// connector of that name, else the global one.
    pub async fn get_connector_version(
        &self,
        scope: Scope,
        name: &str,
        version: &str,
    ) -> Result<Option<ConnectorVersion>> {
        self.connector_version_for(scope.workspace, name, version)
            .await
    }

    /// What [`Control::get_connector_version`] answers `workspace`, for a worker running one
    /// of its flows (the system, acting for the workspace: no key, no audit). Runs confined
    /// to the workspace like a tenant request, so another workspace's connectors stay out of
    /// reach on Postgres even past the rules.
    pub async fn connector_version_for(
        &self,
        workspace: Uuid,
        name: &str,
        version: &str,
    ) -> Result<Option<ConnectorVersion>> {
        transaction!(self, Access::Tenant(workspace), |tx| {
            let Some(connector) = resolve(&mut *tx, workspace, name).await? else {
                return Ok(None);
            };
            whole_version(&mut *tx, connector, version).await
        })
    }
}

/// Refuses a package this store could not keep as it is, before any row is touched.
fn check(package: &NewConnectorVersion) -> Result<()> {
    require("connector name", limits::name(&package.name))?;
    require("connector version", limits::name(&package.version))?;
    require(
        "connector display name",
        limits::display_name(&package.display_name),
    )?;
    require(
        "connector description",
        limits::description(&package.description),
    )?;
    require("connector digest", limits::sha256_hex(&package.digest))?;
    check_manifest_names(package)?;
    let triggers = package.triggers.iter();
    check_entries(
        "trigger",
        triggers.map(|t| (&t.key, &t.display_name, &t.description)),
    )?;
    let actions = package.actions.iter();
    check_entries(
        "action",
        actions.map(|a| (&a.key, &a.display_name, &a.description)),
    )
}

/// The registry files a package under its name and version: the manifest must say the same,
/// or a worker would run code that calls itself something else.
fn check_manifest_names(package: &NewConnectorVersion) -> Result<()> {
    for (field, expected) in [("name", &package.name), ("version", &package.version)] {
        let stated = package.manifest.get(field).and_then(|v| v.as_str());
        if stated != Some(expected.as_str()) {
            return Err(Error::Invalid(format!(
                "the manifest's `{field}` is {}, not the package's `{expected}`",
                stated.map_or_else(|| "missing".to_owned(), |s| format!("`{s}`"))
            )));
        }
    }
    Ok(())
}

/// Trigger or action keys: bounded and unique; their labels may be empty.
fn check_entries<'a>(
    what: &str,
    entries: impl Iterator<Item = (&'a String, &'a String, &'a String)>,
) -> Result<()> {
    let mut seen = BTreeSet::new();
    for (key, display_name, description) in entries {
        require(&format!("{what} key"), limits::name(key))?;
        if !seen.insert(key) {
            return Err(Error::Invalid(format!("{what} key `{key}` appears twice")));
        }
        if !display_name.is_empty() {
            require(
                &format!("{what} display name"),
                limits::display_name(display_name),
            )?;
        }
        require(
            &format!("{what} description"),
            limits::description(description),
        )?;
    }
    Ok(())
}

/// Installs `package` for `owner` (`None`: global) in the transaction.
async fn install(
    tx: &mut dyn Tx,
    owner: Option<Uuid>,
    package: &NewConnectorVersion,
) -> Result<InstalledConnector> {
    tx.lock_connector_name(&package.name).await?;
    let connector = connector_to_install(tx, owner, package).await?;
    if let Some(existing) = tx
        .connector_version(owner, connector.id, &package.version)
        .await?
    {
        return reinstall(connector, existing, package);
    }
    let stored = tx
        .insert_connector_version(owner, connector.id, package)
        .await?;
    // The catalog shows what the latest install says the connector is.
    let connector = relabel(tx, connector, package).await?;
    let (version, digest, created_at) = (stored.version, stored.digest, stored.created_at);
    Ok(installed(connector, version, digest, created_at, true))
}

/// The owner's connector named as the package is, created if new. A workspace may not take
/// a global connector's name: every workspace resolves that name to the global one, and a
/// private one of the same name would make the catalog ambiguous.
async fn connector_to_install(
    tx: &mut dyn Tx,
    owner: Option<Uuid>,
    package: &NewConnectorVersion,
) -> Result<ConnectorRow> {
    if let Some(connector) = tx.connector_named(owner, &package.name).await? {
        return Ok(connector);
    }
    if owner.is_some() && tx.connector_named(None, &package.name).await?.is_some() {
        return Err(Error::Conflict(format!(
            "a global connector named `{}` exists; a workspace's own connector cannot take \
             its name: choose another",
            package.name
        )));
    }
    tx.insert_connector(
        owner,
        &package.name,
        &package.display_name,
        &package.description,
    )
    .await
}

/// The answer to installing a version that is already installed: the same package is no
/// change; another package under the same version would change what runs replay against.
fn reinstall(
    connector: ConnectorRow,
    existing: ConnectorVersionRow,
    package: &NewConnectorVersion,
) -> Result<InstalledConnector> {
    if existing.digest != package.digest {
        return Err(Error::Immutable(format!(
            "version {} of connector `{}` is already installed with other contents (digest \
             {}); an installed version never changes: install this package under a new \
             version",
            package.version, package.name, existing.digest
        )));
    }
    let (version, digest) = (existing.version, existing.digest);
    Ok(installed(
        connector,
        version,
        digest,
        existing.created_at,
        false,
    ))
}

async fn relabel(
    tx: &mut dyn Tx,
    connector: ConnectorRow,
    package: &NewConnectorVersion,
) -> Result<ConnectorRow> {
    if connector.display_name == package.display_name
        && connector.description == package.description
    {
        return Ok(connector);
    }
    let (owner, id) = (connector.workspace, connector.id);
    tx.relabel_connector(owner, id, &package.display_name, &package.description)
        .await
}

fn installed(
    connector: ConnectorRow,
    version: String,
    digest: String,
    created_at: chrono::DateTime<chrono::Utc>,
    created: bool,
) -> InstalledConnector {
    InstalledConnector {
        connector_id: connector.id,
        name: connector.name,
        version,
        owner: ConnectorOwner::of(connector.workspace),
        workspace_id: connector.workspace,
        digest,
        created_at,
        created,
    }
}

/// The connector `name` as `workspace` sees it: its own, else the global one. Only these
/// two owners are ever asked for, so another workspace's connector is never an answer.
async fn resolve(tx: &mut dyn Tx, workspace: Uuid, name: &str) -> Result<Option<ConnectorRow>> {
    if let Some(own) = tx.connector_named(Some(workspace), name).await? {
        return Ok(Some(own));
    }
    tx.connector_named(None, name).await
}

/// A version of `connector` with its triggers and actions.
async fn whole_version(
    tx: &mut dyn Tx,
    connector: ConnectorRow,
    version: &str,
) -> Result<Option<ConnectorVersion>> {
    let owner = connector.workspace;
    let Some(row) = tx.connector_version(owner, connector.id, version).await? else {
        return Ok(None);
    };
    let triggers = tx.connector_triggers(owner, row.id).await?;
    let actions = tx.connector_actions(owner, row.id).await?;
    Ok(Some(ConnectorVersion {
        connector_id: connector.id,
        name: connector.name,
        version: row.version,
        display_name: connector.display_name,
        description: connector.description,
        owner: ConnectorOwner::of(owner),
        workspace_id: owner,
        manifest: row.manifest,
        files: row.files,
        digest: row.digest,
        triggers,
        actions,
        created_at: row.created_at,
    }))
}

fn summary(
    connector: ConnectorRow,
    versions: Vec<crate::ConnectorVersionInfo>,
) -> ConnectorSummary {
    ConnectorSummary {
        id: connector.id,
        name: connector.name,
        display_name: connector.display_name,
        description: connector.description,
        owner: ConnectorOwner::of(connector.workspace),
        workspace_id: connector.workspace,
        created_at: connector.created_at,
        versions,
    }
}
