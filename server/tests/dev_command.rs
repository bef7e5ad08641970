//! `durable-server dev` as a newcomer runs it: a real process, its printed curl line
//! followed over real HTTP, and a restart that keeps the demo tenant and the runs.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

struct Dev {
    child: Child,
    /// The rest of its output, kept open so the process can go on printing.
    _output: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    base: String,
    key: String,
    hook_path: String,
}

/// Starts `durable-server dev` on `db` and reads its banner.
async fn start_dev(db: &std::path::Path) -> Dev {
    let mut child = Command::new(env!("CARGO_BIN_EXE_durable-server"))
        .args(["dev", "--listen", "127.0.0.1:0", "--database-url"])
        .arg(format!("sqlite://{}", db.display()))
        .env_remove("DURABLE_DATABASE_URL")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start durable-server dev");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut key, mut hook_url) = (None, None);
    let banner = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(k) = line.strip_prefix("API key (demo only): ") {
                key = Some(k.to_owned());
            }
            if line.trim_start().starts_with("curl -s -X POST ") {
                hook_url = line.split_whitespace().nth(4).map(str::to_owned);
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), banner)
        .await
        .expect("the banner within 30 s");
    let hook_url = hook_url.expect("a curl line for the webhook");
    let split = hook_url.find("/v1/").unwrap();
    Dev {
        child,
        _output: lines,
        base: hook_url[..split].to_owned(),
        hook_path: hook_url[split..].to_owned(),
        key: key.expect("the demo key"),
    }
}

/// Polls the run until it completes, or fails after 20 s.
async fn completed(http: &reqwest::Client, dev: &Dev, run_id: &str) -> Value {
    let url = format!("{}/v1/runs/{run_id}", dev.base);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let run: Value = http
            .get(&url)
            .bearer_auth(&dev.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if run["status"] == "completed" {
            return run;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run did not complete: {run}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_prints_a_working_curl_line_and_keeps_its_tenant_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dev.db");
    let http = reqwest::Client::new();

    let mut dev = start_dev(&db).await;
    let accepted: Value = http
        .post(format!("{}{}", dev.base, dev.hook_path))
        .header("content-type", "application/json")
        .body(r#"{"hello":"world"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run_id = accepted["run_id"].as_str().expect("a run id").to_owned();
    let run = completed(&http, &dev, &run_id).await;
    assert_eq!(
        run["output"],
        "delivery ".to_owned()
            + run["input"]["delivery_id"].as_str().unwrap()
            + " carried 1 top-level field(s)"
    );
    let first_key = dev.key.clone();
    dev.child.kill().await.unwrap();

    let dev = start_dev(&db).await;
    assert_eq!(dev.key, first_key, "the demo tenant is created once");
    let run = completed(&http, &dev, &run_id).await;
    assert_eq!(run["id"], run_id.as_str());
}
