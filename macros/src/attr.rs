//! Parsing the arguments of `#[workflow(...)]` and `#[activity(...)]`.
//!
//! Every value is checked here, at expansion time, so a bad one is reported
//! on the literal the user wrote rather than as a panic when the worker
//! starts.

use std::collections::HashSet;
use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Lit, LitStr, Meta, Token};

use crate::errors::Errors;

/// The keys `#[workflow(...)]` accepts.
const WORKFLOW_KEYS: &[&str] = &["name", "version", "max_attempts"];

/// The keys `#[activity(...)]` accepts.
const ACTIVITY_KEYS: &[&str] = &["name", "retry"];

/// The keys `retry(...)` accepts.
const RETRY_KEYS: &[&str] = &[
    "max_attempts",
    "initial",
    "backoff",
    "max",
    "max_duration",
    "jitter",
    "non_retryable",
    "on_exhausted",
];

/// How many claims in a row may make no progress before a run is parked.
const DEFAULT_WORKFLOW_MAX_ATTEMPTS: u32 = 5;

/// Arguments of `#[workflow(...)]`, with defaults filled in.
#[derive(Debug)]
pub(crate) struct WorkflowArgs {
    /// The registered name; `None` means the function's name.
    pub(crate) name: Option<LitStr>,
    pub(crate) version: u32,
    pub(crate) max_attempts: u32,
}

impl Default for WorkflowArgs {
    fn default() -> Self {
        Self {
            name: None,
            version: 1,
            max_attempts: DEFAULT_WORKFLOW_MAX_ATTEMPTS,
        }
    }
}

/// Arguments of `#[activity(...)]`.
#[derive(Debug, Default)]
pub(crate) struct ActivityArgs {
    /// The recorded name; `None` means the function's name.
    pub(crate) name: Option<LitStr>,
    /// `None` when no `retry(...)` was given, so the facade's default applies.
    pub(crate) retry: Option<RetryArgs>,
}

/// The keys given in `retry(...)`; absent keys keep the facade's defaults.
#[derive(Debug, Default)]
pub(crate) struct RetryArgs {
    pub(crate) max_attempts: Option<u32>,
    /// Durations are kept as nanoseconds, which is what the expansion emits.
    pub(crate) initial_nanos: Option<u64>,
    pub(crate) backoff: Option<f64>,
    pub(crate) max_nanos: Option<u64>,
    pub(crate) max_duration_nanos: Option<u64>,
    pub(crate) jitter: Option<f64>,
    pub(crate) non_retryable: Option<Vec<LitStr>>,
    pub(crate) on_exhausted: Option<OnExhausted>,
}

/// What happens to a run once an activity has used up its retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnExhausted {
    Fail,
    Pause,
}

/// Parses `#[workflow(...)]`, recording problems and keeping defaults for
/// the keys that were wrong.
pub(crate) fn parse_workflow_args(tokens: TokenStream, errors: &mut Errors) -> WorkflowArgs {
    let mut args = WorkflowArgs::default();
    let Some(metas) = errors.take(parse_metas(tokens)) else {
        return args;
    };
    let mut seen = Seen::default();
    for meta in &metas {
        let Some(key) = errors.take(key_of(meta, "`#[workflow]`", WORKFLOW_KEYS)) else {
            continue;
        };
        if let Some(error) = seen.duplicate(&key) {
            errors.push(error);
            continue;
        }
        match key.to_string().as_str() {
            "name" => args.name = errors.take(value_of(meta).and_then(name)),
            "version" => {
                if let Some(version) = errors.take(value_of(meta).and_then(u32_of)) {
                    args.version = version;
                }
            }
            "max_attempts" => {
                if let Some(max) = errors.take(value_of(meta).and_then(attempts)) {
                    args.max_attempts = max;
                }
            }
            _ => errors.push(unknown_key(&key, "`#[workflow]`", WORKFLOW_KEYS)),
        }
    }
    args
}

/// Parses `#[activity(...)]`, recording problems as it goes.
pub(crate) fn parse_activity_args(tokens: TokenStream, errors: &mut Errors) -> ActivityArgs {
    let mut args = ActivityArgs::default();
    let Some(metas) = errors.take(parse_metas(tokens)) else {
        return args;
    };
    let mut seen = Seen::default();
    for meta in &metas {
        let Some(key) = errors.take(key_of(meta, "`#[activity]`", ACTIVITY_KEYS)) else {
            continue;
        };
        if let Some(error) = seen.duplicate(&key) {
            errors.push(error);
            continue;
        }
        match key.to_string().as_str() {
            "name" => args.name = errors.take(value_of(meta).and_then(name)),
            "retry" => args.retry = parse_retry(meta, errors),
            _ => errors.push(unknown_key(&key, "`#[activity]`", ACTIVITY_KEYS)),
        }
    }
    args
}

