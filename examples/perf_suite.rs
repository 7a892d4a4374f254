//! The performance harness behind README's Performance table: one run measures, over the same
//! socat pseudo-terminal pair and the same data, what issue 9 asks for and prints a table.
//!
//! - headless throughput and CPU per MB: `cat` (the pty's own limit), `tio -x` (Debian tio in
//!   hex mode, stdin kept open so it stays in its non-interactive mode) and
//!   `hsmon --headless --format json` (recording on, as by default, and with `--no-capture`);
//! - the TUI (in a tmux terminal, 200×60) under a 1.2 MB/s feed (12 Mbaud, the fastest
//!   USB-serial rate): bytes lost (the capture read back and compared byte for byte with what
//!   was written), frames drawn per second (`HSMON_DRAW_STATS`), CPU%;
//! - idle CPU with the TUI open on a quiet port (/proc/PID/stat utime+stime);
//! - peak RSS (VmHWM) after 1 GiB of traffic, headless and TUI;
//! - time to first frame from launch: TUI (exec → first draw) and headless (exec → first `rx`
//!   record while the device is already sending).
//!
//! Render time per frame is a criterion bench: `cargo bench --bench render`.
//!
//! ```text
//! cargo build --release && cargo run --release --example perf_suite
//! cargo run --release --example perf_suite -- --quick          # smaller amounts, ~2 min
//! cargo run --release --example perf_suite -- --only idle,first
//! ```
//! The release profile strips symbols: for `perf record` on hsmon, use the profiling profile
//! (`cargo build --profile profiling && cargo run --profile profiling --example perf_suite`,
//! which runs target/profiling/hsmon).
//! Options: `--mib N` (throughput data, 64), `--traffic-mib N` (RSS data, 1024), `--feed-secs N`
//! (TUI feed, 20), `--idle-secs N` (30), `--launches N` (5), `--only throughput,tui,idle,rss,first`.
//! Needs socat, tio and tmux (apt-get install socat tio tmux).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a harness: a failed unwrap is a failed run

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[path = "common/traffic.rs"]
mod traffic;
use traffic::traffic_block;

use hsmon::capture::CaptureReader;
use hsmon::event::Event;

/// 12 Mbaud 8N1 ≈ 1.2 MB/s: the fastest USB-serial adapters (FT232H, CP2102N at 3 Mbaud are slower).
const FEED_RATE: f64 = 1_200_000.0;

/// The TUI's terminal size for the feed and RSS runs.
const TUI_SIZE: (u16, u16) = (200, 60);

struct Opts {
    mib: usize,
    traffic_mib: usize,
    feed_secs: f64,
    idle_secs: f64,
    launches: usize,
    only: Option<Vec<String>>,
}

impl Opts {
    fn parse() -> Opts {
        let mut o = Opts {
            mib: 64,
            traffic_mib: 1024,
            feed_secs: 20.0,
            idle_secs: 30.0,
            launches: 5,
            only: None,
        };
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut i = 0;
        while i < args.len() {
            let val = || args.get(i + 1).cloned().unwrap_or_default();
            match args[i].as_str() {
                "--quick" => {
                    o.mib = 16;
                    o.traffic_mib = 256;
                    o.feed_secs = 8.0;
                    o.idle_secs = 10.0;
                    o.launches = 3;
                }
                "--mib" => o.mib = val().parse().expect("--mib N"),
                "--traffic-mib" => o.traffic_mib = val().parse().expect("--traffic-mib N"),
                "--feed-secs" => o.feed_secs = val().parse().expect("--feed-secs N"),
                "--idle-secs" => o.idle_secs = val().parse().expect("--idle-secs N"),
                "--launches" => o.launches = val().parse().expect("--launches N"),
                "--only" => o.only = Some(val().split(',').map(str::to_string).collect()),
                other => panic!("unknown option {other}; see the file's header for options"),
            }
            i += if args[i] == "--quick" { 1 } else { 2 };
        }
        o
    }

    fn wants(&self, what: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|l| l.iter().any(|x| x == what))
    }
}

// ---------------------------------------------------------------------------------------------
// Processes, /proc and tools

fn require(tool: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "{tool} is needed: apt-get install -y {tool}");
}

