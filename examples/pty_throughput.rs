//! Headless throughput over a real pty, measured: a socat pty pair, `hsmon --headless
//! --format json` reading one end (release build), this program writing N MiB into the
//! other as fast as the pty takes it. Prints MB/s and hsmon's CPU use (user+system time
//! from /proc, as a percentage of one core over the run).
//!
//! cargo build --release && cargo run --release --example pty_throughput -- [MiB]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) — utime is 14th, stime 15th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(64);
    let dir = std::env::temp_dir().join(format!("hsmon-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let (a, b) = (dir.join("a"), dir.join("b"));
    let mut socat = Command::new("socat")
        .arg(format!("pty,rawer,link={}", a.display()))
        .arg(format!("pty,rawer,link={}", b.display()))
        .spawn()
        .unwrap_or_else(|e| panic!("socat is needed (apt-get install socat): {e}"));
    while !(a.exists() && b.exists()) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let hsmon = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("hsmon"))
        .unwrap_or_else(|| panic!("no target dir"));
    let mut child = Command::new(&hsmon)
        .args([
            "--headless",
            "--format",
            "json",
            "--config",
            "/dev/null",
            "serial",
        ])
        .arg(&a)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "run `cargo build --release` first ({}): {e}",
                hsmon.display()
            )
        });
    let pid = child.id();
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("stdout"));
    let total = mib << 20;
    let reader = std::thread::spawn(move || {
        let mut got = 0usize;
        let mut started = None;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("\"type\":\"rx\"") {
                started.get_or_insert_with(Instant::now);
                // "hex":"68 04 ..." — 3 characters a byte, minus one.
                if let Some(h) = line.split("\"hex\":\"").nth(1) {
                    got += (h.trim_end_matches("\"}").len() + 1) / 3;
                }
                if got >= total {
                    break;
                }
            }
        }
        got
    });
    std::thread::sleep(Duration::from_millis(300));
    let cpu0 = cpu_ticks(pid);
    let t0 = Instant::now();
    let mut dev = std::fs::OpenOptions::new()
        .write(true)
        .open(&b)
        .unwrap_or_else(|e| panic!("{e}"));
    let chunk: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 256) as u8).collect();
    let mut sent = 0;
    while sent < total {
        let n = chunk.len().min(total - sent);
        dev.write_all(&chunk[..n]).unwrap_or_else(|e| panic!("{e}"));
        sent += n;
    }
    let got = reader.join().unwrap_or(0);
    let secs = t0.elapsed().as_secs_f64();
    let ticks = cpu_ticks(pid) - cpu0;
    let hz = 100.0; // USER_HZ on Linux
    let cpu = ticks as f64 / hz / secs * 100.0;
    println!(
        "pty throughput: {} MiB in {secs:.2} s = {:.1} MB/s; hsmon CPU {cpu:.0}% of one core ({:.1} ms CPU per MB); received {} of {} bytes",
        mib,
        total as f64 / secs / 1e6,
        ticks as f64 / hz * 1000.0 / (total as f64 / 1e6),
        got,
        total
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = socat.kill();
    let _ = socat.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
