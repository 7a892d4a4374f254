//! Hostile input from a device, a capture or a PC/SC stack: every byte value, every escape
//! sequence class a terminal acts on (CSI, OSC 52 clipboard, OSC 8, DCS, APC, PM, SOS, in 7-bit
//! and 8-bit forms), C1 controls raw and UTF-8 encoded, bidi overrides, line separators,
//! invalid UTF-8, NUL runs and a 1 MiB line — through a real session (decoders and diagnosis
//! running), rendered on TestBackend at several sizes and in every pane and overlay, and
//! printed by the headless text and JSON writers. Nothing unsafe reaches a cell or a line,
//! and the session keeps working (counters right, keys answered, framers resynchronised).
//!
//! tests/ui_render.rs checks the hex pane over a short hostile sample; this file goes
//! through every output path.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::io::Write;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use hsmon::cli::OutputFormat;
use hsmon::event::{
    ApduExchange, ApduOrigin, CardDisposition, CardEvent, ConnectionState, Event, Overrun,
    ShareMode, TimedEvent,
};
use hsmon::sanitize::is_unsafe;
use hsmon::session::{DEFAULT_WINDOW_BYTES, Session};
use hsmon::ui::keys::Keymap;
use hsmon::ui::sendline::LineEnding;
use hsmon::ui::state::UiState;
use hsmon::ui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// Escape sequences by class, each as a terminal would act on it.
fn sequences() -> Vec<(&'static str, Vec<u8>)> {
    let mut v: Vec<(&str, Vec<u8>)> = vec![
        ("CSI erase", b"\x1b[2J\x1b[H".to_vec()),
        ("CSI alternate screen", b"\x1b[?1049h\x1b[?25l".to_vec()),
        ("CSI colour", b"\x1b[31;1m".to_vec()),
        ("CSI 8-bit", b"\x9b31m".to_vec()),
        ("CSI as UTF-8 C1", "\u{9b}2J".as_bytes().to_vec()),
        (
            "OSC 52 clipboard (BEL)",
            b"\x1b]52;c;cm0gLXJmIH4K\x07".to_vec(),
        ),
        ("OSC 52 clipboard (ST)", b"\x1b]52;c;cm0gLXJmIH4K\x1b\\".to_vec()),
        ("OSC 8 hyperlink", b"\x1b]8;;http://x.invalid\x1b\\link\x1b]8;;\x1b\\".to_vec()),
        ("OSC 0 title", b"\x1b]0;pwned\x07".to_vec()),
        ("OSC 8-bit", b"\x9d0;pwned\x9c".to_vec()),
        ("DCS", b"\x1bP1$r0m\x1b\\".to_vec()),
        ("DCS 8-bit", b"\x90q#0;2;0;0;0\x9c".to_vec()),
        ("DCS as UTF-8 C1", "\u{90}1$r\u{9c}".as_bytes().to_vec()),
        ("APC", b"\x1b_Gf=100;AAAA\x1b\\".to_vec()),
        ("APC 8-bit", b"\x9fG\x9c".to_vec()),
        ("PM", b"\x1b^privacy\x1b\\".to_vec()),
        ("PM 8-bit", b"\x9eprivacy\x9c".to_vec()),
        ("SOS", b"\x1bXstring\x1b\\".to_vec()),
        ("SOS 8-bit", b"\x98string\x9c".to_vec()),
        ("ESC c reset", b"\x1bc".to_vec()),
        ("DECSC/DECRC", b"\x1b7\x1b8".to_vec()),
        ("bidi overrides", "\u{202a}\u{202b}\u{202c}\u{202d}\u{202e}evil\u{2066}\u{2067}\u{2068}\u{2069}\u{200e}\u{200f}\u{61c}".as_bytes().to_vec()),
        ("line separators", "a\u{2028}b\u{2029}c".as_bytes().to_vec()),
        (
            "zero-width",
            "a\u{200b}b\u{200c}c\u{200d}d\u{2060}e\u{feff}f".as_bytes().to_vec(),
        ),
        (
            "invalid UTF-8",
            b"\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc\xff\xfe\xc0\xaf\xed\xa0\x80\xf8\x88\x80\x80\x80".to_vec(),
        ),
        ("BEL BS CR DEL", b"\x07\x08\x08\r\x7f\x7f".to_vec()),
        ("NUL run", vec![0u8; 4096]),
    ];
    v.push(("C1 raw", (0x80..=0x9fu8).collect()));
    v.push((
        "C1 as UTF-8",
        (0x80..=0x9fu32)
            .filter_map(char::from_u32)
            .collect::<String>()
            .into_bytes(),
    ));
    v.push(("every byte", (0..=255u8).collect()));
    v
}

