//! `durable-server dev`: the whole platform in one process on the embedded store: the API,
//! a worker, and a demo tenant with a key and a webhook, created on first start.
//!
//! The demo key and hook are kept in `<database>.dev.json` beside the database so later
//! starts can print them again. That file holds a live key: it is for local development only.

use std::path::{Path, PathBuf};

use anyhow::Context;
use durable::prelude::*;
use serde::{Deserialize, Serialize};

use crate::auth::{SCOPES, generate_key};
use crate::{Backend, HookEvent, Registry};
use durable_control::{Control, HookScheme, NewApiKey, Scope};

/// Counts the payload's top-level fields: a stand-in for a real integration's first step.
#[durable::activity]
async fn describe_payload(_ctx: &ActivityCtx, event: HookEvent) -> Result<String, ActivityError> {
    let fields = event.payload.as_object().map_or(0, |o| o.len());
    Ok(format!(
        "delivery {} carried {fields} top-level field(s)",
        event.delivery_id
    ))
}

/// The sample workflow the demo hook starts.
#[durable::workflow(name = "hello_hook")]
pub async fn hello_hook(ctx: &WorkflowCtx, event: HookEvent) -> Result<String, WorkflowError> {
    let summary = describe_payload(ctx, event).await?;
    Ok(summary)
}

/// The workflows `dev` serves.
pub fn registry() -> Registry {
    Registry::default()
        .register(hello_hook)
        .register_spec(durable_connectors::ActionWorkflow::spec())
}

/// What the first start created.
#[derive(Debug, Serialize, Deserialize)]
pub struct DemoTenant {
    pub workspace_id: uuid::Uuid,
    pub api_key: String,
    pub hook_id: uuid::Uuid,
}

/// The demo tenant: read from `file`, or created (and written there) on first start.
pub async fn demo_tenant(backend: &Backend, file: &Path) -> anyhow::Result<DemoTenant> {
    if let Ok(text) = std::fs::read_to_string(file) {
        return serde_json::from_str(&text)
            .with_context(|| format!("{} is not a demo tenant file", file.display()));
    }
    let demo = create_demo(&backend.control).await?;
    write_private(file, &serde_json::to_string_pretty(&demo)?)?;
    Ok(demo)
}

async fn create_demo(control: &Control) -> anyhow::Result<DemoTenant> {
    let tenant = control.create_tenant("demo", "free").await?;
    let workspace = control.create_workspace(tenant.id, "demo", None).await?;
    let scope = Scope {
        workspace: workspace.id,
        actor: None,
    };
    let key = generate_key();
    control
        .create_api_key(
            scope,
            NewApiKey {
                name: "dev".to_owned(),
                token_hash: key.hash,
                token_prefix: key.shown_prefix.clone(),
                scopes: SCOPES.iter().map(|s| s.to_string()).collect(),
            },
        )
        .await?;
    let hook = control
        .create_hook(scope, "hello_hook", HookScheme::None, &[], None)
        .await?;
    Ok(DemoTenant {
        workspace_id: workspace.id,
        api_key: key.token,
        hook_id: hook.id,
    })
}

/// Writes a file only its owner may read.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// Where the demo tenant file of a database URL goes.
pub fn demo_file(url: &str) -> PathBuf {
    let path = url.strip_prefix("sqlite://").unwrap_or("durable-dev.db");
    PathBuf::from(format!("{path}.dev.json"))
}

/// The lines printed at start.
pub fn banner(base: &str, demo: &DemoTenant) -> String {
    format!(
        "demo workspace {ws}\n\
         API key (demo only): {key}\n\n\
         trigger the sample workflow through its webhook:\n  \
         curl -s -X POST {base}/v1/hooks/{hook} -H 'content-type: application/json' -d '{{\"hello\":\"world\"}}'\n\n\
         then look at the run:\n  \
         curl -s {base}/v1/runs -H 'authorization: Bearer {key}'\n\n\
         the API: {base}/v1/openapi.json",
        ws = demo.workspace_id,
        key = demo.api_key,
        hook = demo.hook_id,
    )
}
