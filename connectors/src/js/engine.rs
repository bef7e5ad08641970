//! [`JsRuntime`]: the engine's settings, its pool of QuickJS runtimes, and where script code
//! runs (the "segments" of the module docs).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rquickjs::Runtime;
use rquickjs::context::intrinsic;
use tokio::sync::Semaphore;

use super::compile::{self, PackageModules, Sandbox};
use super::memory::{Budget, CappedAllocator};
use crate::error::{CallError, ErrorKind};

/// What a call's fresh context holds: the language, without `performance` (a clock) and
/// `WeakRef`/`FinalizationRegistry` (behaviour that hangs on when the collector runs), and
/// without the typed arrays ([`WithTypedArrays`]).
pub(crate) type Intrinsics = (
    intrinsic::Date,
    intrinsic::Eval,
    intrinsic::RegExpCompiler,
    intrinsic::RegExp,
    intrinsic::Json,
    intrinsic::Proxy,
    intrinsic::MapSet,
    intrinsic::Promise,
    intrinsic::BigInt,
);

/// [`Intrinsics`] and the typed arrays (`ArrayBuffer`, `Uint8Array`, `DataView`, …): for
/// packages whose source names them. They are a fifth of a fresh context's cost, which is
/// most of a call's, and few connectors use them.
pub(crate) type WithTypedArrays = (Intrinsics, intrinsic::TypedArrays);

/// What one call may use. Every call gets the whole of each limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsLimits {
    /// Memory the call's engine may hold: its fresh context, the package's module and
    /// everything the script allocates. Over it: [`ErrorKind::ScriptMemory`].
    pub memory_bytes: usize,
    /// CPU time the script may run, summed over the call; time spent awaiting host HTTP
    /// calls does not count. Over it: [`ErrorKind::ScriptTimeout`].
    pub cpu_time: Duration,
    /// The interpreter's stack: how deep the script may recurse. Over it:
    /// [`ErrorKind::ScriptMemory`] (unless the script catches the `RangeError`).
    pub stack_bytes: usize,
}

impl Default for JsLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 * 1024 * 1024,
            cpu_time: Duration::from_secs(1),
            stack_bytes: 512 * 1024,
        }
    }
}

/// The engine's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsConfig {
    pub limits: JsLimits,
    /// A package's segments of script code run on the calling task's thread until one of
    /// them uses more CPU time than this; from then on, that package's segments run on the
    /// engine threads. A hop to another thread costs ≈0.1 ms of CPU per segment, more than
    /// a typical call's script; a package that computes, or a runaway script, holds an async
    /// worker thread at most once, and for at most its CPU limit. Zero: always the engine
    /// threads. Default: 10 ms.
    pub inline_segment_cpu: Duration,
    /// Segments of script code running at once on engine threads (tokio's blocking pool):
    /// more would only share the same cores. Calls awaiting HTTP hold none. Default: the
    /// number of cores.
    pub engine_threads: usize,
    /// QuickJS runtimes kept for reuse between calls (one is in use per call in flight; a
    /// new one costs ≈15 µs and an idle one ≈30 KiB).
    pub idle_runtimes: usize,
}

impl Default for JsConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            limits: JsLimits::default(),
            inline_segment_cpu: Duration::from_millis(10),
            engine_threads: cores,
            idle_runtimes: 64,
        }
    }
}

/// The JavaScript engine of a process: settings, limits and a pool of QuickJS runtimes.
/// Cheap to clone; clones share the pool. See the [module docs](super) for the contract.
#[derive(Clone)]
pub struct JsRuntime {
    pub(crate) engine: Arc<Engine>,
}

impl fmt::Debug for JsRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsRuntime")
            .field("config", &self.engine.config)
            .finish_non_exhaustive()
    }
}

impl Default for JsRuntime {
    fn default() -> Self {
        Self::new(JsConfig::default())
    }
}

impl JsRuntime {
    pub fn new(config: JsConfig) -> Self {
        let permits = Arc::new(Semaphore::new(config.engine_threads.max(1)));
        let mut engine = Engine {
            config,
            idle: Mutex::new(Vec::new()),
            permits,
            sandbox: None,
        };
        engine.sandbox = Some(compile::sandbox(&engine).expect("the sandbox's modules compile"));
        Self {
            engine: Arc::new(engine),
        }
    }

    pub fn config(&self) -> &JsConfig {
        &self.engine.config
    }
}

