//! Webhook endpoints. Their secrets leave the store only for verifying a delivery.

use std::time::Duration;

use uuid::Uuid;

use crate::db::{Access, HookDeliveryId, NewHookRow};
use crate::limits::{self, require};
use crate::{
    AuditEvent, Control, Hook, HookScheme, HookWithSecrets, Result, Scope, record, transaction,
};

/// What a hook's dedupe made of a verified delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryClaim {
    /// The body is new to the hook within its window, or the hook does not dedupe: the
    /// delivery starts its own run.
    First,
    /// Delivery `delivery_id` brought the same body within the window: this one is its
    /// duplicate, answered with that delivery's run.
    Repeat {
        /// The delivery that brought the body first.
        delivery_id: String,
    },
}

/// The window a new hook gets when its creator names none: GitHub signs the body only, with
/// no timestamp, so its hooks dedupe by default; the other schemes do not need to.
pub fn default_dedupe_window(scheme: HookScheme) -> Option<Duration> {
    (scheme == HookScheme::Github).then_some(limits::GITHUB_DEDUPE_WINDOW)
}

impl Control {
    /// Creates a webhook endpoint with its verification secrets. `dedupe_window` is how long
    /// a repeated body counts as a duplicate: `None` takes [`default_dedupe_window`],
    /// `Some(Duration::ZERO)` turns dedupe off; [`Error::Invalid`](crate::Error::Invalid)
    /// past [`limits::MAX_DEDUPE_WINDOW`] or for a malformed workflow name.
    pub async fn create_hook(
        &self,
        scope: Scope,
        workflow_name: &str,
        scheme: HookScheme,
        secrets: &[String],
        dedupe_window: Option<Duration>,
    ) -> Result<Hook> {
        require("workflow name", limits::name(workflow_name))?;
        let window = match dedupe_window {
            Some(window) => {
                require("dedupe window", limits::dedupe_window(window))?;
                Some(window).filter(|w| !w.is_zero())
            }
            None => default_dedupe_window(scheme),
        };
        let row = NewHookRow {
            workflow_name,
            scheme,
            secrets,
            dedupe_window: window,
        };
        transaction!(self, scope, |tx| {
            let hook = tx.insert_hook(scope.workspace, &row).await?;
            let event = AuditEvent::HookCreated {
                hook: hook.id,
                workflow_name: hook.workflow_name.clone(),
                scheme,
            };
            record(&mut *tx, scope, event).await?;
            Ok(hook)
        })
    }

    /// Decides whether a verified delivery with body digest `body_digest` (SHA-256) is the
    /// first of its body within the hook's dedupe window, recording it if so. Two identical
    /// deliveries at once agree: one is [`DeliveryClaim::First`], the other its repeat.
    pub async fn claim_delivery(
        &self,
        hook: &Hook,
        body_digest: &[u8; 32],
        delivery_id: &str,
    ) -> Result<DeliveryClaim> {
        let Some(window) = hook.dedupe_window else {
            return Ok(DeliveryClaim::First);
        };
        let id = delivery_key(hook, body_digest);
        transaction!(self, Access::Tenant(hook.workspace_id), |tx| {
            if tx.claim_hook_delivery(id, delivery_id, window).await? {
                return Ok(DeliveryClaim::First);
            }
            // The claim left the live record locked: it cannot vanish before this read.
            match tx.hook_delivery(id).await? {
                Some(first) => Ok(DeliveryClaim::Repeat { delivery_id: first }),
                None => Ok(DeliveryClaim::First),
            }
        })
    }

    /// Forgets a claim whose delivery could not start its run, so that a retry of the same
    /// body is not answered with a run that does not exist.
    pub async fn release_delivery(
        &self,
        hook: &Hook,
        body_digest: &[u8; 32],
        delivery_id: &str,
    ) -> Result<()> {
        if hook.dedupe_window.is_none() {
            return Ok(());
        }
        let id = delivery_key(hook, body_digest);
        transaction!(self, Access::Tenant(hook.workspace_id), |tx| tx
            .delete_hook_delivery(id, delivery_id)
            .await)
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

fn delivery_key<'a>(hook: &Hook, body_digest: &'a [u8; 32]) -> HookDeliveryId<'a> {
    HookDeliveryId {
        workspace: hook.workspace_id,
        hook: hook.id,
        digest: body_digest,
    }
}