/// Parses the nested `retry(...)` list of `#[activity]`.
fn parse_retry(meta: &Meta, errors: &mut Errors) -> Option<RetryArgs> {
    let Meta::List(list) = meta else {
        errors.push(syn::Error::new_spanned(
            meta,
            "`retry` takes a list of settings, like `retry(max_attempts = 5, initial = \"100ms\")`",
        ));
        return None;
    };
    let metas =
        errors.take(list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated))?;
    let mut retry = RetryArgs::default();
    let mut seen = Seen::default();
    for meta in &metas {
        let Some(key) = errors.take(key_of(meta, "`retry(...)`", RETRY_KEYS)) else {
            continue;
        };
        if let Some(error) = seen.duplicate(&key) {
            errors.push(error);
            continue;
        }
        let value = value_of(meta);
        match key.to_string().as_str() {
            "max_attempts" => retry.max_attempts = errors.take(value.and_then(attempts)),
            "initial" => retry.initial_nanos = errors.take(value.and_then(duration_nanos)),
            "max" => retry.max_nanos = errors.take(value.and_then(duration_nanos)),
            "max_duration" => {
                retry.max_duration_nanos = errors.take(value.and_then(duration_nanos))
            }
            "backoff" => retry.backoff = errors.take(value.and_then(backoff)),
            "jitter" => retry.jitter = errors.take(value.and_then(jitter)),
            "non_retryable" => retry.non_retryable = errors.take(value.and_then(string_list)),
            "on_exhausted" => retry.on_exhausted = errors.take(value.and_then(on_exhausted)),
            _ => errors.push(unknown_key(&key, "`retry(...)`", RETRY_KEYS)),
        }
    }
    Some(retry)
}

/// Splits `a = 1, b(...)` into its comma-separated items.
fn parse_metas(tokens: TokenStream) -> syn::Result<Punctuated<Meta, Token![,]>> {
    Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens)
}

/// The key of one item, which must be a single identifier.
fn key_of(meta: &Meta, context: &str, valid: &[&str]) -> syn::Result<syn::Ident> {
    meta.path().get_ident().cloned().ok_or_else(|| {
        syn::Error::new_spanned(
            meta.path(),
            format!(
                "{context} keys are single names; valid keys are {}",
                list(valid)
            ),
        )
    })
}

/// The value of a `key = value` item.
fn value_of(meta: &Meta) -> syn::Result<&Expr> {
    match meta {
        Meta::NameValue(name_value) => Ok(peel(&name_value.value)),
        _ => {
            let key = meta
                .path()
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            Err(syn::Error::new_spanned(
                meta,
                format!("`{key}` takes a value: write `{key} = ...`"),
            ))
        }
    }
}

/// Looks through invisible groups, which appear when the attribute is
/// written by a `macro_rules!` macro that forwarded a `$value:expr`.
fn peel(expr: &Expr) -> &Expr {
    match expr {
        Expr::Group(group) => peel(&group.expr),
        Expr::Paren(paren) => peel(&paren.expr),
        other => other,
    }
}

/// Keys seen so far in one list, so that a repeated key is reported rather
/// than the later one silently winning.
#[derive(Default)]
struct Seen(HashSet<String>);

impl Seen {
    fn duplicate(&mut self, key: &syn::Ident) -> Option<syn::Error> {
        let fresh = self.0.insert(key.to_string());
        (!fresh).then(|| syn::Error::new(key.span(), format!("`{key}` is given more than once")))
    }
}

fn unknown_key(key: &syn::Ident, context: &str, valid: &[&str]) -> syn::Error {
    syn::Error::new(
        key.span(),
        format!(
            "unknown key `{key}` in {context}; valid keys are {}",
            list(valid)
        ),
    )
}

/// Renders keys as "`a`, `b` and `c`" for error messages.
fn list(keys: &[&str]) -> String {
    let quoted: Vec<String> = keys.iter().map(|key| format!("`{key}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

/// A workflow or activity name: the key under which runs and results are
/// stored, so it cannot be empty.
fn name(expr: &Expr) -> syn::Result<LitStr> {
    let lit = lit_str(expr, "a name in quotes, like `name = \"checkout\"`")?;
    if lit.value().trim().is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            "the name cannot be empty: it is the key under which runs are stored and looked up",
        ));
    }
    Ok(lit)
}

fn lit_str(expr: &Expr, expected: &str) -> syn::Result<LitStr> {
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(lit.clone()),
        _ => Err(syn::Error::new_spanned(
            expr,
            format!("expected {expected}"),
        )),
    }
}

