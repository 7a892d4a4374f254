//! Framing throughput: every framer a session runs, over a mixed stream (M-Bus, IEC 104,
//! DL/T 645 frames, boot-log text and random garbage). Target: ≥ 200 MB/s on one core.
//! `cargo bench --bench framing`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hsmon::decode::{Frame, framers};

fn mixed_stream(len: usize) -> Vec<u8> {
    let pieces: [&[u8]; 5] = [
        &[
            0x68, 0x15, 0x15, 0x68, 0x08, 0x02, 0x72, 0x78, 0x56, 0x34, 0x12, 0x24, 0x40, 0x01,
            0x07, 0x13, 0x00, 0x00, 0x00, 0x0C, 0x78, 0x04, 0x03, 0x02, 0x01, 0x9D, 0x16,
        ],
        &[0x68, 0x04, 0x0B, 0x00, 0x00, 0x00],
        &[
            0x68, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x68, 0x91, 0x08, 0x33, 0x33, 0x34, 0x33,
            0x89, 0x67, 0x45, 0x33, 0x9F, 0x16,
        ],
        b"boot: hello, this is the boot log of a device\r\n",
        &[],
    ];
    let mut out = Vec::with_capacity(len + 64);
    let mut x: u32 = 0x1234_5678;
    let mut i = 0;
    while out.len() < len {
        let p = pieces[i % pieces.len()];
        if p.is_empty() {
            // 64 bytes of garbage.
            for _ in 0..64 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                out.push(x as u8);
            }
        } else {
            out.extend_from_slice(p);
        }
        i += 1;
    }
    out
}

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
