//! Every run and step is traced: a span per run (workspace, workflow, run id, attempt) and per
//! step (seq, name, attempt), and an event when a run starts, a step succeeds or fails, and a
//! run ends.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use durable::prelude::*;
use durable_tests::workflows::{FlakyInput, flaky};
use durable_tests::{TestDb, worker};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_and_steps_log_structured_lifecycle_events() {
    let captured = Captured::default();
    let sink = captured.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter("durable=info,durable_worker=info")
        .with_writer(move || sink.clone())
        .init();

    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let worker = worker(db.store().await).build();
    let stop = worker.shutdown_token();
    let task = tokio::spawn(worker.run());
    let input = FlakyInput {
        ledger: db.url.clone(),
        failures: 1,
        terminal: false,
    };
    let handle = client.start(flaky, input).await.unwrap();
    handle
        .result_timeout(Duration::from_secs(10))
        .await
        .unwrap();
    stop.cancel();
    task.await.unwrap().unwrap();

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let run_span = format!(
        "run{{workspace=00000000-0000-0000-0000-000000000000 workflow=flaky run_id={} attempt=1}}",
        handle.id()
    );
    let line = |event: &str| {
        logs.lines()
            .find(|l| l.contains(&format!("event=\"{event}\"")))
            .unwrap_or_else(|| panic!("no `{event}` event in:\n{logs}"))
            .to_owned()
    };
    for event in [
        "run_started",
        "step_failed",
        "step_succeeded",
        "run_completed",
    ] {
        assert!(
            line(event).contains(&run_span),
            "`{event}` outside the run span: {}",
            line(event)
        );
    }
    assert!(
        line("step_failed").contains("step{seq=0 name=flaky_call attempt=1}"),
        "{}",
        line("step_failed")
    );
    assert!(
        line("step_succeeded").contains("step{seq=0 name=flaky_call attempt=2}"),
        "{}",
        line("step_succeeded")
    );
    assert!(line("step_failed").contains("upstream unavailable"));
}
