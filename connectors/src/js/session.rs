//! One call: a leased runtime, a fresh context, and the segments in which the script runs,
//! with the host's HTTP exchanges awaited between them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use rquickjs::function::This;
use rquickjs::promise::PromiseState;
use rquickjs::{Context, Ctx, Function, Module, Object, Value};

use super::compile::{self, Compiled, PackageModules};
use super::convert::{self, Verdict};
use super::engine::{Engine, Intrinsics, Lease, WithTypedArrays, in_place};
use super::host::{self, Host, Outgoing, Settlement, Slots};
use super::meter::Meter;
use crate::error::{CallError, ErrorKind};
use crate::http::Outbound;

/// The script code a call runs.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// `actions[key](input, ctx)`.
    Action(String),
    /// `triggers[key].poll(ctx)`.
    Poll(String),
    /// `triggers[key].receive(delivery, ctx)`.
    Receive(String),
    /// Nothing: checks at load that the module exports what the manifest declares.
    Check(Exports),
}

/// What a package's module must export, by the manifest.
#[derive(Debug, Clone, Default)]
pub(crate) struct Exports {
    pub(crate) actions: Vec<String>,
    pub(crate) polls: Vec<String>,
    pub(crate) receives: Vec<String>,
}

/// One call's entry point and the fields of its `ctx` (`input`, `baseUrl`, …).
#[derive(Debug)]
pub(crate) struct Invocation {
    pub(crate) target: Target,
    pub(crate) fields: serde_json::Value,
    /// A webhook delivery, for [`Target::Receive`].
    pub(crate) delivery: Option<serde_json::Value>,
}

/// Where a call stands after a segment.
pub(crate) enum Step {
    Done(Result<serde_json::Value, CallError>),
    /// The script awaits the host: these requests are to be sent (maybe none, if it awaits
    /// ones already in flight).
    Waiting(Vec<Outgoing>),
}

/// A call in progress. Its fields drop in order: the context before the runtime it lives in.
pub(crate) struct Session {
    context: Context,
    lease: Lease,
    meter: Arc<Meter>,
    host: Arc<Host>,
    engine: Arc<Engine>,
    compiled: Arc<Compiled>,
    /// Set once the main module is loaded: later imports are refused.
    imports_sealed: Arc<AtomicBool>,
}

impl Drop for Session {
    fn drop(&mut self) {
        // The slots hold the call's values; the runtime goes back to the pool without them.
        self.context.with(|ctx| {
            let _ = ctx.remove_userdata::<Slots>();
        });
    }
}

/// Runs a call to its end: segments on the engine's threads, HTTP exchanges awaited in
/// between, as many in flight at once as the script started.
pub(crate) async fn run(
    engine: &Arc<Engine>,
    compiled: Arc<Compiled>,
    host: Arc<Host>,
    invocation: Invocation,
    http: Outbound,
) -> Result<serde_json::Value, CallError> {
    let operation = host.operation.clone();
    let access = host.http.clone();
    let opener = Arc::clone(engine);
    let package = Arc::clone(&compiled);
    let (mut session, mut step) = engine
        .segment(package.is_heavy(), move || {
            let session = Session::open(&opener, compiled, host)?;
            let step = session.start(invocation);
            Ok::<_, CallError>(session.keep(step))
        })
        .await??;
    let mut in_flight = FuturesUnordered::new();
    loop {
        let outgoing = match step {
            Step::Done(result) => return result,
            Step::Waiting(outgoing) => outgoing,
        };
        if let Some(access) = &access {
            for request in outgoing {
                in_flight.push(host::exchange(http.clone(), access.clone(), request));
            }
        }
        let Some(first) = in_flight.next().await else {
            return Err(never_settles(&operation));
        };
        let mut answers = vec![first];
        while let Some(Some(more)) = in_flight.next().now_or_never() {
            answers.push(more);
        }
        let current = session.take().expect("a waiting call keeps its session");
        (session, step) = engine
            .segment(package.is_heavy(), move || {
                let step = current.settle(answers);
                current.keep(step)
            })
            .await?;
    }
}

