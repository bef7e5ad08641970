//! Packaged connectors: a package's JavaScript module run in a sandboxed QuickJS engine.
//!
//! [`ScriptConnector`] implements [`Connector`] for a [`Package`] whose manifest names a
//! `main` module; [`JsRuntime`] is the engine a process shares (limits, a pool of runtimes).
//!
//! # The contract, for connector authors
//!
//! The package's `main` file is an ES module. It exports `actions` and `triggers` objects
//! whose keys are the manifest's action and trigger keys:
//!
//! ```js
//! // index.js
//! import { noteOf } from "./lib/notes.js";   // only the package's own files
//!
//! export const actions = {
//!   async create_note(input, ctx) {
//!     const res = await ctx.http.request({
//!       method: "POST", url: `${ctx.baseUrl}/notes`,
//!       json: { title: input.title }, auth: true,
//!     });
//!     return noteOf(res.json);
//!   },
//! };
//!
//! export const triggers = {
//!   new_notes: {
//!     async poll(ctx) {
//!       const res = await ctx.http.request({ url: `${ctx.baseUrl}/notes?after=${ctx.cursor ?? 0}`, auth: true });
//!       return { events: res.json.notes, cursor: res.json.last };
//!     },
//!   },
//!   note_hook: {
//!     receive(delivery, ctx) {
//!       return delivery.json.type === "note.created" ? [delivery.json.note] : [];
//!     },
//!   },
//! };
//! ```
//!
//! The module is compiled and evaluated when the package is loaded
//! ([`ScriptConnector::new`]): a syntax error (named with its file, line and column), an
//! import that is refused, a top-level `throw`, or an action or trigger of the manifest the
//! module does not export is reported then, not at the first call.
//!
//! ## Entry points
//!
//! - `actions[key](input, ctx)` returns (or resolves to) the action's output.
//! - `triggers[key].poll(ctx)` returns `{ events: [...], cursor }`: the new items, oldest first,
//!   and where the next poll starts (`ctx.cursor` then; `null` on the first poll).
//! - `triggers[key].receive(delivery, ctx)` turns a verified webhook delivery into events: an
//!   array (`[]` or `null`: nothing for this trigger). `delivery.headers` has lower-case
//!   names, `delivery.body` is the body as text, `delivery.json` the body parsed, if it is
//!   JSON. `receive` cannot make requests: it must finish without waiting on the host.
//!
//! Each may be `async`. The value returned must be JSON (`undefined` counts as `null`): a
//! function, a `BigInt` or a cycle is a [`ScriptError`](ErrorKind::ScriptError). Input and
//! output are checked against the manifest's schemas by the caller, not here.
//!
//! ## `ctx`
//!
//! - `ctx.input` (the same object as the first argument), `ctx.idempotencyKey` (stable across
//!   retries and replays), `ctx.attempt` (from 1), `ctx.baseUrl`: in actions.
//! - `ctx.params`, `ctx.cursor`, `ctx.baseUrl`: in polls.
//! - `ctx.log.debug / info / warn / error(message, fields?)`: to the engine's log (`tracing`,
//!   with the connector and the action or trigger as fields). `console.log` and friends go
//!   there too. At most 1,000 lines a call, each cut at 8 KiB.
//! - `ctx.http.request({ method, url, headers, json | body | form, timeout, auth, throwOnError })`
//!   (actions and polls) resolves to `{ status, headers, body, json }`: `body` is the text,
//!   `json` the body parsed if it is JSON (else `undefined`), `headers` lower-case names.
//!   `method` defaults to `GET`; `json` is sent as JSON, `body` as text, `form` (an object)
//!   URL-encoded; `timeout` is in milliseconds. The request goes through the engine's guarded
//!   client, which already carries the step's idempotency header where the manifest says.
//!   - `auth: true` has the engine add the call's credential, in Rust, the way the manifest's
//!     `auth` says. **The script never sees the credential**: no value of it is in `ctx` or
//!     anywhere else, it is only added to requests to the origin of `ctx.baseUrl` (so that a
//!     script cannot send it to a host of its choosing), and its text is cut out of the
//!     responses and errors the script receives.
//!   - With `throwOnError` (the default) a status other than 2xx throws a `ConnectorError`
//!     carrying the engine's classification of the answer: `kind` (`rate_limited`,
//!     `upstream`, `auth_expired`, `rejected`, …), `status`, `retryAfterMs` (from
//!     `Retry-After` and the like), and `response`. Uncaught, it fails the step with that
//!     same kind and delay, so a 429 is retried when the provider asked, not as a script bug.
//!     With `throwOnError: false` the response is returned whatever its status. A request
//!     that gets no answer (refused address, connection failure, timeout, body too large)
//!     always throws, classified the same way.
//! - `ctx.retryable(message, { retryAfterMs, kind })` and `ctx.terminal(message, { kind })`
//!   build errors to throw: retryable kinds are `upstream` (the default), `timeout`,
//!   `connection` and `rate_limited`; terminal ones `rejected` (the default),
//!   `auth_expired`, `invalid_input`, `invalid_output`, `not_found`, and the rest of
//!   [`ErrorKind`] but the script limits. Any thrown object whose `kind` names one of these
//!   is classified by it.
//! - Anything else thrown (`throw new Error("…")`, a `TypeError`) fails the step as a terminal
//!   [`ScriptError`](ErrorKind::ScriptError) whose message is the error's name and message
//!   and the first line of its stack (`Error: boom (at create_note (index.js:5:13))`).
//!
//! ## The sandbox
//!
//! - **No ambient I/O.** The engine has no file system, socket, process or `std`/`os`
//!   module; all outside access is `ctx.http.request` and `ctx.log`. A module may import the
//!   package's other `.js`/`.mjs` files by relative path (`./lib.js`, `../util/x.js`) with
//!   `import` statements; any other specifier is refused with an error saying so, and so is
//!   `import()` (QuickJS cannot be trusted to clean up after a dynamic import that never
//!   settles).
//! - **No clock, no randomness.** A run is replayed, so a value it depends on must come from
//!   the engine (the input, `ctx.idempotencyKey`): `Date.now()`, `Date()` and `new Date()`
//!   without an argument, and `Math.random()` throw a `TypeError` saying so.
//!   `new Date(value)`, `Date.parse` and `Date.UTC` work (local-time methods use the host's
//!   time zone: prefer the UTC ones). There is no `performance`, no `setTimeout`, no
//!   `WeakRef`/`FinalizationRegistry`.
//! - **Typed arrays** (`Uint8Array` and its kin, `ArrayBuffer`, `DataView`, `Atomics`) are
//!   there when the package's source names one of them, anywhere in its files. They are a
//!   fifth of the cost of each call's fresh context, and few connectors use them; a script
//!   that only builds the name at run time (`globalThis["Uint" + "8Array"]`) finds none.
//! - **Limits, per call** ([`JsLimits`], set on [`JsRuntime`]): memory (default 64 MiB; over
//!   it, [`ScriptMemory`](ErrorKind::ScriptMemory)), CPU time of script execution (default
//!   1 s, measured on the thread's CPU clock, not counting time spent awaiting host requests;
//!   over it, [`ScriptTimeout`](ErrorKind::ScriptTimeout)) and stack (default 512 KiB;
//!   recursing deeper is a `RangeError`, [`ScriptMemory`](ErrorKind::ScriptMemory) if
//!   uncaught). Both limit errors are terminal and name the limit. A script stopped by one
//!   cannot catch it, and leaves nothing behind: its runtime is dropped, the next call is
//!   served as usual.
//! - **Isolation.** Each call runs in a fresh QuickJS context: new globals, the module
//!   evaluated anew. Nothing a call does (module-level variables, changed prototypes,
//!   globals) is seen by another, so two tenants may share one package.
//!
//! # How it runs
//!
//! A package's modules are compiled to QuickJS bytecode once, at load. A call leases a
//! QuickJS runtime from [`JsRuntime`]'s pool (one runtime per call in flight; the memory cap
//! is enforced by the runtime's allocator, the CPU cap by its interrupt handler), creates a
//! fresh context, evaluates the sandbox's prelude (`js/prelude.js`) and the package's
//! bytecode, and calls the entry point. Both limits are enforced on the runtime, so a
//! call's limit is its own.
//!
//! Script code runs in *segments*: the first from the context's creation until the entry
//! point returns or awaits a host request, then one after each batch of answers. Between
//! segments a call holds no thread: its requests are plain futures on the caller's task, and
//! each call in flight has a runtime of its own, so any number of calls may wait on HTTP at
//! once, whatever the number of threads.
//!
//! Where a segment runs is adaptive. A package's segments run on the calling task's thread
//! (a typical call's script takes tens of microseconds; handing it to another thread would
//! cost more than running it) until one of them uses more than
//! [`JsConfig::inline_segment_cpu`] (10 ms) of CPU. From then on that package's segments run
//! on tokio's blocking pool, at most [`JsConfig::engine_threads`] at once, so that a package
//! that computes, or a runaway script, holds one of the async worker threads (which run the
//! engine's leases, heartbeats and I/O) at most once, for at most its CPU limit, and never
//! again. A webhook's `receive` runs on the calling thread the same way (through
//! `block_in_place` on a multi-threaded tokio runtime once the package is known to be heavy);
//! loading a package always does.
//!
//! A fresh context per call is the price of isolation: creating and collecting it is most of
//! a warm call's cost (see `docs/benchmarks.md`, workload `g/connector-js-call`).
//! `extras.js`, what only some calls use (requests, classified errors), is read on first use.

