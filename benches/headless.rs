//! Headless printing throughput: the perf suite's traffic (M-Bus long frames, text lines and
//! random garbage; `examples/perf_suite.rs`) through a `Session` and the headless record
//! writer, as `hsmon --headless serial PORT` runs it but without a pty, in 4 KiB reads.
//! Reports MB/s of device bytes for JSON and text output. `cargo bench --bench headless`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hsmon::cli::OutputFormat;
use hsmon::event::{ConnectionState, Event, TimedEvent};
use hsmon::headless::{write_findings, write_record};
use hsmon::session::{DEFAULT_WINDOW_BYTES, Session};

/// The perf suite's `traffic_block()`, `len` bytes of it: an M-Bus long frame, a boot-log
/// line and 48 bytes of xorshift garbage, repeated.
fn traffic(len: usize) -> Vec<u8> {
    const MBUS: [u8; 27] = [
        0x68, 0x15, 0x15, 0x68, 0x08, 0x02, 0x72, 0x78, 0x56, 0x34, 0x12, 0x24, 0x40, 0x01, 0x07,
        0x13, 0x00, 0x00, 0x00, 0x0C, 0x78, 0x04, 0x03, 0x02, 0x01, 0x9D, 0x16,
    ];
    let mut out = Vec::with_capacity(len + 128);
    let mut x: u32 = 0x2545_f491;
    let mut n = 0u32;
    while out.len() < len {
        out.extend_from_slice(&MBUS);
        out.extend_from_slice(format!("boot: step {n:05} ok, temp 21.{}C\r\n", n % 10).as_bytes());
        for _ in 0..48 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            out.push(x as u8);
        }
        n += 1;
    }
    out.truncate(len);
    out
}

/// One headless run over `data`: every read printed, then the end-of-run findings.
/// Returns the bytes printed (so the work cannot be optimised away).
fn run(data: &[u8], format: OutputFormat) -> usize {
    let mut session = Session::new("/dev/ttyUSB0", DEFAULT_WINDOW_BYTES);
    let mut out: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut printed = 0usize;
    let up = TimedEvent {
        at: Duration::ZERO,
        event: Event::Connection(ConnectionState::Up),
    };
    write_record(&mut out, &mut session, &up, format).unwrap();
    for (i, chunk) in data.chunks(4096).enumerate() {
        let ev = TimedEvent {
            at: Duration::from_micros(i as u64 * 250),
            event: Event::Rx(chunk.to_vec()),
        };
        write_record(&mut out, &mut session, &ev, format).unwrap();
        // The headless loop flushes a `BufWriter` after each burst: the buffer is reused.
        if out.len() > 256 * 1024 {
            printed += out.len();
            out.clear();
        }
    }
    session.flush_decoders();
    write_findings(&mut out, &mut session, format).unwrap();
    printed + out.len()
}

fn bench(c: &mut Criterion) {
    let data = traffic(4 << 20);
    let mut g = c.benchmark_group("headless");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("json, 4 MiB perf-suite traffic in 4 KiB reads", |b| {
        b.iter(|| run(&data, OutputFormat::Json))
    });
    g.bench_function("text, 4 MiB perf-suite traffic in 4 KiB reads", |b| {
        b.iter(|| run(&data, OutputFormat::Text))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
