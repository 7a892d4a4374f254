//! Headless printing throughput: the perf suite's traffic (M-Bus long frames, text lines and
//! random garbage; `examples/perf_suite.rs`) through a `Session` and the headless record
//! writer, as `hsmon --headless serial PORT` runs it but without a pty, in 4 KiB reads.
//! Reports MB/s of device bytes for JSON and text output. `cargo bench --bench headless`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code

use std::time::Duration;

#[path = "../examples/common/traffic.rs"]
mod traffic;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hsmon::cli::OutputFormat;
use hsmon::event::{ConnectionState, Event, TimedEvent};
use hsmon::record::stream::{write_findings, write_record};
use hsmon::session::{DEFAULT_WINDOW_BYTES, Session};

/// One headless run over `data`: every read printed, then the end-of-run findings.
/// Returns the bytes printed (so the work cannot be optimised away).
fn run(data: &[u8], format: OutputFormat) -> usize {
    let mut session = Session::new("/dev/ttyUSB0", DEFAULT_WINDOW_BYTES);
    let mut out: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut printed = 0usize;
    let up = TimedEvent::new(Duration::ZERO, Event::Connection(ConnectionState::Up));
    write_record(&mut out, &mut session, &up, format).unwrap();
    for (i, chunk) in data.chunks(4096).enumerate() {
        let ev = TimedEvent::new(
            Duration::from_micros(i as u64 * 250),
            Event::Rx(chunk.to_vec()),
        );
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
    // 4 MiB: the perf suite's 1 MiB block four times, as the perf suite feeds it.
    let data = traffic::traffic_block().repeat(4);
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