mod compile;
mod convert;
mod engine;
mod host;
mod memory;
mod meter;
mod session;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

pub use engine::{JsConfig, JsLimits, JsRuntime};

use self::compile::Compiled;
use self::host::{Host, HttpAccess};
use self::session::{Exports, Invocation, Target};
use crate::connector::{ActionCall, Connector, Delivery, PollCall, Polled};
use crate::error::{CallError, ErrorKind};
use crate::manifest::{Manifest, Trigger};
use crate::package::Package;
use crate::runtime::ScriptLoader;

/// A packaged connector: its package and the module compiled for the engine.
pub struct ScriptConnector {
    package: Arc<Package>,
    compiled: Arc<Compiled>,
    runtime: JsRuntime,
}

impl std::fmt::Debug for ScriptConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptConnector")
            .field("name", &self.package.manifest().name)
            .field("version", &self.package.manifest().version)
            .field("main", &self.compiled.main)
            .finish_non_exhaustive()
    }
}

impl ScriptConnector {
    /// Compiles the package's modules and evaluates its `main` once, checking that it
    /// exports every action and trigger of the manifest. Fails with
    /// [`ScriptError`](ErrorKind::ScriptError) for a module that does not compile, throws or
    /// imports what it may not, and [`NotFound`](ErrorKind::NotFound) for a missing export.
    pub fn new(package: Arc<Package>, runtime: JsRuntime) -> Result<Self, CallError> {
        let compiled = engine::in_place(true, || compile::package(&runtime.engine, &package))?;
        let connector = Self {
            package,
            compiled: Arc::new(compiled),
            runtime,
        };
        connector.check()?;
        Ok(connector)
    }