/// The device's stream: each sequence bare, inside a text line (so the text framer makes a
/// frame whose summary holds it), inside an M-Bus frame's data, and a 1 MiB line at the end.
fn hostile_stream() -> Vec<u8> {
    let mut out = Vec::new();
    for (name, seq) in sequences() {
        out.extend_from_slice(&seq);
        out.extend_from_slice(format!("boot: {name} <").as_bytes());
        out.extend_from_slice(&seq);
        out.extend_from_slice(b"> end\r\n");
        // An M-Bus long frame carrying the sequence (bad checksum: still decoded and shown).
        let data: Vec<u8> = seq.iter().copied().take(200).collect();
        let l = (data.len() + 3) as u8;
        out.extend_from_slice(&[0x68, l, l, 0x68, 0x08, 0x01, 0x72]);
        out.extend_from_slice(&data);
        out.extend_from_slice(&[0x00, 0x16]);
    }
    let mut long = b"log: ".to_vec();
    while long.len() < 1 << 20 {
        long.extend_from_slice(b"\x1b[2Jlong \xe2\x80\xae line \x9b ");
    }
    long.extend_from_slice(b"\r\n");
    out.extend_from_slice(&long);
    out
}

/// Texts that reach notices, the card pane and headless lines from outside hsmon: OS and
/// remote reasons, reader names, a capture's replay note.
fn hostile_text() -> String {
    "evil\x1b]52;c;cm0gLXJmIH4K\x07\x1b[2J\u{9b}31m\u{202e}reversed\u{2028}\r\n\0\u{200b}\u{2066}\u{feff}\u{7f}end"
        .to_string()
}

/// The text-bearing events, with hostile text in every string.
fn hostile_events() -> Vec<Event> {
    let t = hostile_text();
    vec![
        Event::Connection(ConnectionState::Retrying { reason: t.clone() }),
        Event::Connection(ConnectionState::Down { reason: t.clone() }),
        Event::Connection(ConnectionState::Up),
        Event::CommandFailed {
            command: t.clone(),
            reason: t.clone(),
        },
        Event::Replay {
            paused: true,
            speed: 1.0,
            text: t.clone(),
        },
        Event::Overrun(Overrun { dropped_bytes: 7 }),
    ]
}

/// A card session with hostile reader names, protocol text and PC/SC operation names.
fn hostile_card_events() -> Vec<Event> {
    let t = hostile_text();
    vec![
        Event::Card(CardEvent::Readers(vec![t.clone(), "ok reader".into()])),
        Event::Card(CardEvent::Inserted {
            reader: t.clone(),
            atr: vec![0x3B, 0x1B, 0x9B, 0x00],
        }),
        Event::Card(CardEvent::Connected {
            reader: t.clone(),
            protocol: t.clone(),
            share: ShareMode::Shared,
            atr: vec![0x3B, 0x1B, 0x9B, 0x00],
        }),
        Event::Apdu(ApduExchange {
            command: b"\x00\xa4\x04\x00\x05\x1b[2J\x9b".to_vec(),
            response: b"\x1b]52;c;x\x07\x90\x00".to_vec(),
            duration: Duration::from_millis(3),
            origin: ApduOrigin::User,
        }),
        Event::Pcsc {
            operation: t.clone(),
            code: 0x8010_0068,
        },
        Event::Card(CardEvent::Reconnected {
            reader: t.clone(),
            disposition: CardDisposition::Reset,
            protocol: t.clone(),
        }),
        Event::Card(CardEvent::Removed { reader: t.clone() }),
        Event::Card(CardEvent::Disconnected {
            reader: t,
            disposition: CardDisposition::Leave,
        }),
    ]
}

fn at(ms: u64, event: Event) -> TimedEvent {
    TimedEvent::new(Duration::from_millis(ms), event)
}

/// The stream in pieces of varying size (framers see sequences split anywhere), both
/// directions, with the text-bearing events in between.
fn hostile_session_events() -> (Vec<TimedEvent>, u64, u64) {
    let stream = hostile_stream();
    let mut evs = vec![at(0, Event::Connection(ConnectionState::Up))];
    let (mut rx, mut tx) = (0u64, 0u64);
    let mut pos = 0;
    let mut n = 0u64;
    while pos < stream.len() {
        let len = [1, 7, 64, 333, 4096, 65536][n as usize % 6].min(stream.len() - pos);
        let piece = stream[pos..pos + len].to_vec();
        pos += len;
        n += 1;
        if n % 5 == 0 && len < 4096 {
            tx += piece.len() as u64;
            evs.push(at(n, Event::Tx(piece)));
        } else {
            rx += piece.len() as u64;
            evs.push(at(n, Event::Rx(piece)));
        }
        if n % 40 == 0 {
            for e in hostile_events() {
                evs.push(at(n, e));
            }
        }
    }
    for e in hostile_events() {
        evs.push(at(n, e));
    }
    (evs, rx, tx)
}

