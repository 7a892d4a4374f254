//! Render time of a full frame (200×60 and 400×100) with a busy session: every row full of
//! hex, 0x68 highlights and both directions. `cargo bench --bench render`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use hsmon::event::{ConnectionState, Event, TimedEvent};
use hsmon::session::{DEFAULT_WINDOW_BYTES, Session};
use hsmon::ui::keys::Keymap;
use hsmon::ui::sendline::LineEnding;
use hsmon::ui::state::UiState;
use hsmon::ui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn busy_session() -> Session {
    let mut s = Session::new("/dev/ttyUSB0", DEFAULT_WINDOW_BYTES);
    s.ingest(&TimedEvent::new(
        Duration::ZERO,
        Event::Connection(ConnectionState::Up),
    ));
    // 8 MiB of mixed traffic: frames with 0x68, text, and TX requests in between.
    let frame: Vec<u8> = (0..4096u32).map(|i| (i * 37 % 256) as u8).collect();
    for i in 0..2048u64 {
        let at = Duration::from_millis(i);
        s.ingest(&TimedEvent::new(at, Event::Rx(frame.clone())));
        if i % 16 == 0 {
            s.ingest(&TimedEvent::new(
                at,
                Event::Tx(vec![0x10, 0x5B, 0x01, 0x5C, 0x16]),
            ));
        }
    }
    s
}

fn bench_render(c: &mut Criterion) {
    let s = busy_session();
    for (w, h) in [(200u16, 60u16), (400, 100)] {
        let ui = UiState::new(Keymap::default(), Theme::COLOR, LineEnding::Cr, (w, h));
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap_or_else(|e| panic!("{e}"));
        c.bench_function(&format!("render full frame {w}x{h}"), |b| {
            b.iter(|| {
                t.draw(|f| hsmon::ui::render(f, &s, &ui))
                    .unwrap_or_else(|e| panic!("{e}"));
            })
        });
    }
}

/// The inputs no line should make slower than ten times the fastest USB-UART rate (12 Mbaud,
/// 1.2 MB/s): nothing but 0x68 (every offset a plausible start for five framers), random
/// bytes, and dense back-to-back checksummed frames (M-Bus, IEC 104, DL/T 645 with no gap).
fn worst_inputs() -> Vec<(&'static str, Vec<u8>)> {
    let all_68 = vec![0x68u8; 1 << 20];
    let mut x: u32 = 0x2545_f491;
    let random: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    // EN 13757-2 RSP_UD, an IEC 104 U-frame and a DL/T 645 reply, back to back.
    let frames: &[&[u8]] = &[
        &[
            0x68, 0x15, 0x15, 0x68, 0x08, 0x02, 0x72, 0x78, 0x56, 0x34, 0x12, 0x24, 0x40, 0x01,
            0x07, 0x13, 0x00, 0x00, 0x00, 0x0C, 0x78, 0x04, 0x03, 0x02, 0x01, 0x9D, 0x16,
        ],
        &[0x68, 0x04, 0x0B, 0x00, 0x00, 0x00],
        &[
            0x68, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x68, 0x91, 0x08, 0x33, 0x33, 0x34, 0x33,
            0x89, 0x67, 0x45, 0x33, 0x9F, 0x16,
        ],
    ];
    let mut dense = Vec::with_capacity(1 << 20);
    while dense.len() < 1 << 20 {
        for f in frames {
            dense.extend_from_slice(f);
        }
    }
    dense.truncate(1 << 20);
    vec![
        ("nothing but 0x68", all_68),
        ("random bytes", random),
        ("dense back-to-back frames", dense),
    ]
}

fn bench_ingest(c: &mut Criterion) {
    let mut group = c.benchmark_group("session");
    group.throughput(criterion::Throughput::Bytes(1 << 20));
    group.sample_size(10);
    for (name, data) in worst_inputs() {
        group.bench_function(format!("ingest 1 MiB of {name} in 4 KiB reads"), |b| {
            b.iter(|| {
                let mut s = Session::new("bench", DEFAULT_WINDOW_BYTES);
                for (i, chunk) in data.chunks(4096).enumerate() {
                    s.ingest(&TimedEvent::new(
                        Duration::from_micros(i as u64),
                        Event::Rx(chunk.to_vec()),
                    ));
                }
                s.flush_decoders();
                s
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_render, bench_ingest);
criterion_main!(benches);
