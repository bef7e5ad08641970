//! A connector package: `manifest.json` and its files, validated as a whole when loaded.
//!
//! Loading checks the manifest against its published JSON Schema, then what a schema cannot
//! say (versions, unique keys, named schemas that exist, files that exist and parse, schemas
//! that compile). Every problem is reported at once, each naming the file, the JSON pointer
//! and what was expected.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::LazyLock;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::manifest::{self, Manifest, SchemaSpec, Trigger};
use crate::schema::CompiledSchema;

/// The manifest's file name within a package.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The largest package accepted, all files together: it must fit, JSON-encoded, in one API
/// request of at most 1 MiB.
pub const MAX_PACKAGE_BYTES: usize = 768 * 1024;
/// The most files a package may hold.
pub const MAX_FILES: usize = 200;

/// One problem with a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// The package file it is in (`manifest.json`, `schemas/issue.json`).
    pub file: String,
    /// Where in that file, as a JSON pointer (empty: the whole file).
    pub pointer: String,
    /// What was expected there.
    pub expected: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = match self.pointer.as_str() {
            "" => "/",
            p => p,
        };
        write!(f, "{}: at {pointer}: {}", self.file, self.expected)
    }
}

/// Every problem found in a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestErrors(pub Vec<ManifestError>);

impl fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the connector package is invalid:")?;
        for error in &self.0 {
            writeln!(f, "  {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestErrors {}

/// A validated connector package.
#[derive(Debug, Clone)]
pub struct Package {
    manifest: Manifest,
    manifest_json: Value,
    files: BTreeMap<String, String>,
    schemas: Schemas,
    digest: String,
}

/// Each action's and trigger's schemas, resolved and compiled.
#[derive(Debug, Clone, Default)]
struct Schemas {
    inputs: BTreeMap<String, CompiledSchema>,
    outputs: BTreeMap<String, CompiledSchema>,
    payloads: BTreeMap<String, CompiledSchema>,
    params: BTreeMap<String, CompiledSchema>,
}

static MANIFEST_VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    jsonschema::validator_for(&manifest::json_schema()).expect("the manifest schema compiles")
});

impl Package {
    /// Loads the package in directory `dir`: `manifest.json` and every other file under it.
    pub fn load_dir(dir: &Path) -> Result<Self, ManifestErrors> {
        let mut files = BTreeMap::new();
        read_tree(dir, dir, &mut files).map_err(|e| one(&e.0, "", &e.1))?;
        let Some(text) = files.remove(MANIFEST_FILE) else {
            return Err(one(
                MANIFEST_FILE,
                "",
                &format!("a file `{MANIFEST_FILE}` in {}", dir.display()),
            ));
        };
        let manifest: Value = serde_json::from_str(&text)
            .map_err(|e| one(MANIFEST_FILE, "", &format!("valid JSON ({e})")))?;
        Self::from_parts(manifest, files)
    }

    /// A package from its manifest and its other files (path → text), as uploaded.
    pub fn from_parts(
        manifest: Value,
        files: BTreeMap<String, String>,
    ) -> Result<Self, ManifestErrors> {
        let mut errors = check_files(&files);
        errors.extend(against_schema(&manifest));
        if !errors.is_empty() {
            return Err(ManifestErrors(errors));
        }
        let typed: Manifest = serde_json::from_value(manifest.clone())
            .map_err(|e| one(MANIFEST_FILE, "", &e.to_string()))?;
        if typed.main.is_none() {
            errors.push(error(
                "/main",
                "the JavaScript module of a packaged connector",
            ));
        }
        Self::build(typed, manifest, files, errors)
    }

    /// The package of a native connector: its manifest, with no files.
    pub fn native(manifest: Manifest) -> Result<Self, ManifestErrors> {
        let json = serde_json::to_value(&manifest).expect("a manifest serializes");
        let errors = against_schema(&json);
        Self::build(manifest, json, BTreeMap::new(), errors)
    }

