//! Members: users by email, with a role; a workspace always keeps an owner.

use uuid::Uuid;

use crate::db::{Access, Tx};
use crate::limits::{self, require};
use crate::{AuditEvent, Control, Error, Member, ROLES, Result, Scope, record, transaction};

impl Control {
    /// Adds a member by email (creating the user if needed) or changes its role.
    ///
    /// [`Error::Invalid`] for an unknown role or an email that breaks [`limits::email`];
    /// [`Error::LastAdmin`] if it would demote the workspace's last owner.
    pub async fn put_member(&self, scope: Scope, email: &str, role: &str) -> Result<Member> {
        require("email", limits::email(email))?;
        if !ROLES.contains(&role) {
            return Err(Error::Invalid(format!(
                "unknown role `{role}`; known: {}",
                ROLES.join(", ")
            )));
        }
        // Users are global and the tenant may only read them: the system creates the user
        // first, in its own transaction. A user left behind by a failed membership is
        // harmless.
        let user = transaction!(self, Access::System, |tx| tx.user_for_email(email).await)?;
        transaction!(self, scope, |tx| {
            if role != "owner" {
                refuse_last_owner(&mut *tx, scope.workspace, user, "demote").await?;
            }
            let member = tx.put_member(scope.workspace, user, role).await?;
            let event = AuditEvent::MemberPut {
                user,
                email: member.email.clone(),
                role: member.role.clone(),
            };
            record(&mut *tx, scope, event).await?;
            Ok(member)
        })
    }

    /// The workspace's members.
    pub async fn list_members(&self, scope: Scope) -> Result<Vec<Member>> {
        transaction!(self, scope, |tx| tx.members(scope.workspace).await)
    }

    /// Removes a member; `false` if the user is not one. [`Error::LastAdmin`] for the
    /// workspace's last owner.
    pub async fn remove_member(&self, scope: Scope, user: Uuid) -> Result<bool> {
        transaction!(self, scope, |tx| {
            let members = tx.members(scope.workspace).await?;
            let Some(member) = members.iter().find(|m| m.user_id == user) else {
                return Ok(false);
            };
            refuse_last_owner(&mut *tx, scope.workspace, user, "remove").await?;
            tx.delete_member(scope.workspace, user).await?;
            let event = AuditEvent::MemberRemoved {
                user,
                email: member.email.clone(),
            };
            record(&mut *tx, scope, event).await?;
            Ok(true)
        })
    }
}

/// Refuses to take the owner role from `user` if no other member holds it.
async fn refuse_last_owner(tx: &mut dyn Tx, workspace: Uuid, user: Uuid, verb: &str) -> Result<()> {
    let members = tx.members(workspace).await?;
    let is_owner = |m: &&Member| m.role == "owner";
    let owners: Vec<&Member> = members.iter().filter(is_owner).collect();
    if owners.len() == 1 && owners[0].user_id == user {
        return Err(Error::LastAdmin(format!(
            "cannot {verb} the workspace's last owner; make another member owner first"
        )));
    }
    Ok(())
}
