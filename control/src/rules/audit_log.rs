//! Reading the audit log, and recording what happens outside the control plane's tables
//! (run actions taken through the API).

use crate::{AuditEntry, AuditEvent, Control, Result, Scope, record, transaction};

/// The most entries one read returns.
pub const MAX_AUDIT_PAGE: u32 = 1000;

impl Control {
    /// The newest entries first, at most `limit` (capped at 1,000).
    pub async fn list_audit(&self, scope: Scope, limit: u32) -> Result<Vec<AuditEntry>> {
        let limit = limit.min(MAX_AUDIT_PAGE);
        transaction!(self, scope, |tx| tx.audit(scope.workspace, limit).await)
    }

    /// Records a change made elsewhere (a run started or cancelled through the API) in the
    /// scope's audit log, with the acting key.
    pub async fn record(&self, scope: Scope, event: AuditEvent) -> Result<()> {
        transaction!(self, scope, |tx| record(&mut *tx, scope, event).await)
    }
}
