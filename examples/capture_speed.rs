//! Capture numbers (issue 7): writer throughput, CPU while recording 1.2 MB/s (12 Mbaud) in real
//! time, and the time to open and index a large capture.
//!
//! `cargo run --release --example capture_speed [INDEX_MB]` (default 1024: a 1 GB capture is
//! written to the temp dir, indexed and deleted).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::time::{Duration, Instant, UNIX_EPOCH};

use hsmon::capture::{CaptureMeta, CaptureReader, CaptureWriter};
use hsmon::event::{Direction, Event, TimedEvent};

fn meta() -> CaptureMeta {
    CaptureMeta::new("speed", None, UNIX_EPOCH)
}

fn payload(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// CPU time this thread has used (Linux: /proc/thread-self/schedstat, nanoseconds).
fn cpu_time() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = s
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

/// Appends `total` payload bytes in `chunk`-byte Rx events; returns MB/s of payload.
fn throughput<W: Write>(w: &mut CaptureWriter<W>, chunk: usize, total: usize) -> f64 {
    let data = payload(chunk, chunk as u64);
    let n = total / chunk;
    let t = Instant::now();
    for i in 0..n {
        let at = Duration::from_micros(i as u64);
        w.append(&TimedEvent::new(at, Event::Rx(data.clone())));
        w.poll_flush(at);
    }
    w.flush();
    (n * chunk) as f64 / t.elapsed().as_secs_f64() / 1e6
}

fn main() {
    let index_mb: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1024);
    let dir = tempfile::tempdir().unwrap();

    println!("writer throughput (payload MB/s; the event's Vec clone is included):");
    for chunk in [16usize, 64, 256, 4096] {
        let mut sink = CaptureWriter::new(std::io::sink(), "sink", &meta());
        let to_sink = throughput(&mut sink, chunk, 256 << 20);
        let path = dir.path().join("t.hscap");
        let mut file = CaptureWriter::create(&path, &meta()).unwrap();
        let to_file = throughput(&mut file, chunk, 256 << 20);
        assert!(file.failed().is_none());
        drop(file);
        std::fs::remove_file(&path).unwrap();
        println!(
            "  {chunk:5}-byte chunks: {to_sink:8.0} MB/s to memory, {to_file:8.0} MB/s to a file"
        );
    }

    // 12 Mbaud 8N1 = 1.2 MB/s. A USB adapter delivers it in reads of a few hundred bytes; take
    // 256-byte chunks every ~213 µs, paced in 10 ms batches, for 5 s of real time.
    let path = dir.path().join("rt.hscap");
    let mut w = CaptureWriter::create(&path, &meta()).unwrap();
    let chunk = payload(256, 7);
    let per_batch = 1_200_000 / 100 / 256; // chunks per 10 ms
    let start = Instant::now();
    let cpu0 = cpu_time();
    let mut sent = 0usize;
    for batch in 0..500u32 {
        let due = Duration::from_millis(10) * batch;
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        for _ in 0..per_batch {
            w.append(&TimedEvent::new(start.elapsed(), Event::Rx(chunk.clone())));
            sent += chunk.len();
        }
        w.poll_flush(start.elapsed());
    }
    w.flush();
    let cpu = cpu_time() - cpu0;
    let wall = start.elapsed();
    println!(
        "recording {:.2} MB/s in real time for {:.1} s: {:.2}% of one core ({:.1} ms CPU)",
        sent as f64 / wall.as_secs_f64() / 1e6,
        wall.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        cpu.as_secs_f64() * 1e3
    );
    drop(w);
    std::fs::remove_file(&path).unwrap();

    // Opening a large capture: header + full index pass (the OS cache is warm, as it is right
    // after recording; a cold disk adds its read time).
    let path = dir.path().join("big.hscap");
    let mut w = CaptureWriter::create(&path, &meta()).unwrap();
    let chunks = [payload(64, 1), payload(512, 2), payload(4096, 3)];
    let mut i = 0u64;
    while w.bytes_written() < index_mb << 20 {
        let at = Duration::from_micros(i * 50);
        let c = chunks[(i % 3) as usize].clone();
        w.append(&TimedEvent::new(
            at,
            if i % 4 == 0 {
                Event::Tx(c)
            } else {
                Event::Rx(c)
            },
        ));
        w.poll_flush(at);
        i += 1;
    }
    w.flush();
    let size = w.bytes_written();
    assert!(w.failed().is_none(), "{:?}", w.failure());
    drop(w);
    let t = Instant::now();
    let mut r = CaptureReader::open(&path).unwrap();
    let idx = r.index().unwrap();
    let took = t.elapsed();
    println!(
        "open + index a {:.0} MB capture ({} events): {:.2} s ({:.0} MB/s), {} checkpoints ({:.1} KB)",
        size as f64 / 1e6,
        idx.events,
        took.as_secs_f64(),
        size as f64 / took.as_secs_f64() / 1e6,
        idx.checkpoints().len(),
        std::mem::size_of_val(idx.checkpoints()) as f64 / 1e3
    );
    let t = Instant::now();
    let mut n = 0;
    for k in 0..1000u64 {
        let off = (k * 7_919_993) % idx.rx_bytes.max(1);
        if r.seek_stream(&idx, Direction::Rx, off).unwrap().is_some() {
            n += 1;
        }
    }
    println!(
        "seek to a random rx stream offset: {:.0} µs each ({n} of 1000 found)",
        t.elapsed().as_secs_f64() * 1e6 / 1000.0
    );
    std::fs::remove_file(&path).unwrap();
}
