//! API keys and the tenant context of a request.
//!
//! A key is `dur_sk_` followed by 32 random bytes in URL-safe base64 (256 bits). Only its
//! SHA-256 is stored; it is shown once, when created. A request proves its key with
//! `Authorization: Bearer <key>`; [`Auth`] resolves it to the key's workspace and scopes, and
//! a handler reaches data only through the [`Scope`] that [`Auth::scope`] hands out after
//! checking a permission.

use std::sync::{Arc, Mutex};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::app::AppState;
use crate::problem::Problem;
use durable_control::{KeyGrant, Scope};

/// The type prefix of every API key: it tells a leaked string for what it is.
pub const KEY_PREFIX: &str = "dur_sk_";

/// How many characters of a key are kept to tell keys apart in listings.
const SHOWN_CHARS: usize = KEY_PREFIX.len() + 6;

/// What a key may do. Names are `<resource>:<read|write>`.
pub const SCOPES: &[&str] = &[
    "workspaces:read",
    "workspaces:write",
    "keys:read",
    "keys:write",
    "members:read",
    "members:write",
    "flows:read",
    "flows:write",
    "runs:read",
    "runs:write",
    "hooks:read",
    "hooks:write",
    "connectors:read",
    "connectors:write",
    "audit:read",
];

/// The scopes a member role grants, for keys created for a role.
pub fn role_scopes(role: &str) -> Option<Vec<String>> {
    let keep = |scope: &str| match role {
        "owner" | "admin" => true,
        "member" => !matches!(scope, "keys:write" | "members:write" | "workspaces:write"),
        "viewer" => scope.ends_with(":read") && scope != "audit:read",
        _ => false,
    };
    let scopes: Vec<String> = SCOPES
        .iter()
        .filter(|s| keep(s))
        .map(|s| s.to_string())
        .collect();
    (!scopes.is_empty()).then_some(scopes)
}

/// A freshly generated key: the token for the caller (once) and what is stored.
pub struct GeneratedKey {
    /// The whole token; never stored, never logged.
    pub token: String,
    pub hash: [u8; 32],
    pub shown_prefix: String,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("token", &"[REDACTED]")
            .field("shown_prefix", &self.shown_prefix)
            .finish()
    }
}

/// Generates a new key from the operating system's random source.
pub fn generate_key() -> GeneratedKey {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    GeneratedKey {
        hash: hash_token(&token),
        shown_prefix: token[..SHOWN_CHARS].to_owned(),
        token,
    }
}

/// SHA-256 of a token, as stored. A fast hash suffices: the token has 256 random bits.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The tenant context of an authenticated request.
#[derive(Debug, Clone)]
pub struct Auth {
    grant: KeyGrant,
    /// The permission a handler checked, shared by every clone of this request's `Auth`:
    /// an idempotency record keeps it, to check it again before replaying the response.
    checked: Arc<Mutex<Option<String>>>,
}

impl Auth {
    /// The scope to reach the workspace's data with, if the key holds `permission`.
    pub fn scope(&self, permission: &str) -> Result<Scope, Problem> {
        if let Ok(mut checked) = self.checked.lock() {
            checked.get_or_insert_with(|| permission.to_owned());
        }
        if !self.grant.scopes.iter().any(|s| s == permission) {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "missing-scope",
                "Forbidden",
                format!("this API key lacks the `{permission}` scope"),
            ));
        }
        Ok(Scope {
            workspace: self.grant.workspace_id,
            actor: Some(self.grant.key_id),
        })
    }

    /// The permission the request's handler checked first, if it checked one.
    pub(crate) fn checked_permission(&self) -> Option<String> {
        self.checked.lock().ok().and_then(|c| c.clone())
    }

    /// The workspace scope without a permission check: for the server's own bookkeeping
    /// (idempotency records), never for a handler's data.
    pub(crate) fn bookkeeping_scope(&self) -> Scope {
        Scope {
            workspace: self.grant.workspace_id,
            actor: Some(self.grant.key_id),
        }
    }

    /// The key's tenant.
    pub fn tenant(&self) -> Uuid {
        self.grant.tenant_id
    }

    /// The key's own scopes.
    pub fn scopes(&self) -> &[String] {
        &self.grant.scopes
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        if let Some(auth) = parts.extensions.get::<Auth>() {
            return Ok(auth.clone());
        }
        let auth = authenticate(parts, state).await?;
        parts.extensions.insert(auth.clone());
        Ok(auth)
    }
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Auth, Problem> {
    let token = bearer_token(parts)?;
    if !token.starts_with(KEY_PREFIX) {
        return Err(unauthorized(
            "invalid-api-key",
            "the bearer token is not a Durable API key (they start with `dur_sk_`)",
        ));
    }
    match state.control.authenticate(&hash_token(token)).await? {
        Some(grant) => Ok(Auth {
            grant,
            checked: Arc::default(),
        }),
        None => Err(unauthorized(
            "invalid-api-key",
            "the API key is unknown or was revoked",
        )),
    }
}

fn bearer_token(parts: &Parts) -> Result<&str, Problem> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        unauthorized(
            "missing-api-key",
            "send an API key as `Authorization: Bearer <key>`",
        )
    })?;
    let value = value.to_str().unwrap_or_default();
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() => {
            Ok(token.trim())
        }
        _ => Err(unauthorized(
            "missing-api-key",
            "the Authorization header must be `Bearer <key>`",
        )),
    }
}

fn unauthorized(slug: &str, detail: &str) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, slug, "Unauthorized", detail)
}
