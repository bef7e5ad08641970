//! The `durable-server` binary: `dev`, `serve`, `create-tenant`.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;
use clap::{Parser, Subcommand};
use durable_control::{NewApiKey, Scope};
use durable_server::auth::{generate_key, role_scopes};
use durable_server::{Backend, dev};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(name = "durable-server", version, about = "Durable's HTTP server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Everything in one process on the embedded store, with a demo tenant, key and webhook.
    Dev {
        #[arg(
            long,
            env = "DURABLE_DATABASE_URL",
            default_value = "sqlite://durable-dev.db"
        )]
        database_url: String,
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
    },
    /// The API, webhook intake and a worker for the registered workflows.
    Serve {
        #[arg(long, env = "DURABLE_DATABASE_URL")]
        database_url: String,
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
    },
    /// Creates a tenant with one workspace and prints an owner key for it (shown once).
    CreateTenant {
        #[arg(long, env = "DURABLE_DATABASE_URL")]
        database_url: String,
        /// 1 to 63 of a-z, 0-9 and -.
        #[arg(long)]
        slug: String,
        #[arg(long, default_value = "main")]
        workspace: String,
        #[arg(long, default_value = "free")]
        plan: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Dev {
            database_url,
            listen,
        } => run(&database_url, listen, true).await,
        Command::Serve {
            database_url,
            listen,
        } => run(&database_url, listen, false).await,
        Command::CreateTenant {
            database_url,
            slug,
            workspace,
            plan,
        } => create_tenant(&database_url, &slug, &workspace, &plan).await,
    }
}

async fn run(url: &str, listen: SocketAddr, demo: bool) -> anyhow::Result<()> {
    let backend = Backend::connect(url)
        .await
        .with_context(|| format!("cannot open the store at {}", redact(url)))?;
    tracing::info!(store = %redact(url), "store open");
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let base = format!("http://{}", listener.local_addr()?);
    if demo {
        let demo = dev::demo_tenant(&backend, &dev::demo_file(url)).await?;
        // Not println!: a closed stdout (a piped reader gone) must not stop the server.
        let _ = writeln!(std::io::stdout(), "{}\n", dev::banner(&base, &demo));
    }
    let worker = durable_worker::Worker::builder_arc(backend.runs.clone())
        .register(dev::hello_hook)
        .build();
    let stop = CancellationToken::new();
    let worker_stop = worker.shutdown_token();
    let worker_task = tokio::spawn(worker.run());
    tracing::info!(%base, "serving");
    let shutdown = {
        let stop = stop.clone();
        async move {
            let _ = tokio::signal::ctrl_c().await;
            stop.cancel();
        }
    };
    durable_server::serve(listener, backend.state(dev::registry()), shutdown).await?;
    worker_stop.cancel();
    worker_task.await??;
    Ok(())
}

async fn create_tenant(url: &str, slug: &str, workspace: &str, plan: &str) -> anyhow::Result<()> {
    let backend = Backend::connect(url).await?;
    let tenant = backend.control.create_tenant(slug, plan).await?;
    let workspace = backend
        .control
        .create_workspace(tenant.id, workspace, None)
        .await?;
    let key = generate_key();
    let scope = Scope {
        workspace: workspace.id,
        actor: None,
    };
    let new_key = NewApiKey {
        name: "owner".to_owned(),
        token_hash: key.hash,
        token_prefix: key.shown_prefix.clone(),
        scopes: role_scopes("owner").unwrap_or_default(),
    };
    backend.control.create_api_key(scope, new_key).await?;
    println!("tenant {} ({slug}), workspace {}", tenant.id, workspace.id);
    println!("owner API key (shown once): {}", key.token);
    Ok(())
}

/// The URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:…{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}
