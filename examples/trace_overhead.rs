//! `hsmon trace` overhead: a real program (coreutils `dd`) writes 10 MiB to a pty at full
//! speed, alone and under `hsmon --headless --format json trace`; prints the wall-time ratio
//! and the bytes missing from hsmon's records and from its capture (exported to jsonl).
//! A second pair does unrelated I/O (dd to /dev/null): the seccomp filter cannot tell
//! descriptors apart, so each read and write still stops once at its entry (no exit stop,
//! no copy); that pair shows what such a program pays.
//!
//! `cargo build --release && cargo run --release --example trace_overhead [MiB]`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement harness

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn hsmon_bin() -> String {
    std::env::var("HSMON_BIN").unwrap_or_else(|_| {
        let here = std::env::current_exe().unwrap();
        // target/release/examples/trace_overhead -> target/release/hsmon
        here.parent()
            .and_then(Path::parent)
            .unwrap()
            .join("hsmon")
            .display()
            .to_string()
    })
}

/// A socat pty pair with a reader draining the far end; returns (socat, near path).
fn pty_pair(dir: &Path) -> (std::process::Child, String, std::thread::JoinHandle<u64>) {
    let a = dir.join("a");
    let b = dir.join("b");
    let socat = Command::new("socat")
        .arg(format!("pty,rawer,link={}", a.display()))
        .arg(format!("pty,rawer,link={}", b.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("socat (apt-get install socat)");
    let end = Instant::now() + Duration::from_secs(5);
    while !(a.exists() && b.exists()) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut far = std::fs::File::open(&b).unwrap();
    let drain = std::thread::spawn(move || {
        let mut n = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(k) = far.read(&mut buf) {
            if k == 0 {
                break;
            }
            n += k as u64;
        }
        n
    });
    (socat, a.display().to_string(), drain)
}

fn dd(target: &str, mib: u64) -> Vec<String> {
    vec![
        "dd".into(),
        "if=/dev/zero".into(),
        format!("of={target}"),
        "bs=4096".into(),
        format!("count={}", mib * 256),
        "status=none".into(),
    ]
}

/// Runs `argv` alone; wall time.
fn plain(argv: &[String]) -> Duration {
    let t = Instant::now();
    let s = Command::new(&argv[0]).args(&argv[1..]).status().unwrap();
    assert!(s.success());
    t.elapsed()
}

/// Runs `argv` under hsmon trace with a capture, its records into a file (read after the
/// clock stops, so this harness takes no CPU from the run); wall time and the tx bytes in
/// the records.
fn traced(argv: &[String], capture: &Path) -> (Duration, u64) {
    let records = capture.with_extension("jsonl");
    let out = std::fs::File::create(&records).unwrap();
    let t = Instant::now();
    let status = Command::new(hsmon_bin())
        .args([
            "--headless",
            "--format",
            "json",
            "--config",
            "/dev/null",
            "--capture",
        ])
        .arg(capture)
        .arg("trace")
        .arg("--")
        .args(argv)
        .stdout(out)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let took = t.elapsed();
    assert!(status.success());
    let mut tx = 0u64;
    for line in BufReader::new(std::fs::File::open(&records).unwrap()).lines() {
        let line = line.unwrap();
        if line.starts_with(r#"{"type":"tx""#) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            tx += v["hex"].as_str().unwrap().split_whitespace().count() as u64;
        }
    }
    (took, tx)
}

/// The tx bytes in a capture, through `hsmon export --to jsonl`.
fn captured_tx(capture: &Path) -> u64 {
    let out = Command::new(hsmon_bin())
        .args(["export", "--to", "jsonl"])
        .arg(capture)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(r#"{"type":"tx""#))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["hex"].as_str().unwrap().split_whitespace().count() as u64
        })
        .sum()
}

fn main() {
    let mib: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let want = mib * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();

    let (mut socat, a, drain) = pty_pair(dir.path());
    let alone = plain(&dd(&a, mib));
    let capture = dir.path().join("trace.hscap");
    let (under, tx) = traced(&dd(&a, mib), &capture);
    let cap = captured_tx(&capture);
    std::thread::sleep(Duration::from_millis(300));
    let _ = socat.kill();
    let _ = socat.wait();
    let drained = drain.join().unwrap();

    let (startup, _) = traced(&["true".to_string()], &dir.path().join("true.hscap"));
    let null_alone = plain(&dd("/dev/null", mib));
    let (null_under, _) = traced(&dd("/dev/null", mib), &dir.path().join("null.hscap"));

    println!(
        "{mib} MiB by dd bs=4096 to a pty (socat pair), hsmon {}",
        hsmon_bin()
    );
    println!(
        "  alone {:.3} s, traced {:.3} s: ratio {:.2}",
        alone.as_secs_f64(),
        under.as_secs_f64(),
        under.as_secs_f64() / alone.as_secs_f64()
    );
    println!(
        "  missing: {} bytes from the records, {} from the capture (the far end read {} of {})",
        want as i64 - tx as i64,
        want as i64 - cap as i64,
        drained,
        2 * want
    );
    println!(
        "{mib} MiB by dd to /dev/null (not a stream): alone {:.3} s, traced {:.3} s (of which \
         {:.3} s is hsmon's start and end: `hsmon trace -- true`)",
        null_alone.as_secs_f64(),
        null_under.as_secs_f64(),
        startup.as_secs_f64()
    );
}
