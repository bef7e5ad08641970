//! Tenants and their workspaces.

use uuid::Uuid;

use crate::db::Access;
use crate::error::corrupt;
use crate::limits::{self, require};
use crate::{AuditEvent, Control, Error, Result, Scope, Tenant, Workspace, record, transaction};

impl Control {
    /// Creates a tenant; [`Error::Conflict`] if the slug is taken, [`Error::Invalid`] if it
    /// is not 1 to 63 of `a-z`, `0-9` and `-` ([`limits::tenant_slug`]).
    pub async fn create_tenant(&self, slug: &str, plan: &str) -> Result<Tenant> {
        require("tenant slug", limits::tenant_slug(slug))?;
        require("plan", limits::name(plan))?;
        transaction!(self, Access::System, |tx| {
            tx.insert_tenant(slug, plan).await?.ok_or_else(|| {
                Error::Conflict(format!("a tenant with slug `{slug}` already exists"))
            })
        })
    }

    /// Creates a workspace of a tenant, audited as `workspace.create` by `actor`;
    /// [`Error::Invalid`] if there is no such tenant or the name breaks [`limits::name`].
    pub async fn create_workspace(
        &self,
        tenant: Uuid,
        name: &str,
        actor: Option<Uuid>,
    ) -> Result<Workspace> {
        require("workspace name", limits::name(name))?;
        transaction!(self, Access::System, |tx| {
            if !tx.tenant_exists(tenant).await? {
                return Err(Error::Invalid(format!("no tenant {tenant}")));
            }
            let workspace = tx.insert_workspace(tenant, name).await?;
            let scope = Scope {
                workspace: workspace.id,
                actor,
            };
            let event = AuditEvent::WorkspaceCreated {
                workspace: workspace.id,
                tenant,
                name: name.to_owned(),
            };
            record(&mut *tx, scope, event).await?;
            Ok(workspace)
        })
    }

    /// The scope's workspace.
    pub async fn workspace(&self, scope: Scope) -> Result<Workspace> {
        transaction!(self, scope, |tx| {
            // A scope comes from a key of an existing workspace: a missing one is a fault.
            tx.workspace(scope.workspace)
                .await?
                .ok_or_else(|| corrupt(format!("workspace {} not found", scope.workspace)))
        })
    }
}
