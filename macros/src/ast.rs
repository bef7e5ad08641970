//! Checking that the annotated function has the shape the expansion needs.
//!
//! The expansion calls the user's function in a fixed way (context first,
//! then the input), so anything it cannot call that way is reported here,
//! on the token at fault, instead of as a confusing error inside generated
//! code.

use proc_macro2::Span;
use quote::quote;
use syn::{
    FnArg, GenericArgument, Ident, ItemFn, PatType, PathArguments, ReturnType, Signature, Type,
};

use crate::errors::Errors;

/// What differs between the rules for workflows and for activities.
#[derive(Debug, Clone, Copy)]
struct Kind {
    /// "workflow" or "activity", as used in messages.
    noun: &'static str,
    /// Why the function must be async.
    async_reason: &'static str,
    /// Why the function cannot be generic.
    generic_reason: &'static str,
    /// The last path segment of the context type.
    ctx: &'static str,
    /// Why the context comes first.
    ctx_reason: &'static str,
    /// The last path segment of the error type.
    error: &'static str,
    /// What the `Result` is used for.
    result_reason: &'static str,
}

const WORKFLOW: Kind = Kind {
    noun: "workflow",
    async_reason: "the worker drives a workflow as a future and suspends it at every step, timer and signal",
    generic_reason: "a run is resumed by name and its input is decoded into one concrete type",
    ctx: "WorkflowCtx",
    ctx_reason: "the context records every step for replay",
    error: "WorkflowError",
    result_reason: "the `Ok` value is stored as the run's output, and the error is how a failed step ends the run",
};

const ACTIVITY: Kind = Kind {
    noun: "activity",
    async_reason: "it is awaited from workflow code and runs on the worker's async runtime",
    generic_reason: "its result is recorded under one name and decoded into one concrete type on replay",
    ctx: "ActivityCtx",
    ctx_reason: "the worker hands each attempt its own context (attempt number, idempotency key, cancellation)",
    error: "ActivityError",
    result_reason: "the `Ok` value is recorded for replay, and the error decides whether the attempt is retried",
};

/// A function accepted by `#[workflow]`.
#[derive(Debug)]
pub(crate) struct WorkflowFn<'a> {
    pub(crate) item: &'a ItemFn,
    /// The single input argument, if the workflow takes one.
    pub(crate) input: Option<&'a PatType>,
    /// `T` in `Result<T, WorkflowError>`.
    pub(crate) output: &'a Type,
}

/// A function accepted by `#[activity]`.
#[derive(Debug)]
pub(crate) struct ActivityFn<'a> {
    pub(crate) item: &'a ItemFn,
    /// Every argument after the context.
    pub(crate) args: Vec<ActivityArg<'a>>,
    /// `T` in `Result<T, ActivityError>`.
    pub(crate) output: &'a Type,
}

/// One argument of an activity after the context.
#[derive(Debug)]
pub(crate) struct ActivityArg<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) ty: &'a Type,
}

/// Checks a `#[workflow]` function. Returns `None` when the expansion could
/// not be built; the reasons are in `errors`.
pub(crate) fn workflow<'a>(item: &'a ItemFn, errors: &mut Errors) -> Option<WorkflowFn<'a>> {
    let sig = &item.sig;
    check_header(sig, WORKFLOW, errors);
    let rest = check_context(sig, WORKFLOW, errors);
    let input = rest.and_then(|rest| workflow_input(&rest, errors));
    let output = check_return(sig, WORKFLOW, errors);
    Some(WorkflowFn {
        item,
        input: input?,
        output: output?,
    })
}

/// Checks an `#[activity]` function. Returns `None` when the expansion could
/// not be built; the reasons are in `errors`.
pub(crate) fn activity<'a>(item: &'a ItemFn, errors: &mut Errors) -> Option<ActivityFn<'a>> {
    let sig = &item.sig;
    check_header(sig, ACTIVITY, errors);
    let rest = check_context(sig, ACTIVITY, errors);
    let args = rest.and_then(|rest| activity_args(&rest, errors));
    let output = check_return(sig, ACTIVITY, errors);
    Some(ActivityFn {
        item,
        args: args?,
        output: output?,
    })
}

