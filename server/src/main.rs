//! The `durable-server` binary: `dev`, `serve`, `create-tenant`.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use durable_connectors::{ActionWorkflow, HttpPolicy};
use durable_control::{NewApiKey, Scope};
use durable_server::auth::{generate_key, role_scopes};
use durable_server::connectors::{self, ConnectorSettings};
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
        #[command(flatten)]
        connectors: ConnectorArgs,
    },
    /// The API, webhook intake and a worker for the registered workflows.
    Serve {
        #[arg(long, env = "DURABLE_DATABASE_URL")]
        database_url: String,
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
        #[command(flatten)]
        connectors: ConnectorArgs,
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

/// Where connector packages come from and where their calls go.
#[derive(Debug, Args)]
struct ConnectorArgs {
    /// Installs the connector packages in this directory (a package, or a directory of
    /// packages) as global connectors at start. Repeatable.
    #[arg(long = "connectors", value_name = "DIR")]
    dirs: Vec<std::path::PathBuf>,
    /// Sends connector NAME's calls to URL instead of its manifest's `baseUrl`
    /// (`github=https://github.example.com/api/v3`). Repeatable.
    #[arg(long = "connector-url", value_name = "NAME=URL", value_parser = name_and_url)]
    base_urls: Vec<(String, String)>,
}

fn name_and_url(arg: &str) -> Result<(String, String), String> {
    let (name, url) = arg
        .split_once('=')
        .ok_or_else(|| format!("`{arg}` is not NAME=URL"))?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("`{url}` is not an http or https URL"));
    }
    Ok((name.to_owned(), url.to_owned()))
}

impl ConnectorArgs {
    /// The settings, with outbound HTTP configured from the environment (`DURABLE_HTTP_*`).
    fn settings(&self) -> anyhow::Result<ConnectorSettings> {
        Ok(ConnectorSettings {
            http: HttpPolicy::from_env()?,
            base_urls: self.base_urls.clone(),
            ..ConnectorSettings::default()
        })
    }
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
            connectors,
        } => run(&database_url, listen, &connectors, true).await,
        Command::Serve {
            database_url,
            listen,
            connectors,
        } => run(&database_url, listen, &connectors, false).await,
        Command::CreateTenant {
            database_url,
            slug,
            workspace,
            plan,
        } => create_tenant(&database_url, &slug, &workspace, &plan).await,
    }
}

async fn run(
    url: &str,
    listen: SocketAddr,
    args: &ConnectorArgs,
    demo: bool,
) -> anyhow::Result<()> {
    let backend = Backend::connect(url)
        .await
        .with_context(|| format!("cannot open the store at {}", redact(url)))?;
    tracing::info!(store = %redact(url), "store open");
    let connectors = connectors::connectors(&backend.control, &args.settings()?);
    connectors::install_at_start(&backend.control, &connectors, &args.dirs).await?;
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
        .register_dyn(Arc::new(ActionWorkflow::new(connectors.clone())))
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
    let state = backend.state_with(dev::registry(), connectors);
    durable_server::serve(listener, state, shutdown).await?;
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
