//! Faults a lab produces, end to end: a port that vanishes and returns again and again, a
//! consumer that stalls while the device keeps sending 10 MB/s, and SIGTERM/SIGINT/SIGHUP
//! during a TUI session (in tmux). Each checks that no byte is lost silently: every byte the
//! device wrote is received, or counted as dropped in order, or (after a signal) in the capture.
//! pcscd restarted mid-session is tests/card_pcscd.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use hsmon::capture::CaptureReader;
use hsmon::event::{Event, TimedEvent};
use serde_json::Value;
use support::tmux::Tmux;
use support::{Headless, PtyLink, hex, path_str, run_hsmon};

const T: Duration = Duration::from_secs(10);

/// Byte `i` of the devices' streams here: it depends on the position only, so a gap or a
/// reordering anywhere shows as a mismatch at a known offset.
fn pattern(i: u64) -> u8 {
    let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 56) as u8 ^ (i as u8)
}

fn stream(from: u64, len: usize) -> Vec<u8> {
    (from..from + len as u64).map(pattern).collect()
}

/// Walks received events against the device's stream: each `Rx` must be the next bytes of
/// it, each overrun skips as many as it counts. Returns (bytes received, bytes dropped).
fn check_in_order(events: &[Event]) -> (u64, u64) {
    let (mut pos, mut received, mut dropped) = (0u64, 0u64, 0u64);
    for e in events {
        match e {
            Event::Rx(b) => {
                let want = stream(pos, b.len());
                if let Some(i) = want.iter().zip(b).position(|(x, y)| x != y) {
                    panic!(
                        "byte at stream offset {} differs: received {:02X}, the device wrote {:02X} \
                         ({received} received and {dropped} dropped before it)",
                        pos + i as u64,
                        b[i],
                        want[i]
                    );
                }
                pos += b.len() as u64;
                received += b.len() as u64;
            }
            Event::Overrun(o) => {
                pos += o.dropped_bytes;
                dropped += o.dropped_bytes;
            }
            _ => {}
        }
    }
    (received, dropped)
}

fn capture_events(path: &Path) -> (Vec<Event>, CaptureReader) {
    let mut r = CaptureReader::open(path).expect("the capture opens");
    let mut events = Vec::new();
    while let Some(rec) = r.next_record().expect("the capture reads") {
        events.push(rec.event.event);
    }
    (events, r)
}

/// `hsmon replay FILE --headless --format json`: the received bytes it prints.
fn replayed_rx(path: &Path) -> Vec<u8> {
    let (code, out, err) = run_hsmon(&[
        "--config",
        "/dev/null",
        "--headless",
        "--format",
        "json",
        "replay",
        path_str(path),
        "--speed",
        "1000",
    ]);
    assert_eq!(code, 0, "replay failed: {err}");
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["type"] == "rx")
        .flat_map(|r| hex(r["hex"].as_str().unwrap()))
        .collect()
}