/// Everything before the argument list: `async`, and no `const`, `unsafe`,
/// `extern` or generics.
fn check_header(sig: &Signature, kind: Kind, errors: &mut Errors) {
    let noun = kind.noun;
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new(
            sig.fn_token.span,
            format!(
                "{noun} functions must be `async fn`, because {}",
                kind.async_reason
            ),
        ));
    }
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new(
            constness.span,
            format!("{noun} functions cannot be `const`: they do their work at run time"),
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(syn::Error::new(
            unsafety.span,
            format!(
                "{noun} functions cannot be `unsafe`: the worker calls them and cannot \
                 uphold extra safety conditions"
            ),
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            format!("{noun} functions cannot be `extern`: only the worker calls them"),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            format!(
                "{noun} functions cannot be generic, because {}",
                kind.generic_reason
            ),
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            format!("{noun} functions cannot be variadic"),
        ));
    }
}

/// Checks that the first argument is `&WorkflowCtx` / `&ActivityCtx`, and
/// returns the arguments after it. `None` means the arguments could not be
/// understood at all.
fn check_context<'a>(
    sig: &'a Signature,
    kind: Kind,
    errors: &mut Errors,
) -> Option<Vec<&'a PatType>> {
    let mut typed = Vec::with_capacity(sig.inputs.len());
    let mut ok = true;
    for arg in &sig.inputs {
        match arg {
            FnArg::Receiver(receiver) => {
                ok = false;
                errors.push(syn::Error::new_spanned(
                    receiver,
                    format!(
                        "{} functions cannot take `self`: the macro turns the function into a \
                         standalone item that the worker calls on its own",
                        kind.noun
                    ),
                ));
            }
            FnArg::Typed(pat_type) => typed.push(pat_type),
        }
    }
    let ctx_rule = format!(
        "{} functions take `&{}` as their first argument, because {}",
        kind.noun, kind.ctx, kind.ctx_reason
    );
    let Some((first, rest)) = typed.split_first() else {
        if ok {
            errors.push(syn::Error::new(paren_span(sig), ctx_rule));
        }
        return None;
    };
    if let Err(error) = check_context_type(&first.ty, kind, &ctx_rule) {
        errors.push(error);
        ok = false;
    }
    ok.then(|| rest.to_vec())
}

/// The span of a signature's argument list, for errors about a missing
/// argument.
fn paren_span(sig: &Signature) -> Span {
    sig.paren_token.span.join()
}

fn check_context_type(ty: &Type, kind: Kind, ctx_rule: &str) -> syn::Result<()> {
    let Type::Reference(reference) = ty else {
        let hint = if last_segment_is(ty, kind.ctx) {
            format!("take the context by reference, as `&{}`; ", kind.ctx)
        } else {
            format!("expected `&{}` here; ", kind.ctx)
        };
        return Err(syn::Error::new_spanned(ty, format!("{hint}{ctx_rule}")));
    };
    if let Some(mutability) = &reference.mutability {
        return Err(syn::Error::new(
            mutability.span,
            format!(
                "take the context by shared reference, as `&{}`; {ctx_rule}",
                kind.ctx
            ),
        ));
    }
    if !last_segment_is(&reference.elem, kind.ctx) {
        return Err(syn::Error::new_spanned(
            ty,
            format!("expected `&{}` here; {ctx_rule}", kind.ctx),
        ));
    }
    Ok(())
}

/// The optional single input of a workflow.
fn workflow_input<'a>(rest: &[&'a PatType], errors: &mut Errors) -> Option<Option<&'a PatType>> {
    let Some((input, extra)) = rest.split_first() else {
        return Some(None);
    };
    let mut ok = true;
    if !extra.is_empty() {
        // One error covering every extra argument reads better than one each.
        let extra_tokens = quote!(#(#extra),*);
        errors.push(syn::Error::new_spanned(
            extra_tokens,
            "a workflow takes at most one input argument after the context, because the input is \
             stored as one JSON value; wrap several values in a struct or tuple",
        ));
        ok = false;
    }
    if let Type::Reference(reference) = &*input.ty {
        errors.push(syn::Error::new_spanned(
            reference,
            "the workflow input cannot be borrowed, because it is decoded from JSON and owned by \
             the run; take it by value",
        ));
        ok = false;
    }
    ok.then_some(Some(*input))
}

