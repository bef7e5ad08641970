//! Schemas of values the handlers check, stated as exactly as JSON Schema allows, so the
//! document promises what the server enforces: a value the schema accepts is not refused as
//! invalid, and a value it refuses is not accepted. Schemathesis holds the server to both.
//!
//! Patterns are ECMA-262 regular expressions (what JSON Schema means by `pattern`); they spell
//! out character classes (`\s` differs between regex engines) and never rely on `\Z`.

use std::borrow::Cow;

use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema,
    SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{Components, Ref, RefOr};

use crate::api::hooks::NewHook;
use crate::api::keys::NewKey;
use crate::auth::SCOPES;
use durable::workflow_id::RESERVED_PREFIXES;
use durable_control::ROLES;

/// What `str::trim` removes (Rust's `char::is_whitespace`), as a character class body.
const SPACE: &str = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// Control characters (`char::is_control`) and the bidirectional-formatting ones that
/// `durable_control::limits` refuses in names, as a character class body.
const HIDDEN: &str = r"\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069";

/// A name as `fields::name` takes it: trimmed, then 1 to 100 characters, none of them
/// [`HIDDEN`]. Whitespace around it is allowed and dropped.
pub fn name_pattern() -> String {
    let edge = format!("[^{SPACE}{HIDDEN}]");
    format!(r"^[{SPACE}]*{edge}(?:[^{HIDDEN}]{{0,98}}{edge})?[{SPACE}]*$")
}

/// A flow description as `fields::description` takes it: trimmed, then at most 2000
/// characters, none of them [`HIDDEN`] but line breaks and tabs.
fn description_pattern() -> String {
    let hidden = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069";
    let edge = format!("[^{SPACE}{hidden}]");
    format!(r"^[{SPACE}]*(?:{edge}(?:[^{hidden}]{{0,1998}}{edge})?)?[{SPACE}]*$")
}

/// An email as `fields::email` takes it: trimmed, then `local@domain` without whitespace
/// or [`HIDDEN`] characters, the domain with a dot, neither starting nor ending with one.
/// Its bound, 254 bytes once lower-cased, is not a length JSON Schema can state (it counts
/// characters), so it is in the description only.
fn email_pattern() -> String {
    let part = format!("[^@{SPACE}{HIDDEN}]");
    let label = format!("[^@.{SPACE}{HIDDEN}]");
    format!(r"^[{SPACE}]*{part}+@{label}{part}*\.{part}*{label}[{SPACE}]*$")
}

/// A workflow name to filter by, as `fields::workflow_filter` takes it (not trimmed): 1 to
/// 100 characters, not all blank, none of them [`HIDDEN`].
fn workflow_filter_pattern() -> String {
    format!(r"^[^{HIDDEN}]*[^{SPACE}{HIDDEN}][^{HIDDEN}]*$")
}

/// A UUID in any spelling `Uuid::parse_str` reads: simple, hyphenated, braced or URN.
const ANY_UUID: &str = concat!(
    r"(?:[0-9A-Fa-f]{32}",
    r"|(?:\{|[Uu][Rr][Nn]:[Uu][Uu][Ii][Dd]:)?",
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}?)"
);

/// A workflow id a client may choose, as `fields::workflow_id` takes it: 1 to 200 visible
/// ASCII characters, outside the engine's namespaces: no reserved prefix
/// (`durable::workflow_id::RESERVED_PREFIXES`), and not a child run's `<run id>:<step>`.
pub fn workflow_id_pattern() -> String {
    let prefixes: Vec<&str> = RESERVED_PREFIXES.to_vec();
    format!(
        r"^(?!{})(?!{ANY_UUID}:[0-9]+$)[!-~]{{1,200}}$",
        prefixes.join("|")
    )
}

/// A hook's dedupe window: the plain spellings of whole seconds up to a day, in seconds,
/// minutes or hours (`"300s"`, `"5m"`, `"24h"`; `"0s"` is off). The server reads any
/// humantime duration (`"1h 30m"`), but the bound is on the sum, which no pattern can state.
pub const DEDUPE_WINDOW_PATTERN: &str = concat!(
    r"^(?:(?:[0-9]{1,4}|[1-7][0-9]{4}|8[0-5][0-9]{3}|86[0-3][0-9]{2}|86400)s",
    r"|(?:[0-9]{1,3}|1[0-3][0-9]{2}|14[0-3][0-9]|1440)m",
    r"|(?:[0-9]|1[0-9]|2[0-4])h)$"
);

