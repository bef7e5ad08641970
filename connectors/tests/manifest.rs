//! The manifest's published JSON Schema, and how packages are validated on load.

use std::collections::BTreeMap;
use std::path::Path;

use durable_connectors::manifest::json_schema;
use durable_connectors::{ManifestError, Package};
use serde_json::{Value, json};

const PUBLISHED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/manifest.schema.json");

#[test]
fn published_schema_is_generated_from_the_types() {
    let generated = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
    if std::env::var_os("DURABLE_UPDATE_SCHEMAS").is_some() {
        std::fs::write(PUBLISHED, &generated).unwrap();
    }
    let published = std::fs::read_to_string(PUBLISHED).unwrap_or_default();
    assert!(
        published == generated,
        "connectors/manifest.schema.json is out of date: run \
         `DURABLE_UPDATE_SCHEMAS=1 cargo test -p durable-connectors --test manifest` and commit it"
    );
}

fn notes_manifest() -> Value {
    json!({
        "name": "notes", "version": "0.1.0",
        "displayName": "Notes", "main": "index.js",
        "auth": { "type": "api_key", "header": "Authorization", "prefix": "Bearer" },
        "schemas": { "Note": { "$ref": "schemas/note.json" } },
        "actions": [{ "key": "create_note", "inputSchema": "Note",
                      "idempotency": { "header": "Idempotency-Key" } }],
        "triggers": [{ "type": "polling", "key": "new_notes", "interval": "1m", "dedupeField": "/id" }]
    })
}

fn files() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "index.js".to_owned(),
            "export const actions = {};".to_owned(),
        ),
        (
            "schemas/note.json".to_owned(),
            r#"{"type":"object","required":["title"],"properties":{"title":{"type":"string"}}}"#
                .to_owned(),
        ),
    ])
}

fn errors_of(manifest: Value, files: BTreeMap<String, String>) -> Vec<ManifestError> {
    Package::from_parts(manifest, files).unwrap_err().0
}

fn has(errors: &[ManifestError], file: &str, pointer: &str, expected: &str) -> bool {
    errors
        .iter()
        .any(|e| e.file == file && e.pointer == pointer && e.expected.contains(expected))
}

#[test]
fn a_valid_package_loads_with_its_schemas_resolved() {
    let package = Package::from_parts(notes_manifest(), files()).unwrap();
    let input = package.input_schema("create_note").unwrap();
    assert!(input.check(&json!({ "title": "hello" })).is_ok());
    let violations = input.check(&json!({ "title": 5 })).unwrap_err();
    assert_eq!(violations[0].pointer, "/title");
    assert_eq!(package.script().unwrap().0, "index.js");
    assert_eq!(package.digest().len(), 64);
}

#[test]
fn schema_violations_name_the_pointer_and_what_was_expected() {
    let mut manifest = notes_manifest();
    manifest["version"] = json!("one");
    manifest["actions"][0]["key"] = json!(5);
    manifest["surprise"] = json!(true);
    let errors = errors_of(manifest, files());
    assert!(
        has(&errors, "manifest.json", "/version", "does not match"),
        "{errors:?}"
    );
    assert!(
        has(
            &errors,
            "manifest.json",
            "/actions/0/key",
            "is not of type \"string\""
        ),
        "{errors:?}"
    );
    assert!(has(&errors, "manifest.json", "", "surprise"), "{errors:?}");
}

#[test]
fn references_to_missing_schemas_and_files_are_errors() {
    let mut manifest = notes_manifest();
    manifest["actions"][0]["outputSchema"] = json!("Missing");
    manifest["main"] = json!("main.js");
    let mut files = files();
    files.insert("schemas/note.json".to_owned(), "{ not json".to_owned());
    let errors = errors_of(manifest, files);
    assert!(
        has(
            &errors,
            "manifest.json",
            "/actions/0/outputSchema",
            "`Missing`"
        ),
        "{errors:?}"
    );
    assert!(
        has(&errors, "manifest.json", "/main", "main.js"),
        "{errors:?}"
    );
    assert!(
        has(&errors, "schemas/note.json", "", "valid JSON"),
        "{errors:?}"
    );
}

#[test]
fn semantic_errors_are_reported_together() {
    let mut manifest = notes_manifest();
    let action = manifest["actions"][0].clone();
    manifest["actions"] = json!([action.clone(), action]);
    manifest["triggers"][0]["interval"] = json!("every now and then");
    manifest["actions"][1]["inputSchema"] = json!({ "type": "no-such-type" });
    let errors = errors_of(manifest, files());
    assert!(
        has(&errors, "manifest.json", "/actions/1/key", "`create_note`"),
        "{errors:?}"
    );
    assert!(
        has(&errors, "manifest.json", "/triggers/0/interval", "duration"),
        "{errors:?}"
    );
    assert!(
        has(
            &errors,
            "manifest.json",
            "/actions/1/inputSchema",
            "valid JSON Schema"
        ),
        "{errors:?}"
    );
}

#[test]
fn paths_that_leave_the_package_are_refused() {
    let mut files = files();
    files.insert("../escape.js".to_owned(), String::new());
    let errors = errors_of(notes_manifest(), files);
    assert!(
        has(&errors, "../escape.js", "", "relative path"),
        "{errors:?}"
    );
}

#[test]
fn a_directory_loads_and_a_broken_manifest_names_its_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "manifest.json", &notes_manifest().to_string());
    for (path, text) in files() {
        write(dir.path(), &path, &text);
    }
    let package = Package::load_dir(dir.path()).unwrap();
    assert_eq!(package.manifest().name, "notes");

    write(dir.path(), "manifest.json", "{ \"name\": ");
    let errors = Package::load_dir(dir.path()).unwrap_err().0;
    assert!(
        has(&errors, "manifest.json", "", "valid JSON"),
        "{errors:?}"
    );
}

#[test]
fn the_example_package_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/connectors/notes");
    let package = Package::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(package.manifest().name, "notes");
}

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}