    pub fn package(&self) -> &Arc<Package> {
        &self.package
    }

    fn check(&self) -> Result<(), CallError> {
        let manifest = self.manifest();
        let mut expected = Exports {
            actions: manifest.actions.iter().map(|a| a.key.clone()).collect(),
            ..Exports::default()
        };
        for trigger in &manifest.triggers {
            match trigger {
                Trigger::Polling(t) => expected.polls.push(t.key.clone()),
                Trigger::Webhook(t) => expected.receives.push(t.key.clone()),
            }
        }
        let host = Host::new(
            &manifest.name,
            format!("module `{}`", self.compiled.main),
            None,
        );
        let invocation = Invocation {
            target: Target::Check(expected),
            fields: json!({}),
            delivery: None,
        };
        self.run_in_place(host, invocation).map(drop)
    }

    fn run_in_place(&self, host: Host, invocation: Invocation) -> Result<Value, CallError> {
        session::run_in_place(
            &self.runtime.engine,
            Arc::clone(&self.compiled),
            Arc::new(host),
            invocation,
        )
    }

    fn trigger(&self, key: &str, kind: &str) -> Result<&Trigger, CallError> {
        self.manifest()
            .trigger(key)
            .filter(|t| t.kind() == kind)
            .ok_or_else(|| {
                CallError::new(
                    ErrorKind::NotFound,
                    format!("`{}` has no {kind} trigger `{key}`", self.manifest().name),
                )
            })
    }
}

impl JsRuntime {
    /// What [`Connectors::packages`](crate::Connectors::packages) takes: packages loaded as
    /// [`ScriptConnector`]s on this engine.
    pub fn script_loader(&self) -> ScriptLoader {
        let runtime = self.clone();
        Arc::new(move |package| {
            let connector = ScriptConnector::new(package, runtime.clone())?;
            Ok(Arc::new(connector) as Arc<dyn Connector>)
        })
    }
}