/// An `Idempotency-Key`: 1 to 255 visible ASCII characters.
pub const IDEMPOTENCY_KEY_PATTERN: &str = r"^[\x21-\x7e]{1,255}$";

/// A Standard Webhooks secret: `whsec_` (optional) and canonical base64, padded or not, of
/// 24 to 64 bytes. Eight to twenty 4-character groups (24 to 60 bytes) may end in a 1- or
/// 2-byte group; twenty-one (63 bytes) only in a 1-byte one. The last character of a short
/// group has its unused low bits zero.
pub const STANDARD_SECRET_PATTERN: &str = concat!(
    r"^(?:whsec_)?(?:",
    r"(?:[A-Za-z0-9+/]{4}){8,20}",
    r"(?:[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=?|[A-Za-z0-9+/][AQgw](?:==)?)?",
    r"|(?:[A-Za-z0-9+/]{4}){21}(?:[A-Za-z0-9+/][AQgw](?:==)?)?",
    r")$"
);

/// The name of the component listing the registered workflows; see [`workflow_names`].
pub const WORKFLOW_NAME: &str = "WorkflowName";

/// The run statuses `GET /v1/runs?status=` takes.
pub const RUN_STATUSES: &[&str] = &[
    "pending",
    "running",
    "sleeping",
    "completed",
    "failed",
    "cancelled",
    "parked",
];

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn nullable(kind: Type) -> SchemaType {
    SchemaType::from_iter([kind, Type::Null])
}

/// Any text.
pub fn text() -> Schema {
    string().build().into()
}

/// An RFC 3339 time.
pub fn date_time() -> Schema {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .build()
        .into()
}

/// A secret shown once: `null` when an `Idempotency-Key` replays the response, which keeps
/// no secret and lists where it withheld one in `withheld`.
pub fn shown_once() -> Schema {
    string()
        .schema_type(nullable(Type::String))
        .description(Some(
            "Shown this once. `null` in a replayed response (`Idempotent-Replayed: true`), \
             which lists it in `withheld`.",
        ))
        .build()
        .into()
}

/// The schemas of responses that carry a secret, and so gain `withheld` when replayed.
const WITH_SECRETS: &[&str] = &["NewKeyResponse", "CreatedWorkspace", "CreatedHook"];

/// Declares `withheld` on the responses that carry a secret: a replay of one lists the JSON
/// pointers of the secrets it withholds there.
pub fn declare_withheld(components: &mut Components) {
    let withheld = ArrayBuilder::new()
        .items(string())
        .description(Some(
            "Only in a replayed response: the JSON pointers of the secrets it withholds.",
        ))
        .build();
    for name in WITH_SECRETS {
        let object = match components.schemas.get_mut(*name) {
            Some(RefOr::T(Schema::Object(object))) => Some(object),
            Some(RefOr::T(Schema::AllOf(all))) => {
                all.items.iter_mut().rev().find_map(|item| match item {
                    RefOr::T(Schema::Object(object)) => Some(object),
                    _ => None,
                })
            }
            _ => None,
        };
        let object = object.unwrap_or_else(|| panic!("{name} is an object schema"));
        object
            .properties
            .insert("withheld".to_owned(), withheld.clone().into());
    }
}

/// A workspace, flow or key name.
pub fn name() -> ObjectBuilder {
    string()
        .min_length(Some(1))
        .pattern(Some(name_pattern()))
        .description(Some(
            "1 to 100 characters once trimmed of surrounding whitespace, without control or \
             bidirectional-formatting characters.",
        ))
}

/// A new name, or `null` to keep the current one.
pub fn optional_name() -> Schema {
    name().schema_type(nullable(Type::String)).build().into()
}

/// A flow description.
fn description_builder() -> ObjectBuilder {
    string()
        .pattern(Some(description_pattern()))
        .description(Some(
            "At most 2000 characters once trimmed, without control characters other than line \
         breaks and tabs, nor bidirectional-formatting ones.",
        ))
}

/// A flow description (empty when absent).
pub fn description() -> Schema {
    description_builder().build().into()
}

/// A new description, or `null` to keep the current one.
pub fn optional_description() -> Schema {
    description_builder()
        .schema_type(nullable(Type::String))
        .build()
        .into()
}

