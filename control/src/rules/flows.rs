//! Flows: named per workspace; their definitions are their versions.

use uuid::Uuid;

use crate::limits::{self, require};
use crate::{AuditEvent, Control, Error, Flow, FlowPatch, Result, Scope, record, transaction};

fn name_taken(name: &str) -> Error {
    Error::Conflict(format!(
        "a flow named `{name}` already exists in this workspace"
    ))
}

impl Control {
    /// Creates a flow; [`Error::Conflict`] if the workspace has a flow of that name,
    /// [`Error::Invalid`] if the name or description breaks [`limits::name`] or
    /// [`limits::description`].
    pub async fn create_flow(&self, scope: Scope, name: &str, description: &str) -> Result<Flow> {
        require("flow name", limits::name(name))?;
        require("flow description", limits::description(description))?;
        transaction!(self, scope, |tx| {
            let flow = tx
                .insert_flow(scope.workspace, name, description)
                .await?
                .ok_or_else(|| name_taken(name))?;
            let event = AuditEvent::FlowCreated {
                flow: flow.id,
                name: flow.name.clone(),
                description: flow.description.clone(),
            };
            record(&mut *tx, scope, event).await?;
            Ok(flow)
        })
    }

    /// The workspace's flows, oldest first.
    pub async fn list_flows(&self, scope: Scope) -> Result<Vec<Flow>> {
        transaction!(self, scope, |tx| tx.flows(scope.workspace).await)
    }

    /// A flow of the workspace.
    pub async fn get_flow(&self, scope: Scope, id: Uuid) -> Result<Option<Flow>> {
        transaction!(self, scope, |tx| tx.flow(scope.workspace, id).await)
    }

    /// Changes a flow's name or description; `None` if there is no such flow,
    /// [`Error::Conflict`] if another flow has the new name, [`Error::Invalid`] as for
    /// [`Control::create_flow`].
    pub async fn update_flow(
        &self,
        scope: Scope,
        id: Uuid,
        patch: FlowPatch,
    ) -> Result<Option<Flow>> {
        if let Some(name) = &patch.name {
            require("flow name", limits::name(name))?;
        }
        if let Some(description) = &patch.description {
            require("flow description", limits::description(description))?;
        }
        transaction!(self, scope, |tx| {
            let Some(mut flow) = tx.flow(scope.workspace, id).await? else {
                return Ok(None);
            };
            if let Some(name) = &patch.name {
                let taken = tx.flow_named(scope.workspace, name).await?;
                if taken.is_some_and(|other| other.id != id) {
                    return Err(name_taken(name));
                }
                flow.name.clone_from(name);
            }
            if let Some(description) = &patch.description {
                flow.description.clone_from(description);
            }
            let flow = tx.update_flow(scope.workspace, &flow).await?;
            record(&mut *tx, scope, AuditEvent::FlowUpdated { flow: id, patch }).await?;
            Ok(Some(flow))
        })
    }

    /// Deletes a flow and its versions; `false` if there is no such flow.
    pub async fn delete_flow(&self, scope: Scope, id: Uuid) -> Result<bool> {
        transaction!(self, scope, |tx| {
            let Some(flow) = tx.flow(scope.workspace, id).await? else {
                return Ok(false);
            };
            tx.delete_flow(scope.workspace, id).await?;
            let event = AuditEvent::FlowDeleted {
                flow: id,
                name: flow.name,
            };
            record(&mut *tx, scope, event).await?;
            Ok(true)
        })
    }
}
