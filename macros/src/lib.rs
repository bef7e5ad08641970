//! Attribute macros for `durable`: `#[workflow]` and `#[activity]`.
//!
//! Use them through the facade crate, as `#[durable::workflow]` and
//! `#[durable::activity]`; the generated code refers to `::durable` items.
//!
//! This file only holds the entry points. Argument parsing is in `attr`,
//! checks of the annotated function in `ast`, the non-determinism check in
//! `lint`, and code generation in `expand`.

#![warn(missing_docs)]

use proc_macro::TokenStream;

mod ast;
mod attr;
mod errors;
mod expand;
mod lint;

/// Turns an `async fn` into a durable workflow.
///
/// ```ignore
/// use durable::prelude::*;
///
/// /// Charges the order and ships it.
/// #[durable::workflow]
/// pub async fn checkout(ctx: &WorkflowCtx, order: Order) -> Result<String, WorkflowError> {
///     let receipt = charge(ctx, order.amount, "checkout").await?;
///     ctx.sleep(std::time::Duration::from_secs(60)).await?;
///     Ok(receipt)
/// }
///
/// // `checkout` is now a value naming the workflow:
/// // client.start(checkout, order).await?;
/// // Worker::builder(store).register(checkout);
/// ```
///
/// # The function
///
/// - It is an `async fn` without generics or `self`.
/// - Its first argument is `&WorkflowCtx`: the context records every step so
///   the run can be replayed.
/// - It takes at most one more argument, the run's input, which is stored as
///   one JSON value (wrap several values in a struct or tuple). Any pattern
///   works for it, such as `Order { amount, .. }: Order`.
/// - It returns `Result<T, WorkflowError>`; `T` is the run's output.
///
/// The function becomes a unit struct of the same name and visibility that
/// implements `durable::Workflow`. Doc comments and `#[deprecated]` move to
/// the struct, `#[cfg]` applies to everything generated, and other
/// attributes stay on the function body.
///
/// # Options
///
/// `#[durable::workflow(name = "checkout", version = 2, max_attempts = 5)]`
///
/// - `name`: the name runs are stored under; defaults to the function name.
/// - `version`: a whole number, 1 by default; raise it when a change would
///   make old histories replay differently.
/// - `max_attempts`: how many claims in a row may make no progress before
///   the run is parked; at least 1, 5 by default.
///
/// # Determinism
///
/// Workflow code runs again from the top on every resume, so the body may
/// not read the clock (`SystemTime::now`, `Instant::now`, `Utc::now`,
/// `Local::now`), draw random values (`rand::...`, `thread_rng`,
/// `Uuid::new_v4`), spawn tasks (`tokio::spawn`, `std::thread::spawn`) or
/// sleep on a plain timer (`tokio::time::sleep`, `std::thread::sleep`). Each
/// is an error naming the recorded replacement on the context (`ctx.now()`,
/// `ctx.random()`, `ctx.uuid()`, `ctx.sleep(..)`, activities). The check
/// reads the paths written in the body; it does not look inside macro
/// invocations or into functions the body calls. Such work belongs in an
/// activity.
#[proc_macro_attribute]
pub fn workflow(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::workflow(args.into(), item.into()).into()
}

/// Turns an `async fn` into an activity: a step whose result is recorded, so
/// it runs once even though the workflow calling it is replayed.
///
/// ```ignore
/// use durable::prelude::*;
///
/// #[durable::activity(retry(max_attempts = 5, initial = "100ms", non_retryable = ["card_declined"]))]
/// async fn charge(ctx: &ActivityCtx, amount: u64, note: &str) -> Result<String, ActivityError> {
///     // talk to the payment provider
/// #   todo!()
/// }
///
/// // From workflow code, pass the workflow's context instead:
/// // let receipt = charge(ctx, 500, "checkout").await?;
/// ```
///
/// # The function
///
/// - It is an `async fn` without generics or `self`.
/// - Its first argument is `&ActivityCtx`.
/// - Every further argument is a plain name (`amount: u64`, not a pattern),
///   and its type implements `Clone`: each retry attempt gets its own copy.
/// - It returns `Result<T, ActivityError>`; `T` is what gets recorded.
///
/// The function keeps its name, visibility and attributes, but its first
/// argument becomes `&WorkflowCtx`: calling it from a workflow runs the
/// original body as a recorded step, retried as configured. Activities are
/// where side effects belong, so their bodies are not checked for
/// non-determinism.
///
/// # Options
///
/// - `name`: the name the step is recorded under; defaults to the function
///   name.
/// - `retry(...)`: how failed attempts are retried; keys left out keep the
///   defaults:
///   - `max_attempts = 5`: attempts in all, at least 1;
///   - `initial = "100ms"`: the wait before the first retry;
///   - `backoff = 2.0`: the factor between successive waits, at least 1.0;
///   - `max = "10s"`: the longest single wait;
///   - `max_duration = "1m"`: the longest time spent retrying in all;
///   - `jitter = 0.2`: the share of each wait that is randomised, 0.0 to 1.0;
///   - `non_retryable = ["card_declined"]`: error kinds that fail at once;
///   - `on_exhausted = "fail"` or `"pause"`: whether the run fails once the
///     retries are used up, or waits for an operator to resume it.
///
/// Durations use the `humantime` format (`"1m 30s"`) and are checked when the
/// code compiles.
#[proc_macro_attribute]
pub fn activity(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::activity(args.into(), item.into()).into()
}
