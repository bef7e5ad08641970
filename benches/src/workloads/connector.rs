//! (g) What the JavaScript sandbox costs a connector call: a no-op packaged action against a
//! no-op native `Connector`, called one at a time, and the cold cost of loading a package.
//! No store is involved: the rows have no floor ratio, and run once per harness run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use durable_connectors::{
    ActionCall, CallError, Connector, HttpPolicy, JsRuntime, Manifest, Outbound, Package,
    ScriptConnector,
};
use serde_json::{Value, json};

use crate::report::{Row, Unit};
use crate::stats::{Samples, rate};

/// The rows' store column: the engine alone.
const STORE: &str = "none";

/// Calls made before measuring: pooled runtimes, the blocking pool's threads, caches.
const WARM_UP: usize = 200;

const MODULE: &str = r#"
export const actions = {
  async noop(input, ctx) {
    return {};
  },
  // Never called: what a real action compiles to, so that the load below compiles something.
  async create_note(input, ctx) {
    const res = await ctx.http.request({
      method: "POST", url: `${ctx.baseUrl}/notes`, json: { title: input.title }, auth: true,
    });
    ctx.log.info("created", { id: res.json.id });
    return res.json;
  },
};
"#;

fn manifest() -> Value {
    json!({
        "name": "bench_notes",
        "version": "0.1.0",
        "baseUrl": "https://notes.example.com",
        "main": "index.js",
        "auth": { "type": "api_key", "header": "Authorization", "prefix": "Bearer" },
        "actions": [
            { "key": "noop", "inputSchema": { "type": "object" } },
            { "key": "create_note", "inputSchema": { "type": "object" } }
        ]
    })
}

/// A fresh package each time: a load compiles from source, as on install.
fn package() -> anyhow::Result<Arc<Package>> {
    with_source(MODULE.to_owned())
}

/// The same package, but its source names a typed array: its calls' contexts have them.
fn package_with_typed_arrays() -> anyhow::Result<Arc<Package>> {
    with_source(format!("{MODULE}\n// Decodes nothing into a Uint8Array.\n"))
}

fn with_source(source: String) -> anyhow::Result<Arc<Package>> {
    let files = BTreeMap::from([("index.js".to_owned(), source)]);
    let package = Package::from_parts(manifest(), files).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Arc::new(package))
}

/// The native counterpart: the same manifest, a call that does nothing.
#[derive(Debug)]
struct Noop(Manifest);

#[async_trait]
impl Connector for Noop {
    fn manifest(&self) -> &Manifest {
        &self.0
    }

    async fn call(&self, _action: &str, _call: ActionCall) -> Result<Value, CallError> {
        Ok(json!({}))
    }
}

fn call(http: &Outbound) -> ActionCall {
    ActionCall {
        input: json!({ "title": "hello" }),
        idempotency_key: "bench:1".to_owned(),
        attempt: 1,
        base_url: "https://notes.example.com".to_owned(),
        http: http.clone(),
        credential: None,
    }
}

/// `CallError` is no `std::error::Error`: its kind and message.
fn failed(err: CallError) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", err.kind, err.message)
}

/// The whole process's CPU time (every thread: the engine's segments run on the blocking pool).
fn process_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// What `n` calls of `action`, one at a time, cost.
struct Measured {
    latency: Samples,
    per_second: f64,
    cpu_per_call_us: f64,
}

async fn measure(connector: &dyn Connector, n: usize) -> anyhow::Result<Measured> {
    let http = Outbound::new(HttpPolicy::default());
    for _ in 0..WARM_UP {
        connector.call("noop", call(&http)).await.map_err(failed)?;
    }
    let mut samples = Vec::with_capacity(n);
    let cpu = process_cpu();
    let started = Instant::now();
    for _ in 0..n {
        let one = Instant::now();
        let output = connector.call("noop", call(&http)).await.map_err(failed)?;
        samples.push(one.elapsed());
        anyhow::ensure!(output == json!({}), "unexpected output {output}");
    }
    let elapsed = started.elapsed();
    let cpu = process_cpu().saturating_sub(cpu);
    Ok(Measured {
        latency: Samples::from_durations(samples),
        per_second: rate(n, elapsed),
        cpu_per_call_us: cpu.as_secs_f64() * 1e6 / n as f64,
    })
}