/// Runs a call that may not wait for anything (a webhook's `receive`, the load check) on
/// the calling thread.
pub(crate) fn run_in_place(
    engine: &Arc<Engine>,
    compiled: Arc<Compiled>,
    host: Arc<Host>,
    invocation: Invocation,
) -> Result<serde_json::Value, CallError> {
    in_place(compiled.is_heavy(), || {
        let operation = host.operation.clone();
        let session = Session::open(engine, compiled, host)?;
        match session.start(invocation) {
            Step::Done(result) => result,
            Step::Waiting(_) => Err(never_settles(&operation)),
        }
    })
}

fn never_settles(operation: &str) -> CallError {
    CallError::new(
        ErrorKind::ScriptError,
        format!(
            "{operation} awaits a promise that nothing will settle (a connector has no timers; \
             only ctx.http.request waits on the host)"
        ),
    )
}

impl Session {
    fn open(
        engine: &Arc<Engine>,
        compiled: Arc<Compiled>,
        host: Arc<Host>,
    ) -> Result<Self, CallError> {
        let lease = engine.checkout()?;
        let limits = engine.config.limits;
        lease.budget().reset(limits.memory_bytes);
        let meter = Arc::new(Meter::new(limits.cpu_time));
        let on_tick = Arc::clone(&meter);
        let rt = lease.rt();
        rt.set_interrupt_handler(Some(Box::new(move || on_tick.over_budget())));
        let (modules, imports_sealed) = PackageModules::for_call(Arc::clone(&compiled));
        rt.set_loader(modules.clone(), modules);
        let context = match compiled.typed_arrays {
            true => Context::custom::<WithTypedArrays>(rt),
            false => Context::custom::<Intrinsics>(rt),
        }
        .map_err(|e| convert::engine_error(&e))?;
        Ok(Self {
            context,
            lease,
            meter,
            host,
            engine: Arc::clone(engine),
            compiled,
            imports_sealed,
        })
    }

    /// The session, if the call goes on, and its step; a finished session is dropped here,
    /// on the engine's thread, where cleaning its runtime costs no async worker time.
    fn keep(mut self, step: Step) -> (Option<Self>, Step) {
        match step {
            Step::Waiting(_) => (Some(self), step),
            Step::Done(_) => {
                if self.meter.tripped() || self.lease.budget().exceeded() {
                    self.lease.discard();
                }
                (None, step)
            }
        }
    }