/// A member's email.
pub fn email() -> Schema {
    string()
        .pattern(Some(email_pattern()))
        .description(Some(
            "An address like name@example.com, without spaces or control characters, at \
             most 254 bytes once trimmed and lower-cased (as it is kept).",
        ))
        .build()
        .into()
}

/// A workflow name to filter runs by.
pub fn workflow_filter() -> Schema {
    string()
        .min_length(Some(1))
        .max_length(Some(100))
        .pattern(Some(workflow_filter_pattern()))
        .build()
        .into()
}

/// A member role.
pub fn role() -> Schema {
    string()
        .enum_values(Some(ROLES.iter().copied()))
        .build()
        .into()
}

/// A client-chosen workflow id, or `null` for a generated one.
pub fn workflow_id() -> Schema {
    string()
        .schema_type(nullable(Type::String))
        .pattern(Some(workflow_id_pattern()))
        .description(Some(
            "1 to 200 visible ASCII characters, unique in the workspace. Ids starting with \
             `hook:`, `schedule:` or `trigger:`, or shaped `<run id>:<step>`, are the \
             engine's and the server's own.",
        ))
        .build()
        .into()
}

/// A registered workflow's name: a reference to the component [`workflow_names`] fills.
pub fn workflow_name() -> RefOr<Schema> {
    Ref::from_schema_name(WORKFLOW_NAME).into()
}

/// The component naming the workflows `names`: which names exist is the server's
/// configuration, so the document is completed when it is served.
pub fn workflow_names<'a>(names: impl Iterator<Item = &'a str>) -> Schema {
    string()
        .enum_values(Some(names))
        .description(Some(
            "A workflow this server can start (see `GET /v1/workflows`).",
        ))
        .build()
        .into()
}

/// A run status filter.
pub fn run_status() -> Schema {
    string()
        .enum_values(Some(RUN_STATUSES.iter().copied()))
        .build()
        .into()
}

/// `limit`: 1 to 1000.
pub fn limit() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(1000))
        .description(Some("At most this many (1 to 1000; default 100)."))
        .build()
        .into()
}

/// A step sequence number (what a Postgres `integer` holds).
pub fn seq() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .maximum(Some(i32::MAX))
        .description(Some(
            "Steps before this one are copied; it and the rest run again.",
        ))
        .build()
        .into()
}

/// How many old secrets keep verifying after a rotation.
pub fn keep_previous() -> Schema {
    ObjectBuilder::new()
        .schema_type(nullable(Type::Integer))
        .minimum(Some(0))
        .maximum(Some(4))
        .description(Some(
            "How many of the current secrets keep verifying after the new one (default 1, so \
             senders can switch over; 0 retires them all): a hook has at most 5 secrets.",
        ))
        .build()
        .into()
}

/// A new secret for a rotation; which form it takes depends on the hook's scheme.
pub fn rotated_secret() -> Schema {
    string()
        .schema_type(nullable(Type::String))
        .min_length(Some(1))
        .description(Some(
            "The new secret: for `standard_webhooks`, `whsec_` and base64 of 24 to 64 \
             bytes; for `github`, any text. Generated (and returned once) when absent.",
        ))
        .build()
        .into()
}

/// A flow definition: any JSON object.
pub fn definition() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "The graph of trigger, transform and action nodes: a JSON object.",
        ))
        .build()
        .into()
}

/// An object of exactly `properties`, the `required` ones required.
fn closed_object(properties: Vec<(&str, RefOr<Schema>)>, required: &[&str]) -> ObjectBuilder {
    let mut object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    for (name, schema) in properties {
        object = object.property(name, schema);
    }
    for name in required {
        object = object.required(*name);
    }
    object
}

fn null() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::Null).build().into()
}

impl utoipa::PartialSchema for NewKey {
    /// `name` and exactly one of `scopes` and `role`.
    fn schema() -> RefOr<Schema> {
        let scopes = ArrayBuilder::new()
            .items(string().enum_values(Some(SCOPES.iter().copied())))
            .description(Some("What the key may do; none the calling key lacks."));
        let role = string()
            .enum_values(Some(ROLES.iter().copied()))
            .description(Some("A member role whose scopes the key takes."));
        let by_scopes = closed_object(
            vec![
                ("name", name().into()),
                ("scopes", scopes.build().into()),
                ("role", null()),
            ],
            &["name", "scopes"],
        );
        let by_role = closed_object(
            vec![
                ("name", name().into()),
                ("role", role.build().into()),
                ("scopes", null()),
            ],
            &["name", "role"],
        );
        let one_of = OneOfBuilder::new()
            .item(by_scopes)
            .item(by_role)
            .description(Some(
                "A key to create: give `scopes`, or a member `role` whose scopes it takes.",
            ))
            .build();
        RefOr::T(Schema::OneOf(one_of))
    }
}