#[async_trait]
impl Connector for ScriptConnector {
    fn manifest(&self) -> &Manifest {
        self.package.manifest()
    }

    async fn call(&self, action: &str, call: ActionCall) -> Result<Value, CallError> {
        let manifest = self.manifest();
        if manifest.action(action).is_none() {
            return Err(CallError::new(
                ErrorKind::NotFound,
                format!("`{}` has no action `{action}`", manifest.name),
            ));
        }
        let access = HttpAccess::new(
            call.base_url.clone(),
            manifest.auth.clone(),
            call.credential,
        );
        let host = Host::new(&manifest.name, format!("action `{action}`"), Some(access));
        let invocation = Invocation {
            target: Target::Action(action.to_owned()),
            fields: json!({
                "input": call.input,
                "idempotencyKey": call.idempotency_key,
                "attempt": call.attempt,
                "baseUrl": call.base_url,
            }),
            delivery: None,
        };
        let engine = &self.runtime.engine;
        let compiled = Arc::clone(&self.compiled);
        session::run(engine, compiled, Arc::new(host), invocation, call.http).await
    }

    async fn poll(&self, trigger: &str, poll: PollCall) -> Result<Polled, CallError> {
        self.trigger(trigger, "polling")?;
        let manifest = self.manifest();
        let access = HttpAccess::new(
            poll.base_url.clone(),
            manifest.auth.clone(),
            poll.credential,
        );
        let operation = format!("trigger `{trigger}`");
        let host = Host::new(&manifest.name, operation.clone(), Some(access));
        let invocation = Invocation {
            target: Target::Poll(trigger.to_owned()),
            fields: json!({
                "params": poll.params,
                "cursor": poll.cursor,
                "baseUrl": poll.base_url,
            }),
            delivery: None,
        };
        let engine = &self.runtime.engine;
        let compiled = Arc::clone(&self.compiled);
        let value = session::run(engine, compiled, Arc::new(host), invocation, poll.http).await?;
        polled(value, &operation)
    }

    fn receive(&self, trigger: &str, delivery: &Delivery) -> Result<Vec<Value>, CallError> {
        self.trigger(trigger, "webhook")?;
        let operation = format!("trigger `{trigger}`");
        let host = Host::new(&self.manifest().name, operation.clone(), None);
        let invocation = Invocation {
            target: Target::Receive(trigger.to_owned()),
            fields: json!({}),
            delivery: Some(delivery_json(delivery)),
        };
        match self.run_in_place(host, invocation)? {
            Value::Null => Ok(Vec::new()),
            Value::Array(events) => Ok(events),
            other => Err(shape(&operation, "an array of events", &other)),
        }
    }
}

/// The script's view of a delivery.
fn delivery_json(delivery: &Delivery) -> Value {
    let mut headers = Map::new();
    for (name, value) in &delivery.headers {
        let name = name.to_ascii_lowercase();
        let joined = match headers.remove(&name) {
            Some(Value::String(earlier)) => format!("{earlier}, {value}"),
            _ => value.clone(),
        };
        headers.insert(name, joined.into());
    }
    let mut object = json!({
        "headers": headers,
        "body": String::from_utf8_lossy(&delivery.body),
    });
    if let Ok(parsed) = serde_json::from_slice::<Value>(&delivery.body) {
        object["json"] = parsed;
    }
    object
}

/// A poll's `{ events, cursor }`.
fn polled(value: Value, operation: &str) -> Result<Polled, CallError> {
    let expected = "`{ events: [...], cursor }`";
    let Value::Object(mut object) = value else {
        return Err(shape(operation, expected, &value));
    };
    let events = match object.remove("events") {
        Some(Value::Array(events)) => events,
        None | Some(Value::Null) => Vec::new(),
        Some(other) => return Err(shape(operation, "an array in `events`", &other)),
    };
    let cursor = object.remove("cursor").filter(|c| !c.is_null());
    Ok(Polled { events, cursor })
}

fn shape(operation: &str, expected: &str, got: &Value) -> CallError {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    CallError::new(
        ErrorKind::ScriptError,
        format!("{operation} must return {expected}, not {got}"),
    )
}