fn ui(w: u16, h: u16) -> UiState {
    UiState::new(Keymap::default(), Theme::COLOR, LineEnding::Cr, (w, h))
}

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

/// Draws and checks every cell; returns the screen as text.
fn draw_clean(s: &Session, u: &UiState, what: &str) -> String {
    let mut t = Terminal::new(TestBackend::new(u.size.0, u.size.1)).unwrap();
    t.draw(|f| hsmon::ui::render(f, s, u)).unwrap();
    let buf = t.backend().buffer();
    let mut text = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            let sym = buf[(x, y)].symbol();
            if let Some(c) = sym.chars().find(|&c| is_unsafe(c)) {
                let row: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
                panic!(
                    "{what} at {}x{}: {c:?} in cell ({x},{y}) reached the screen:\n{row}",
                    u.size.0, u.size.1
                );
            }
            text.push_str(sym);
        }
        text.push('\n');
    }
    text
}

/// Every pane and overlay a user can open over this session, at each size.
fn render_everywhere(s: &Session) {
    for (w, h) in [(200, 60), (120, 40), (80, 24), (40, 12), (12, 4)] {
        let mut u = ui(w, h);
        u.now = s.last_at;
        draw_clean(s, &u, "main view");
        for (what, keys) in [
            ("frames pane", vec![key(KeyCode::Tab)]),
            ("frame detail", vec![key(KeyCode::Up), key(KeyCode::Enter)]),
            ("closed", vec![key(KeyCode::Esc)]),
            ("events pane", vec![key(KeyCode::Tab)]),
            ("event detail", vec![key(KeyCode::Up), key(KeyCode::Enter)]),
            ("closed", vec![key(KeyCode::Esc)]),
            (
                "bytes at the top",
                vec![key(KeyCode::Tab), key(KeyCode::Home)],
            ),
            (
                "scrolled",
                vec![key(KeyCode::PageDown), key(KeyCode::PageDown)],
            ),
            (
                "talking to",
                vec![KeyEvent::new(KeyCode::Char('T'), KeyModifiers::SHIFT)],
            ),
            ("closed", vec![key(KeyCode::Esc)]),
            ("help", vec![key(KeyCode::Char('?'))]),
            ("closed", vec![key(KeyCode::Esc)]),
        ] {
            for k in keys {
                u.on_key(s, k);
            }
            draw_clean(s, &u, what);
        }
    }
}

#[test]
fn hostile_traffic_renders_nothing_unsafe_and_the_session_keeps_working() {
    let (events, rx, tx) = hostile_session_events();
    let mut s = Session::new("/dev/ttyUSB0 \u{1b}[2J\u{202e}", DEFAULT_WINDOW_BYTES);
    for e in &events {
        s.ingest(e);
    }
    s.flush_decoders();

    // Counters are right: nothing was swallowed or double counted.
    assert_eq!(s.counters.rx_bytes, rx);
    assert_eq!(s.counters.tx_bytes, tx);
    assert_eq!(
        s.window_bytes() as u64 + s.counters.evicted_bytes,
        rx + tx,
        "every byte is in the window or counted as scrolled out"
    );
    assert!(s.counters.dropped_bytes > 0);
    assert!(
        s.frames()
            .iter()
            .any(|f| f.frame.summary().contains('\u{1b}') || f.frame.summary().contains('\u{202e}')),
        "the text frames do carry the hostile characters (so rendering is what removes them)"
    );

    render_everywhere(&s);

    // The framers came through: a clean M-Bus frame after the barrage decodes as one.
    let clean = [
        0x68, 0x15, 0x15, 0x68, 0x08, 0x02, 0x72, 0x78, 0x56, 0x34, 0x12, 0x24, 0x40, 0x01, 0x07,
        0x13, 0x00, 0x00, 0x00, 0x0C, 0x78, 0x04, 0x03, 0x02, 0x01, 0x9D, 0x16,
    ];
    s.ingest(&at(999_000, Event::Rx(b"\r\n".to_vec())));
    let start = s.counters.rx_bytes;
    s.ingest(&at(999_001, Event::Rx(clean.to_vec())));
    let ok =
        s.frames().iter().rev().find(|f| {
            f.frame.protocol == hsmon::decode::Protocol::Mbus && f.frame.span.start == start
        });
    let ok = ok.expect("the M-Bus framer resynchronised after the hostile stream");
    assert!(ok.frame.status.is_ok(), "{:?}", ok.frame.status);

    // Keys are still answered: help opens and closes, scrolling pauses, End follows again.
    let mut u = ui(120, 40);
    u.on_key(&s, key(KeyCode::Char('?')));
    assert!(draw_clean(&s, &u, "help").contains("hsmon keys"));
    u.on_key(&s, key(KeyCode::Esc));
    u.on_key(&s, key(KeyCode::PageUp));
    assert!(draw_clean(&s, &u, "paused").contains("PAUSED"));
    u.on_key(&s, key(KeyCode::End));
    assert!(draw_clean(&s, &u, "following").contains("following"));
}

