//! The rules of the control plane, written once for every store: each public method of
//! [`Control`](crate::Control) is one transaction over [`Tx`](crate::db::Tx) rows.

mod audit_log;
mod connectors;
mod flows;
pub(crate) mod hooks;
pub(crate) mod idempotency;
mod keys;
mod members;
mod tenants;
mod versions;