/// The arguments of an activity after its context, which must be plain
/// names.
fn activity_args<'a>(rest: &[&'a PatType], errors: &mut Errors) -> Option<Vec<ActivityArg<'a>>> {
    let mut args = Vec::with_capacity(rest.len());
    let mut ok = true;
    for pat_type in rest {
        match &*pat_type.pat {
            syn::Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {
                args.push(ActivityArg {
                    ident: &pat.ident,
                    ty: &pat_type.ty,
                });
            }
            other => {
                errors.push(syn::Error::new_spanned(
                    other,
                    "activity arguments must be plain names, like `amount: u64`, because the \
                     macro clones each argument for every retry attempt",
                ));
                ok = false;
            }
        }
    }
    ok.then_some(args)
}

/// Checks the return type is `Result<T, WorkflowError>` (or the activity
/// equivalent) and returns `T`.
fn check_return<'a>(sig: &'a Signature, kind: Kind, errors: &mut Errors) -> Option<&'a Type> {
    let rule = format!(
        "{} functions must return `Result<T, {}>`: {}",
        kind.noun, kind.error, kind.result_reason
    );
    let ReturnType::Type(_, ty) = &sig.output else {
        errors.push(syn::Error::new(sig.paren_token.span.close(), rule));
        return None;
    };
    let Some([ok, err]) = result_args(ty) else {
        errors.push(syn::Error::new_spanned(ty, rule));
        return None;
    };
    if !last_segment_is(err, kind.error) {
        errors.push(syn::Error::new_spanned(
            err,
            format!("expected `{}` here; {rule}", kind.error),
        ));
        return None;
    }
    Some(ok)
}

/// The two type arguments of a type written `Result<A, B>` (with any
/// leading path).
fn result_args(ty: &Type) -> Option<[&Type; 2]> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut types = args.args.iter().map(|arg| match arg {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    });
    match (types.next(), types.next(), types.next()) {
        (Some(Some(ok)), Some(Some(err)), None) => Some([ok, err]),
        _ => None,
    }
}

