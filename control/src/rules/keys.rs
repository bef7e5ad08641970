//! API keys: created with scopes their creator holds, revoked by a key at least as powerful,
//! and never the last one able to manage keys and members.

use uuid::Uuid;

use crate::db::{Access, Tx};
use crate::limits::{self, require};
use crate::{
    ApiKey, AuditEvent, Control, Error, KeyGrant, NewApiKey, Result, Scope, record, transaction,
};

/// The scopes without which nobody could manage the workspace through the API.
const ADMIN_SCOPES: [&str; 2] = ["keys:write", "members:write"];

impl Control {
    /// The grant of an unrevoked key with this token hash.
    pub async fn authenticate(&self, token_hash: &[u8; 32]) -> Result<Option<KeyGrant>> {
        transaction!(self, Access::System, |tx| tx.grant(token_hash).await)
    }

    /// Stores a new key of the scope's workspace, made by the scope's actor;
    /// [`Error::Invalid`] if its name breaks [`limits::name`].
    pub async fn create_api_key(&self, scope: Scope, key: NewApiKey) -> Result<ApiKey> {
        require("key name", limits::name(&key.name))?;
        transaction!(self, scope, |tx| {
            let created = tx
                .insert_api_key(scope.workspace, &key, scope.actor)
                .await?;
            let event = AuditEvent::KeyCreated {
                key: created.id,
                name: created.name.clone(),
                token_prefix: created.token_prefix.clone(),
                scopes: created.scopes.clone(),
            };
            record(&mut *tx, scope, event).await?;
            Ok(created)
        })
    }

    /// The workspace's keys, oldest first, without their tokens.
    pub async fn list_api_keys(&self, scope: Scope) -> Result<Vec<ApiKey>> {
        transaction!(self, scope, |tx| tx.api_keys(scope.workspace).await)
    }

    /// Revokes a key on behalf of a key holding `actor_scopes`; `None` if there is no such
    /// key in the workspace. Revoking twice keeps the first time.
    ///
    /// [`Error::Forbidden`] if the key holds a scope the actor lacks (as a key cannot grant
    /// one); [`Error::LastAdmin`] if it is the last unrevoked key holding both `keys:write`
    /// and `members:write`.
    pub async fn revoke_api_key(
        &self,
        scope: Scope,
        id: Uuid,
        actor_scopes: &[String],
    ) -> Result<Option<ApiKey>> {
        transaction!(self, scope, |tx| {
            let Some(key) = tx.api_key(scope.workspace, id).await? else {
                return Ok(None);
            };
            if key.revoked_at.is_some() {
                return Ok(Some(key));
            }
            if let Some(missing) = key.scopes.iter().find(|s| !actor_scopes.contains(s)) {
                return Err(Error::Forbidden(format!(
                    "this key holds `{missing}`, which the calling key lacks; \
                     only a key holding all of its scopes may revoke it"
                )));
            }
            refuse_last_admin(&mut *tx, scope.workspace, &key).await?;
            let revoked = tx.revoke_api_key(scope.workspace, id).await?;
            let event = AuditEvent::KeyRevoked {
                key: id,
                name: revoked.name.clone(),
            };
            record(&mut *tx, scope, event).await?;
            Ok(Some(revoked))
        })
    }
}

fn is_admin(key: &ApiKey) -> bool {
    key.revoked_at.is_none() && ADMIN_SCOPES.iter().all(|s| key.holds(s))
}

async fn refuse_last_admin(tx: &mut dyn Tx, workspace: Uuid, key: &ApiKey) -> Result<()> {
    if !is_admin(key) {
        return Ok(());
    }
    let others = tx.api_keys(workspace).await?;
    if others.iter().any(|k| k.id != key.id && is_admin(k)) {
        return Ok(());
    }
    Err(Error::LastAdmin(
        "this is the last key able to manage keys and members (`keys:write` and \
         `members:write`); create another such key before revoking it"
            .to_owned(),
    ))
}
