//! Collecting errors, so one expansion reports every problem it finds.

use proc_macro2::TokenStream;

/// Every error found so far in one macro invocation.
///
/// A user fixing a workflow should see all of its problems at once rather
/// than one per build, so checks push here and carry on instead of returning
/// early.
#[derive(Debug, Default)]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
}

impl Errors {
    /// Records one more error.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.combined {
            Some(combined) => combined.combine(error),
            None => self.combined = Some(error),
        }
    }

    /// Records the error of `result`, if any, and passes on its value.
    pub(crate) fn take<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|error| self.push(error)).ok()
    }

    /// Whether anything has been recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.combined.is_none()
    }

    /// One `compile_error!` per recorded error, each carrying its own span.
    pub(crate) fn to_compile_errors(&self) -> TokenStream {
        self.combined
            .as_ref()
            .map(syn::Error::to_compile_error)
            .unwrap_or_default()
    }

    /// The recorded errors combined into one, if there are any.
    pub(crate) fn into_error(self) -> Option<syn::Error> {
        self.combined
    }

    /// The recorded errors, if any, for callers that want a `syn::Result`.
    #[cfg(test)]
    pub(crate) fn into_result(self) -> syn::Result<()> {
        self.combined.map_or(Ok(()), Err)
    }
}
