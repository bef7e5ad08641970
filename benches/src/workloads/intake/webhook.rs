//! (e) through HTTP: a signed Standard Webhooks delivery posted to `durable-server` on
//! loopback → `202 Accepted` with the run id, and → the run's first activity begins. The
//! server and its worker run in this process on one store of their own.

use std::time::{Duration, Instant};

use anyhow::Context;
use durable::prelude::*;
use durable_control::{HookScheme, Scope};
use durable_server::{Backend, HookEvent, Registry};
use tokio_util::sync::CancellationToken;

use super::{GIVE_UP, STARTS};
use crate::report::{Basis, Row};
use crate::stats::Samples;
use crate::workers::InProcessWorker;
use crate::workloads::{Bench, CONCURRENCY};

const SECRET: &str = "whsec_YmVuY2htYXJrLXNlY3JldC0zMi1ieXRlcy1sb25nISE=";

#[durable::activity(name = "bench_hook_arrive")]
async fn hook_arrive(ctx: &ActivityCtx) -> Result<(), ActivityError> {
    STARTS.record(ctx.run_id());
    Ok(())
}

#[durable::workflow(name = "bench_hook")]
async fn bench_hook(ctx: &WorkflowCtx, _event: HookEvent) -> Result<(), WorkflowError> {
    Ok(hook_arrive(ctx).await?)
}

/// Latencies of `n` deliveries, one after the other: to the 202, and to the first activity.
pub(crate) async fn run(bench: &Bench<'_>) -> anyhow::Result<Vec<Row>> {
    let n = bench.pick(50, 200);
    bench.progress(&format!("e/intake (HTTP webhook): {n} signed deliveries"));
    let backend = Backend::connect(bench.url).await?;
    let hook_url = serve(&backend).await?;
    // The worker shares the server's store, as in `durable-server serve` and `dev`: on SQLite
    // that is what tells it at once that a run was created.
    let worker = InProcessWorker::start(&backend.runs, CONCURRENCY, |b| b.register(bench_hook));
    let measured = deliver_all(&hook_url.url, n).await;
    hook_url.stop.cancel();
    worker.stop().await?;
    STARTS.take();
    let (accepted, started) = measured?;
    let accepted = Samples::from_durations(accepted);
    let started = Samples::from_durations(started);
    Ok(vec![
        bench
            .row("e/intake-webhook-202", n)
            .latency(&accepted)
            .ratio(bench.floor.latency_ratio(accepted.p50()), Basis::Latency)
            .with(
                "path",
                "POST /v1/hooks/{id} (Standard Webhooks, verified) → 202",
            ),
        bench
            .row("e/intake-webhook-started", n)
            .latency(&started)
            .ratio(bench.floor.latency_ratio(started.p50()), Basis::Latency)
            .with(
                "path",
                "POST /v1/hooks/{id} → the run's first activity begins",
            ),
    ])
}

struct Served {
    url: String,
    stop: CancellationToken,
}

/// A tenant with a signed hook, and the server on a loopback port.
async fn serve(backend: &Backend) -> anyhow::Result<Served> {
    let control = &backend.control;
    let slug = format!("bench-{}", uuid::Uuid::now_v7().simple());
    let tenant = control.create_tenant(&slug, "free").await?;
    let workspace = control.create_workspace(tenant.id, "bench", None).await?;
    let scope = Scope {
        workspace: workspace.id,
        actor: None,
    };
    let secrets = [SECRET.to_owned()];
    let hook = control
        .create_hook(
            scope,
            "bench_hook",
            HookScheme::StandardWebhooks,
            &secrets,
            None,
        )
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/v1/hooks/{}", listener.local_addr()?, hook.id);
    let stop = CancellationToken::new();
    let state = backend.state(Registry::default().register(bench_hook));
    tokio::spawn(durable_server::serve(
        listener,
        state,
        stop.clone().cancelled_owned(),
    ));
    Ok(Served { url, stop })
}

async fn deliver_all(url: &str, n: usize) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let http = reqwest::Client::new();
    let (mut accepted, mut started) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let body = format!(r#"{{"delivery":{i}}}"#);
        let id = format!("msg_{i}");
        let timestamp = chrono::Utc::now().timestamp();
        let signature =
            durable_connectors::webhook::sign_standard(SECRET, &id, timestamp, body.as_bytes())?;
        let sent = Instant::now();
        let response = http
            .post(url)
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await?
            .error_for_status()?;
        accepted.push(sent.elapsed());
        let reply: serde_json::Value = response.json().await?;
        let run_id: RunId = reply["run_id"].as_str().context("no run id")?.parse()?;
        let began = STARTS.first_start(run_id, GIVE_UP).await?;
        started.push(began.saturating_duration_since(sent));
    }
    Ok((accepted, started))
}