/// The shared state behind [`JsRuntime`].
pub(crate) struct Engine {
    pub(crate) config: JsConfig,
    idle: Mutex<Vec<Pooled>>,
    permits: Arc<Semaphore>,
    /// The sandbox's own modules; `None` only while they are being compiled.
    sandbox: Option<Sandbox>,
}

/// A QuickJS runtime and the budget its allocator enforces.
pub(crate) struct Pooled {
    pub(crate) rt: Runtime,
    pub(crate) budget: Arc<Budget>,
}

impl Engine {
    pub(crate) fn sandbox(&self) -> &Sandbox {
        self.sandbox.as_ref().expect("compiled at start-up")
    }

    /// A runtime for one call: from the pool, or new.
    pub(crate) fn checkout(self: &Arc<Self>) -> Result<Lease, CallError> {
        let pooled = self.idle.lock().expect("pool lock").pop();
        let pooled = match pooled {
            Some(pooled) => pooled,
            None => self.fresh()?,
        };
        Ok(Lease {
            engine: Arc::clone(self),
            pooled: Some(pooled),
            discard: false,
        })
    }

    /// A runtime outside the pool, for compiling at load and at start-up.
    pub(crate) fn fresh(&self) -> Result<Pooled, CallError> {
        let budget = Arc::new(Budget::default());
        budget.reset(self.config.limits.memory_bytes);
        let rt = Runtime::new_with_alloc(CappedAllocator::new(Arc::clone(&budget)))
            .map_err(|e| CallError::new(ErrorKind::ScriptMemory, e.to_string()))?;
        rt.set_max_stack_size(self.config.limits.stack_bytes);
        // A fresh context is ≈100 KiB: a lower threshold would collect during its creation.
        rt.set_gc_threshold(4 * 1024 * 1024);
        Ok(Pooled { rt, budget })
    }

    fn give_back(&self, pooled: Pooled) {
        let mut idle = self.idle.lock().expect("pool lock");
        if idle.len() < self.config.idle_runtimes {
            idle.push(pooled);
        }
    }

    /// Runs `segment` of a package that is `heavy` on an engine thread, else in place.
    pub(crate) async fn segment<R: Send + 'static>(
        &self,
        heavy: bool,
        segment: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, CallError> {
        match heavy {
            true => self.offload(segment).await,
            false => Ok(segment()),
        }
    }

    /// Runs `segment` on tokio's blocking pool, at most `engine_threads` at once, so that a
    /// script running up to its CPU limit does not hold one of the async worker threads.
    async fn offload<R: Send + 'static>(
        &self,
        segment: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, CallError> {
        let _permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        match tokio::task::spawn_blocking(segment).await {
            Ok(result) => Ok(result),
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_) => Err(CallError::new(
                ErrorKind::Upstream,
                "the script engine is shutting down",
            )),
        }
    }
}

/// Runs a segment that must finish before returning (loading a package, receiving a webhook
/// delivery) in place; if it may be `heavy`, on a multi-threaded tokio runtime, first
/// handing this worker's other tasks to another thread.
pub(crate) fn in_place<R>(heavy: bool, segment: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if heavy && handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(segment)
        }
        _ => segment(),
    }
}

/// A runtime lent to one call; back to the pool when dropped, cleaned.
pub(crate) struct Lease {
    engine: Arc<Engine>,
    pooled: Option<Pooled>,
    discard: bool,
}

impl Lease {
    pub(crate) fn rt(&self) -> &Runtime {
        &self.pooled.as_ref().expect("leased").rt
    }

    pub(crate) fn budget(&self) -> &Arc<Budget> {
        &self.pooled.as_ref().expect("leased").budget
    }

    /// Drops the runtime instead of pooling it: after a script was stopped by a limit, a
    /// new runtime (≈15 µs) is cheaper than wondering what state the old one is in.
    pub(crate) fn discard(&mut self) {
        self.discard = true;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(pooled) = self.pooled.take() else {
            return;
        };
        // The call's context was dropped before its lease (see `Session`): collect it, and
        // let go of the package's modules and the call's meter.
        pooled.rt.set_interrupt_handler(None);
        pooled.rt.run_gc();
        pooled
            .rt
            .set_loader(PackageModules::None, PackageModules::None);
        // Jobs a call left queued (a promise reaction of a script that failed first) would
        // run in the next call's segments: such a runtime is dropped, and its jobs with it.
        let clean = !pooled.rt.is_job_pending();
        if clean && !self.discard && !std::thread::panicking() {
            pooled.budget.reset(self.engine.config.limits.memory_bytes);
            self.engine.give_back(pooled);
        }
    }
}