/// Whether `ty` is a path whose last segment is `name`, however it is
/// imported (`WorkflowCtx`, `durable::WorkflowCtx`, ...).
fn last_segment_is(ty: &Type, name: &str) -> bool {
    match ty {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident == name && segment.arguments.is_none()),
        Type::Group(group) => last_segment_is(&group.elem, name),
        Type::Paren(paren) => last_segment_is(&paren.elem, name),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn workflow_errors(item: ItemFn) -> Vec<String> {
        let mut errors = Errors::default();
        let accepted = workflow(&item, &mut errors).is_some();
        let messages: Vec<String> = errors
            .into_result()
            .err()
            .map(|error| error.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default();
        assert_eq!(accepted, messages.is_empty(), "{messages:?}");
        messages
    }

    fn activity_errors(item: ItemFn) -> Vec<String> {
        let mut errors = Errors::default();
        let accepted = activity(&item, &mut errors).is_some();
        let messages: Vec<String> = errors
            .into_result()
            .err()
            .map(|error| error.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default();
        assert_eq!(accepted, messages.is_empty(), "{messages:?}");
        messages
    }

    #[test]
    fn accepts_workflow_with_and_without_input() {
        let item: ItemFn = parse_quote! {
            pub async fn checkout(ctx: &WorkflowCtx, order: Order) -> Result<String, WorkflowError> { todo!() }
        };
        let mut errors = Errors::default();
        let found = workflow(&item, &mut errors).unwrap();
        assert!(errors.is_empty());
        assert!(found.input.is_some());
        let output = found.output;
        assert_eq!(quote!(#output).to_string(), "String");

        let item: ItemFn = parse_quote! {
            async fn tick(ctx: &durable::WorkflowCtx) -> std::result::Result<(), durable::WorkflowError> { Ok(()) }
        };
        assert!(workflow_errors(item).is_empty());
    }

    #[test]
    fn accepts_any_input_pattern() {
        let item: ItemFn = parse_quote! {
            async fn wf(_: &WorkflowCtx, Order { amount, .. }: Order) -> Result<u64, WorkflowError> { Ok(amount) }
        };
        assert!(workflow_errors(item).is_empty());
    }

    #[test]
    fn rejects_sync_generic_self_and_missing_ctx() {
        let item: ItemFn = parse_quote! {
            fn wf<T>() -> Result<T, WorkflowError> { todo!() }
        };
        let messages = workflow_errors(item);
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[0].contains("must be `async fn`"));
        assert!(messages[1].contains("cannot be generic"));
        assert!(messages[2].contains("take `&WorkflowCtx` as their first argument"));
    }

    #[test]
    fn rejects_wrong_ctx_types() {
        let by_value: ItemFn = parse_quote! {
            async fn wf(ctx: WorkflowCtx) -> Result<(), WorkflowError> { Ok(()) }
        };
        assert!(workflow_errors(by_value)[0].starts_with("take the context by reference"));
        let by_mut: ItemFn = parse_quote! {
            async fn wf(ctx: &mut WorkflowCtx) -> Result<(), WorkflowError> { Ok(()) }
        };
        assert!(workflow_errors(by_mut)[0].starts_with("take the context by shared reference"));
        let other: ItemFn = parse_quote! {
            async fn wf(order: Order) -> Result<(), WorkflowError> { Ok(()) }
        };
        assert!(workflow_errors(other)[0].starts_with("expected `&WorkflowCtx` here"));
        let activity_ctx: ItemFn = parse_quote! {
            async fn wf(ctx: &ActivityCtx) -> Result<(), WorkflowError> { Ok(()) }
        };
        assert_eq!(workflow_errors(activity_ctx).len(), 1);
    }

    #[test]
    fn rejects_two_inputs_and_borrowed_input() {
        let item: ItemFn = parse_quote! {
            async fn wf(ctx: &WorkflowCtx, a: u32, b: u32, c: u32) -> Result<(), WorkflowError> { Ok(()) }
        };
        let messages = workflow_errors(item);
        assert_eq!(messages.len(), 1);
        assert!(messages[0].contains("wrap several values in a struct or tuple"));
        let item: ItemFn = parse_quote! {
            async fn wf(ctx: &WorkflowCtx, a: &str) -> Result<(), WorkflowError> { Ok(()) }
        };
        assert!(workflow_errors(item)[0].contains("cannot be borrowed"));
    }

    #[test]
    fn rejects_self() {
        let item: ItemFn = parse_quote! {
            async fn wf(&self, ctx: &WorkflowCtx) -> Result<(), WorkflowError> { Ok(()) }
        };
        let messages = workflow_errors(item);
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(messages[0].contains("cannot take `self`"));
    }

    #[test]
    fn rejects_bad_return_types() {
        for item in [
            parse_quote! { async fn wf(ctx: &WorkflowCtx) {} },
            parse_quote! { async fn wf(ctx: &WorkflowCtx) -> u32 { 1 } },
            parse_quote! { async fn wf(ctx: &WorkflowCtx) -> Result<u32> { Ok(1) } },
            parse_quote! { async fn wf(ctx: &WorkflowCtx) -> Result<u32, ActivityError> { Ok(1) } },
        ] {
            let messages = workflow_errors(item);
            assert_eq!(messages.len(), 1, "{messages:?}");
            assert!(
                messages[0].contains("must return `Result<T, WorkflowError>`"),
                "{messages:?}"
            );
        }
    }

    #[test]
    fn accepts_activity_with_borrowed_and_mut_args() {
        let item: ItemFn = parse_quote! {
            async fn charge(ctx: &ActivityCtx, mut amount: u64, note: &str) -> Result<String, ActivityError> { todo!() }
        };
        let mut errors = Errors::default();
        let found = activity(&item, &mut errors).unwrap();
        assert!(errors.is_empty());
        let names: Vec<String> = found.args.iter().map(|arg| arg.ident.to_string()).collect();
        assert_eq!(names, ["amount", "note"]);
    }

    #[test]
    fn rejects_activity_patterns() {
        let item: ItemFn = parse_quote! {
            async fn charge(ctx: &ActivityCtx, (a, b): (u64, u64), ref c: u8, _: u8) -> Result<(), ActivityError> { Ok(()) }
        };
        let messages = activity_errors(item);
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages.iter().all(|m| m.contains("must be plain names")));
    }

    #[test]
    fn activity_needs_activity_ctx() {
        let item: ItemFn = parse_quote! {
            async fn charge(ctx: &WorkflowCtx) -> Result<(), ActivityError> { Ok(()) }
        };
        assert!(activity_errors(item)[0].contains("take `&ActivityCtx`"));
    }
}