    fn build(
        manifest: Manifest,
        manifest_json: Value,
        files: BTreeMap<String, String>,
        mut errors: Vec<ManifestError>,
    ) -> Result<Self, ManifestErrors> {
        errors.extend(check_semantics(&manifest, &files));
        let schemas = compile_schemas(&manifest, &files, &mut errors);
        if !errors.is_empty() {
            return Err(ManifestErrors(errors));
        }
        let digest = digest(&manifest_json, &files);
        Ok(Self {
            manifest,
            manifest_json,
            files,
            schemas,
            digest,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest as written.
    pub fn manifest_json(&self) -> &Value {
        &self.manifest_json
    }

    /// The package's files other than the manifest.
    pub fn files(&self) -> &BTreeMap<String, String> {
        &self.files
    }

    /// Hex SHA-256 of the manifest and files: two packages with the same digest are the same.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The source of the JavaScript module, for a packaged connector.
    pub fn script(&self) -> Option<(&str, &str)> {
        let main = self.manifest.main.as_deref()?;
        self.files.get(main).map(|s| (main, s.as_str()))
    }

    /// Action `key`'s input schema.
    pub fn input_schema(&self, action: &str) -> Option<&CompiledSchema> {
        self.schemas.inputs.get(action)
    }

    /// Action `key`'s output schema, if it declares one.
    pub fn output_schema(&self, action: &str) -> Option<&CompiledSchema> {
        self.schemas.outputs.get(action)
    }

    /// Trigger `key`'s payload schema, if it declares one.
    pub fn payload_schema(&self, trigger: &str) -> Option<&CompiledSchema> {
        self.schemas.payloads.get(trigger)
    }

    /// Polling trigger `key`'s settings schema, if it declares one.
    pub fn params_schema(&self, trigger: &str) -> Option<&CompiledSchema> {
        self.schemas.params.get(trigger)
    }
}

fn one(file: &str, pointer: &str, expected: &str) -> ManifestErrors {
    ManifestErrors(vec![ManifestError {
        file: file.to_owned(),
        pointer: pointer.to_owned(),
        expected: expected.to_owned(),
    }])
}

fn error(pointer: &str, expected: impl Into<String>) -> ManifestError {
    ManifestError {
        file: MANIFEST_FILE.to_owned(),
        pointer: pointer.to_owned(),
        expected: expected.into(),
    }
}

fn against_schema(manifest: &Value) -> Vec<ManifestError> {
    MANIFEST_VALIDATOR
        .iter_errors(manifest)
        .map(|e| error(&e.instance_path.to_string(), e.to_string()))
        .collect()
}

fn check_files(files: &BTreeMap<String, String>) -> Vec<ManifestError> {
    let mut errors = Vec::new();
    if files.len() > MAX_FILES {
        errors.push(error("", format!("at most {MAX_FILES} files in a package")));
    }
    let total: usize = files.values().map(String::len).sum();
    if total > MAX_PACKAGE_BYTES {
        errors.push(error(
            "",
            format!("at most {MAX_PACKAGE_BYTES} bytes of files in a package, not {total}"),
        ));
    }
    for path in files.keys() {
        if !is_package_path(path) {
            errors.push(ManifestError {
                file: path.clone(),
                pointer: String::new(),
                expected: "a relative path of plain names within the package".to_owned(),
            });
        }
    }
    errors
}

/// `a/b.json`: relative, no `..`, `.` or empty segment, no backslash.
fn is_package_path(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

fn check_semantics(manifest: &Manifest, files: &BTreeMap<String, String>) -> Vec<ManifestError> {
    let mut errors = Vec::new();
    if semver::Version::parse(&manifest.version).is_err() {
        errors.push(error("/version", "a semantic version such as 1.2.3"));
    }
    if let Some(main) = &manifest.main
        && !files.contains_key(main)
    {
        errors.push(error("/main", format!("a file `{main}` in the package")));
    }
    duplicates(
        manifest.actions.iter().map(|a| a.key.as_str()),
        "actions",
        &mut errors,
    );
    duplicates(
        manifest.triggers.iter().map(Trigger::key),
        "triggers",
        &mut errors,
    );
    for (i, trigger) in manifest.triggers.iter().enumerate() {
        if let Trigger::Polling(polling) = trigger
            && humantime::parse_duration(&polling.interval).is_err()
        {
            let at = format!("/triggers/{i}/interval");
            errors.push(error(&at, "a duration such as `30s` or `5m`"));
        }
    }
    for (i, limit) in manifest.rate_limits.iter().enumerate() {
        if humantime::parse_duration(&limit.per).is_err() {
            let at = format!("/rateLimits/{i}/per");
            errors.push(error(&at, "a duration such as `1s` or `1m`"));
        }
    }
    errors
}

fn duplicates<'a>(
    keys: impl Iterator<Item = &'a str>,
    list: &str,
    errors: &mut Vec<ManifestError>,
) {
    let mut seen = std::collections::HashSet::new();
    for (i, key) in keys.enumerate() {
        if !seen.insert(key) {
            let at = format!("/{list}/{i}/key");
            errors.push(error(&at, format!("a key not used twice (`{key}` is)")));
        }
    }
}

fn compile_schemas(
    manifest: &Manifest,
    files: &BTreeMap<String, String>,
    errors: &mut Vec<ManifestError>,
) -> Schemas {
    let named = resolve_named(manifest, files, errors);
    let mut compile = |spec: &SchemaSpec, at: String| -> Option<CompiledSchema> {
        let schema = match spec {
            SchemaSpec::Inline(map) => Value::Object(map.clone()),
            SchemaSpec::Named(name) => match named.get(name) {
                Some(schema) => schema.clone()?,
                None => {
                    errors.push(error(
                        &at,
                        format!("the name of an entry of `schemas`, not `{name}`"),
                    ));
                    return None;
                }
            },
        };
        CompiledSchema::compile(&schema)
            .map_err(|e| errors.push(error(&at, format!("a valid JSON Schema ({e})"))))
            .ok()
    };
    let mut schemas = Schemas::default();
    for (i, action) in manifest.actions.iter().enumerate() {
        let key = action.key.clone();
        if let Some(s) = compile(&action.input_schema, format!("/actions/{i}/inputSchema")) {
            schemas.inputs.insert(key.clone(), s);
        }
        if let Some(spec) = &action.output_schema
            && let Some(s) = compile(spec, format!("/actions/{i}/outputSchema"))
        {
            schemas.outputs.insert(key, s);
        }
    }
    for (i, trigger) in manifest.triggers.iter().enumerate() {
        let key = trigger.key().to_owned();
        if let Some(spec) = trigger.payload_schema()
            && let Some(s) = compile(spec, format!("/triggers/{i}/payloadSchema"))
        {
            schemas.payloads.insert(key.clone(), s);
        }
        if let Trigger::Polling(polling) = trigger
            && let Some(spec) = &polling.params_schema
            && let Some(s) = compile(spec, format!("/triggers/{i}/paramsSchema"))
        {
            schemas.params.insert(key, s);
        }
    }
    schemas
}

/// The manifest's named schemas, with `{"$ref": "file.json"}` replaced by the file's JSON.
/// A name whose schema could not be read maps to `None` (the error is already recorded).
fn resolve_named(
    manifest: &Manifest,
    files: &BTreeMap<String, String>,
    errors: &mut Vec<ManifestError>,
) -> BTreeMap<String, Option<Value>> {
    manifest
        .schemas
        .iter()
        .map(|(name, schema)| {
            let at = format!("/schemas/{}", escape_pointer(name));
            (name.clone(), resolve_file_ref(schema, files, &at, errors))
        })
        .collect()
}

fn resolve_file_ref(
    schema: &Map<String, Value>,
    files: &BTreeMap<String, String>,
    at: &str,
    errors: &mut Vec<ManifestError>,
) -> Option<Value> {
    let file_ref = match (schema.len(), schema.get("$ref")) {
        (1, Some(Value::String(r))) if !r.starts_with('#') && !r.contains("://") => r,
        _ => return Some(Value::Object(schema.clone())),
    };
    let Some(text) = files.get(file_ref.as_str()) else {
        errors.push(error(at, format!("a file `{file_ref}` in the package")));
        return None;
    };
    match serde_json::from_str(text) {
        Ok(value @ Value::Object(_)) => Some(value),
        Ok(_) => {
            errors.push(one_error(file_ref, "a JSON Schema object"));
            None
        }
        Err(e) => {
            errors.push(one_error(file_ref, &format!("valid JSON ({e})")));
            None
        }
    }
}

fn one_error(file: &str, expected: &str) -> ManifestError {
    ManifestError {
        file: file.to_owned(),
        pointer: String::new(),
        expected: expected.to_owned(),
    }
}

fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn digest(manifest: &Value, files: &BTreeMap<String, String>) -> String {
    let whole = serde_json::json!({ "manifest": manifest, "files": files });
    hex::encode(Sha256::digest(whole.to_string().as_bytes()))
}

/// Reads every file under `dir` as text into `files`, keyed by its path relative to `root`.
fn read_tree(
    root: &Path,
    dir: &Path,
    files: &mut BTreeMap<String, String>,
) -> Result<(), (String, String)> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        (
            dir.display().to_string(),
            format!("a readable directory ({e})"),
        )
    })?;
    for entry in entries {
        let path = entry
            .map_err(|e| (dir.display().to_string(), e.to_string()))?
            .path();
        let relative = path
            .strip_prefix(root)
            .expect("under the root")
            .to_string_lossy()
            .replace('\\', "/");
        if path.is_dir() {
            read_tree(root, &path, files)?;
        } else {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| (relative.clone(), format!("a UTF-8 text file ({e})")))?;
            files.insert(relative, text);
        }
        if files.len() > MAX_FILES {
            let at = dir.display().to_string();
            return Err((at, format!("at most {MAX_FILES} files in a package")));
        }
    }
    Ok(())
}