/// Clock ticks per second for /proc/PID/stat (USER_HZ).
fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime is the 14th, stime the 15th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

/// A `kB` line of /proc/PID/status (VmHWM, VmRSS), in KiB.
fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
    })
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The hsmon built with this example's profile (target/release/hsmon, or target/profiling/hsmon).
fn hsmon_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("hsmon"))
        .unwrap();
    assert!(
        bin.exists(),
        "run `cargo build --release` (or `--profile profiling`) first: {} is missing",
        bin.display()
    );
    bin
}

/// A scratch directory removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("hsmon-perf-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A socat pty pair: the consumer opens `a`, the harness plays the device on `b`.
struct Link {
    dir: Scratch,
    socat: Child,
}

impl Link {
    fn new(tag: &str) -> Link {
        let dir = Scratch::new(tag);
        let socat = Command::new("socat")
            .arg(format!("pty,rawer,link={}", dir.path("a").display()))
            .arg(format!("pty,rawer,link={}", dir.path("b").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat starts");
        let link = Link { dir, socat };
        assert!(
            wait_until(Duration::from_secs(5), || link.a().exists()
                && link.b().exists()),
            "socat made no ptys"
        );
        link
    }
    fn a(&self) -> PathBuf {
        self.dir.path("a")
    }
    fn b(&self) -> PathBuf {
        self.dir.path("b")
    }
    fn device(&self) -> std::fs::File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.b())
            .unwrap()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = self.socat.kill();
        let _ = self.socat.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The data

/// Writes `total` bytes of the block, repeated, into `dev`: as fast as the pty takes them, or
/// paced at `rate` bytes per second (in 10 ms slices). Returns the time it took.
fn feed(dev: &mut impl Write, block: &[u8], total: usize, rate: Option<f64>) -> Duration {
    let t0 = Instant::now();
    let mut sent = 0usize;
    let slice = rate.map(|r| ((r / 100.0) as usize).max(1));
    let mut tick = 0u32;
    while sent < total {
        let pos = sent % block.len();
        let mut n = (block.len() - pos).min(total - sent).min(64 * 1024);
        if let Some(s) = slice {
            n = n.min(s);
            let due = t0 + Duration::from_millis(10) * tick;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            tick += 1;
        }
        dev.write_all(&block[pos..pos + n]).unwrap();
        sent += n;
    }
    t0.elapsed()
}

/// Whether `got` is exactly the first `got.len()` bytes of the repeated block; the offset of
/// the first difference otherwise.
fn first_mismatch(block: &[u8], got: &[u8]) -> Option<usize> {
    got.iter()
        .enumerate()
        .find(|(i, b)| block[i % block.len()] != **b)
        .map(|(i, _)| i)
}

// ---------------------------------------------------------------------------------------------
// Output

struct Row {
    what: String,
    number: String,
    how: String,
}

fn row(rows: &mut Vec<Row>, what: &str, number: String, how: &str) {
    println!("  {what}: {number}");
    rows.push(Row {
        what: what.to_string(),
        number,
        how: how.to_string(),
    });
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

// ---------------------------------------------------------------------------------------------
// 1. Headless throughput: cat, tio -x, hsmon

#[derive(Clone, Copy, PartialEq)]
enum Consumer {
    Cat,
    Tio,
    Hsmon { capture: bool },
}

impl Consumer {
    fn name(self) -> &'static str {
        match self {
            Consumer::Cat => "cat",
            Consumer::Tio => "tio -x",
            Consumer::Hsmon { capture: true } => "hsmon --headless --format json",
            Consumer::Hsmon { capture: false } => "hsmon --headless --format json --no-capture",
        }
    }
}

struct Throughput {
    mb_per_s: f64,
    cpu_ms_per_mb: f64,
    cpu_pct: f64,
    /// Bytes printed.
    received: u64,
    /// Bytes the consumer dropped and said so (hsmon's `hsmon.overrun` records).
    dropped: u64,
}

/// Counts the payload bytes a consumer has printed so far, from its stdout.
fn count_output(
    kind: Consumer,
    out: impl Read + Send + 'static,
    got: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
) {
    std::thread::spawn(move || {
        let mut r = BufReader::with_capacity(1 << 20, out);
        match kind {
            Consumer::Cat => {
                let mut buf = vec![0u8; 1 << 20];
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    got.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
            // tio -x prints a banner ending "Connected\r\n", then "xx " for each byte.
            Consumer::Tio => {
                let mut seen = Vec::new();
                let mut chars = 0u64;
                let mut buf = vec![0u8; 1 << 20];
                let mut started = false;
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut chunk = &buf[..n];
                    if !started {
                        seen.extend_from_slice(chunk);
                        let Some(at) = seen.windows(11).position(|w| w == b"Connected\r\n") else {
                            continue;
                        };
                        started = true;
                        chars = (seen.len() - at - 11) as u64;
                        chunk = &[];
                    }
                    chars += chunk.len() as u64;
                    got.store(chars / 3, Ordering::Relaxed);
                }
            }
            // JSON records: `rx` bytes are counted, and so are bytes hsmon had to drop and said
            // so (`hsmon.overrun`): both count as handled, the drops are reported apart.
            Consumer::Hsmon { .. } => {
                let mut line = Vec::new();
                while let Ok(n) = r.read_until(b'\n', &mut line) {
                    if n == 0 {
                        break;
                    }
                    if line.starts_with(br#"{"type":"rx""#) {
                        // ..."hex":"68 04 04 68"}: 3 characters a byte, minus one.
                        if let Some(p) = line.windows(7).position(|w| w == br#""hex":""#) {
                            let hex = line.len() - p - 7 - 3; // `"}\n`
                            got.fetch_add((hex as u64 + 1) / 3, Ordering::Relaxed);
                        }
                    } else if line.windows(15).any(|w| w == b"\"hsmon.overrun\"") {
                        let v: serde_json::Value =
                            serde_json::from_slice(&line).unwrap_or_default();
                        let d = v["dropped_bytes"].as_u64().unwrap_or(0);
                        dropped.fetch_add(d, Ordering::Relaxed);
                        got.fetch_add(d, Ordering::Relaxed);
                    }
                    line.clear();
                }
            }
        }
    });
}

fn throughput(kind: Consumer, block: &[u8], total: usize, hz: f64) -> Throughput {
    let link = Link::new("tp");
    let state = Scratch::new("tp-state");
    let mut cmd = match kind {
        Consumer::Cat => {
            let mut c = Command::new("cat");
            c.arg(link.a());
            c
        }
        Consumer::Tio => {
            let mut c = Command::new("tio");
            c.arg("-x").arg(link.a());
            c
        }
        Consumer::Hsmon { capture } => {
            let mut c = Command::new(hsmon_bin());
            c.env("XDG_STATE_HOME", &state.0).args([
                "--headless",
                "--format",
                "json",
                "--config",
                "/dev/null",
            ]);
            if !capture {
                c.arg("--no-capture");
            }
            c.arg("serial").arg(link.a());
            c
        }
    };
    // stdin stays open (a pipe we hold): tio quits when its stdin closes.
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{} does not start: {e}", kind.name()));
    let pid = child.id();
    let got = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    count_output(
        kind,
        child.stdout.take().unwrap(),
        got.clone(),
        dropped.clone(),
    );
    // Let it open the port (tio buffers its banner, so no output tells us).
    std::thread::sleep(Duration::from_millis(500));
    let mut dev = link.device();
    let cpu0 = cpu_ticks(pid);
    let t0 = Instant::now();
    // cat and tio hold the writer back through the pty; hsmon never does (its source reads
    // on and drops past its bound), so the feed waits while it is 8 MiB ahead of what was
    // printed: the rate measured is the rate at which every byte gets through.
    let seen = got.clone();
    feed_paced_by(&mut dev, block, total, 8 << 20, || {
        seen.load(Ordering::Relaxed)
    });
    // Padding pushes the consumer's last output buffer (tio's stdio) out.
    let _ = dev.write_all(&vec![b'.'; 16 * 1024]);
    let done = wait_until(Duration::from_secs(600), || {
        got.load(Ordering::Relaxed) >= total as u64
    });
    let secs = t0.elapsed().as_secs_f64();
    let ticks = cpu_ticks(pid) - cpu0;
    let dropped = dropped.load(Ordering::Relaxed);
    let received = got.load(Ordering::Relaxed).min(total as u64) - dropped.min(total as u64);
    if !done {
        println!(
            "  ! {} printed only {received} of {total} bytes",
            kind.name()
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    let cpu_s = ticks as f64 / hz;
    Throughput {
        dropped,
        mb_per_s: mb(received) / secs,
        cpu_ms_per_mb: cpu_s * 1000.0 / mb(received),
        cpu_pct: cpu_s / secs * 100.0,
        received,
    }
}

fn section_throughput(o: &Opts, block: &[u8], hz: f64, rows: &mut Vec<Row>) {
    println!("throughput: {} MiB through each consumer", o.mib);
    let total = o.mib << 20;
    let mut results = Vec::new();
    for kind in [
        Consumer::Cat,
        Consumer::Tio,
        Consumer::Hsmon { capture: true },
        Consumer::Hsmon { capture: false },
    ] {
        let r = throughput(kind, block, total, hz);
        println!(
            "  {:<46} {:>7.1} MB/s  {:>6.1} ms CPU/MB  {:>4.0}% CPU  {} of {} bytes printed, {} dropped and counted",
            kind.name(),
            r.mb_per_s,
            r.cpu_ms_per_mb,
            r.cpu_pct,
            r.received,
            total,
            r.dropped
        );
        results.push((kind, r));
    }
    let get = |k: Consumer| results.iter().find(|(x, _)| *x == k).map(|(_, r)| r);
    let (Some(cat), Some(tio), Some(hs), Some(hs_nc)) = (
        get(Consumer::Cat),
        get(Consumer::Tio),
        get(Consumer::Hsmon { capture: true }),
        get(Consumer::Hsmon { capture: false }),
    ) else {
        return;
    };
    let how = format!(
        "cargo run --release --example perf_suite -- --only throughput --mib {}",
        o.mib
    );
    row(
        rows,
        "headless throughput over a pty: hsmon JSON (recording) / tio -x / cat",
        format!(
            "{:.1} / {:.1} / {:.1} MB/s — hsmon is {:.2}× tio, {:.3}× cat; {} of {} bytes printed, {} dropped and counted",
            hs.mb_per_s,
            tio.mb_per_s,
            cat.mb_per_s,
            hs.mb_per_s / tio.mb_per_s,
            hs.mb_per_s / cat.mb_per_s,
            hs.received,
            total,
            hs.dropped
        ),
        &how,
    );
    row(
        rows,
        "CPU per MB: hsmon (recording) / hsmon --no-capture / tio -x / cat",
        format!(
            "{:.0} / {:.0} / {:.1} / {:.1} ms — hsmon {:.1}× tio; --no-capture {:.1} MB/s",
            hs.cpu_ms_per_mb,
            hs_nc.cpu_ms_per_mb,
            tio.cpu_ms_per_mb,
            cat.cpu_ms_per_mb,
            hs.cpu_ms_per_mb / tio.cpu_ms_per_mb,
            hs_nc.mb_per_s
        ),
        &how,
    );
}

// ---------------------------------------------------------------------------------------------
// 2–4. The TUI in tmux

struct Tmux {
    socket: String,
}

impl Tmux {
    /// `cmd` in a new tmux server of its own, in a terminal of `size`.
    fn start(cmd: &str, size: (u16, u16)) -> Tmux {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let socket = format!(
            "hsmon-perf-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let ok = Command::new("tmux")
            .args(["-L", &socket, "new-session", "-d", "-x"])
            .arg(size.0.to_string())
            .arg("-y")
            .arg(size.1.to_string())
            .arg(cmd)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "tmux starts");
        Tmux { socket }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, what: &str, timeout: Duration) -> String {
        let mut last = String::new();
        let ok = wait_until(timeout, || {
            last = self.screen();
            last.contains(what)
        });
        assert!(ok, "{what:?} never appeared; screen:\n{last}");
        last
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stderr(Stdio::null())
            .status();
    }
}

/// hsmon's TUI on `port`, recording to `capture`, launched by a shell that notes the exec
/// time first (so time to first frame counts from the launch, not from tmux's start).
struct Tui {
    tmux: Tmux,
    pid: u32,
    dir: Scratch,
    launched_ns: u64,
}

impl Tui {
    fn start(port: &Path, tag: &str) -> Tui {
        let dir = Scratch::new(tag);
        let cmd = format!(
            "export HSMON_DRAW_STATS='{stats}' XDG_STATE_HOME='{state}'; echo $$ > '{pidf}'; date +%s%N > '{t0}'; exec '{bin}' --config /dev/null --capture '{cap}' serial '{port}'",
            stats = dir.path("draws.json").display(),
            state = dir.0.display(),
            pidf = dir.path("pid").display(),
            t0 = dir.path("t0").display(),
            bin = hsmon_bin().display(),
            cap = dir.path("session.hscap").display(),
            port = port.display(),
        );
        let tmux = Tmux::start(&format!("sh -c \"{cmd}\""), TUI_SIZE);
        let read = |name: &str| std::fs::read_to_string(dir.path(name)).unwrap_or_default();
        assert!(
            wait_until(Duration::from_secs(10), || read("t0").trim().len() > 10),
            "the TUI's launcher did not run"
        );
        let pid: u32 = read("pid").trim().parse().unwrap();
        let launched_ns: u64 = read("t0").trim().parse().unwrap();
        Tui {
            tmux,
            pid,
            dir,
            launched_ns,
        }
    }

    /// SIGTERM, as a session manager or `kill` ends it, then wait for the exit.
    fn stop(&self) {
        signal(self.pid, nix::sys::signal::Signal::SIGTERM);
        assert!(
            wait_until(Duration::from_secs(20), || !alive(self.pid)),
            "the TUI did not exit on SIGTERM"
        );
    }

    /// (wall-clock ns of the first draw, offsets of every draw in ns).
    fn draws(&self) -> (u64, Vec<u64>) {
        let text = std::fs::read_to_string(self.dir.path("draws.json")).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let first = v["first_draw_unix_ns"].as_u64().unwrap_or(0);
        let offs = v["draws_ns"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
            .unwrap_or_default();
        (first, offs)
    }

    /// Draws between two wall-clock times.
    fn draws_between(&self, from_ns: u64, to_ns: u64) -> usize {
        let (first, offs) = self.draws();
        offs.iter()
            .filter(|o| (from_ns..to_ns).contains(&(first + **o)))
            .count()
    }

    /// Received bytes and counted drops in the capture.
    fn captured(&self) -> (Vec<u8>, u64) {
        let mut r = CaptureReader::open(&self.dir.path("session.hscap")).expect("capture opens");
        let mut rx = Vec::new();
        let mut dropped = 0;
        while let Ok(Some(rec)) = r.next_record() {
            match rec.event.event {
                Event::Rx(b) => rx.extend_from_slice(&b),
                Event::Overrun(o) => dropped += o.dropped_bytes,
                _ => {}
            }
        }
        (rx, dropped)
    }
}

fn section_tui_feed(o: &Opts, block: &[u8], hz: f64, rows: &mut Vec<Row>) {
    println!(
        "TUI {}×{} under a {:.1} MB/s feed for {} s",
        TUI_SIZE.0,
        TUI_SIZE.1,
        FEED_RATE / 1e6,
        o.feed_secs
    );
    let link = Link::new("tui");
    let tui = Tui::start(&link.a(), "tui-state");
    tui.tmux.wait_for("● connected", Duration::from_secs(10));
    let mut dev = link.device();
    let total = (FEED_RATE * o.feed_secs) as usize;
    let cpu0 = cpu_ticks(tui.pid);
    let w0 = unix_ns();
    let took = feed(&mut dev, block, total, Some(FEED_RATE));
    let w1 = unix_ns();
    let ticks = cpu_ticks(tui.pid) - cpu0;
    // Let the last chunk reach the screen and the capture, then end the session.
    std::thread::sleep(Duration::from_millis(500));
    let hwm = status_kib(tui.pid, "VmHWM").unwrap_or(0);
    tui.stop();
    let secs = took.as_secs_f64();
    let draws = tui.draws_between(w0, w1);
    let (rx, dropped) = tui.captured();
    let lost = total as u64 - (rx.len() as u64).min(total as u64);
    let mismatch = first_mismatch(block, &rx);
    let cpu = ticks as f64 / hz / secs * 100.0;
    println!(
        "  fed {} bytes in {secs:.1} s; captured {} (dropped and counted {dropped}); {draws} draws; CPU {cpu:.1}%; VmHWM {} KiB",
        total,
        rx.len(),
        hwm
    );
    if let Some(at) = mismatch {
        println!("  ! captured bytes differ from those written at offset {at}");
    }
    row(
        rows,
        "TUI 200×60 under a 1.2 MB/s feed (12 Mbaud): bytes lost / frames per second / CPU",
        format!(
            "{lost} of {total} lost{} ({dropped} dropped and counted) / {:.0} fps / {cpu:.0}% of a core",
            if mismatch.is_none() && rx.len() == total {
                ", capture equals what was written"
            } else {
                ", capture DIFFERS"
            },
            draws as f64 / secs,
        ),
        "cargo run --release --example perf_suite -- --only tui",
    );
}

fn section_idle(o: &Opts, hz: f64, rows: &mut Vec<Row>) {
    println!("TUI idle on a quiet port for {} s", o.idle_secs);
    let link = Link::new("idle");
    let tui = Tui::start(&link.a(), "idle-state");
    tui.tmux.wait_for("● connected", Duration::from_secs(10));
    // Startup work (knowledge base, first draws, the rate settling) is not idling.
    std::thread::sleep(Duration::from_secs(2));
    let cpu0 = cpu_ticks(tui.pid);
    let w0 = unix_ns();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(o.idle_secs));
    let ticks = cpu_ticks(tui.pid) - cpu0;
    let secs = t0.elapsed().as_secs_f64();
    let w1 = unix_ns();
    tui.stop();
    let draws = tui.draws_between(w0, w1);
    let pct = ticks as f64 / hz / secs * 100.0;
    // A tick is 1/hz s: the resolution of this measure.
    let bound = (ticks.max(1)) as f64 / hz / secs * 100.0;
    row(
        rows,
        &format!(
            "idle CPU, TUI open on a quiet port for {:.0} s",
            o.idle_secs
        ),
        format!(
            "{ticks} clock ticks = {pct:.3}% of a core (resolution {:.3}%); {draws} redraws",
            bound
        ),
        "cargo run --release --example perf_suite -- --only idle",
    );
}

/// Writes `total` bytes of the block, at most `ahead` bytes ahead of what `done()` says the
/// consumer has taken: as fast as the consumer goes, so every byte is ingested, none dropped.
fn feed_paced_by(
    dev: &mut impl Write,
    block: &[u8],
    total: usize,
    ahead: u64,
    mut done: impl FnMut() -> u64,
) -> Duration {
    let t0 = Instant::now();
    let mut sent = 0usize;
    let mut seen = 0u64;
    while sent < total {
        if sent as u64 > seen + ahead {
            seen = done();
            if sent as u64 > seen + ahead {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        }
        let pos = sent % block.len();
        let n = (block.len() - pos).min(total - sent).min(256 * 1024);
        dev.write_all(&block[pos..pos + n]).unwrap();
        sent += n;
    }
    t0.elapsed()
}

/// The status bar's received-bytes counter ("RX 512.3 MiB"), in bytes (to 0.1 of the unit).
fn screen_rx(screen: &str) -> Option<u64> {
    // The status bar's second line starts with it (the panes say "RX" too).
    let rest = screen.lines().find_map(|l| l.strip_prefix(" RX "))?;
    let mut it = rest.split_whitespace();
    let n: f64 = it.next()?.parse().ok()?;
    let unit = match it.next()? {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((n * unit) as u64)
}

/// hsmon --headless (recording, as by default) on its own link; its output counted.
struct HeadlessRun {
    _link: Link,
    _state: Scratch,
    child: Child,
    got: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    dev: std::fs::File,
}

impl HeadlessRun {
    fn start(tag: &str) -> HeadlessRun {
        let link = Link::new(tag);
        let state = Scratch::new(&format!("{tag}-state"));
        let mut child = Command::new(hsmon_bin())
            .env("XDG_STATE_HOME", &state.0)
            .args(["--headless", "--format", "json", "--config", "/dev/null"])
            .arg("--capture")
            .arg(state.path("s.hscap"))
            .arg("serial")
            .arg(link.a())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let got = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        count_output(
            Consumer::Hsmon { capture: true },
            child.stdout.take().unwrap(),
            got.clone(),
            dropped.clone(),
        );
        std::thread::sleep(Duration::from_millis(500));
        let dev = link.device();
        HeadlessRun {
            _link: link,
            _state: state,
            child,
            got,
            dropped,
            dev,
        }
    }

    fn finish(mut self, total: usize) -> (u64, u64, u64) {
        wait_until(Duration::from_secs(600), || {
            self.got.load(Ordering::Relaxed) >= total as u64
        });
        let pid = self.child.id();
        let hwm = status_kib(pid, "VmHWM").unwrap_or(0);
        let rss = status_kib(pid, "VmRSS").unwrap_or(0);
        let _ = self.child.kill();
        let _ = self.child.wait();
        (hwm, rss, self.dropped.load(Ordering::Relaxed))
    }
}

fn section_rss(o: &Opts, block: &[u8], rows: &mut Vec<Row>) {
    let total = o.traffic_mib << 20;
    // The feed stays at most 1 MiB ahead of what hsmon has taken, as a device at line rate
    // is: what is measured is the session's memory, not a backlog in the source's buffers.
    println!(
        "peak RSS after {} MiB of traffic, every byte ingested (the feed waits for hsmon)",
        o.traffic_mib
    );
    let (h_hwm, h_rss, h_dropped) = {
        let mut run = HeadlessRun::start("rss-h");
        let got = run.got.clone();
        let took = feed_paced_by(&mut run.dev, block, total, 1 << 20, || {
            got.load(Ordering::Relaxed)
        });
        let r = run.finish(total);
        println!(
            "  headless: {} MiB in {:.0} s ({:.1} MB/s), {} bytes dropped and counted, VmHWM {} MiB, VmRSS at the end {} MiB",
            o.traffic_mib,
            took.as_secs_f64(),
            mb(total as u64) / took.as_secs_f64(),
            r.2,
            r.0 / 1024,
            r.1 / 1024
        );
        r
    };
    let (t_hwm, t_dropped, t_rx) = {
        let link = Link::new("rss-t");
        let tui = Tui::start(&link.a(), "rss-t-state");
        tui.tmux.wait_for("● connected", Duration::from_secs(10));
        let mut dev = link.device();
        let took = feed_paced_by(&mut dev, block, total, 1 << 20, || {
            screen_rx(&tui.tmux.screen()).unwrap_or(0)
        });
        wait_until(Duration::from_secs(120), || {
            screen_rx(&tui.tmux.screen()).unwrap_or(0) as f64 >= total as f64 * 0.999
        });
        let hwm = status_kib(tui.pid, "VmHWM").unwrap_or(0);
        let rss = status_kib(tui.pid, "VmRSS").unwrap_or(0);
        tui.stop();
        let (rx, dropped) = tui.captured();
        println!(
            "  TUI: {} MiB in {:.0} s ({:.1} MB/s), captured {} bytes + {dropped} dropped and counted, VmHWM {} MiB, VmRSS {} MiB",
            o.traffic_mib,
            took.as_secs_f64(),
            mb(total as u64) / took.as_secs_f64(),
            rx.len(),
            hwm / 1024,
            rss / 1024
        );
        (hwm, dropped, rx.len())
    };
    // Overload: fed as fast as the pty goes (~200 MB/s), far past what hsmon decodes; the
    // source's bounded buffers fill and the rest is dropped and counted.
    let over = 256usize << 20;
    let (o_hwm, _, o_dropped) = {
        let mut run = HeadlessRun::start("rss-o");
        feed(&mut run.dev, block, over, None);
        let r = run.finish(over);
        println!(
            "  headless overloaded: 256 MiB as fast as the pty goes, {} bytes dropped and counted, VmHWM {} MiB",
            r.2,
            r.0 / 1024
        );
        r
    };
    row(
        rows,
        &format!(
            "peak RSS (VmHWM) after {} MiB of traffic, every byte ingested: headless / TUI",
            o.traffic_mib
        ),
        format!(
            "{:.0} MiB / {:.0} MiB ({h_dropped} + {t_dropped} bytes dropped; TUI capture {t_rx} of {total} bytes); overloaded (256 MiB at pty speed, {o_dropped} bytes dropped and counted): {:.0} MiB; headless at the end {:.0} MiB",
            h_hwm as f64 / 1024.0,
            t_hwm as f64 / 1024.0,
            o_hwm as f64 / 1024.0,
            h_rss as f64 / 1024.0,
        ),
        &format!(
            "cargo run --release --example perf_suite -- --only rss --traffic-mib {}",
            o.traffic_mib
        ),
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn section_first(o: &Opts, rows: &mut Vec<Row>) {
    println!("time to first frame, {} launches each", o.launches);
    let mut tui_ms = Vec::new();
    for _ in 0..o.launches {
        let link = Link::new("first-t");
        let tui = Tui::start(&link.a(), "first-t-state");
        tui.tmux.wait_for("● connected", Duration::from_secs(10));
        tui.stop();
        let (first, _) = tui.draws();
        tui_ms.push(first.saturating_sub(tui.launched_ns) as f64 / 1e6);
    }
    let mut headless_ms = Vec::new();
    for _ in 0..o.launches {
        let link = Link::new("first-h");
        let state = Scratch::new("first-h-state");
        // The device is already talking: 16 bytes a millisecond.
        let stop = Arc::new(AtomicBool::new(false));
        let mut dev = link.device();
        let s2 = stop.clone();
        let talker = std::thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                let _ = dev.write_all(b"68 04 04 68 ok\r\n");
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        std::thread::sleep(Duration::from_millis(50));
        let t0 = Instant::now();
        let mut child = Command::new(hsmon_bin())
            .env("XDG_STATE_HOME", &state.0)
            .args([
                "--headless",
                "--format",
                "json",
                "--config",
                "/dev/null",
                "serial",
            ])
            .arg(link.a())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut ms = f64::NAN;
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if line.starts_with(r#"{"type":"rx""#) {
                ms = t0.elapsed().as_secs_f64() * 1000.0;
                break;
            }
        }
        headless_ms.push(ms);
        stop.store(true, Ordering::Relaxed);
        let _ = child.kill();
        let _ = child.wait();
        let _ = talker.join();
    }
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("  TUI exec → first draw (ms): {}", fmt(&tui_ms));
    println!(
        "  headless spawn → first rx record (ms): {}",
        fmt(&headless_ms)
    );
    row(
        rows,
        "time to first frame from launch: TUI (exec → first draw) / headless (spawn → first rx record)",
        format!(
            "median {:.0} ms (max {:.0}) / median {:.0} ms (max {:.0}) over {} launches",
            median(tui_ms.clone()),
            tui_ms.iter().cloned().fold(f64::NAN, f64::max),
            median(headless_ms.clone()),
            headless_ms.iter().cloned().fold(f64::NAN, f64::max),
            o.launches
        ),
        "cargo run --release --example perf_suite -- --only first",
    );
}

fn main() {
    let o = Opts::parse();
    for tool in ["socat", "tio", "tmux"] {
        require(tool);
    }
    let hz = clk_tck();
    let block = traffic_block();
    println!(
        "hsmon perf suite: {} ({} cores, load {})",
        hsmon_bin().display(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut rows = Vec::new();
    if o.wants("throughput") {
        section_throughput(&o, &block, hz, &mut rows);
    }
    if o.wants("tui") {
        section_tui_feed(&o, &block, hz, &mut rows);
    }
    if o.wants("idle") {
        section_idle(&o, hz, &mut rows);
    }
    if o.wants("rss") {
        section_rss(&o, &block, &mut rows);
    }
    if o.wants("first") {
        section_first(&o, &mut rows);
    }
    println!("\n| what | number | how to reproduce |\n|---|---|---|");
    for r in &rows {
        println!("| {} | {} | `{}` |", r.what, r.number, r.how);
    }
}
