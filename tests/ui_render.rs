//! The panes drawn on ratatui's TestBackend: layout snapshots (insta), per-cell style checks
//! for what colour alone would show (0x68 highlight, RX/TX), and the sanitizer over every
//! byte value and the escape sequences a hostile device could send.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use hsmon::event::{Baud, ConnectionState, Event, LineSettings, ModemLines, Overrun, TimedEvent};
use hsmon::monitor::Effect;
use hsmon::session::{DEFAULT_WINDOW_BYTES, Session};
use hsmon::ui::keys::Keymap;
use hsmon::ui::sendline::LineEnding;
use hsmon::ui::state::UiState;
use hsmon::ui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

fn at(ms: u64, event: Event) -> TimedEvent {
    TimedEvent::new(Duration::from_millis(ms), event)
}

/// A session built only through `ingest`, as a real one is.
fn session(events: &[TimedEvent]) -> Session {
    let mut s = Session::new("/dev/ttyUSB0", DEFAULT_WINDOW_BYTES);
    for e in events {
        s.ingest(e);
    }
    s
}

fn mbus_session() -> Session {
    let settings = LineSettings {
        baud: Baud::new(2400).unwrap(),
        format: "8E1".parse().unwrap(),
        flow: hsmon::event::FlowControl::None,
    };
    session(&[
        at(0, Event::Connection(ConnectionState::Up)),
        at(
            0,
            Event::LineSettings {
                settings,
                modem: ModemLines {
                    dtr: Some(true),
                    rts: Some(false),
                },
            },
        ),
        at(10, Event::Tx(vec![0x10, 0x5B, 0x01, 0x5C, 0x16])),
        at(
            250,
            Event::Rx(vec![
                0x68, 0x15, 0x15, 0x68, 0x08, 0x02, 0x72, 0x78, 0x56, 0x34, 0x12, 0x24, 0x40, 0x01,
                0x07, 0x13, 0x00, 0x00, 0x00, 0x0C, 0x78, 0x04, 0x03, 0x02, 0x01, 0x9D, 0x16,
            ]),
        ),
        at(400, Event::Rx(b"boot: hello\r\n".to_vec())),
    ])
}

fn ui(w: u16, h: u16) -> UiState {
    UiState::new(Keymap::default(), Theme::COLOR, LineEnding::Cr, (w, h))
}

fn draw(s: &Session, ui: &UiState) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(ui.size.0, ui.size.1)).unwrap();
    t.draw(|f| hsmon::ui::render(f, s, ui)).unwrap();
    t
}

