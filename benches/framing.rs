//! Framing throughput: every framer a session runs (`decode::framers()`), over a 4 MiB mixed
//! stream (M-Bus, IEC 104, DL/T 645 frames, boot-log text and random garbage; see
//! `support/mixed_stream.rs`) in 4 KiB reads. Target: ≥ 200 MB/s on one core.
//! `cargo bench --bench framing`; per framer: `cargo run --release --example framer_speed`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hsmon::decode::{Frame, framers};

#[path = "support/mixed_stream.rs"]
mod mixed_stream;
use mixed_stream::mixed_stream;

fn bench(c: &mut Criterion) {
    let data = mixed_stream(4 << 20);
    let mut g = c.benchmark_group("framing");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    g.bench_function("all framers, 4 MiB mixed stream in 4 KiB reads", |b| {
        b.iter(|| {
            let mut fs = framers();
            let mut out: Vec<Frame> = Vec::new();
            for (i, chunk) in data.chunks(4096).enumerate() {
                for f in fs.iter_mut() {
                    f.feed((i * 4096) as u64, chunk, &mut out);
                }
                out.clear();
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
