//! `Idempotency-Key` records, with Stripe's semantics: the same key and the same request
//! get the stored response; the same key with another request is refused; a request while
//! the first is still running is told so. Records belong to the API key that made them, so
//! no other key can be answered from them.

use std::time::Duration;

use uuid::Uuid;

use crate::db::{IdempotencyId, IdempotencyRow};
use crate::{Control, Result, Scope, transaction};

/// A request made with an idempotency key.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyRequest<'a> {
    /// The client's key.
    pub key: &'a str,
    /// SHA-256 of what identifies the request (method, path, query, body).
    pub request_hash: &'a [u8; 32],
}

/// What the first request with an idempotency key left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdempotencyBegin {
    /// The key is new (or its record expired): this request owns it now.
    Fresh,
    /// A request with the same key and the same body finished: replay its response.
    Replay {
        /// Its status code.
        status: u16,
        /// Its body, as stored (secrets already withheld).
        body: Vec<u8>,
        /// The permission the first request was checked for, to check again before
        /// replaying.
        permission: Option<String>,
    },
    /// A request with the same key but another body was made.
    Mismatch,
    /// A request with the same key is still being handled.
    InProgress,
}

/// The record of `key` made by the scope's actor (the system's records use the nil id).
fn record_id(scope: Scope, key: &str) -> IdempotencyId<'_> {
    IdempotencyId {
        workspace: scope.workspace,
        api_key: scope.actor.unwrap_or(Uuid::nil()),
        key,
    }
}

/// What an existing, unexpired record means for a request with `request_hash`.
fn decide(row: IdempotencyRow, request_hash: &[u8; 32]) -> IdempotencyBegin {
    if row.request_hash.as_slice() != request_hash.as_slice() {
        return IdempotencyBegin::Mismatch;
    }
    match (row.status, row.body) {
        (Some(status), body) => IdempotencyBegin::Replay {
            status,
            body: body.unwrap_or_default(),
            permission: row.permission,
        },
        (None, _) => IdempotencyBegin::InProgress,
    }
}

impl Control {
    /// Claims `request.key` for the scope's actor. A record older than `ttl` counts as
    /// absent and is replaced. Not audited.
    pub async fn begin_idempotent(
        &self,
        scope: Scope,
        request: IdempotencyRequest<'_>,
        ttl: Duration,
    ) -> Result<IdempotencyBegin> {
        let id = record_id(scope, request.key);
        transaction!(self, scope, |tx| {
            if tx.claim_idempotency(id, request.request_hash, ttl).await? {
                return Ok(IdempotencyBegin::Fresh);
            }
            // The claim left the live record locked: it cannot vanish before this read.
            match tx.idempotency(id).await? {
                Some(row) => Ok(decide(row, request.request_hash)),
                None => Ok(IdempotencyBegin::InProgress),
            }
        })
    }

    /// Stores the response of the request that owns `key`, with the permission its handler
    /// checked.
    pub async fn finish_idempotent(
        &self,
        scope: Scope,
        key: &str,
        status: u16,
        body: &[u8],
        permission: Option<&str>,
    ) -> Result<()> {
        let id = record_id(scope, key);
        transaction!(self, scope, |tx| {
            tx.finish_idempotency(id, status, body, permission).await
        })
    }

    /// Forgets an unfinished key (the request failed before it had a response to store).
    pub async fn abandon_idempotent(&self, scope: Scope, key: &str) -> Result<()> {
        let id = record_id(scope, key);
        transaction!(self, scope, |tx| tx.abandon_idempotency(id).await)
    }
}