fn text_of(buf: &Buffer) -> String {
    let mut s = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            s.push_str(buf[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}

#[test]
fn hex_pane_wide() {
    let s = mbus_session();
    let t = draw(&s, &ui(200, 14));
    insta::assert_snapshot!(t.backend());
}

#[test]
fn hex_pane_normal() {
    let s = mbus_session();
    let t = draw(&s, &ui(100, 12));
    insta::assert_snapshot!(t.backend());
}

#[test]
fn hex_pane_narrow() {
    let s = mbus_session();
    let t = draw(&s, &ui(50, 12));
    insta::assert_snapshot!(t.backend());
}

#[test]
fn help_overlay() {
    let s = mbus_session();
    let mut u = ui(100, 40);
    u.update(&s, hsmon::ui::action::Action::ToggleHelp);
    let t = draw(&s, &u);
    insta::assert_snapshot!(t.backend());
}

#[test]
fn status_bar_when_disconnected_with_drops() {
    let mut events = vec![at(0, Event::Connection(ConnectionState::Up))];
    events.push(at(5, Event::Rx(vec![0x41; 3000])));
    events.push(at(
        6,
        Event::Overrun(Overrun {
            dropped_bytes: 4096,
        }),
    ));
    events.push(at(
        7,
        Event::Connection(ConnectionState::Retrying {
            reason: "/dev/ttyUSB0 is gone".into(),
        }),
    ));
    let s = session(&events);
    let t = draw(&s, &ui(110, 8));
    insta::assert_snapshot!(t.backend());
}

#[test]
fn every_0x68_is_highlighted_and_directions_differ() {
    let s = mbus_session();
    let u = ui(100, 12);
    let t = draw(&s, &u);
    let buf = t.backend().buffer();
    let mut highlighted = 0;
    for y in 0..buf.area.height {
        for x in 0..buf.area.width.saturating_sub(1) {
            let pair = format!("{}{}", buf[(x, y)].symbol(), buf[(x + 1, y)].symbol());
            let style = buf[(x, y)].style();
            if style.bg == Theme::COLOR.highlight_68.bg {
                if pair == "68" {
                    highlighted += 1;
                }
            } else if pair == "68" && x > 30 && y < 9 {
                // "68" in an address or elsewhere is fine; a hex 68 byte must be highlighted.
                let prev = buf[(x.saturating_sub(1), y)].symbol();
                assert!(prev != " ", "unhighlighted 68 at {x},{y}");
            }
        }
    }
    // Two 0x68 in the M-Bus frame + the 'h' of "hello" = 3 in hex (and 3 in the gutter).
    assert_eq!(highlighted, 3, "{}", text_of(buf));
    let rx_row = (0..buf.area.height)
        .find(|&y| {
            text_of(buf)
                .lines()
                .nth(y as usize)
                .unwrap()
                .contains("RX▸")
        })
        .unwrap();
    let tx_row = (0..buf.area.height)
        .find(|&y| {
            text_of(buf)
                .lines()
                .nth(y as usize)
                .unwrap()
                .contains("TX◂")
        })
        .unwrap();
    let col = text_of(buf)
        .lines()
        .nth(rx_row as usize)
        .unwrap()
        .find("RX")
        .unwrap() as u16;
    assert_ne!(
        buf[(col, rx_row)].style().fg,
        buf[(col, tx_row)].style().fg,
        "RX and TX are coloured apart"
    );
}

#[test]
fn device_bytes_never_reach_the_terminal_as_controls() {
    let mut hostile: Vec<u8> = (0..=255u8).collect();
    for seq in [
        &b"\x1b[2J"[..],
        b"\x1b]52;c;aGVsbG8=\x07",
        b"\x1bP1$r0m\x1b\\",
        b"\x9b31m",
        b"\x1b[?1049h",
        b"\xff\xfe\xc3\x28",
        b"\r\r\n\x08\x08\x7f",
        "\u{202e}evil".as_bytes(),
    ] {
        hostile.extend_from_slice(seq);
    }
    let s = session(&[
        at(0, Event::Connection(ConnectionState::Up)),
        at(1, Event::Rx(hostile.clone())),
        at(2, Event::Tx(hostile)),
    ]);
    for (w, h) in [(200, 60), (80, 24), (40, 10)] {
        let t = draw(&s, &ui(w, h));
        for cell in t.backend().buffer().content() {
            for c in cell.symbol().chars() {
                assert!(
                    !c.is_control() && !('\u{202a}'..='\u{202e}').contains(&c),
                    "control {c:?} reached the screen at {w}x{h}"
                );
            }
        }
    }
}

#[test]
fn tiny_and_zero_sizes_do_not_panic() {
    let s = mbus_session();
    for (w, h) in [(0, 0), (1, 1), (5, 3), (200, 1), (1, 60), (12, 4)] {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        let u = ui(w, h);
        t.draw(|f| hsmon::ui::render(f, &s, &u)).unwrap();
    }
}

#[test]
fn scrolling_pauses_and_end_resumes_follow() {
    let mut events = vec![at(0, Event::Connection(ConnectionState::Up))];
    for i in 0..200u64 {
        events.push(at(i, Event::Rx(format!("line {i:03}\r\n").into_bytes())));
    }
    let s = session(&events);
    let mut u = ui(100, 12);
    let follow = text_of(draw(&s, &u).backend().buffer());
    assert!(follow.contains("following"));
    let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
    u.on_key(&s, key(KeyCode::PageUp));
    let paused = text_of(draw(&s, &u).backend().buffer());
    assert!(paused.contains("PAUSED"), "{paused}");
    assert_ne!(follow, paused);
    // More bytes arrive: a paused pane stays where it is.
    let mut s2 = session(&events);
    s2.ingest(&at(999, Event::Rx(b"new stuff\r\n".to_vec())));
    let still = text_of(draw(&s2, &u).backend().buffer());
    assert_eq!(
        still.lines().nth(1),
        paused.lines().nth(1),
        "the top row did not move"
    );
    u.on_key(&s2, key(KeyCode::Home));
    let top = text_of(draw(&s2, &u).backend().buffer());
    assert!(top.lines().nth(1).unwrap().contains("00000000"), "{top}");
    u.on_key(&s2, key(KeyCode::End));
    let end = text_of(draw(&s2, &u).backend().buffer());
    assert!(
        end.contains("following") && end.contains("new stuf"),
        "{end}"
    );
}

/// Paging up from a window read back from the capture: the page ends right above the old top,
/// and when the old top starts a run, the other direction's run just above it is on the page.
#[test]
fn the_page_above_keeps_the_other_directions_run() {
    let s = session(&[
        at(0, Event::Connection(ConnectionState::Up)),
        at(1, Event::Rx(vec![b'a'; 1024])),
        at(2, Event::Tx(b"AT\r".to_vec())),
        at(3, Event::Rx(vec![b'b'; 16])),
    ]);
    let mut u = ui(100, 12);
    assert!(u.page_above(&s, hsmon::event::Direction::Rx, 1024));
    let screen = text_of(draw(&s, &u).backend().buffer());
    assert!(
        screen.contains("41 54 0D"),
        "the TX run above the old top:\n{screen}"
    );
    assert!(
        !screen.contains("62 62"),
        "the old top is below the page:\n{screen}"
    );
    assert!(screen.contains("61 61"), "{screen}");
    // A byte the window does not hold: nothing changes but a message.
    assert!(!u.page_above(&s, hsmon::event::Direction::Rx, 5000));
}

#[test]
fn keys_produce_commands_for_the_source() {
    use hsmon::event::Command;
    let s = mbus_session();
    let mut u = ui(100, 12);
    let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
    assert_eq!(
        u.on_key(&s, key(KeyCode::Char('+'))),
        vec![Effect::Command(Command::SetBaud(Baud::new(4800).unwrap()))]
    );
    assert_eq!(
        u.on_key(&s, key(KeyCode::Char('p'))),
        vec![Effect::Command(Command::SetFormat("8O1".parse().unwrap()))]
    );
    assert_eq!(
        u.on_key(&s, KeyEvent::new(KeyCode::Char('R'), KeyModifiers::SHIFT)),
        vec![Effect::Command(Command::SetRts(true))],
        "RTS was off"
    );
    // Custom baud entry.
    u.on_key(&s, key(KeyCode::Char('b')));
    for c in "250000".chars() {
        u.on_key(&s, key(KeyCode::Char(c)));
    }
    assert_eq!(
        u.on_key(&s, key(KeyCode::Enter)),
        vec![Effect::Command(Command::SetBaud(
            Baud::new(250000).unwrap()
        ))]
    );
    // Send line: text, then hex with an odd digit refused, then history.
    u.on_key(&s, key(KeyCode::Char('i')));
    for c in "AT".chars() {
        u.on_key(&s, key(KeyCode::Char(c)));
    }
    assert_eq!(
        u.on_key(&s, key(KeyCode::Enter)),
        vec![Effect::Command(Command::Transmit(b"AT\r".to_vec()))]
    );
    u.on_key(&s, key(KeyCode::Tab));
    for c in "68 0".chars() {
        u.on_key(&s, key(KeyCode::Char(c)));
    }
    assert!(u.on_key(&s, key(KeyCode::Enter)).is_empty());
    let screen = text_of(draw(&s, &u).backend().buffer());
    assert!(screen.contains("odd number of hex digits"), "{screen}");
    u.on_key(&s, key(KeyCode::Char('4')));
    assert_eq!(
        u.on_key(&s, key(KeyCode::Enter)),
        vec![Effect::Command(Command::Transmit(vec![0x68, 0x04]))]
    );
    u.on_key(&s, key(KeyCode::Up));
    assert_eq!(u.input, "68 04");
    u.on_key(&s, key(KeyCode::Up));
    assert_eq!(u.input, "AT");
}

#[test]
fn readme_key_table_matches_the_keymap() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md exists");
    let table = Keymap::default().markdown_table();
    assert!(
        readme.contains(&table),
        "README's key table is out of date; paste this:\n{table}"
    );
}

fn decoded_session() -> Session {
    let mut events = vec![at(0, Event::Connection(ConnectionState::Up))];
    events.push(at(5, Event::Rx(b"boot: hello\r\n".to_vec())));
    for i in 0..3 {
        events.push(at(
            100 + i * 100,
            Event::Rx(vec![0x68, 0x04, 0x0B, 0x00, 0x00, 0x00]),
        ));
    }
    events.push(at(
        500,
        Event::Rx(vec![
            0x68, 0x15, 0x15, 0x68, 0x08, 0x02, 0x72, 0x78, 0x56, 0x34, 0x12, 0x24, 0x40, 0x01,
            0x07, 0x13, 0x00, 0x00, 0x00, 0x0C, 0x78, 0x04, 0x03, 0x02, 0x01, 0x9E, 0x16,
        ]),
    ));
    session(&events)
}

#[test]
fn frames_and_events_panes_wide() {
    let s = decoded_session();
    let t = draw(&s, &ui(180, 20));
    insta::assert_snapshot!(t.backend());
}

#[test]
fn frames_and_events_panes_stacked() {
    let s = decoded_session();
    let t = draw(&s, &ui(100, 30));
    insta::assert_snapshot!(t.backend());
}

#[test]
fn event_detail_explains_and_frame_detail_shows_fields() {
    let s = decoded_session();
    let mut u = ui(180, 40);
    let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
    // Tab twice: the events pane, with the first (most important) event selected.
    u.on_key(&s, key(KeyCode::Tab));
    u.on_key(&s, key(KeyCode::Tab));
    let screen = text_of(draw(&s, &u).backend().buffer());
    assert!(screen.contains("events (2)"), "{screen}");
    u.on_key(&s, key(KeyCode::Enter));
    let screen = text_of(draw(&s, &u).backend().buffer());
    assert!(screen.contains("explanation"), "{screen}");
    assert!(screen.contains("What to do"), "{screen}");
    u.on_key(&s, key(KeyCode::Esc));

    // The frames pane: select the bad M-Bus frame (the newest) and open it.
    u.on_key(&s, key(KeyCode::Tab));
    u.on_key(&s, key(KeyCode::Tab));
    u.on_key(&s, key(KeyCode::Up));
    u.on_key(&s, key(KeyCode::Down));
    u.on_key(&s, key(KeyCode::Enter));
    let screen = text_of(draw(&s, &u).backend().buffer());
    assert!(
        screen.contains("checksum: expected 9D, found 9E"),
        "{screen}"
    );
    assert!(screen.contains("CI: 0x72"), "{screen}");
    // g: the frame's bytes are marked in the hex pane.
    u.on_key(&s, key(KeyCode::Char('g')));
    let t = draw(&s, &u);
    let buf = t.backend().buffer();
    let marked = buf
        .content()
        .iter()
        .filter(|c| c.style().bg == Theme::COLOR.span.bg)
        .count();
    // 27 bytes, two hex digits each (the two 0x68s keep their own colour but are marked too).
    assert!(marked >= 25 * 2, "{marked} marked cells\n{}", text_of(buf));
}

#[test]
fn talking_to_names_the_peer() {
    let s = decoded_session();
    let mut u = ui(120, 30);
    u.on_key(&s, KeyEvent::new(KeyCode::Char('T'), KeyModifiers::SHIFT));
    let screen = text_of(draw(&s, &u).backend().buffer());
    assert!(screen.contains("what am I talking to?"), "{screen}");
    assert!(screen.contains("IEC 60870-5-104 station"), "{screen}");
}

/// 9600 8N1 text read at 115200 through the line model: breaks, as a real UART reports them.
fn wrong_baud_session() -> Session {
    use hsmon::event::{FrameFormat, LineErrorCounts};
    use hsmon::uart_line::{Receiver, Sender, UartLink};
    let mut link = UartLink::new(
        Sender::new(Baud::new(9600).unwrap(), FrameFormat::default()),
        Receiver::new(Baud::new(115_200).unwrap(), FrameFormat::default()),
    );
    let mut t = 0.0;
    for _ in 0..6 {
        t = link.send(t, b"boot: checking flash... ok\r\n") + 0.01;
    }
    let r = link.receive_until(t + 0.1);
    let c = r.counts;
    session(&[
        at(0, Event::Connection(ConnectionState::Up)),
        at(
            0,
            Event::LineSettings {
                settings: LineSettings::default(),
                modem: ModemLines::default(),
            },
        ),
        at(0, Event::LineErrors(Some(LineErrorCounts::default()))),
        at(100, Event::Rx(r.bytes())),
        at(1000, Event::LineErrors(Some(c))),
    ])
}

#[test]
fn status_bar_suggests_the_rate_and_a_applies_it() {
    let s = wrong_baud_session();
    let mut u = ui(160, 30);
    let screen = text_of(draw(&s, &u).backend().buffer());
    assert!(
        screen.contains("garbage: likely baud mismatch — 9600 8N1 looks right"),
        "{screen}"
    );
    assert!(screen.contains("a apply, A scan"), "{screen}");
    assert_eq!(
        u.on_key(&s, KeyEvent::new(KeyCode::Char('a'), KeyModifiers::NONE)),
        vec![Effect::Command(hsmon::event::Command::SetBaud(
            Baud::new(9600).unwrap()
        ))]
    );
    // `A` asks the monitor for an active scan.
    assert_eq!(
        u.on_key(&s, KeyEvent::new(KeyCode::Char('A'), KeyModifiers::SHIFT)),
        vec![Effect::StartScan]
    );
}

#[test]
fn status_bar_says_recording_and_why_it_stopped() {
    use hsmon::capture::{meta::CaptureMeta, writer::CaptureWriter};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.hscap");
    let meta = CaptureMeta::new("t", None, std::time::SystemTime::now());
    let mut s = mbus_session();
    s.set_recorder(CaptureWriter::create_or_stopped(&path, &meta));
    let screen = text_of(draw(&s, &ui(200, 30)).backend().buffer());
    assert!(screen.contains("● rec "), "{screen}");
    let mut full = mbus_session();
    full.set_recorder(CaptureWriter::create_or_stopped(
        std::path::Path::new("/dev/full"),
        &meta,
    ));
    let screen = text_of(draw(&full, &ui(200, 30)).backend().buffer());
    assert!(screen.contains("recording stopped: disk full"), "{screen}");
}

/// Issue 20: after scrolling up in the frames pane, every row is drawn — the frames after the
/// selection fill the rows below it instead of blank rows.
#[test]
fn frames_pane_draws_every_row_after_scrolling_up() {
    let mut events = vec![at(0, Event::Connection(ConnectionState::Up))];
    for i in 0..60u64 {
        events.push(at(
            10 + i,
            Event::Rx(format!("msg-{i:02}\r\n").into_bytes()),
        ));
    }
    let s = session(&events);
    let mut u = ui(180, 24);
    let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
    let rows = |u: &UiState| {
        let screen = text_of(draw(&s, u).backend().buffer());
        let n = screen.lines().filter(|l| l.contains("✓")).count();
        (n, screen)
    };
    let (following, screen) = rows(&u);
    assert!(following >= 4, "{screen}");
    // The frames pane, then far up: the selection near the oldest frames.
    u.on_key(&s, key(KeyCode::Tab));
    for _ in 0..55 {
        u.on_key(&s, key(KeyCode::Up));
    }
    let (scrolled, screen) = rows(&u);
    assert!(screen.contains("selected"), "{screen}");
    assert_eq!(
        scrolled, following,
        "rows drawn blank below the selection:\n{screen}"
    );
}

/// Issue 20: the notice when recording stops during a session said "recording stopped:
/// recording stopped: …".
#[test]
fn recording_stopped_is_said_once() {
    use hsmon::capture::{meta::CaptureMeta, writer::CaptureWriter};
    let meta = CaptureMeta::new("t", None, std::time::SystemTime::now());
    // A pipe takes the header, then its reader goes: every later write fails mid-session.
    let (reader, writer) = std::io::pipe().unwrap();
    let file = std::fs::File::from(std::os::fd::OwnedFd::from(writer));
    let mut s = mbus_session();
    s.set_recorder(CaptureWriter::new(file, "pipe.hscap", &meta));
    drop(reader);
    for i in 0..64u64 {
        s.ingest(&at(1_000 + i * 200, Event::Rx(vec![0x55; 64 * 1024])));
        s.poll_capture(Duration::from_millis(1_100 + i * 200));
    }
    let texts: Vec<&str> = s.notices().iter().map(|n| n.text.as_str()).collect();
    let stopped: Vec<&&str> = texts
        .iter()
        .filter(|t| t.contains("recording stopped"))
        .collect();
    assert!(!stopped.is_empty(), "no notice: {texts:?}");
    for t in stopped {
        assert_eq!(t.matches("recording stopped").count(), 1, "{t}");
    }
}

/// Issue 20: a TUI replay of a damaged or cut capture said only "replay ended"; the status bar
/// now says what was skipped and where.
#[test]
fn replay_end_says_what_was_damaged() {
    let end = |reason: &str| {
        session(&[
            at(
                0,
                Event::Replay {
                    paused: false,
                    speed: 1000.0,
                    text: "replay".into(),
                },
            ),
            at(0, Event::Connection(ConnectionState::Up)),
            at(5, Event::Rx(b"boot\r\n".to_vec())),
            at(
                10,
                Event::Connection(ConnectionState::Down {
                    reason: reason.into(),
                }),
            ),
        ])
    };
    let s = end(
        "end of the capture: 3 events played, 1 damaged record(s) skipped (at byte 213); the file ends in a cut record at byte 400",
    );
    let screen = text_of(draw(&s, &ui(200, 30)).backend().buffer());
    assert!(
        screen.contains("replay ended (1000x) · 1 damaged record(s) skipped (at byte 213"),
        "{screen}"
    );
    let s = end("end of the capture: 3 events played");
    let screen = text_of(draw(&s, &ui(200, 30)).backend().buffer());
    assert!(screen.contains("replay ended (1000x)"), "{screen}");
    assert!(!screen.contains("damaged"), "{screen}");
}