fn u32_of(expr: &Expr) -> syn::Result<u32> {
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(lit), ..
        }) => lit.base10_parse::<u32>(),
        _ => Err(syn::Error::new_spanned(
            expr,
            "expected a whole number, like `2`",
        )),
    }
}

/// An attempt count: zero would mean the work can never run at all.
fn attempts(expr: &Expr) -> syn::Result<u32> {
    let count = u32_of(expr)?;
    if count == 0 {
        return Err(syn::Error::new_spanned(
            expr,
            "`max_attempts` must be at least 1: it counts the first attempt too",
        ));
    }
    Ok(count)
}

/// A number written as `2.0` or `2`.
fn f64_of(expr: &Expr) -> syn::Result<f64> {
    let value = match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Float(lit),
            ..
        }) => lit.base10_parse::<f64>()?,
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(lit), ..
        }) => lit.base10_parse::<f64>()?,
        _ => {
            return Err(syn::Error::new_spanned(
                expr,
                "expected a number, like `2.0`",
            ));
        }
    };
    if !value.is_finite() {
        return Err(syn::Error::new_spanned(expr, "expected a finite number"));
    }
    Ok(value)
}

/// The factor between successive retry intervals: below 1 the intervals
/// would shrink, retrying faster the longer a dependency is down.
fn backoff(expr: &Expr) -> syn::Result<f64> {
    let value = f64_of(expr)?;
    if value < 1.0 {
        return Err(syn::Error::new_spanned(
            expr,
            "`backoff` must be at least 1.0, so that each wait is no shorter than the one before",
        ));
    }
    Ok(value)
}

/// The share of each interval that is randomised, so that many runs retrying
/// the same dependency do not all wake at once.
fn jitter(expr: &Expr) -> syn::Result<f64> {
    let value = f64_of(expr)?;
    if !(0.0..=1.0).contains(&value) {
        return Err(syn::Error::new_spanned(
            expr,
            "`jitter` must be between 0.0 and 1.0: it is the share of each wait that is randomised",
        ));
    }
    Ok(value)
}

/// A duration such as `"100ms"` or `"1m 30s"`, in nanoseconds.
fn duration_nanos(expr: &Expr) -> syn::Result<u64> {
    let lit = lit_str(
        expr,
        "a duration in quotes, like `\"100ms\"` or `\"1m 30s\"`",
    )?;
    let duration = parse_duration(&lit.value(), lit.span())?;
    u64::try_from(duration.as_nanos()).map_err(|_| {
        syn::Error::new(
            lit.span(),
            "this duration is too long: the limit is about 584 years",
        )
    })
}

fn parse_duration(text: &str, span: Span) -> syn::Result<Duration> {
    humantime::parse_duration(text).map_err(|error| {
        syn::Error::new(
            span,
            format!("`{text}` is not a duration ({error}); write it like \"100ms\", \"5s\" or \"1m 30s\""),
        )
    })
}

/// Error kinds that must not be retried, like `["card_declined"]`.
fn string_list(expr: &Expr) -> syn::Result<Vec<LitStr>> {
    let expected = "expected a list of error kinds in quotes, like `[\"card_declined\"]`";
    let Expr::Array(array) = expr else {
        return Err(syn::Error::new_spanned(expr, expected));
    };
    let mut kinds = Vec::with_capacity(array.elems.len());
    let mut errors = Errors::default();
    for elem in &array.elems {
        if let Some(kind) = errors.take(lit_str(
            peel(elem),
            "an error kind in quotes, like `\"card_declined\"`",
        )) {
            kinds.push(kind);
        }
    }
    // Each bad element has its own error; report them all together.
    match errors.into_error() {
        Some(error) => Err(error),
        None => Ok(kinds),
    }
}

