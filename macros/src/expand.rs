//! Building the code that replaces an annotated function.
//!
//! Generated code names everything through absolute `::durable::...` paths,
//! so it works whatever the user has imported or shadowed.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{AttrStyle, Attribute, ItemFn, LitStr, Visibility};

use crate::ast::{self, ActivityFn, WorkflowFn};
use crate::attr::{self, ActivityArgs, OnExhausted, RetryArgs, WorkflowArgs};
use crate::errors::Errors;
use crate::lint;

/// Expands `#[workflow(args)] item`.
pub(crate) fn workflow(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = attr::parse_workflow_args(args, &mut errors);
    let Some(item_fn) = parse_fn(&item, "workflow", &mut errors) else {
        return unchanged(item, &errors);
    };
    let found = ast::workflow(&item_fn, &mut errors);
    lint::check_workflow_body(&item_fn.block, &mut errors);
    match found {
        Some(found) if errors.is_empty() => workflow_items(&args, &found),
        _ => unchanged(item, &errors),
    }
}

/// Expands `#[activity(args)] item`.
pub(crate) fn activity(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = attr::parse_activity_args(args, &mut errors);
    let Some(item_fn) = parse_fn(&item, "activity", &mut errors) else {
        return unchanged(item, &errors);
    };
    match ast::activity(&item_fn, &mut errors) {
        Some(found) if errors.is_empty() => activity_fn(&args, &found),
        _ => unchanged(item, &errors),
    }
}

fn parse_fn(item: &TokenStream, noun: &str, errors: &mut Errors) -> Option<ItemFn> {
    match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Fn(item_fn)) => Some(item_fn),
        Ok(other) => {
            errors.push(syn::Error::new_spanned(
                other,
                format!("`#[{noun}]` goes on an `async fn`"),
            ));
            None
        }
        Err(error) => {
            errors.push(error);
            None
        }
    }
}

/// The user's item as written, plus the errors. Keeping the function means
/// the rest of the crate still type-checks against it and IDEs keep their
/// completions while the errors are being fixed.
fn unchanged(item: TokenStream, errors: &Errors) -> TokenStream {
    let errors = errors.to_compile_errors();
    quote!(#item #errors)
}

/// The name a workflow or activity is stored under: the one given, or the
/// function's own name (without any `r#`).
fn registered_name(given: Option<&LitStr>, ident: &syn::Ident) -> LitStr {
    given
        .cloned()
        .unwrap_or_else(|| LitStr::new(&ident.unraw().to_string(), ident.span()))
}

/// Where each of the function's attributes goes once it becomes a struct.
#[derive(Default)]
struct WorkflowAttrs<'a> {
    /// Docs and deprecation describe the item users name: the struct.
    on_struct: Vec<&'a Attribute>,
    /// `cfg` must remove or keep every generated item together.
    on_all: Vec<&'a Attribute>,
    /// Everything else (lint levels, instrumentation, ...) is about the
    /// code, so it stays on the function.
    on_fn: Vec<Attribute>,
}

fn split_workflow_attrs(attrs: &[Attribute]) -> WorkflowAttrs<'_> {
    let mut split = WorkflowAttrs::default();
    for attr in attrs {
        let path = attr.path();
        if matches!(attr.style, AttrStyle::Inner(_)) {
            // `#![...]` lives inside the body, which stays on the function.
            split.on_fn.push(attr.clone());
        } else if path.is_ident("cfg") {
            split.on_all.push(attr);
        } else if path.is_ident("doc") || path.is_ident("deprecated") {
            split.on_struct.push(attr);
        } else {
            split.on_fn.push(attr.clone());
        }
    }
    split
}

