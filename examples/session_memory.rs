//! How much memory a session holds after a long run, without a pty or a terminal in the way:
//! pushes N MiB (default 1024) of the perf suite's traffic (M-Bus long frames, log lines and
//! random bytes, in 4 KiB reads stamped as a 8 MB/s line would) through a `Session` with the
//! default 64 MiB window and prints, every 128 MiB, the frames kept, their estimated heap, the
//! byte window and the process's VmRSS / VmHWM. The session's share of README's peak-RSS row;
//! `perf_suite --only rss` measures the whole process.
//!
//! ```text
//! cargo run --release --example session_memory            # 1 GiB, ~2 min
//! cargo run --release --example session_memory -- 256 described   # and describe every frame
//! ```
//! `described` asks every kept frame for its summary, as headless output and the frames pane
//! do, so the frames' budget fills with their heaviest form.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement: a failed unwrap is a failed run

use std::time::Duration;

#[path = "common/traffic.rs"]
mod traffic;
use traffic::traffic_block;

use hsmon::event::{Event, TimedEvent};
use hsmon::session::{DEFAULT_WINDOW_BYTES, Session, frame_heap_bytes};

fn status(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .strip_suffix(" kB")?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let total_mib: u64 = args
        .next()
        .map(|a| a.parse().expect("N MiB"))
        .unwrap_or(1024);
    let described = args.next().as_deref() == Some("described");
    let block = traffic_block();
    let mut session = Session::new("session_memory", DEFAULT_WINDOW_BYTES);
    println!(
        "start: VmRSS {} KiB; {total_mib} MiB to push{}",
        status("VmRSS:"),
        if described {
            ", every frame described"
        } else {
            ""
        }
    );
    let mut reads = 0u64;
    for mib in 0..total_mib {
        for chunk in block.chunks(4096) {
            // 4 KiB every 0.5 ms: 8 MB/s, so time-windowed state (rate meters) is as live.
            session.ingest(&TimedEvent::new(
                Duration::from_micros(reads * 500),
                Event::Rx(chunk.to_vec()),
            ));
            reads += 1;
        }
        if described {
            for f in session.frames() {
                let _ = f.frame.summary();
            }
        }
        if mib % 128 == 127 || mib + 1 == total_mib {
            let held: usize = session
                .frames()
                .iter()
                .map(|f| frame_heap_bytes(&f.frame))
                .sum();
            println!(
                "{:>5} MiB: {} frames kept ({} KiB by estimate), byte window {} KiB, VmRSS {} KiB, VmHWM {} KiB",
                mib + 1,
                session.frames().len(),
                held / 1024,
                session.window_bytes() / 1024,
                status("VmRSS:"),
                status("VmHWM:"),
            );
        }
    }
}