    fn verdict(&self) -> Verdict<'_> {
        Verdict {
            limits: &self.engine.config.limits,
            meter: &self.meter,
            budget: self.lease.budget(),
        }
    }

    /// The first segment: the sandbox, the package's module, the entry point called.
    fn start(&self, invocation: Invocation) -> Step {
        self.segment(|session, ctx| session.start_in(ctx, invocation))
    }

    /// A later segment: answers handed to the script, which runs until it waits again.
    fn settle(&self, answers: Vec<(u32, Settlement)>) -> Step {
        self.segment(|session, ctx| session.settle_in(ctx, answers))
    }

    fn segment(&self, run: impl FnOnce(&Self, &Ctx<'_>) -> Result<Step, CallError>) -> Step {
        self.meter.begin();
        // Never clone a `Context`: with rquickjs's `parallel` feature a clone shares the
        // handle, but each drop frees the context: once too often.
        let step = self
            .context
            .with(|ctx| run(self, &ctx).unwrap_or_else(|err| Step::Done(Err(err))));
        if self.meter.end() > self.engine.config.inline_segment_cpu {
            self.compiled.mark_heavy();
        }
        step
    }

    fn start_in(&self, ctx: &Ctx<'_>, invocation: Invocation) -> Result<Step, CallError> {
        let verdict = self.verdict();
        if ctx.store_userdata(Slots::default()).is_err() {
            return Err(CallError::new(
                ErrorKind::ScriptError,
                "the call's slots are in use",
            ));
        }
        let js_ctx = self.install(ctx, &invocation.fields)?;
        let main = format!("module `{}`", self.compiled.main);
        let exports = import_main(ctx, &self.compiled.main, &self.imports_sealed)
            .map_err(|err| verdict.failure(ctx, err, &main))?;
        let what = self.host.operation.as_str();
        let fail = |err| verdict.failure(ctx, err, what);
        let result = match invocation.target {
            Target::Action(key) => {
                let action = export(&exports, "actions", &key, None)?;
                let input: Value = js_ctx.get("input").map_err(fail)?;
                action.call((This(exports_of(&exports, "actions")?), input, js_ctx))
            }
            Target::Poll(key) => {
                let poll = export(&exports, "triggers", &key, Some("poll"))?;
                poll.call((This(trigger(&exports, &key)?), js_ctx))
            }
            Target::Receive(key) => {
                let receive = export(&exports, "triggers", &key, Some("receive"))?;
                let text = invocation.delivery.unwrap_or_default().to_string();
                let delivery = ctx.json_parse(text).map_err(fail)?;
                receive.call((This(trigger(&exports, &key)?), delivery, js_ctx))
            }
            Target::Check(expected) => return Ok(Step::Done(check(&exports, &expected))),
        };
        let value: Value = match result {
            Ok(value) => value,
            Err(err) => return Ok(Step::Done(Err(fail(err)))),
        };
        self.slots(ctx)?.result.replace(Some(value));
        Ok(self.progress(ctx))
    }

    /// Runs the prelude and builds the script's `ctx` around the host functions.
    fn install<'js>(
        &self,
        ctx: &Ctx<'js>,
        fields: &serde_json::Value,
    ) -> Result<Object<'js>, CallError> {
        let fail = |err| self.verdict().failure(ctx, err, "the sandbox's prelude");
        let sandbox = self.engine.sandbox();
        let prelude = compile::evaluate(ctx, &sandbox.prelude).map_err(fail)?;
        let install: Function = prelude.get("install").map_err(fail)?;
        let host = host::host_object(ctx, &self.host, &sandbox.extras).map_err(fail)?;
        let fields = ctx.json_parse(fields.to_string()).map_err(fail)?;
        install.call((host, fields)).map_err(fail)
    }

    fn settle_in(&self, ctx: &Ctx<'_>, answers: Vec<(u32, Settlement)>) -> Result<Step, CallError> {
        let what = self.host.operation.as_str();
        let fail = |err| self.verdict().failure(ctx, err, what);
        for (id, answer) in answers {
            let resolve = self.slots(ctx)?.pending.borrow_mut().remove(&id);
            let Some(resolve) = resolve else { continue };
            let text = serde_json::to_string(&answer).expect("a settlement serializes");
            let value = ctx.json_parse(text).map_err(fail)?;
            resolve.call::<_, ()>((value,)).map_err(fail)?;
        }
        Ok(self.progress(ctx))
    }

    /// Runs the script's pending jobs, then says whether its entry point has finished.
    fn progress(&self, ctx: &Ctx<'_>) -> Step {
        while !self.meter.over_budget() && ctx.execute_pending_job() {}
        let verdict = self.verdict();
        let what = self.host.operation.as_str();
        if self.meter.tripped() {
            let _ = ctx.catch();
            return Step::Done(Err(verdict.thrown(&Value::new_undefined(ctx.clone()), what)));
        }
        let result = match self.slots(ctx) {
            Ok(slots) => slots.result.borrow().clone(),
            Err(err) => return Step::Done(Err(err)),
        };
        let Some(value) = result else {
            return Step::Done(Ok(serde_json::Value::Null));
        };
        let Some(promise) = value.as_promise() else {
            return Step::Done(verdict.to_json(ctx, value, what));
        };
        match promise.state() {
            PromiseState::Pending => Step::Waiting(self.host.take_outgoing()),
            PromiseState::Resolved => Step::Done(match promise.result::<Value>() {
                Some(Ok(value)) => verdict.to_json(ctx, value, what),
                Some(Err(err)) => Err(verdict.failure(ctx, err, what)),
                None => unreachable!("a resolved promise has a result"),
            }),
            PromiseState::Rejected => {
                let _ = promise.result::<Value>();
                Step::Done(Err(verdict.thrown(&ctx.catch(), what)))
            }
        }
    }

    fn slots<'a, 'js>(
        &self,
        ctx: &'a Ctx<'js>,
    ) -> Result<rquickjs::runtime::UserDataGuard<'a, Slots<'js>>, CallError> {
        ctx.userdata::<Slots>()
            .ok_or_else(|| CallError::new(ErrorKind::ScriptError, "the call's slots are gone"))
    }
}