#[test]
fn port_vanishes_and_returns_repeatedly_without_losing_a_byte() {
    let mut link = PtyLink::new();
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("reconnects.hscap");
    let mut h = Headless::start(&["--capture", path_str(&cap), "serial", path_str(&link.a())]);
    h.wait_for(T, |r| r["type"] == "connection" && r["state"] == "up");
    let mut written = 0u64;
    const CYCLES: u8 = 5;
    for cycle in 0..CYCLES {
        // Bytes right up to the gap arrive, on this incarnation of the port.
        let block = stream(written, 3000 + 977 * cycle as usize);
        link.device().write_all(&block).unwrap();
        written += block.len() as u64;
        h.wait_rx_len(written as usize, T);
        // The other direction works on it too.
        let mut dev = link.device();
        h.control(&format!("send 68 {cycle:02X}"));
        let mut got = [0u8; 2];
        dev.read_exact(&mut got).unwrap();
        assert_eq!(
            got,
            [0x68, cycle],
            "cycle {cycle}: the device got our bytes"
        );
        drop(dev);

        link.kill();
        h.wait_for(T, |r| r["type"] == "connection" && r["state"] == "down");
        link.start();
        h.wait_for(T, |r| r["type"] == "connection" && r["state"] == "up");
    }
    let last = stream(written, 4096);
    link.device().write_all(&last).unwrap();
    written += last.len() as u64;
    h.wait_rx_len(written as usize, T);
    assert_eq!(
        h.rx_bytes(),
        stream(0, written as usize),
        "every byte on either side of {CYCLES} gaps, in order"
    );
    let downs = h
        .records
        .iter()
        .filter(|r| r["type"] == "connection" && r["state"] == "down")
        .count();
    assert_eq!(downs, CYCLES as usize, "each gap reported once");
    let (code, err) = h.stop();
    assert_eq!(code, 0, "{err}");

    // The recording holds the same: replayed, every byte is there.
    assert_eq!(replayed_rx(&cap), stream(0, written as usize));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_consumer_never_blocks_the_source_and_every_drop_is_counted_and_shown() {
    use hsmon::event::LineSettings;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    let link = PtyLink::new();
    let clock = hsmon::clock::Clock::start();
    let mut handle =
        hsmon::source::serial::spawn(link.a(), LineSettings::default(), clock).unwrap();
    let first = tokio::time::timeout(T, handle.events.recv()).await.unwrap();
    assert!(matches!(
        first.map(|e| e.event),
        Some(Event::Connection(hsmon::event::ConnectionState::Up))
    ));

    // The device sends 10 MB/s for 3 s while nobody takes events: the consumer is stalled.
    const RATE: usize = 10_000_000;
    const SECS: usize = 3;
    let total = RATE * SECS;
    let mut dev = link.device();
    let writer = std::thread::spawn(move || {
        let t0 = Instant::now();
        let slice = RATE / 100;
        for tick in 0..(total / slice) {
            let due = t0 + Duration::from_millis(10) * tick as u32;
            if let Some(w) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(w);
            }
            dev.write_all(&stream((tick * slice) as u64, slice))
                .unwrap();
        }
    });
    writer.join().unwrap();

    // Now the consumer wakes and takes everything.
    let mut events: Vec<TimedEvent> = Vec::new();
    let (mut received, mut dropped) = (0u64, 0u64);
    let end = Instant::now() + Duration::from_secs(20);
    while received + dropped < total as u64 && Instant::now() < end {
        match tokio::time::timeout(Duration::from_secs(2), handle.events.recv()).await {
            Ok(Some(ev)) => {
                match &ev.event {
                    Event::Rx(b) => received += b.len() as u64,
                    Event::Overrun(o) => dropped += o.dropped_bytes,
                    _ => {}
                }
                events.push(ev);
            }
            _ => break,
        }
    }
    let plain: Vec<Event> = events.iter().map(|e| e.event.clone()).collect();
    let (r, d) = check_in_order(&plain);
    assert_eq!(
        r + d,
        total as u64,
        "every byte written was received or counted as dropped ({r} + {d})"
    );
    // Had the source blocked while the consumer stalled, the pty would have held the device
    // back and nothing would have been dropped.
    assert!(
        d > 0,
        "the source kept reading during the stall, so its bound overflowed"
    );
    assert!(r >= hsmon::source::PENDING_BYTES_CAP as u64, "{r} received");

    // The drops are shown: the session counts them, the status bar says so, and headless
    // output has an `hsmon.overrun` record for each report.
    let mut s = hsmon::session::Session::with_knowledge(&handle.name, 64 << 20, None);
    for e in &events {
        s.ingest(e);
    }
    assert_eq!(s.counters.dropped_bytes, d);
    assert_eq!(s.counters.rx_bytes, r);
    let ui = hsmon::ui::state::UiState::new(
        hsmon::ui::keys::Keymap::default(),
        hsmon::ui::theme::Theme::COLOR,
        hsmon::ui::sendline::LineEnding::Cr,
        (120, 30),
    );
    let mut t = Terminal::new(TestBackend::new(120, 30)).unwrap();
    t.draw(|f| hsmon::ui::render(f, &s, &ui)).unwrap();
    let screen: String = t
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    let shown = format!(
        "dropped {}",
        hsmon::ui::status::human_bytes(s.counters.dropped_bytes)
    );
    assert!(screen.contains(&shown), "{shown:?} not on the status bar");
    let overruns: Vec<Value> = events
        .iter()
        .filter(|e| matches!(e.event, Event::Overrun(_)))
        .map(|e| serde_json::to_value(hsmon::record::event::from_event(&e.event)).unwrap())
        .collect();
    assert!(!overruns.is_empty());
    assert!(overruns.iter().all(|v| v["id"] == "hsmon.overrun"));
    let sum: u64 = overruns
        .iter()
        .map(|v| v["dropped_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, d);
    let _ = handle.commands.try_send(hsmon::event::Command::Shutdown);
}

/// The TUI on a pty, recording to `cap`; after it exits, the shell prints `EXIT=<status>`, the
/// terminal's `icanon`/`echo` flags (`-icanon` would mean raw mode was left on), `TTY-END`.
fn tui_on(link: &PtyLink, cap: &Path) -> Tmux {
    let cmd = format!(
        "{} --config /dev/null --capture {} serial {}; echo EXIT=$?; stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | sed 's/^/TTY:/'; echo TTY-END; sleep 30",
        support::hsmon_bin(),
        cap.display(),
        link.a().display()
    );
    Tmux::start(&cmd)
}

fn signal_ends_the_session_cleanly(sig: nix::sys::signal::Signal) {
    let link = PtyLink::new();
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("signal.hscap");
    let t = tui_on(&link, &cap);
    t.wait_for("● connected");
    let (alt, _) = t.modes();
    assert_eq!(alt, "1", "the TUI runs on the alternate screen");

    // 20 000 bytes, every value and escape sequences among them; all on screen before the signal.
    let sent = stream(0, 20_000);
    link.device().write_all(&sent).unwrap();
    t.wait_for("RX 19.5 KiB");
    let pid = t.hsmon_pid();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();

    let screen = t.wait_for("TTY-END");
    assert!(screen.contains("EXIT=0"), "{sig:?}: clean exit\n{screen}");
    assert!(
        screen.contains("TTY:icanon") && !screen.contains("TTY:-icanon"),
        "{sig:?}: raw mode left on\n{screen}"
    );
    assert!(!screen.contains("TTY:-echo"), "{sig:?}: echo left off");
    assert!(
        !screen.contains("┌ bytes"),
        "{sig:?}: panes left on the screen"
    );
    let (alt, cursor) = t.modes();
    assert_eq!(alt, "0", "{sig:?}: the alternate screen was left on");
    assert_eq!(cursor, "1", "{sig:?}: the cursor was left hidden");

    // The capture is complete and ends cleanly.
    let (_, r) = capture_events(&cap);
    assert!(r.warnings().is_empty(), "{sig:?}: {:?}", r.warnings());
    assert!(
        r.torn_tail().is_none(),
        "{sig:?}: the capture has a torn tail"
    );
    assert_eq!(
        replayed_rx(&cap),
        sent,
        "{sig:?}: the replay gives every byte written before the signal"
    );
}

#[test]
fn sigterm_restores_the_terminal_and_completes_the_capture() {
    signal_ends_the_session_cleanly(nix::sys::signal::Signal::SIGTERM);
}

#[test]
fn sigint_restores_the_terminal_and_completes_the_capture() {
    signal_ends_the_session_cleanly(nix::sys::signal::Signal::SIGINT);
}

/// Issue 20: an external SIGQUIT left the terminal raw, on the alternate screen, cursor hidden.
#[test]
fn sigquit_restores_the_terminal_and_completes_the_capture() {
    signal_ends_the_session_cleanly(nix::sys::signal::Signal::SIGQUIT);
}

#[test]
fn sighup_restores_the_terminal_and_completes_the_capture() {
    signal_ends_the_session_cleanly(nix::sys::signal::Signal::SIGHUP);
}

/// SIGTERM while the device is still sending and the TUI is behind it: the capture holds an
/// unbroken prefix of what was sent (drops, if any, counted in place), including what the
/// source had read but the screen had not yet taken, and ends cleanly.
#[test]
fn sigterm_under_load_records_every_byte_read_in_order() {
    let mut link = PtyLink::new();
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("load.hscap");
    let t = tui_on(&link, &cap);
    t.wait_for("● connected");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut dev = link.device();
    let s2 = stop.clone();
    let writer = std::thread::spawn(move || {
        let mut pos = 0u64;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            let chunk = stream(pos, 16 * 1024);
            if dev.write_all(&chunk).is_err() {
                break;
            }
            pos += chunk.len() as u64;
            // ~16 MB/s: far more than a debug build decodes, and kind to a shared machine.
            std::thread::sleep(Duration::from_millis(1));
        }
        pos
    });
    // Traffic is on screen; let the TUI fall behind for a moment.
    t.wait_until("received bytes", |s| {
        s.contains(" RX ") && !s.contains(" RX 0 B ")
    });
    std::thread::sleep(Duration::from_millis(800));
    let pid = t.hsmon_pid();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let screen = t.wait_for("TTY-END");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    // Nobody reads the port now: end the link so a blocked write returns.
    link.kill();
    let written = writer.join().unwrap();
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert_eq!(t.modes(), ("0".to_string(), "1".to_string()));

    let (events, r) = capture_events(&cap);
    assert!(r.warnings().is_empty(), "{:?}", r.warnings());
    assert!(r.torn_tail().is_none(), "the capture has a torn tail");
    let (received, dropped) = check_in_order(&events);
    assert!(received > 100_000, "only {received} bytes recorded");
    assert!(received + dropped <= written);
    // What is neither recorded nor counted was still in the kernel's pty and socat buffers
    // (tens of KiB) when the source stopped reading; what the source had read but the screen
    // had not yet taken (megabytes, behind a debug build's decoders) is in the capture.
    let unaccounted = written - received - dropped;
    println!("written {written}, recorded {received}, dropped and counted {dropped}");
    assert!(
        unaccounted < 1 << 20,
        "{unaccounted} bytes written before the end are neither recorded nor counted as dropped"
    );
}
