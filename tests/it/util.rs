//! Test harness: a simulator per test, on 127.0.0.1:0, stopped on drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use kbv3::hcloud::backoff::{Backoff, RetryPolicy};
use kbv3::hcloud::{Client, Config, Environment};
use serde_json::Value;

pub const TOKEN: &str = "test-token-4f1c9a";

/// A running `hcloud-sim`.
pub struct Sim {
    child: Child,
    pub endpoint: String,
    pub request_log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The PH3-01 fleet seed of the repository.
pub fn fleet_seed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("servers/hcloud-sim-seed.json")
}

impl Sim {
    /// Starts a simulator on the fleet seed with extra flags.
    pub fn start(extra: &[&str]) -> Sim {
        Sim::start_with_seed(&fleet_seed(), extra)
    }

    /// Starts a simulator on a seed with extra flags; returns once it accepts connections.
    pub fn start_with_seed(seed: &Path, extra: &[&str]) -> Sim {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = tempfile::tempdir().unwrap();
        let request_log = dir.path().join("requests.jsonl");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hcloud-sim"));
        cmd.args([
            "--listen",
            "127.0.0.1:0",
            "--token",
            TOKEN,
            "--action-ms",
            "30",
        ])
        .arg("--seed")
        .arg(seed)
        .arg("--request-log")
        .arg(&request_log)
        .args(extra)
        .stdout(Stdio::piped());
        if let Ok(dir) = std::env::var("KBV3_RESPONSE_LOG_DIR") {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            cmd.arg("--response-log")
                .arg(Path::new(&dir).join(format!("rust-{}-{n}.jsonl", std::process::id())));
        }
        let mut child = cmd.spawn().expect("hcloud-sim starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("http://127.0.0.1:"),
            "first line must be the endpoint, got {line:?}"
        );
        Sim {
            child,
            endpoint: line.trim().to_string(),
            request_log,
            _dir: dir,
        }
    }

    /// A client with millisecond pacing, so retries do not slow the tests down.
    pub fn client(&self) -> Client {
        Client::new(fast_config(&self.endpoint)).unwrap()
    }

    /// Every request the simulator logged so far.
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.request_log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        // SIGTERM lets it stop cleanly; the wait reaps it.
        unsafe_kill_term(self.child.id());
        let _ = self.child.wait();
    }
}

fn unsafe_kill_term(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}

/// The real clock, recording every wait.
#[derive(Debug, Default)]
pub struct RecordingClock {
    pub sleeps: std::sync::Mutex<Vec<Duration>>,
}

impl kbv3::hcloud::clock::Clock for RecordingClock {
    fn now(&self) -> std::time::Instant {
        std::time::Instant::now()
    }
    fn sleep(&self, d: Duration) {
        self.sleeps.lock().unwrap().push(d);
        std::thread::sleep(d);
    }
}

/// True when every request in the log had a fault injected.
pub fn all_faulted(log: &[Value]) -> bool {
    !log.is_empty() && log.iter().all(|r| !r["fault"].is_null())
}

/// A client configuration with millisecond backoffs.
pub fn fast_config(endpoint: &str) -> Config {
    let mut cfg = Config::resolve(
        Some(TOKEN.into()),
        Some(endpoint.into()),
        false,
        &Environment::default(),
    )
    .unwrap();
    cfg.retry = RetryPolicy::with_base(Duration::from_millis(5));
    cfg.retry.backoff = Backoff::Exponential {
        base: Duration::from_millis(5),
        multiplier: 2.0,
        cap: Duration::from_millis(200),
        jitter: true,
    };
    cfg.poll = Backoff::Constant(Duration::from_millis(10));
    cfg.request_timeout = Duration::from_secs(10);
    cfg
}
