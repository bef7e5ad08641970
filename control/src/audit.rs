//! What the audit log records of each change: one typed event per kind of change, turned
//! into an action, a target and details in one place, so that every store writes the same
//! entry. Details name what changed, never a secret, a token hash, a flow definition or a
//! connector's code.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::model::{FlowPatch, HookScheme};

/// A run action taken through the API, for [`AuditEvent::Run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunAction {
    /// A run was started.
    Start,
    /// A run was asked to cancel.
    Cancel,
    /// A run was ended at once.
    Terminate,
    /// A run was paused.
    Pause,
    /// A paused or parked run was resumed.
    Resume,
    /// A new run was forked from a step of another.
    Fork,
}

impl RunAction {
    fn as_str(self) -> &'static str {
        match self {
            RunAction::Start => "run.start",
            RunAction::Cancel => "run.cancel",
            RunAction::Terminate => "run.terminate",
            RunAction::Pause => "run.pause",
            RunAction::Resume => "run.resume",
            RunAction::Fork => "run.fork",
        }
    }
}

/// A change to record in the audit log.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AuditEvent {
    /// `workspace.create`.
    WorkspaceCreated {
        /// The new workspace.
        workspace: Uuid,
        /// Its tenant.
        tenant: Uuid,
        /// Its name.
        name: String,
    },
    /// `api_key.create`.
    KeyCreated {
        /// The new key.
        key: Uuid,
        /// Its name.
        name: String,
        /// The token's shown prefix.
        token_prefix: String,
        /// Its scopes.
        scopes: Vec<String>,
    },
    /// `api_key.revoke`.
    KeyRevoked {
        /// The revoked key.
        key: Uuid,
        /// Its name.
        name: String,
    },
    /// `member.put`.
    MemberPut {
        /// The user.
        user: Uuid,
        /// Their email.
        email: String,
        /// Their new role.
        role: String,
    },
    /// `member.remove`.
    MemberRemoved {
        /// The user.
        user: Uuid,
        /// Their email.
        email: String,
    },
    /// `flow.create`.
    FlowCreated {
        /// The flow.
        flow: Uuid,
        /// Its name.
        name: String,
        /// Its description.
        description: String,
    },
    /// `flow.update`, with the fields that were set.
    FlowUpdated {
        /// The flow.
        flow: Uuid,
        /// What was set.
        patch: FlowPatch,
    },
    /// `flow.delete`.
    FlowDeleted {
        /// The flow.
        flow: Uuid,
        /// Its name.
        name: String,
    },
    /// `flow_version.create` (the definition itself is not recorded).
    VersionCreated {
        /// The flow.
        flow: Uuid,
        /// The version.
        version: i32,
    },
    /// `flow_version.update`.
    VersionUpdated {
        /// The flow.
        flow: Uuid,
        /// The version.
        version: i32,
    },
    /// `flow_version.publish`.
    VersionPublished {
        /// The flow.
        flow: Uuid,
        /// The version.
        version: i32,
    },
    /// `flow_version.delete`.
    VersionDeleted {
        /// The flow.
        flow: Uuid,
        /// The version.
        version: i32,
    },
    /// `hook.create`.
    HookCreated {
        /// The hook.
        hook: Uuid,
        /// The workflow it starts.
        workflow_name: String,
        /// How it verifies deliveries.
        scheme: HookScheme,
    },
    /// `hook.rotate`: how many secrets it holds now, not what they are.
    HookRotated {
        /// The hook.
        hook: Uuid,
        /// How many secrets are valid after the rotation.
        secrets: usize,
    },
    /// `hook.delete`.
    HookDeleted {
        /// The hook.
        hook: Uuid,
    },
    /// `connector.install`: a new version of the workspace's own connector (the manifest
    /// and files are not recorded; the digest names them).
    ConnectorInstalled {
        /// The connector.
        connector: Uuid,
        /// Its name.
        name: String,
        /// The version installed.
        version: String,
        /// The package's digest.
        digest: String,
    },
    /// `run.start`, `run.cancel`, …
    Run {
        /// What was done.
        action: RunAction,
        /// The run.
        run: Uuid,
        /// Its workflow, where known.
        workflow: Option<String>,
    },
}