impl utoipa::ToSchema for NewKey {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("NewKey")
    }
}

impl utoipa::PartialSchema for NewHook {
    /// One shape per scheme: what `secrets` must hold depends on it.
    fn schema() -> RefOr<Schema> {
        let standard = string()
            .pattern(Some(STANDARD_SECRET_PATTERN))
            .description(Some("`whsec_` (optional) and base64 of 24 to 64 bytes."));
        // Bounded in bytes by the server; in ASCII, which Schemathesis is told to send to
        // this operation, bytes and characters agree.
        let github = string()
            .min_length(Some(16))
            .max_length(Some(256))
            .pattern(Some(r"^[^\x00-\x1f\x7f-\x9f]*$"))
            .description(Some("16 to 256 bytes, without control characters."));
        let one_of = OneOfBuilder::new()
            .item(hook_shape("standard_webhooks", secrets(Some(standard), 5)))
            .item(hook_shape("github", secrets(Some(github), 5)))
            .item(hook_shape("none", secrets(None, 0)))
            .description(Some(
                "A webhook endpoint to create. `secrets` verify deliveries, newest first (more \
                 than one while rotating); when absent, one is generated and returned once. A \
                 hook with scheme `none` has none.",
            ))
            .build();
        RefOr::T(Schema::OneOf(one_of))
    }
}

impl utoipa::ToSchema for NewHook {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("NewHook")
    }
}

/// `secrets`: `null`, or 1 to `max` strings of `item` (or an empty list when `max` is 0).
fn secrets(item: Option<ObjectBuilder>, max: usize) -> RefOr<Schema> {
    let array = ArrayBuilder::new()
        .schema_type(nullable(Type::Array))
        .items(item.unwrap_or_else(string))
        .min_items((max > 0).then_some(1))
        .max_items(Some(max));
    array.build().into()
}

fn hook_shape(scheme: &str, secrets: RefOr<Schema>) -> ObjectBuilder {
    let scheme = string().enum_values(Some([scheme]));
    let window = string()
        .schema_type(nullable(Type::String))
        .pattern(Some(DEDUPE_WINDOW_PATTERN))
        .description(Some(
            "Within this long, a delivery whose body equals an earlier one's is answered as \
             its duplicate: a humantime duration of whole seconds, at most a day (`\"5m\"`, \
             `\"24h\"`; `\"0s\"` is off). Default: `\"5m\"` for `github`, whose signature \
             has no timestamp; off for the others.",
        ));
    closed_object(
        vec![
            ("workflow", workflow_name()),
            ("scheme", scheme.build().into()),
            ("secrets", secrets),
            ("dedupe_window", window.build().into()),
        ],
        &["workflow", "scheme"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn every_listed_run_status_is_one() {
        for status in RUN_STATUSES {
            let parsed = durable::RunStatus::from_str(status).unwrap();
            assert_eq!(parsed.as_str(), *status);
        }
    }

    #[test]
    fn the_standard_secret_pattern_accepts_exactly_the_secrets_the_server_does() {
        use base64::Engine;
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
        let pattern = regex::Regex::new(STANDARD_SECRET_PATTERN).unwrap();
        for len in 0..=70 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            for encoded in [STANDARD.encode(&bytes), STANDARD_NO_PAD.encode(&bytes)] {
                for secret in [encoded.clone(), format!("whsec_{encoded}")] {
                    let server =
                        durable_connectors::webhook::validate_secret(true, &secret).is_ok();
                    assert_eq!(pattern.is_match(&secret), server, "{len} bytes: {secret}");
                    // A last character with stray low bits is refused by both.
                    let mut stray = secret.trim_end_matches('=').to_owned();
                    if let Some(last) = stray.pop() {
                        stray.push(if last == 'B' { 'C' } else { 'B' });
                        let server =
                            durable_connectors::webhook::validate_secret(true, &stray).is_ok();
                        assert_eq!(pattern.is_match(&stray), server, "{len} bytes: {stray}");
                    }
                }
            }
        }
    }
}
