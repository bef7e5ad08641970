//! Worker processes that tests start, kill (SIGKILL), stop (SIGSTOP) and continue.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

/// The path of the `test-worker` binary; expands in the calling integration test, where
/// Cargo provides it.
#[macro_export]
macro_rules! worker_bin {
    () => {
        env!("CARGO_BIN_EXE_test-worker")
    };
}

/// A running worker process (`test-worker`, or a program configured the same way, such as the
/// host app) and the lines it printed so far.
#[derive(Debug)]
pub struct WorkerProcess {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    printed: Arc<Notify>,
}

impl WorkerProcess {
    /// Starts a worker on `database_url` with a short lease and poll interval.
    pub fn spawn(bin: &str, database_url: &str, lease: Duration) -> WorkerProcess {
        Self::spawn_with(bin, database_url, lease, &[])
    }

    /// Like [`spawn`](Self::spawn), with more environment (`CRASH_AT`, `CONCURRENCY`).
    pub fn spawn_with(
        bin: &str,
        database_url: &str,
        lease: Duration,
        env: &[(&str, &str)],
    ) -> WorkerProcess {
        let mut child = Command::new(bin)
            .envs(env.iter().copied())
            .env("DATABASE_URL", database_url)
            .env("LEASE_MS", lease.as_millis().to_string())
            .env("POLL_MS", "100")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {bin}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let printed = Arc::new(Notify::new());
        let stdout = child.stdout.take().expect("piped stdout");
        let (sink, notify) = (lines.clone(), printed.clone());
        let pid = child.id().unwrap_or_default();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                println!("[worker {pid}] {line}");
                sink.lock().unwrap().push(line);
                notify.notify_waiters();
            }
        });
        WorkerProcess {
            child,
            lines,
            printed,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id().expect("process still running") as i32
    }

    /// SIGKILL, and reap it.
    pub async fn kill(mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait().await;
    }

    /// SIGSTOP: the process freezes, as a paused VM or a long GC pause would.
    pub fn stop(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT.
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    /// Waits for the process to exit (e.g. when it aborts itself).
    pub async fn wait_exit(&mut self, deadline: Duration) -> std::process::ExitStatus {
        tokio::time::timeout(deadline, self.child.wait())
            .await
            .expect("worker process did not exit in time")
            .expect("wait for worker")
    }

    /// The lines the process printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until the process printed a line containing `needle`.
    pub async fn wait_for_line(&self, needle: &str, deadline: Duration) -> String {
        let give_up = tokio::time::Instant::now() + deadline;
        loop {
            let notified = self.printed.notified();
            if let Some(line) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return line.clone();
            }
            if tokio::time::timeout_at(give_up, notified).await.is_err() {
                panic!("worker never printed `{needle}` within {deadline:?}");
            }
        }
    }

    fn signal(&self, signal: i32) {
        let pid = self.pid();
        // SAFETY: kill(2) takes plain integers and touches no memory of ours.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
    }
}