#[test]
fn hostile_card_session_renders_nothing_unsafe() {
    let mut s = Session::new("card", DEFAULT_WINDOW_BYTES);
    for (i, e) in hostile_card_events().into_iter().enumerate() {
        s.ingest(&at(i as u64, e));
    }
    assert!(s.card().exchanges().len() == 1);
    for (w, h) in [(160, 50), (80, 24), (30, 8)] {
        let mut u = ui(w, h);
        draw_clean(&s, &u, "card view");
        u.on_key(&s, key(KeyCode::Tab));
        u.on_key(&s, key(KeyCode::Enter));
        draw_clean(&s, &u, "card detail");
    }
}

/// Every character of a headless output that is not the line end must be safe.
fn assert_lines_clean(out: &[u8], what: &str) -> usize {
    let text = std::str::from_utf8(out).unwrap_or_else(|e| panic!("{what}: not UTF-8: {e}"));
    let mut n = 0;
    for line in text.split_terminator('\n') {
        if let Some(c) = line.chars().find(|&c| is_unsafe(c)) {
            panic!("{what}: {c:?} in the line {line:?}");
        }
        n += 1;
    }
    n
}

#[test]
fn headless_text_and_json_lines_carry_no_control_characters() {
    let (mut events, _, _) = hostile_session_events();
    events.extend(hostile_card_events().into_iter().map(|e| at(1_000_000, e)));
    for (format, name) in [(OutputFormat::Text, "text"), (OutputFormat::Json, "json")] {
        let mut s = Session::new("hostile", DEFAULT_WINDOW_BYTES);
        let mut out = Vec::new();
        for e in &events {
            s.ingest(e);
            match format {
                OutputFormat::Text => {
                    writeln!(out, "{}", hsmon::record::stream::text_record(e)).unwrap()
                }
                OutputFormat::Json => {
                    hsmon::record::event::write_event(&mut out, e, None, &Default::default())
                        .map(|_| ())
                        .unwrap()
                }
            }
            hsmon::record::stream::write_findings(&mut out, &mut s, format).unwrap();
        }
        s.flush_decoders();
        hsmon::record::stream::write_findings(&mut out, &mut s, format).unwrap();
        let lines = assert_lines_clean(&out, name);
        assert!(
            lines > events.len(),
            "{name}: frames and events printed too"
        );
        if format == OutputFormat::Json {
            // Still JSON, and the strings read back as the device sent them.
            let text = String::from_utf8(out).unwrap();
            let mut saw_escape = false;
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                saw_escape |= v.to_string().contains("\\u001b")
                    || v["reason"].as_str().is_some_and(|r| r == hostile_text());
            }
            assert!(
                saw_escape,
                "the hostile text survives, escaped, in the JSON"
            );
        }
    }
}

/// The real binary on a pty: what it prints headless, text and JSON, is clean.
#[test]
fn hsmon_headless_on_a_pty_prints_nothing_unsafe() {
    use std::process::Stdio;
    let stream = hostile_stream();
    for format in ["text", "json"] {
        let link = support::PtyLink::new();
        let mut child = support::hsmon_command()
            .args([
                "--headless",
                "--no-capture",
                "--config",
                "/dev/null",
                "--format",
            ])
            .args([format, "serial", support::path_str(&link.a())])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            use std::io::Read;
            let mut all = Vec::new();
            let _ = std::io::BufReader::new(stdout).read_to_end(&mut all);
            all
        });
        std::thread::sleep(Duration::from_millis(300));
        let mut dev = link.device();
        dev.write_all(&stream).unwrap();
        // `quit` on stdin ends the session once what was read is printed.
        std::thread::sleep(Duration::from_millis(500));
        writeln!(child.stdin.as_mut().unwrap(), "quit").unwrap();
        let status = child.wait().unwrap();
        let out = reader.join().unwrap();
        assert!(status.success(), "{format}: {status}");
        let n = assert_lines_clean(&out, format);
        assert!(n > 50, "{format}: only {n} lines");
    }
}
