//! The error answers operations share, added to every operation they apply to from what the
//! operation declares (its security, parameters, body and method), so no annotation can
//! forget one; and every error answer declared as an RFC 9457 problem document.
//!
//! An annotation lists only what is particular to its operation (a name conflict, a
//! published version); what the extractors and middlewares answer is here.

use utoipa::Modify;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Required, Response};

use super::schemas;
use crate::problem::PROBLEM_JSON;

/// Adds the shared error answers and the `Idempotency-Key` header.
#[derive(Debug)]
pub struct SharedAnswers;

impl Modify for SharedAnswers {
    fn modify(&self, openapi: &mut OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                (false, &mut item.get),
                (true, &mut item.post),
                (true, &mut item.put),
                (true, &mut item.patch),
                (true, &mut item.delete),
            ];
            for (mutating, operation) in operations {
                if let Some(operation) = operation {
                    add_shared(operation, mutating);
                    declare_problems(operation);
                    never_null(operation);
                }
            }
        }
    }
}

/// What each part of a request can be refused for.
fn add_shared(operation: &mut Operation, mutating: bool) {
    // Webhook intake is the one operation with security of its own (none): it is not behind
    // an API key and reads its body as bytes, so it declares its answers itself.
    let authenticated = operation.security.is_none();
    let has = |place: ParameterIn| {
        let params = operation.parameters.iter().flatten();
        params.into_iter().any(|p| p.parameter_in == place)
    };
    let (path, query) = (has(ParameterIn::Path), has(ParameterIn::Query));
    let json_body = authenticated && operation.request_body.is_some();
    let mut add = |status: u16, why: &str| answer(operation, status, why);
    if authenticated {
        add(
            401,
            "No valid API key: `missing-api-key`, `invalid-api-key`.",
        );
        add(
            403,
            "The API key lacks this operation's scope: `missing-scope`.",
        );
    }
    if path {
        add(400, "A path parameter is malformed: `invalid-path`.");
        add(
            404,
            "Nothing with this id in the key's workspace: `not-found`.",
        );
    }
    if query {
        add(400, "A query parameter is malformed: `invalid-query`.");
    }
    if json_body {
        add(400, "The body is not JSON: `malformed-body`.");
        add(413, "The body is larger than 1 MiB: `body-too-large`.");
        add(
            415,
            "The body is not `application/json`: `unsupported-media-type`.",
        );
        add(422, "The body does not fit its schema: `invalid-body`.");
    }
    if authenticated && mutating {
        add(
            400,
            "The Idempotency-Key is malformed: `invalid-idempotency-key`.",
        );
        add(
            409,
            "A request with this Idempotency-Key is still being handled: `idempotency-key-in-use`.",
        );
        add(
            422,
            "This Idempotency-Key was used with another request: `idempotency-key-reused`.",
        );
        idempotency_key(operation);
    }
}

/// Adds `why` to the operation's answer with `status`, creating it if needed.
fn answer(operation: &mut Operation, status: u16, why: &str) {
    let answers = &mut operation.responses.responses;
    let entry = answers
        .entry(status.to_string())
        .or_insert_with(|| RefOr::T(Response::new("")));
    if let RefOr::T(response) = entry {
        if response.description.is_empty() {
            response.description = why.to_owned();
        } else if !response.description.contains(why) {
            response.description = format!("{}\n\n{why}", response.description);
        }
    }
}

/// Declares every 4xx and 5xx answer as `application/problem+json` with the `Problem` schema,
/// which is what `Problem` answers with.
fn declare_problems(operation: &mut Operation) {
    for (status, answer) in operation.responses.responses.iter_mut() {
        let is_error = status.starts_with('4') || status.starts_with('5');
        if let (true, RefOr::T(response)) = (is_error, answer) {
            let problem = Content::new(Some(Ref::from_schema_name("Problem")));
            response.content.clear();
            response.content.insert(PROBLEM_JSON.to_owned(), problem);
        }
    }
}

/// Drops `null` from the types of header and query parameters: utoipa reads an `Option` as
/// nullable, but such a parameter is absent or a string, and there is no way to send `null`.
fn never_null(operation: &mut Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        if parameter.parameter_in == ParameterIn::Path {
            continue;
        }
        if let Some(RefOr::T(Schema::Object(object))) = &mut parameter.schema
            && let SchemaType::Array(types) = &object.schema_type
        {
            let kept: Vec<Type> = types
                .iter()
                .filter(|t| **t != Type::Null)
                .cloned()
                .collect();
            if let [only] = kept.as_slice() {
                object.schema_type = SchemaType::Type(only.clone());
            }
        }
    }
}

/// Declares the optional `Idempotency-Key` header.
fn idempotency_key(operation: &mut Operation) {
    let schema = utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .pattern(Some(schemas::IDEMPOTENCY_KEY_PATTERN));
    let header: Parameter = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .schema(Some(schema))
        .description(Some(
            "Makes the request safe to retry: the same key and request get the stored \
             response (with `Idempotent-Replayed: true`) for 24 hours. 1 to 255 visible \
             ASCII characters.",
        ))
        .build();
    operation
        .parameters
        .get_or_insert_with(Vec::new)
        .push(header);
}