/// The unit struct that stands for the workflow, its `Workflow` impl, and
/// the original function kept as an associated function.
fn workflow_items(args: &WorkflowArgs, found: &WorkflowFn<'_>) -> TokenStream {
    let item = found.item;
    let vis = &item.vis;
    let ident = &item.sig.ident;
    let attrs = split_workflow_attrs(&item.attrs);
    let on_struct = &attrs.on_struct;
    let on_all = &attrs.on_all;

    // The function is kept as written (so its body keeps its spans), only
    // renamed and made private to the impl.
    let mut run_fn = item.clone();
    run_fn.vis = Visibility::Inherited;
    run_fn.sig.ident = format_ident!("__durable_run", span = ident.span());
    run_fn.attrs = attrs.on_fn;

    let name = registered_name(args.name.as_ref(), ident);
    let version = Literal::u32_suffixed(args.version);
    let max_attempts = Literal::u32_suffixed(args.max_attempts);
    let output = found.output;
    let (input_ty, input_param, call) = match found.input {
        Some(input) => {
            let ty = &input.ty;
            (
                quote!(#ty),
                quote!(input),
                quote!(Self::__durable_run(&ctx, input)),
            )
        }
        None => (
            quote!(()),
            quote!(_input),
            quote!(Self::__durable_run(&ctx)),
        ),
    };

    quote! {
        #(#on_all)*
        #(#on_struct)*
        #[allow(non_camel_case_types)]
        #[derive(::core::fmt::Debug, ::core::clone::Clone, ::core::marker::Copy, ::core::default::Default)]
        #vis struct #ident;

        #(#on_all)*
        impl #ident {
            #run_fn
        }

        #(#on_all)*
        impl ::durable::Workflow for #ident {
            type Input = #input_ty;
            type Output = #output;
            const NAME: &'static str = #name;
            const VERSION: u32 = #version;
            const MAX_ATTEMPTS: u32 = #max_attempts;

            fn run(
                ctx: ::durable::WorkflowCtx,
                #input_param: Self::Input,
            ) -> ::durable::__private::BoxFuture<
                'static,
                ::core::result::Result<Self::Output, ::durable::WorkflowError>,
            > {
                ::std::boxed::Box::pin(async move { #call.await })
            }
        }
    }
}

/// The activity as workflow code calls it: same name and arguments, but
/// taking `&WorkflowCtx`, and running the original body as a recorded,
/// retried step.
fn activity_fn(args: &ActivityArgs, found: &ActivityFn<'_>) -> TokenStream {
    let item = found.item;
    let vis = &item.vis;
    let ident = &item.sig.ident;
    let outer_attrs = item
        .attrs
        .iter()
        .filter(|attr| matches!(attr.style, AttrStyle::Outer));

    let mut body_fn = item.clone();
    body_fn.vis = Visibility::Inherited;
    body_fn.sig.ident = format_ident!("__durable_body", span = ident.span());
    body_fn
        .attrs
        .retain(|attr| matches!(attr.style, AttrStyle::Inner(_)));

    let params = found.args.iter().map(|arg| {
        let (ident, ty) = (arg.ident, arg.ty);
        quote!(#ident: #ty)
    });
    // Each attempt gets fresh copies, since a failed attempt may have
    // consumed its own. Spanned at the type so a missing `Clone` impl is
    // reported on the argument that lacks it.
    let clones = found.args.iter().map(|arg| {
        let ident = arg.ident;
        quote_spanned!(arg.ty.span()=> let #ident = ::core::clone::Clone::clone(&#ident);)
    });
    let arg_names = found.args.iter().map(|arg| arg.ident);
    let output = found.output;
    let name = registered_name(args.name.as_ref(), ident);
    let retry = args.retry.as_ref().map(retry_policy);

    quote! {
        #(#outer_attrs)*
        #vis async fn #ident(
            __durable_ctx: &::durable::WorkflowCtx
            #(, #params)*
        ) -> ::core::result::Result<#output, ::durable::ActivityError> {
            #body_fn

            let __durable_options = ::durable::__private::ActivityOptions::new(#name) #retry;
            __durable_ctx
                .__activity(__durable_options, move |__durable_actx: ::durable::ActivityCtx| {
                    #(#clones)*
                    async move { __durable_body(&__durable_actx #(, #arg_names)*).await }
                })
                .await
        }
    }
}

/// `.retry(RetryPolicy::default().key(value)...)` with only the keys given,
/// so everything else keeps the facade's defaults.
fn retry_policy(retry: &RetryArgs) -> TokenStream {
    let duration = |nanos: u64| {
        let nanos = Literal::u64_suffixed(nanos);
        quote!(::durable::__private::Duration::from_nanos(#nanos))
    };
    let mut calls = Vec::new();
    if let Some(max_attempts) = retry.max_attempts {
        let max_attempts = Literal::u32_suffixed(max_attempts);
        calls.push(quote!(.max_attempts(#max_attempts)));
    }
    if let Some(nanos) = retry.initial_nanos {
        let initial = duration(nanos);
        calls.push(quote!(.initial_interval(#initial)));
    }
    if let Some(backoff) = retry.backoff {
        let backoff = Literal::f64_suffixed(backoff);
        calls.push(quote!(.backoff_coefficient(#backoff)));
    }
    if let Some(nanos) = retry.max_nanos {
        let max = duration(nanos);
        calls.push(quote!(.max_interval(#max)));
    }
    if let Some(nanos) = retry.max_duration_nanos {
        let max_duration = duration(nanos);
        calls.push(quote!(.max_duration(#max_duration)));
    }
    if let Some(jitter) = retry.jitter {
        let jitter = Literal::f64_suffixed(jitter);
        calls.push(quote!(.jitter(#jitter)));
    }
    if let Some(kinds) = &retry.non_retryable {
        calls.push(quote!(.non_retryable(&[#(#kinds),*])));
    }
    if let Some(on_exhausted) = retry.on_exhausted {
        let variant = match on_exhausted {
            OnExhausted::Fail => quote!(Fail),
            OnExhausted::Pause => quote!(Pause),
        };
        calls.push(quote!(.on_exhausted(::durable::__private::OnExhausted::#variant)));
    }
    quote!(.retry(::durable::__private::RetryPolicy::default() #(#calls)*))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalize(tokens: TokenStream) -> String {
        tokens
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn workflow_becomes_struct_and_impl() {
        let out = normalize(workflow(
            quote!(version = 2),
            quote! {
                /// Takes the money.
                #[allow(unused_variables)]
                pub async fn checkout(ctx: &WorkflowCtx, order: Order) -> Result<String, WorkflowError> { Ok(order.id) }
            },
        ));
        assert!(out.contains("pub struct checkout ;"), "{out}");
        assert!(out.contains("type Input = Order ;"), "{out}");
        assert!(out.contains("type Output = String ;"), "{out}");
        assert!(
            out.contains("const NAME : & 'static str = \"checkout\" ;"),
            "{out}"
        );
        assert!(out.contains("const VERSION : u32 = 2u32 ;"), "{out}");
        assert!(out.contains("const MAX_ATTEMPTS : u32 = 5u32 ;"), "{out}");
        assert!(
            out.contains("Self :: __durable_run (& ctx , input) . await"),
            "{out}"
        );
        // The doc moves to the struct, the lint level stays on the function.
        let doc = out.find("Takes the money").unwrap();
        let allow = out.find("allow (unused_variables)").unwrap();
        let strukt = out.find("pub struct checkout").unwrap();
        let run = out.find("async fn __durable_run").unwrap();
        assert!(doc < strukt && strukt < allow && allow < run, "{out}");
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn workflow_without_input_takes_unit() {
        let out = normalize(workflow(
            quote!(name = "nightly"),
            quote!(
                async fn r#tick(ctx: &WorkflowCtx) -> Result<(), WorkflowError> {
                    Ok(())
                }
            ),
        ));
        assert!(out.contains("type Input = () ;"), "{out}");
        assert!(out.contains("_input : Self :: Input"), "{out}");
        assert!(
            out.contains("Self :: __durable_run (& ctx) . await"),
            "{out}"
        );
        assert!(out.contains("\"nightly\""), "{out}");
    }

    #[test]
    fn raw_identifiers_register_without_prefix() {
        let out = normalize(workflow(
            quote!(),
            quote!(
                async fn r#match(ctx: &WorkflowCtx) -> Result<(), WorkflowError> {
                    Ok(())
                }
            ),
        ));
        assert!(out.contains("\"match\""), "{out}");
    }

    #[test]
    fn failing_workflow_keeps_the_function() {
        let item = quote!(
            fn checkout(ctx: &WorkflowCtx) -> Result<(), WorkflowError> {
                let t = SystemTime::now();
                Ok(())
            }
        );
        let out = normalize(workflow(quote!(colour = 1), item.clone()));
        assert!(out.starts_with(&normalize(item)), "{out}");
        assert_eq!(out.matches("compile_error").count(), 3, "{out}");
        assert!(!out.contains("struct"), "{out}");
    }

    #[test]
    fn activity_wraps_the_body() {
        let out = normalize(activity(
            quote!(retry(
                max_attempts = 5,
                initial = "100ms",
                backoff = 2,
                jitter = 0.2,
                non_retryable = ["card_declined"],
                on_exhausted = pause
            )),
            quote! {
                /// Charges the card.
                pub async fn charge(ctx: &ActivityCtx, mut amount: u64, note: &str) -> Result<String, ActivityError> { todo!() }
            },
        ));
        assert!(
            out.contains("pub async fn charge (__durable_ctx : & :: durable :: WorkflowCtx , amount : u64 , note : & str) -> :: core :: result :: Result < String , :: durable :: ActivityError >"),
            "{out}"
        );
        assert!(
            out.contains(
                "async fn __durable_body (ctx : & ActivityCtx , mut amount : u64 , note : & str)"
            ),
            "{out}"
        );
        assert!(out.contains("ActivityOptions :: new (\"charge\") . retry (:: durable :: __private :: RetryPolicy :: default () . max_attempts (5u32) . initial_interval (:: durable :: __private :: Duration :: from_nanos (100000000u64)) . backoff_coefficient (2f64) . jitter (0.2f64) . non_retryable (& [\"card_declined\"]) . on_exhausted (:: durable :: __private :: OnExhausted :: Pause))"), "{out}");
        assert!(
            out.contains("let note = :: core :: clone :: Clone :: clone (& note) ;"),
            "{out}"
        );
        assert!(
            out.contains("__durable_body (& __durable_actx , amount , note) . await"),
            "{out}"
        );
        assert!(out.find("Charges the card").unwrap() < out.find("pub async fn charge").unwrap());
    }

    #[test]
    fn activity_without_retry_keeps_defaults() {
        let out = normalize(activity(
            quote!(),
            quote!(
                async fn ping(ctx: &ActivityCtx) -> Result<(), ActivityError> {
                    Ok(())
                }
            ),
        ));
        assert!(out.contains("ActivityOptions :: new (\"ping\") ;"), "{out}");
        assert!(
            out.contains("__durable_body (& __durable_actx) . await"),
            "{out}"
        );
    }

    #[test]
    fn activity_is_not_linted() {
        let out = normalize(activity(
            quote!(),
            quote!(
                async fn stamp(ctx: &ActivityCtx) -> Result<u64, ActivityError> {
                    let t = SystemTime::now();
                    Ok(1)
                }
            ),
        ));
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn non_function_items_are_rejected() {
        let out = normalize(workflow(
            quote!(),
            quote!(
                struct Checkout;
            ),
        ));
        assert!(out.contains("goes on an `async fn`"), "{out}");
        assert!(out.starts_with("struct Checkout ;"), "{out}");
    }
}
