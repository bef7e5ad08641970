//! Flow versions: drafts until published, immutable after.

use serde_json::Value;
use uuid::Uuid;

use crate::{AuditEvent, Control, Error, FlowVersion, Result, Scope, record, transaction};

/// Refuses to change a published version.
fn require_draft(version: &FlowVersion, verb: &str) -> Result<()> {
    if version.published_at.is_some() {
        return Err(Error::Immutable(format!(
            "version {} of flow {} is published and cannot be {verb}; create a new version \
             instead",
            version.version, version.flow_id
        )));
    }
    Ok(())
}

impl Control {
    /// Adds a draft numbered one past the flow's highest; `None` if there is no such flow.
    pub async fn create_flow_version(
        &self,
        scope: Scope,
        flow: Uuid,
        definition: &Value,
    ) -> Result<Option<FlowVersion>> {
        transaction!(self, scope, |tx| {
            if tx.flow(scope.workspace, flow).await?.is_none() {
                return Ok(None);
            }
            let created = tx.insert_version(scope.workspace, flow, definition).await?;
            let version = created.version;
            record(
                &mut *tx,
                scope,
                AuditEvent::VersionCreated { flow, version },
            )
            .await?;
            Ok(Some(created))
        })
    }

    /// The flow's versions, oldest first (none for an unknown flow).
    pub async fn list_flow_versions(&self, scope: Scope, flow: Uuid) -> Result<Vec<FlowVersion>> {
        transaction!(self, scope, |tx| {
            tx.versions(scope.workspace, flow).await
        })
    }

    /// One version of a flow.
    pub async fn get_flow_version(
        &self,
        scope: Scope,
        flow: Uuid,
        version: i32,
    ) -> Result<Option<FlowVersion>> {
        transaction!(self, scope, |tx| {
            tx.version(scope.workspace, flow, version).await
        })
    }

    /// Replaces a draft's definition; [`Error::Immutable`] if it is published.
    pub async fn update_flow_version(
        &self,
        scope: Scope,
        flow: Uuid,
        version: i32,
        definition: &Value,
    ) -> Result<Option<FlowVersion>> {
        transaction!(self, scope, |tx| {
            let Some(current) = tx.version(scope.workspace, flow, version).await? else {
                return Ok(None);
            };
            require_draft(&current, "changed")?;
            let updated = tx
                .set_definition(scope.workspace, flow, version, definition)
                .await?;
            record(
                &mut *tx,
                scope,
                AuditEvent::VersionUpdated { flow, version },
            )
            .await?;
            Ok(Some(updated))
        })
    }

    /// Publishes a draft; publishing a published version returns it unchanged.
    pub async fn publish_flow_version(
        &self,
        scope: Scope,
        flow: Uuid,
        version: i32,
    ) -> Result<Option<FlowVersion>> {
        transaction!(self, scope, |tx| {
            let Some(current) = tx.version(scope.workspace, flow, version).await? else {
                return Ok(None);
            };
            if current.published_at.is_some() {
                return Ok(Some(current));
            }
            let published = tx.publish_version(scope.workspace, flow, version).await?;
            record(
                &mut *tx,
                scope,
                AuditEvent::VersionPublished { flow, version },
            )
            .await?;
            Ok(Some(published))
        })
    }

    /// Deletes a draft; `false` if there is no such version, [`Error::Immutable`] if it is
    /// published.
    pub async fn delete_flow_version(
        &self,
        scope: Scope,
        flow: Uuid,
        version: i32,
    ) -> Result<bool> {
        transaction!(self, scope, |tx| {
            let Some(current) = tx.version(scope.workspace, flow, version).await? else {
                return Ok(false);
            };
            require_draft(&current, "deleted")?;
            tx.delete_version(scope.workspace, flow, version).await?;
            record(
                &mut *tx,
                scope,
                AuditEvent::VersionDeleted { flow, version },
            )
            .await?;
            Ok(true)
        })
    }
}
