//! No secret at rest in clear: after API tokens and hook secrets are issued — with an
//! `Idempotency-Key`, and replayed — a search of every table (and, on SQLite, of the
//! database files themselves) finds no token, and a hook secret only where intake needs it.

mod common;

use common::{TestServer, json};
use durable_tests::conformance::SqliteFile;
use reqwest::Method;
use serde_json::{Value, json};

/// Issues a key, a workspace with its owner key, a hook with a generated secret and a
/// rotated one, each twice with the same `Idempotency-Key`; the secrets it was shown.
async fn issue_secrets(server: &TestServer) -> (Vec<String>, Vec<String>) {
    let tenant = server.tenant().await;
    let calls = [
        (
            "/v1/keys",
            json!({"name": "ci", "role": "member"}),
            "/token",
        ),
        (
            "/v1/workspaces",
            json!({"name": "second"}),
            "/owner_key/token",
        ),
        (
            "/v1/hooks",
            json!({"workflow": "hello_hook", "scheme": "github"}),
            "/secret",
        ),
    ];
    let mut shown = Vec::new();
    let mut hook = Value::Null;
    for (path, body, pointer) in calls {
        let first = post(server, &tenant.key, path, &body).await;
        let replayed = post(server, &tenant.key, path, &body).await;
        assert_eq!(replayed.pointer(pointer), Some(&Value::Null), "{path}");
        shown.push(first.pointer(pointer).unwrap().as_str().unwrap().to_owned());
        hook = first;
    }
    let rotate = format!("/v1/hooks/{}/rotate", hook["id"].as_str().unwrap());
    let rotated = post(server, &tenant.key, &rotate, &json!({})).await;
    post(server, &tenant.key, &rotate, &json!({})).await;
    let hook_secrets = vec![
        shown.pop().unwrap(),
        rotated["secret"].as_str().unwrap().to_owned(),
    ];
    (shown, hook_secrets)
}

async fn post(server: &TestServer, key: &str, path: &str, body: &Value) -> Value {
    let response = server
        .request(Method::POST, path, Some(key))
        .header("idempotency-key", format!("at-rest-{path}"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    json(response, if status == 200 { 200 } else { 201 }).await
}

/// Asserts no row of any table holds a token, and only `hooks` holds a hook secret.
fn assert_clean(tables: &[(String, String)], tokens: &[String], hook_secrets: &[String]) {
    assert!(tables.iter().any(|(t, _)| t == "idempotency_keys"));
    for (table, text) in tables {
        for token in tokens {
            assert!(!text.contains(token.as_str()), "a token in {table}");
        }
        for secret in hook_secrets {
            let allowed = table == "hooks";
            assert!(
                allowed || !text.contains(secret.as_str()),
                "a hook secret in {table}"
            );
        }
    }
    let hooks = &tables.iter().find(|(t, _)| t == "hooks").unwrap().1;
    assert!(hook_secrets.iter().all(|s| hooks.contains(s.as_str())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_secret_at_rest_on_postgres() {
    let server = TestServer::postgres().await;
    let (tokens, hook_secrets) = issue_secrets(&server).await;
    let client = server.db.as_ref().unwrap().client().await;
    let names = client
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'durable'",
            &[],
        )
        .await
        .unwrap();
    let mut tables = Vec::new();
    for row in names {
        let table: String = row.get(0);
        let sql =
            format!("SELECT coalesce(string_agg(t::text, E'\\n'), '') FROM durable.{table} t");
        let text: String = client.query_one(&sql, &[]).await.unwrap().get(0);
        // bytea columns print as hex; search those as text too.
        tables.push((table, decode_hex_runs(&text)));
    }
    assert_clean(&tables, &tokens, &hook_secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_secret_at_rest_on_sqlite() {
    let file = SqliteFile::new();
    let server = TestServer::sqlite_file(&file).await;
    let (tokens, hook_secrets) = issue_secrets(&server).await;
    let dump = durable::SqliteStore::open(file.path()).await.unwrap();
    let tables = dump
        .with_connection(|conn| Ok(sqlite_tables(conn)))
        .await
        .unwrap();
    assert_clean(&tables, &tokens, &hook_secrets);

    // The files themselves, write-ahead log included: no token in any page, live or free.
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", file.path().display());
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let bytes = String::from_utf8_lossy(&bytes);
        for token in &tokens {
            assert!(!bytes.contains(token.as_str()), "a token in {path}");
        }
    }
}

/// Every table's rows, as text.
fn sqlite_tables(conn: &durable::rusqlite::Connection) -> Vec<(String, String)> {
    let mut names = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap();
    let names: Vec<String> = names
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    names
        .into_iter()
        .map(|table| {
            let sql = format!("SELECT * FROM \"{table}\"");
            let mut statement = conn.prepare(&sql).unwrap();
            let columns = statement.column_count();
            let mut rows = statement.query([]).unwrap();
            let mut text = String::new();
            while let Some(row) = rows.next().unwrap() {
                for i in 0..columns {
                    text.push_str(&value_text(row.get_ref(i).unwrap()));
                    text.push('\t');
                }
                text.push('\n');
            }
            (table, text)
        })
        .collect()
}

fn value_text(value: durable::rusqlite::types::ValueRef<'_>) -> String {
    use durable::rusqlite::types::ValueRef;
    match value {
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(r) => r.to_string(),
        ValueRef::Null => String::new(),
    }
}

/// `text` with each `\x…` hex run (how Postgres prints bytea) also decoded, so that a secret
/// stored as bytes is found as well.
fn decode_hex_runs(text: &str) -> String {
    let mut out = text.to_owned();
    for run in text.split("\\\\x").skip(1).chain(text.split("\\x").skip(1)) {
        let hex: String = run.chars().take_while(char::is_ascii_hexdigit).collect();
        let bytes: Vec<u8> = (0..hex.len() / 2)
            .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
            .collect();
        out.push('\n');
        out.push_str(&String::from_utf8_lossy(&bytes));
    }
    out
}
