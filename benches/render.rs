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
    s.ingest(&TimedEvent {
        at: Duration::ZERO,
        event: Event::Connection(ConnectionState::Up),
    });
    // 8 MiB of mixed traffic: frames with 0x68, text, and TX requests in between.
    let frame: Vec<u8> = (0..4096u32).map(|i| (i * 37 % 256) as u8).collect();
    for i in 0..2048u64 {
        let at = Duration::from_millis(i);
        s.ingest(&TimedEvent {
            at,
            event: Event::Rx(frame.clone()),
        });
        if i % 16 == 0 {
            s.ingest(&TimedEvent {
                at,
                event: Event::Tx(vec![0x10, 0x5B, 0x01, 0x5C, 0x16]),
            });
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

fn bench_ingest(c: &mut Criterion) {
    let chunk = vec![0x68u8; 4096];
    let mut group = c.benchmark_group("session");
    group.throughput(criterion::Throughput::Bytes(chunk.len() as u64 * 256));
    group.bench_function("ingest 1 MiB of 0x68 in 4 KiB reads (worst case)", |b| {
        b.iter(|| {
            let mut s = Session::new("bench", DEFAULT_WINDOW_BYTES);
            for i in 0..256u64 {
                s.ingest(&TimedEvent {
                    at: Duration::from_micros(i),
                    event: Event::Rx(chunk.clone()),
                });
            }
            s
        })
    });
    group.finish();
}

criterion_group!(benches, bench_render, bench_ingest);
criterion_main!(benches);
