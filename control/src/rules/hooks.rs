//! Webhook endpoints. Their secrets leave the store only for verifying a delivery.

use uuid::Uuid;

use crate::db::Access;
use crate::{
    AuditEvent, Control, Hook, HookScheme, HookWithSecrets, Result, Scope, record, transaction,
};

impl Control {
    /// Creates a webhook endpoint with its verification secrets.
    pub async fn create_hook(
        &self,
        scope: Scope,
        workflow_name: &str,
        scheme: HookScheme,
        secrets: &[String],
    ) -> Result<Hook> {
        transaction!(self, scope, |tx| {
            let hook = tx
                .insert_hook(scope.workspace, workflow_name, scheme, secrets)
                .await?;
            let event = AuditEvent::HookCreated {
                hook: hook.id,
                workflow_name: hook.workflow_name.clone(),
                scheme,
            };
            record(&mut *tx, scope, event).await?;
            Ok(hook)
        })
    }

    /// The workspace's hooks, oldest first, without secrets.
    pub async fn list_hooks(&self, scope: Scope) -> Result<Vec<Hook>> {
        transaction!(self, scope, |tx| tx.hooks(scope.workspace).await)
    }

    /// A hook of the workspace, without secrets.
    pub async fn get_hook(&self, scope: Scope, id: Uuid) -> Result<Option<Hook>> {
        transaction!(self, scope, |tx| {
            Ok(tx.hook(scope.workspace, id).await?.map(|h| h.hook))
        })
    }

    /// A hook and its secrets, by id, for intake.
    pub async fn hook_for_intake(&self, id: Uuid) -> Result<Option<HookWithSecrets>> {
        transaction!(self, Access::System, |tx| tx.hook_for_intake(id).await)
    }

    /// Deletes a hook; `false` if there is no such hook.
    pub async fn delete_hook(&self, scope: Scope, id: Uuid) -> Result<bool> {
        transaction!(self, scope, |tx| {
            if !tx.delete_hook(scope.workspace, id).await? {
                return Ok(false);
            }
            record(&mut *tx, scope, AuditEvent::HookDeleted { hook: id }).await?;
            Ok(true)
        })
    }

    /// Puts `secret` first and keeps the `keep` newest of the current secrets after it
    /// (audited as `hook.rotate`, without the secrets); `None` if there is no such hook.
    pub async fn rotate_hook_secret(
        &self,
        scope: Scope,
        id: Uuid,
        secret: &str,
        keep: usize,
    ) -> Result<Option<Hook>> {
        transaction!(self, scope, |tx| {
            let Some(current) = tx.hook(scope.workspace, id).await? else {
                return Ok(None);
            };
            let mut secrets = vec![secret.to_owned()];
            secrets.extend(current.secrets.into_iter().take(keep));
            tx.set_hook_secrets(scope.workspace, id, &secrets).await?;
            let event = AuditEvent::HookRotated {
                hook: id,
                secrets: secrets.len(),
            };
            record(&mut *tx, scope, event).await?;
            Ok(Some(current.hook))
        })
    }
}
