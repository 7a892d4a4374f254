//! Test support: real pseudo-terminal links (socat), the hsmon binary in headless mode with
//! its JSON records collected, waiting with deadlines instead of sleeps, and the real PC/SC
//! stack with our virtual card behind it (`pcscd`, `vpcd`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod pcscd;
pub mod peer;
pub mod ser2net;
pub mod tmux;
pub mod vpcd;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn hsmon_bin() -> &'static str {
    env!("CARGO_BIN_EXE_hsmon")
}

/// hsmon as a child process. RUST_BACKTRACE is off: with it on, every error report captures
/// and symbolises a backtrace (about a second in a debug build), which only slows the tests.
pub fn hsmon_command() -> Command {
    let mut c = Command::new(hsmon_bin());
    c.env("RUST_BACKTRACE", "0");
    // Sessions record by default: tests' captures go to a scratch directory, not $HOME.
    c.env(
        "XDG_STATE_HOME",
        std::env::temp_dir().join("hsmon-test-state"),
    );
    c
}

/// Fails loudly when a tool the tests need is missing (CI installs it; never skip silently).
pub fn require(tool: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{tool} is required by this test: apt-get install -y {tool} (.ci/run does this)"
    );
}

/// A pty pair joined by socat: hsmon opens `a`, the test plays the device on `b`.
pub struct PtyLink {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl PtyLink {
    pub fn new() -> PtyLink {
        require("socat");
        let dir = tempfile::tempdir().unwrap();
        let mut link = PtyLink { dir, child: None };
        link.start();
        link
    }

    pub fn a(&self) -> PathBuf {
        self.dir.path().join("a")
    }

    pub fn b(&self) -> PathBuf {
        self.dir.path().join("b")
    }

    /// Starts (or restarts) socat with the same link names.
    pub fn start(&mut self) {
        let a = format!("pty,rawer,link={}", self.a().display());
        let b = format!("pty,rawer,link={}", self.b().display());
        let child = Command::new("socat")
            .args([&a, &b])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat starts");
        self.child = Some(child);
        wait_until(Duration::from_secs(5), || {
            self.a().exists() && self.b().exists()
        })
        .expect("socat creates both pty links");
    }

    /// Kills socat: both ptys vanish, as an unplugged adapter does.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // socat removes its links on a clean exit; after SIGKILL they may dangle.
        let _ = std::fs::remove_file(self.a());
        let _ = std::fs::remove_file(self.b());
    }

    /// Opens the device side for reading and writing.
    pub fn device(&self) -> std::fs::File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.b())
            .unwrap()
    }
}

impl Drop for PtyLink {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> Result<(), String> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(format!("condition not met within {timeout:?}"))
}

/// hsmon running headless with JSON output; records are parsed as they arrive.
pub struct Headless {
    child: Child,
    stdin: Option<ChildStdin>,
    rx: mpsc::Receiver<Value>,
    pub records: Vec<Value>,
}

impl Headless {
    pub fn start(args: &[&str]) -> Headless {
        let mut cmd = hsmon_command();
        cmd.args(["--headless", "--format", "json", "--config", "/dev/null"])
            .args(args);
        Headless::spawn(cmd)
    }

    /// Runs `cmd` (an [`hsmon_command`] with its own arguments, which must ask for headless
    /// JSON) with its records collected as they arrive.
    pub fn spawn(mut cmd: Command) -> Headless {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hsmon starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON record: {line:?}: {e}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Headless {
            child,
            stdin,
            rx,
            records: Vec::new(),
        }
    }

    /// Sends one control line on stdin.
    pub fn control(&mut self, line: &str) {
        let s = self.stdin.as_mut().unwrap();
        writeln!(s, "{line}").unwrap();
        s.flush().unwrap();
    }

    /// Collects records until `pred` holds for one of the new ones; returns it.
    pub fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(v) => {
                    self.records.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(_) => panic!(
                    "no matching record within {timeout:?}; last records: {:#?}",
                    &self.records[self.records.len().saturating_sub(8)..]
                ),
            }
        }
    }

    /// All received bytes so far (from `rx` records), in order.
    pub fn rx_bytes(&self) -> Vec<u8> {
        self.records
            .iter()
            .filter(|r| r["type"] == "rx")
            .flat_map(|r| hex(r["hex"].as_str().unwrap()))
            .collect()
    }

    /// Collects until `n` received bytes have arrived.
    pub fn wait_rx_len(&mut self, n: usize, timeout: Duration) {
        let end = Instant::now() + timeout;
        let mut have = self.rx_bytes().len();
        while have < n {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(v) => {
                    if v["type"] == "rx" {
                        have += hex(v["hex"].as_str().unwrap()).len();
                    }
                    self.records.push(v);
                }
                Err(_) => panic!("only {have} of {n} bytes arrived within {timeout:?}"),
            }
        }
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit code and stderr.
    pub fn stop(mut self) -> (i32, String) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        (status.code().unwrap_or(-1), err)
    }
}

impl Headless {
    /// SIGKILL (no clean-up), then stderr read to its end: that waits for every process
    /// still holding it (a traced program whose output goes there).
    pub fn kill_hard(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        err
    }
}

impl Drop for Headless {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn hex(s: &str) -> Vec<u8> {
    hsmon::hex::parse(s).unwrap()
}

/// Runs hsmon to completion with `args`; returns (exit code, stdout, stderr).
pub fn run_hsmon(args: &[&str]) -> (i32, String, String) {
    let out = hsmon_command()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs hsmon with `args` and gives it `limit` to finish: the exit code, stdout and stderr,
/// or an error saying it still ran (it is killed then). For tests of things that used to hang.
pub fn run_hsmon_within(args: &[&str], limit: Duration) -> Result<(i32, String, String), String> {
    let mut cmd = hsmon_command();
    cmd.args(args);
    run_within(cmd, limit)
}

/// [`run_hsmon_within`] for a command already set up (arguments, environment).
pub fn run_within(mut cmd: Command, limit: Duration) -> Result<(i32, String, String), String> {
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = String::from_utf8_lossy(&out_t.join().unwrap()).into_owned();
    let err = String::from_utf8_lossy(&err_t.join().unwrap()).into_owned();
    match status {
        Some(s) => Ok((s.code().unwrap_or(-1), out, err)),
        None => Err(format!(
            "hsmon {args:?} still ran after {limit:?}; stdout {out:?}, stderr {err:?}"
        )),
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}