/// `"fail"`/`"pause"`, or the same words without quotes.
fn on_exhausted(expr: &Expr) -> syn::Result<OnExhausted> {
    let (word, span) = match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        }) => (lit.value(), lit.span()),
        Expr::Path(path) if path.path.get_ident().is_some() => {
            let ident = path.path.get_ident().expect("checked above");
            (ident.to_string(), ident.span())
        }
        _ => (String::new(), expr.span()),
    };
    match word.as_str() {
        "fail" => Ok(OnExhausted::Fail),
        "pause" => Ok(OnExhausted::Pause),
        _ => Err(syn::Error::new(
            span,
            "`on_exhausted` must be \"fail\" (the run fails with the activity's error) \
             or \"pause\" (the run waits to be resumed by an operator)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn workflow(tokens: TokenStream) -> (WorkflowArgs, syn::Result<()>) {
        let mut errors = Errors::default();
        let args = parse_workflow_args(tokens, &mut errors);
        (args, errors.into_result())
    }

    fn activity(tokens: TokenStream) -> (ActivityArgs, syn::Result<()>) {
        let mut errors = Errors::default();
        let args = parse_activity_args(tokens, &mut errors);
        (args, errors.into_result())
    }

    fn messages(result: syn::Result<()>) -> Vec<String> {
        result
            .err()
            .map(|error| error.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn workflow_defaults() {
        let (args, result) = workflow(quote!());
        assert!(result.is_ok());
        assert!(args.name.is_none());
        assert_eq!(args.version, 1);
        assert_eq!(args.max_attempts, 5);
    }

    #[test]
    fn workflow_all_keys() {
        let (args, result) = workflow(quote!(name = "pay", version = 2, max_attempts = 9));
        assert!(result.is_ok());
        assert_eq!(args.name.unwrap().value(), "pay");
        assert_eq!(args.version, 2);
        assert_eq!(args.max_attempts, 9);
    }

    #[test]
    fn workflow_collects_every_error() {
        let (_, result) = workflow(quote!(
            name = 3,
            version = "2",
            max_attempts = 0,
            colour = "red"
        ));
        let messages = messages(result);
        assert_eq!(messages.len(), 4, "{messages:?}");
        assert!(
            messages[3].contains("`name`, `version` and `max_attempts`"),
            "{messages:?}"
        );
    }

    #[test]
    fn workflow_rejects_repeated_key_and_retry() {
        let messages =
            messages(workflow(quote!(version = 1, version = 2, retry(max_attempts = 1))).1);
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].contains("more than once"));
        assert!(messages[1].contains("unknown key `retry`"));
    }

    #[test]
    fn activity_without_retry() {
        let (args, result) = activity(quote!(name = "charge"));
        assert!(result.is_ok());
        assert_eq!(args.name.unwrap().value(), "charge");
        assert!(args.retry.is_none());
    }

    #[test]
    fn activity_full_retry() {
        let (args, result) = activity(quote!(retry(
            max_attempts = 5,
            initial = "100ms",
            backoff = 2.0,
            max = "10s",
            max_duration = "1m",
            jitter = 0.2,
            non_retryable = ["card_declined", "fraud"],
            on_exhausted = "pause"
        )));
        assert!(result.is_ok(), "{result:?}");
        let retry = args.retry.unwrap();
        assert_eq!(retry.max_attempts, Some(5));
        assert_eq!(retry.initial_nanos, Some(100_000_000));
        assert_eq!(retry.backoff, Some(2.0));
        assert_eq!(retry.max_nanos, Some(10_000_000_000));
        assert_eq!(retry.max_duration_nanos, Some(60_000_000_000));
        assert_eq!(retry.jitter, Some(0.2));
        let kinds: Vec<String> = retry
            .non_retryable
            .unwrap()
            .iter()
            .map(LitStr::value)
            .collect();
        assert_eq!(kinds, ["card_declined", "fraud"]);
        assert_eq!(retry.on_exhausted, Some(OnExhausted::Pause));
    }

    #[test]
    fn on_exhausted_accepts_bare_words() {
        let (args, result) = activity(quote!(retry(on_exhausted = fail, backoff = 3)));
        assert!(result.is_ok());
        let retry = args.retry.unwrap();
        assert_eq!(retry.on_exhausted, Some(OnExhausted::Fail));
        assert_eq!(retry.backoff, Some(3.0));
    }

    #[test]
    fn retry_errors_are_collected() {
        let messages = messages(
            activity(quote!(retry(
                initial = "5 parsecs",
                backoff = 0.5,
                jitter = 1.5,
                on_exhausted = "explode",
                non_retryable = ["ok", 3],
                max_attempts = 0,
                colour = 1
            )))
            .1,
        );
        assert_eq!(messages.len(), 7, "{messages:?}");
        assert!(
            messages[0].contains("`5 parsecs` is not a duration"),
            "{messages:?}"
        );
        assert!(
            messages[6].contains("unknown key `colour` in `retry(...)`"),
            "{messages:?}"
        );
    }

    #[test]
    fn retry_must_be_a_list() {
        let messages = messages(activity(quote!(retry = 3, retry)).1);
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].contains("`retry` takes a list"));
    }

    #[test]
    fn empty_name_is_rejected() {
        let messages = messages(activity(quote!(name = " ")).1);
        assert!(messages[0].contains("cannot be empty"));
    }

    #[test]
    fn key_without_value_is_rejected() {
        let messages = messages(workflow(quote!(version)).1);
        assert!(
            messages[0].contains("`version` takes a value"),
            "{messages:?}"
        );
    }
}