/// Runs the package's main module and its imports (loaded from bytecode by the loader, which
/// resolves and links them); its exports. Imports are `sealed` once the static ones are
/// loaded, before any of the package's code runs.
///
/// Through a two-line module compiled here rather than `Module::import`: QuickJS aborts the
/// process when it collects an import whose top-level `await` never settled, and a script
/// must not be able to do that.
fn import_main<'js>(
    ctx: &Ctx<'js>,
    main: &str,
    sealed: &AtomicBool,
) -> rquickjs::Result<Object<'js>> {
    let specifier = serde_json::to_string(&format!("./{main}")).expect("a string serializes");
    let source = format!("import * as main from {specifier};\nexport {{ main }};");
    let declared = Module::declare(ctx.clone(), "durable:main", source)?;
    sealed.store(true, Ordering::Relaxed);
    let (module, promise) = declared.eval()?;
    settled(ctx, promise.finish::<()>())?;
    module.get("main")
}

fn settled<'js, T>(ctx: &Ctx<'js>, result: rquickjs::Result<T>) -> rquickjs::Result<T> {
    match result {
        Err(rquickjs::Error::WouldBlock) => Err(rquickjs::Exception::throw_message(
            ctx,
            "its top-level code awaits a promise that nothing will settle",
        )),
        other => other,
    }
}

/// `exports[group]`, which must be an object.
fn exports_of<'js>(exports: &Object<'js>, group: &str) -> Result<Object<'js>, CallError> {
    let value: Value = exports
        .get(group)
        .unwrap_or_else(|_| Value::new_undefined(exports.ctx().clone()));
    value
        .into_object()
        .ok_or_else(|| missing(format!("the module exports no `{group}` object")))
}

fn trigger<'js>(exports: &Object<'js>, key: &str) -> Result<Object<'js>, CallError> {
    let triggers = exports_of(exports, "triggers")?;
    let value: Value = triggers
        .get(key)
        .unwrap_or_else(|_| Value::new_undefined(exports.ctx().clone()));
    value
        .into_object()
        .ok_or_else(|| missing(format!("the module's `triggers` has no `{key}` object")))
}

/// The function `exports[group][key]`, or `exports[group][key][method]`.
fn export<'js>(
    exports: &Object<'js>,
    group: &str,
    key: &str,
    method: Option<&str>,
) -> Result<Function<'js>, CallError> {
    let (holder, name, path) = match method {
        None => (exports_of(exports, group)?, key, format!("{group}.{key}")),
        Some(method) => (
            trigger(exports, key)?,
            method,
            format!("{group}.{key}.{method}"),
        ),
    };
    let value: Value = holder
        .get(name)
        .unwrap_or_else(|_| Value::new_undefined(exports.ctx().clone()));
    value
        .into_function()
        .ok_or_else(|| missing(format!("the module exports no function `{path}`")))
}

fn missing(message: String) -> CallError {
    CallError::new(ErrorKind::NotFound, message)
}

/// Every export the manifest needs, or one error naming all that are missing.
fn check(exports: &Object<'_>, expected: &Exports) -> Result<serde_json::Value, CallError> {
    let found = |result: Result<Function<'_>, CallError>| result.err().map(|e| e.message);
    let mut problems: Vec<String> = Vec::new();
    problems.extend(
        expected
            .actions
            .iter()
            .filter_map(|k| found(export(exports, "actions", k, None))),
    );
    problems.extend(
        expected
            .polls
            .iter()
            .filter_map(|k| found(export(exports, "triggers", k, Some("poll")))),
    );
    problems.extend(
        expected
            .receives
            .iter()
            .filter_map(|k| found(export(exports, "triggers", k, Some("receive")))),
    );
    problems.dedup();
    match problems.is_empty() {
        true => Ok(serde_json::Value::Null),
        false => Err(missing(format!(
            "the module does not match the manifest: {}",
            problems.join("; ")
        ))),
    }
}