pub(crate) async fn run(quick: bool) -> anyhow::Result<Vec<Row>> {
    let calls = if quick { 2_000 } else { 20_000 };
    let loads = if quick { 20 } else { 200 };
    eprintln!(
        "[bench] none     g/connector: {calls} no-op calls, native, JavaScript, JavaScript with \
         typed arrays"
    );
    let native = Noop(package()?.manifest().clone());
    let native = measure(&native, calls).await?;
    let runtime = JsRuntime::default();
    let script = ScriptConnector::new(package()?, runtime.clone()).map_err(failed)?;
    let js = measure(&script, calls).await?;
    let typed =
        ScriptConnector::new(package_with_typed_arrays()?, runtime.clone()).map_err(failed)?;
    let typed = measure(&typed, calls).await?;
    eprintln!("[bench] none     g/connector: {loads} cold package loads");
    let load = cold_loads(&runtime, loads)?;
    let overhead_p50 = js
        .latency
        .p50()
        .zip(native.latency.p50())
        .map(|(js, native)| js - native);
    let engine_threads = runtime.config().engine_threads;
    Ok(vec![
        Row::new("g/connector-native-call", STORE, calls)
            .rate(native.per_second, Unit::Ops)
            .latency(&native.latency)
            .with("cpu_us_per_call", native.cpu_per_call_us),
        Row::new("g/connector-js-call", STORE, calls)
            .rate(js.per_second, Unit::Ops)
            .latency(&js.latency)
            .with("cpu_us_per_call", js.cpu_per_call_us)
            .with("overhead_p50_ms", overhead_p50)
            .with(
                "cpu_overhead_us_per_call",
                js.cpu_per_call_us - native.cpu_per_call_us,
            )
            .with("engine_threads", engine_threads)
            .note(format!(
                "{:.3} ms p50 and {:.0} µs of CPU per call over a native no-op call",
                overhead_p50.unwrap_or(f64::NAN),
                js.cpu_per_call_us - native.cpu_per_call_us,
            )),
        Row::new("g/connector-js-call-typed-arrays", STORE, calls)
            .rate(typed.per_second, Unit::Ops)
            .latency(&typed.latency)
            .with("cpu_us_per_call", typed.cpu_per_call_us)
            .with(
                "cpu_overhead_us_per_call",
                typed.cpu_per_call_us - native.cpu_per_call_us,
            ),
        Row::new("g/connector-js-load", STORE, loads)
            .rate(load.per_second, Unit::Ops)
            .latency(&load.latency)
            .with("cpu_us_per_call", load.cpu_per_call_us)
            .with("module_bytes", MODULE.len()),
    ])
}

/// `ScriptConnector::new` on a fresh package, `n` times: compile, evaluate, check exports.
fn cold_loads(runtime: &JsRuntime, n: usize) -> anyhow::Result<Measured> {
    let packages = (0..n)
        .map(|_| package())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut samples = Vec::with_capacity(n);
    let cpu = process_cpu();
    let started = Instant::now();
    for package in packages {
        let one = Instant::now();
        ScriptConnector::new(package, runtime.clone()).map_err(failed)?;
        samples.push(one.elapsed());
    }
    let elapsed = started.elapsed();
    let cpu = process_cpu().saturating_sub(cpu);
    Ok(Measured {
        latency: Samples::from_durations(samples),
        per_second: rate(n, elapsed),
        cpu_per_call_us: cpu.as_secs_f64() * 1e6 / n as f64,
    })
}
