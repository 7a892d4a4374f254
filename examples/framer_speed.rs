//! Per-framer and combined throughput on the framing benchmark's mixed stream (a quick look
//! without criterion's statistics; the reference number is `cargo bench --bench framing`).
//! `cargo run --release --example framer_speed [ROUNDS] [PROTOCOL_ID|combined]` (with an id,
//! only that framer runs, with `combined` only the whole set: handy under `perf record`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // example code

#[path = "../benches/support/mixed_stream.rs"]
mod mixed_stream;

use std::time::Instant;

use hsmon::decode::{Frame, Framer, framers};

const READ: usize = 4096;

/// Best of `rounds` passes of `run` over `data`, in MB/s (10^6 bytes per second).
fn best_mb_per_s(data: &[u8], rounds: usize, mut run: impl FnMut(&[u8]) -> usize) -> (f64, usize) {
    let mut best = f64::INFINITY;
    let mut frames = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        frames = run(data);
        best = best.min(t.elapsed().as_secs_f64());
    }
    (data.len() as f64 / best / 1e6, frames)
}

/// Feed `data` in 4 KiB reads through `fs`, as a session does; returns the frame count.
fn feed_all(fs: &mut [Box<dyn Framer>], data: &[u8]) -> usize {
    let mut out: Vec<Frame> = Vec::new();
    let mut frames = 0;
    for (i, chunk) in data.chunks(READ).enumerate() {
        for f in fs.iter_mut() {
            f.feed((i * READ) as u64, chunk, &mut out);
        }
        frames += out.len();
        out.clear();
    }
    for f in fs.iter_mut() {
        f.flush(&mut out);
    }
    frames + out.len()
}

fn main() {
    let rounds = std::env::args()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let only = std::env::args().nth(2);
    let data = mixed_stream::mixed_stream(4 << 20);
    let mut harmonic = 0.0;
    for index in 0..framers().len() {
        let protocol = framers()[index].protocol();
        if only.as_deref().is_some_and(|id| id != protocol.id()) {
            continue;
        }
        let (speed, frames) = best_mb_per_s(&data, rounds, |d| {
            let mut one = framers();
            let mut one = vec![one.swap_remove(index)];
            feed_all(&mut one, d)
        });
        harmonic += 1.0 / speed;
        println!(
            "{:<12} {speed:>9.1} MB/s  {frames:>7} frames",
            protocol.id()
        );
    }
    if only.as_deref().is_some_and(|id| id != "combined") {
        return;
    }
    println!(
        "{:<12} {:>9.1} MB/s  (from the parts)",
        "sum",
        1.0 / harmonic
    );
    let (speed, frames) = best_mb_per_s(&data, rounds, |d| feed_all(&mut framers(), d));
    println!("{:<12} {speed:>9.1} MB/s  {frames:>7} frames", "combined");
}