impl AuditEvent {
    /// The action name, e.g. `flow.create`.
    pub fn action(&self) -> &'static str {
        match self {
            AuditEvent::WorkspaceCreated { .. } => "workspace.create",
            AuditEvent::KeyCreated { .. } => "api_key.create",
            AuditEvent::KeyRevoked { .. } => "api_key.revoke",
            AuditEvent::MemberPut { .. } => "member.put",
            AuditEvent::MemberRemoved { .. } => "member.remove",
            AuditEvent::FlowCreated { .. } => "flow.create",
            AuditEvent::FlowUpdated { .. } => "flow.update",
            AuditEvent::FlowDeleted { .. } => "flow.delete",
            AuditEvent::VersionCreated { .. } => "flow_version.create",
            AuditEvent::VersionUpdated { .. } => "flow_version.update",
            AuditEvent::VersionPublished { .. } => "flow_version.publish",
            AuditEvent::VersionDeleted { .. } => "flow_version.delete",
            AuditEvent::HookCreated { .. } => "hook.create",
            AuditEvent::HookRotated { .. } => "hook.rotate",
            AuditEvent::HookDeleted { .. } => "hook.delete",
            AuditEvent::ConnectorInstalled { .. } => "connector.install",
            AuditEvent::Run { action, .. } => action.as_str(),
        }
    }

    /// What was changed, e.g. `flow:<id>`.
    pub fn target(&self) -> String {
        match self {
            AuditEvent::WorkspaceCreated { workspace, .. } => format!("workspace:{workspace}"),
            AuditEvent::KeyCreated { key, .. } | AuditEvent::KeyRevoked { key, .. } => {
                format!("api_key:{key}")
            }
            AuditEvent::MemberPut { user, .. } | AuditEvent::MemberRemoved { user, .. } => {
                format!("user:{user}")
            }
            AuditEvent::FlowCreated { flow, .. }
            | AuditEvent::FlowUpdated { flow, .. }
            | AuditEvent::FlowDeleted { flow, .. } => format!("flow:{flow}"),
            AuditEvent::VersionCreated { flow, version }
            | AuditEvent::VersionUpdated { flow, version }
            | AuditEvent::VersionPublished { flow, version }
            | AuditEvent::VersionDeleted { flow, version } => {
                format!("flow:{flow}/versions/{version}")
            }
            AuditEvent::HookCreated { hook, .. }
            | AuditEvent::HookRotated { hook, .. }
            | AuditEvent::HookDeleted { hook } => format!("hook:{hook}"),
            AuditEvent::ConnectorInstalled {
                connector, version, ..
            } => format!("connector:{connector}/versions/{version}"),
            AuditEvent::Run { run, .. } => format!("run:{run}"),
        }
    }

    /// The changed fields.
    pub fn details(&self) -> Value {
        match self {
            AuditEvent::WorkspaceCreated { tenant, name, .. } => {
                json!({ "name": name, "tenant_id": tenant })
            }
            AuditEvent::KeyCreated {
                name,
                token_prefix,
                scopes,
                ..
            } => json!({ "name": name, "token_prefix": token_prefix, "scopes": scopes }),
            AuditEvent::KeyRevoked { name, .. } => json!({ "name": name }),
            AuditEvent::MemberPut { email, role, .. } => json!({ "email": email, "role": role }),
            AuditEvent::MemberRemoved { email, .. } => json!({ "email": email }),
            AuditEvent::FlowCreated {
                name, description, ..
            } => json!({ "name": name, "description": description }),
            AuditEvent::FlowUpdated { patch, .. } => patch_details(patch),
            AuditEvent::FlowDeleted { name, .. } => json!({ "name": name }),
            AuditEvent::VersionCreated { .. }
            | AuditEvent::VersionUpdated { .. }
            | AuditEvent::VersionPublished { .. }
            | AuditEvent::VersionDeleted { .. }
            | AuditEvent::HookDeleted { .. } => json!({}),
            AuditEvent::HookCreated {
                workflow_name,
                scheme,
                ..
            } => json!({ "workflow_name": workflow_name, "scheme": scheme.as_str() }),
            AuditEvent::HookRotated { secrets, .. } => json!({ "secrets": secrets }),
            AuditEvent::ConnectorInstalled {
                name,
                version,
                digest,
                ..
            } => json!({ "name": name, "version": version, "digest": digest }),
            AuditEvent::Run { workflow, .. } => match workflow {
                Some(name) => json!({ "workflow": name }),
                None => json!({}),
            },
        }
    }
}

fn patch_details(patch: &FlowPatch) -> Value {
    let mut details = serde_json::Map::new();
    if let Some(name) = &patch.name {
        details.insert("name".to_owned(), json!(name));
    }
    if let Some(description) = &patch.description {
        details.insert("description".to_owned(), json!(description));
    }
    Value::Object(details)
}
